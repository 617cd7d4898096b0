"""The HTML energy report in a real browser: headless Chromium renders report.html.

Checked in the rendered page: every plot decoded, the tables are there, nothing is loaded from the
network (the page's own Content-Security-Policy, the DOM's URLs, and the requests Chromium saw), and the
headline plots and the energy model's assumptions are in view without scrolling on laptop screens. A
screenshot is saved to out/report-screenshot.png. Skips, saying why, where Chromium is not installed
(`make test` installs Debian's chromium when it runs as root with apt-get).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from browser import Chromium, find_chromium
from factories import spikes
from spikesmith import api
from spikesmith.energy import make_report, write_report
from spikesmith.targets.onnx import export_ann_twin

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs Debian's "
                                "chromium when run as root with apt-get)")
OUT = Path(__file__).resolve().parents[2] / "out"
LAPTOPS = [(1366, 768), (1440, 900)]
IN_VIEW = ("energy-per-layer", "firing-rate", "assumptions")

PAGE_FACTS = """(() => {
  const imgs = [...document.images].map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}));
  const urls = [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') || e.getAttribute('href'));
  const box = id => { const e = document.getElementById(id); if (!e) return null;
                      const r = e.getBoundingClientRect(); return {top: r.top, left: r.left, bottom: r.bottom, right: r.right}; };
  return {imgs, urls, tables: [...document.querySelectorAll('table')].map(t => t.rows.length),
          headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
          csp: (document.querySelector('meta[http-equiv="Content-Security-Policy"]') || {}).content || null,
          view: {w: window.innerWidth, h: window.innerHeight, scrollY: window.scrollY},
          boxes: Object.fromEntries(%s.map(id => [id, box(id)]))};
})()""" % (list(IN_VIEW),)


def _demo_report(tmp_path: Path, profile: str) -> tuple[Path, object]:
    """report.html of the demo-shaped conv SNN (seeded weights) simulated on the reference."""
    import torch

    from spikesmith.nn import build
    from spikesmith.nn.families.conv import ConvSpec

    gen = torch.Generator().manual_seed(0)
    model = build(ConvSpec(c1=12, c2=32, hidden=0, tau_steps=2.0, v_th=0.5, input_shape=(1, 8, 8), num_classes=10))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * 1.5 * (2.0 / p[0].numel()) ** 0.5)
    graph = api.export_model(model.eval(), dt=1e-3)
    trace = api.simulate(graph, spikes((8, 4, 1, 8, 8), 0.3, seed=0), target="norse", dt=1e-3)
    report = make_report(graph=graph, trace=trace, ann_onnx=export_ann_twin(graph, tmp_path / "twin.onnx"),
                         profile=profile, extra={"model": "demo-shaped conv SNN (seeded weights)"})
    return write_report(report, tmp_path / profile)["html"], report


def _external(urls) -> list[str]:
    return [u for u in urls if not (u.startswith("data:") or u.startswith("file:") or u.startswith("#"))]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def browser():
    with Chromium(CHROMIUM, width=LAPTOPS[0][0], height=LAPTOPS[0][1], timeout=60) as b:
        yield b


@pytest.mark.parametrize("profile", ["cmos45", "loihi"])
def test_report_renders_offline_with_its_key_figures_in_view(browser, profile, tmp_path):
    page, report = _demo_report(tmp_path, profile)
    for width, height in LAPTOPS:
        browser.resize(width, height)
        browser.open(page)
        facts = browser.evaluate(PAGE_FACTS)
        # every plot decoded
        assert len(facts["imgs"]) == 3
        assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in facts["imgs"]), facts["imgs"]
        # the tables: summary, energy by operation, one row per layer (+ head), constants; the assumptions panel
        assert {"Summary", "SNN energy by operation", "Per layer", "Energy constants"} <= set(facts["headings"])
        assert len(report.counts.layers) + 1 in facts["tables"] and len(facts["tables"]) >= 5
        # nothing from the network: the page forbids it, names no external URL, and Chromium fetched none
        assert facts["csp"] and "default-src 'none'" in facts["csp"]
        assert not _external(facts["urls"]) and not _external(browser.requested_urls())
        # the SNN vs ANN energy per layer, firing rate vs break-even and the assumptions: in view, unscrolled
        assert facts["view"] == {"w": width, "h": height, "scrollY": 0}
        for name, box in facts["boxes"].items():
            assert box is not None, name
            assert 0 <= box["top"] and box["bottom"] <= height and 0 <= box["left"] and box["right"] <= width, \
                (name, box, width, height)
    browser.resize(*LAPTOPS[0])
    browser.open(page)
    shot = browser.screenshot(OUT / ("report-screenshot.png" if profile == "cmos45" else f"report-screenshot-{profile}.png"))
    assert _png_size(shot) == LAPTOPS[0]


def test_the_offline_checks_catch_an_external_resource(browser, tmp_path):
    """The checks above can fail: a page that names an external image is caught by both (and its CSP blocks the fetch)."""
    page, _ = _demo_report(tmp_path, "cmos45")
    tampered = tmp_path / "tampered.html"
    tampered.write_text(page.read_text().replace("</body>", '<img alt="x" src="http://example.invalid/x.png"></body>'))
    browser.resize(*LAPTOPS[0])
    browser.open(tampered)
    facts = browser.evaluate(PAGE_FACTS)
    assert _external(facts["urls"]) == ["http://example.invalid/x.png"]
    assert any(i["w"] == 0 for i in facts["imgs"])
    assert _external(browser.requested_urls()) == ["http://example.invalid/x.png"]
    blocked = [e["params"].get("blockedReason") for e in browser.events if e["method"] == "Network.loadingFailed"]
    assert blocked == ["csp"]  # the page's policy stopped it before the network
