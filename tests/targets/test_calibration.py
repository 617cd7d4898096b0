"""Calibration on a calibration split: deterministic, never worse than the default scales, and better
where bias correction removes the rounding's mean error."""

import numpy as np

from deploy_graphs import demo_graph
from spikesmith.compile.graph import flatten
from spikesmith.compile.plan import build_plan
from spikesmith.targets.calibration import calibrate, disagreement
from spikesmith.targets.loihi import Engine


def test_calibration_lowers_spike_disagreement_and_is_deterministic():
    plan = build_plan(flatten(demo_graph(seed=1)), 1e-3)
    x = (np.random.default_rng(0).random((8, 24, 1, 8, 8)) < 0.3).astype(np.float64)
    q, rec = calibrate(plan, x, source="test")
    for name, d in rec.disagreement.items():
        assert d <= rec.disagreement_default[name], name
    assert sum(rec.disagreement.values()) < sum(rec.disagreement_default.values())
    assert rec.bias_corrected and rec.samples == 24 and len(rec.input_sha256) == 64
    # the record is what the chosen plan does on the split
    ref = Engine(plan).run(x, record=True)["activity"]
    assert disagreement(q, x, ref) == rec.disagreement
    q2, rec2 = calibrate(plan, x, source="test")
    assert rec2 == rec
    for a, b in zip(q.connections, q2.connections):
        assert a.exp == b.exp and np.array_equal(a.weight, b.weight)
    # on held-out inputs the calibrated integers still agree at least as well as the default ones
    held = (np.random.default_rng(1).random((8, 24, 1, 8, 8)) < 0.3).astype(np.float64)
    ref_h = Engine(plan).run(held, record=True)["activity"]
    q0, _ = calibrate(plan, x, source="test", search=False)
    assert sum(disagreement(q, held, ref_h).values()) <= sum(disagreement(q0, held, ref_h).values())
