"""Verification at test-set scale: every sample through the reference and the engine, a sample through Lava."""

import numpy as np

from deploy_graphs import pooled_conv_graph
from factories import spikes
from spikesmith.targets.verify import render_verification, verify


def test_verify_streams_every_sample_and_runs_lava_on_a_sample():
    g = pooled_conv_graph(seed=1, hw=8)
    rng = np.random.default_rng(0)
    chunks = [(spikes((6, 5, 2, 8, 8), 0.5, seed=i), rng.integers(0, 5, 5)) for i in range(3)]
    calls, events = [], []

    def batches():
        calls.append(1)
        yield from chunks

    v = verify(g, batches=batches, samples=15, dt=1e-3, fixed_point=True, fixed_tolerance=0.0, lava_samples=7,
               batch_size=4, on_progress=lambda stage, info: events.append((info["stage"], info["done"])))
    assert len(calls) == 2  # one pass to size the fixed-point states, one to verify
    assert v.samples == 15 and v.target_samples == {"norse": 15, "lava-float": 7, "loihi": 15, "lava-fixed": 7}
    assert [c.samples for c in v.comparisons] == [7, 15, 7]
    assert v.float_ok and v.comparisons[2].identical and v.fixed_ok
    # accuracy counted over all samples for the reference and the engine, over the sample for Lava
    x = np.concatenate([c[0] for c in chunks], axis=1)
    y = np.concatenate([c[1] for c in chunks])
    from spikesmith.targets.reference import simulate as reference

    ref = reference(g, x, dt=1e-3)
    assert v.accuracy["norse"] == float((ref.output.sum(0).argmax(-1) == y).mean())
    assert v.accuracy["lava-float"] == float((ref.output[:, :7].sum(0).argmax(-1) == y[:7]).mean())
    stages = {s for s, _ in events}
    assert {"calibrate", "norse+loihi", "lava-float", "lava-fixed"} <= stages
    assert ("norse+loihi", 15) in events
    text = render_verification(v)
    assert "lava-float 7" in text and "Lava runs a sample of the split" in text
    assert v.to_dict()["schema_version"] == 2
