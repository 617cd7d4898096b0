import numpy as np
import torch

from spikesmith import io
from spikesmith.compile.export import export_network
from spikesmith.nn.families.gee import build_network
from spikesmith.targets.lava import simulate as lava
from spikesmith.targets.reference import simulate as reference


def test_gee_network_exports_materialised_weights_with_encodings(tmp_path):
    m = build_network("digits", genes=16, encoded=True, seed=0).eval()
    g = io.read_nir(io.write_nir(tmp_path / "gee.nir", export_network(m)))
    encoded = [n for n in g.nodes.values() if "gee.x_pre" in n.metadata]
    assert encoded, "GEE encodings must survive the NIR round trip"
    node = encoded[0]
    # the stored encodings regenerate the exported weight up to the folded batch-norm scale per channel
    w = node.metadata["gee.x_post"] @ node.metadata["gee.g"] @ node.metadata["gee.x_pre"].T
    exported = np.asarray(node.weight).reshape(w.shape[0], -1)
    # per output channel, the best scale s = <e, w> / <w, w>; the residual is measured against the row's norm
    s = (exported * w).sum(1, keepdims=True) / (w * w).sum(1, keepdims=True)
    residual = np.linalg.norm(exported - s * w, axis=1) / np.linalg.norm(exported, axis=1)
    assert residual.max() < 1e-5, residual.max()
    assert np.all(s > 0), "the folded batch-norm scale of a fresh network is positive"
    x = (np.random.default_rng(0).random((4, 6, 1, 8, 8)) < 0.5).astype(float)
    ref = reference(g, x, dt=1e-3)
    with torch.no_grad():
        np.testing.assert_array_equal(m.double()(torch.as_tensor(x)).numpy(), ref.output)
    lv = lava(g, x, dt=1e-3)
    for k, a in ref.activity.items():
        np.testing.assert_array_equal(lv.activity[k], a, err_msg=k)
