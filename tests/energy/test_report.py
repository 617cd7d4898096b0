"""Energy report: hand-computed energies, break-even rate, and the written JSON/MD/HTML files."""

from __future__ import annotations

import base64
import json
import re

import nir
import numpy as np
import pytest

from spikesmith.energy import make_report, write_report
from spikesmith.errors import InputError
from spikesmith.targets.onnx import export_ann_twin

PJ = 1e-12


@pytest.fixture
def two_layer(lif, make_trace, tmp_path):
    """A 4-3-2 spiking MLP, its trace (T=2, B=1) and its ANN twin file."""
    w1 = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    w1[0, 1] = 0.0
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([4])}),
            "fc1": nir.Affine(weight=w1, bias=np.zeros(3, dtype=np.float32)),
            "lif1": lif((3,)),
            "fc2": nir.Affine(weight=np.ones((2, 3), dtype=np.float32), bias=np.zeros(2, dtype=np.float32)),
            "lif2": lif((2,)),
            "output": nir.Output({"output": np.array([2])}),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
    )
    x = np.array([[[1, 1, 0, 0]], [[0, 1, 0, 1]]], dtype=np.float32)
    s1 = np.array([[[1, 0, 0]], [[1, 1, 0]]], dtype=np.float32)
    s2 = np.array([[[0, 1]], [[1, 1]]], dtype=np.float32)
    trace = make_trace(g, {"input": x, "lif1": s1, "lif2": s2})
    onnx_path = export_ann_twin(g, tmp_path / "twin.onnx")
    return g, trace, onnx_path


def test_energies_ratio_and_break_even_by_hand(two_layer):
    g, trace, onnx_path = two_layer
    r = make_report(graph=g, trace=trace, ann_onnx=onnx_path, profile="cmos45", accuracy=0.75)
    # SOPs: fc1 10 (fan-outs 3,2,3,3), fc2 2 + 4; neuron updates (3 + 2) * 2 steps
    assert r.counts.synops == 16 and r.counts.neuron_updates == 10
    assert r.snn_energy.synaptic == pytest.approx(16 * 0.9 * PJ)
    assert r.snn_energy.neuron_updates == pytest.approx(10 * 5.5 * PJ)
    assert r.snn_energy.total == pytest.approx(69.4 * PJ)
    # ANN twin: 12 + 6 MACs; bias adds 3 + 2 and ReLUs 3 + 2 as FLOPs
    assert r.ann.macs == 18 and r.ann.flops == 10
    assert r.ann_energy == pytest.approx((18 * 4.6 + 10 * 0.9) * PJ)
    assert r.ratio == pytest.approx(91.8 / 69.4)
    # fc1 is driven by the input only (fixed); fc2 by lif1: slope = T * 6 synapses * 0.9 pJ
    be = r.break_even
    assert be["e_fixed_j"] == pytest.approx((10 * 0.9 + 10 * 5.5) * PJ)
    assert be["e_slope_j"] == pytest.approx(2 * 6 * 0.9 * PJ)
    assert be["rate"] == pytest.approx((91.8 - 64.0) / 10.8)
    assert be["observed_rate"] == pytest.approx(6 / 10)
    assert "every firing rate" in be["verdict"]
    layers = {x.name: x for x in r.layers}
    assert layers["fc2"].snn == pytest.approx(6 * 0.9 * PJ)
    assert layers["fc2"].ann == pytest.approx((6 * 4.6 + 2 * 0.9) * PJ)
    assert layers["lif1"].ann == pytest.approx(3 * 0.9 * PJ)


def test_loihi_profile_uses_cmos45_for_the_ann_and_says_so(two_layer):
    g, trace, onnx_path = two_layer
    r = make_report(graph=g, trace=trace, ann_onnx=onnx_path, profile="loihi", gee_macs=100)
    assert r.ann_profile.name == "cmos45"
    assert any("ANN baseline uses 'cmos45'" in n for n in r.notes)
    assert r.snn_energy.synaptic == pytest.approx(16 * 23.6 * PJ)
    assert r.snn_energy.spikes == pytest.approx(6 * 30.7 * PJ)
    assert r.snn_energy.gee == pytest.approx(100 * 23.6 * PJ)
    with pytest.raises(InputError, match="gpu_a100.*cannot price an SNN"):
        make_report(graph=g, trace=trace, profile="gpu_a100")


def test_report_without_ann(two_layer):
    g, trace, _ = two_layer
    r = make_report(graph=g, trace=trace)
    assert r.ann is None and r.ratio is None and r.break_even is None
    assert r.summary()["ann_energy_j"] is None


def test_write_report_files(two_layer, tmp_path):
    g, trace, onnx_path = two_layer
    r = make_report(graph=g, trace=trace, ann_onnx=onnx_path, accuracy=0.75, extra={"model": "mlp-4-3-2"})
    paths = write_report(r, tmp_path / "out")
    for key in ("json", "md", "html"):
        assert paths[key].is_file()
    data = json.loads(paths["json"].read_text())
    assert data["schema_version"] == 1
    assert data["summary"]["snn_synops"] == 16
    assert data["summary"]["snn_energy_profile"] == "cmos45"
    assert data["profiles"]["snn"]["constants"]["mac"]["source"].startswith("M. Horowitz")
    assert [x["name"] for x in data["counts"]["layers"]] == ["fc1", "lif1", "fc2", "lif2"]
    page = paths["html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert "mlp-4-3-2" in page and "Horowitz" in page and "Break-even" in page
    md = paths["md"].read_text()
    assert "| SNN synaptic ops (SOPs) / inference | 16 |" in md
    assert "(firing_rate.png)" in md and paths["plot_firing_rate"].is_file()
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_html_page_is_self_contained_and_leads_with_the_key_figures(two_layer, tmp_path):
    """The page forbids every load but its inline style and data: images; its top holds the two headline plots
    and the assumptions, which list the constants each profile is charged for (rendered by a browser in
    test_report_browser.py)."""
    g, trace, onnx_path = two_layer
    r = make_report(graph=g, trace=trace, ann_onnx=onnx_path, profile="loihi")
    page = write_report(r, tmp_path / "out")["html"].read_text()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r'(src|href)="(?!data:)', page)
    top = page[:page.index("<h2>Summary</h2>")]
    for anchor in ('id="energy-per-layer"', 'id="firing-rate"', 'id="assumptions"'):
        assert anchor in top
    panel = top[top.index('id="assumptions"'):]
    loihi, cmos = panel.split("profile cmos45")
    assert "profile loihi (prices the SNN)" in loihi and "(prices the ANN twin)" in cmos
    keys = lambda part: set(re.findall(r"<tr><td>([a-z_]+)</td>", part))  # noqa: E731
    assert keys(loihi) == {"ac", "mac", "neuron_update", "spike"} and keys(cmos) == {"mac", "flop"}
    assert "23.6 pJ" in loihi and "4.6 pJ" in cmos
