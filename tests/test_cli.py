"""The command line, run as a user runs it (a subprocess), including its error paths."""

import subprocess
import sys

import numpy as np
import pytest

from factories import ff_graph, spikes
from spikesmith import io


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "spikesmith", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture
def graph_file(tmp_path):
    g = ff_graph(seed=1)
    g.metadata = {"spikesmith.dt": 1e-3}
    path = io.write_nir(tmp_path / "g.nir", g)
    x = spikes((20, 3, 6), 0.5, seed=4) * 2.0
    io.save_array(tmp_path / "x.npy", x)
    return path, tmp_path / "x.npy"


def test_help_everywhere():
    for args in ([], ["run"], ["compile"], ["demo"], ["train"], ["evolve"], ["evolve", "search"], ["evolve", "gee"],
                 ["evolve", "nas"], ["energy-report"]):
        r = cli(*args, "--help")
        assert r.returncode == 0, (args, r.stderr)
        assert "Usage" in r.stdout


def test_run_both_targets_give_identical_spikes(graph_file, tmp_path):
    g, x = graph_file
    outs = {}
    for target in ("norse", "lava"):
        r = cli("run", g, "--target", target, "--input", x, "-o", tmp_path / f"{target}.npy")
        assert r.returncode == 0, r.stderr
        outs[target] = np.load(tmp_path / f"{target}.npy")
    assert outs["norse"].shape == (20, 3, 3)
    assert outs["norse"].sum() > 0
    np.testing.assert_array_equal(outs["norse"], outs["lava"])


def test_run_without_stored_dt_says_which_dt_it_used(tmp_path):
    io.write_nir(tmp_path / "g.nir", ff_graph())
    io.save_array(tmp_path / "x.npy", np.zeros((3, 1, 6)))
    r = cli("run", tmp_path / "g.nir", "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert r.returncode == 0
    assert r.stderr.strip().splitlines()[-1] == "note: the graph stores no time step; using dt = 0.001 s (pass --dt to choose)"


@pytest.mark.parametrize("args,message", [
    (["run", "missing.nir", "--input", "x.npy", "-o", "y.npy"], "missing.nir: NIR file not found"),
    (["run", "{g}", "--input", "nothere.npy", "-o", "y.npy"], "nothere.npy: input file not found"),
    (["run", "{g}", "--input", "{bad}", "-o", "y.npy"], "input has shape (4, 2, 5); expected (T, B, 6)"),
    (["run", "{g}", "--target", "loihi9", "--input", "{x}", "-o", "y.npy"], "unknown target 'loihi9'"),
    (["run", "{g}", "--input", "{x}", "-o", "y.npy", "--dt", "-1"], "--dt: expected a finite number in (0, 3600]"),
    (["run", "{junk}", "--input", "{x}", "-o", "y.npy"], "not a NIR file"),
    (["run", "{g}", "--bogus"], "No such option: --bogus"),
    (["compile", "{x}", "--to", "nir", "-o", "o.nir"], "unreadable checkpoint"),
    (["compile", "{g}", "--to", "onnx", "-o", "o.nir"], "--to 'onnx' is not supported"),
    (["run", "{g}", "--input", "{x}", "-o", "y.npy", "--reset", "soft"], "--reset must be one of value, subtract"),
    (["run", "{g}", "--input", "{x}", "-o", "y.npy", "--reset-timing", "late"],
     "--reset-timing must be one of immediate, delayed"),
    (["run", "{badmeta}", "--input", "{x}", "-o", "y.npy"],
     "graph metadata 'spikesmith.reset' = 'soft': expected one of value, subtract"),
])
def test_bad_input_one_line_exit_2(graph_file, tmp_path, args, message):
    g, x = graph_file
    io.save_array(tmp_path / "bad.npy", np.zeros((4, 2, 5)))
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    bad_meta = ff_graph(seed=1)
    bad_meta.metadata = {"spikesmith.dt": 1e-3, "spikesmith.reset": "soft"}
    io.write_nir(tmp_path / "badmeta.nir", bad_meta)
    fill = {"g": g, "x": x, "bad": tmp_path / "bad.npy", "junk": tmp_path / "junk.nir", "badmeta": tmp_path / "badmeta.nir"}
    r = cli(*[a.format(**fill) for a in args], cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr


def test_compile_model_file_to_nir(tmp_path):
    import torch

    from spikesmith.nn import build, save_model
    from spikesmith.nn.families.conv import ConvSpec

    spec = ConvSpec(c1=4, c2=4, input_shape=(1, 8, 8), num_classes=10)
    save_model(tmp_path / "model.pt", build(spec, seed=0), spec)
    r = cli("compile", tmp_path / "model.pt", "--to", "nir", "-o", tmp_path / "m.nir")
    assert r.returncode == 0, r.stderr
    g = io.read_nir(tmp_path / "m.nir")
    assert g.metadata["spikesmith.dt"] == 1e-3
    assert isinstance(torch.load(tmp_path / "model.pt", weights_only=True), dict)


def test_gee_parameter_report_prints_compression_per_g():
    r = cli("evolve", "gee", "--arch", "resnet18", "--genes", "64,160", "--params-only")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith("resnet18")]
    assert [row[1] for row in rows] == ["64", "160"]
    compression = [float(row[4].rstrip("%")) for row in rows]
    assert 50 <= compression[1] < compression[0] <= 80


def test_compile_to_lava_verifies_and_exits_by_verdict(graph_file, tmp_path):
    g, _ = graph_file
    r = cli("compile", g, "--to", "lava", "--fixed-point", "--verify", "4", "-o", tmp_path / "v")
    assert r.returncode == 0, r.stderr
    report = io.read_json(tmp_path / "v" / "verification.json")
    assert report["ok"] and report["comparisons"][0]["identical"]
    assert report["resources"]["cores"] >= 2
    # exact agreement demanded of a wider net whose fixed point rounds some spikes away: exit 1, the report says why
    wide = ff_graph(seed=1, n_hidden=40)
    wide.metadata = {"spikesmith.dt": 1e-3}
    io.write_nir(tmp_path / "wide.nir", wide)
    r = cli("compile", tmp_path / "wide.nir", "--to", "lava", "--fixed-point", "--verify", "16", "--tolerance", "1",
            "-o", tmp_path / "w")
    assert r.returncode == 1
    assert "fixed point OUTSIDE tolerance" in r.stdout


def test_compile_to_nir_stores_dt_and_reads_without_type_checking(tmp_path):
    from factories import CORPUS

    if not CORPUS.is_dir():
        pytest.skip(f"no NIR corpus at {CORPUS}")
    r = cli("compile", CORPUS / "lif_rockpool.nir", "--to", "nir", "--no-type-check", "--dt", "1e-4",
            "-o", tmp_path / "r.nir")
    assert r.returncode == 0, r.stderr
    g = io.read_nir(tmp_path / "r.nir", type_check=False)
    assert g.metadata["spikesmith.dt"] == 1e-4 and g.metadata["spikesmith.reset_timing"] == "immediate"
