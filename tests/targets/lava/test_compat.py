import dataclasses
import subprocess
import sys

import numpy as np


def test_lava_network_runs_through_the_shim():
    from spikesmith.targets.lava.compat import ensure_lava

    ensure_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    lif1 = LIF(shape=(2,), du=1.0, dv=0.0, vth=1.5, bias_mant=np.array([1.0, 0.6]))
    dense = Dense(weights=np.array([[2.0, 0.0], [0.0, 2.0]]))
    lif2 = LIF(shape=(2,), du=1.0, dv=0.0, vth=1.0)
    lif1.s_out.connect(dense.s_in)
    dense.a_out.connect(lif2.a_in)
    mon = Monitor()
    mon.probe(lif1.s_out, 6)
    try:
        lif1.run(condition=RunSteps(num_steps=6), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        data = mon.get_data()
    finally:
        lif1.stop()
    s = next(iter(next(iter(data.values())).values()))
    # integrate-and-fire with bias 1.0 and threshold 1.5 spikes every second step; bias 0.6 every third
    assert s[:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert s[:, 1].tolist() == [0, 0, 1, 0, 0, 1]


def test_shim_restores_dataclasses_and_is_idempotent():
    from spikesmith.targets.lava.compat import ensure_lava

    before = dataclasses._process_class
    ensure_lava()
    ensure_lava()
    assert dataclasses._process_class is before


def test_plain_import_of_spikesmith_does_not_load_lava_or_torch():
    code = "import sys, spikesmith, spikesmith.cli, spikesmith.io; print(sorted(m for m in ('lava', 'torch', 'norse') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
