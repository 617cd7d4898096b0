"""Model files: one format for every family, earlier formats, and bad files as one-line errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile

import pytest
import torch

from spikesmith import io
from spikesmith.errors import InputError
from spikesmith.nn import build, load_model, save_model
from spikesmith.nn.families.conv import ConvSpec

SPEC = ConvSpec(c1=4, c2=4, input_shape=(1, 8, 8), num_classes=10)


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "spikesmith", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def good_file(path):
    return save_model(path, build(SPEC, seed=0), SPEC, steps=4, data="digits")


class _Marker:
    """Unpickling this would create a marker file (it must never run)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def bad_files(tmp_path):
    files = {}
    good = good_file(tmp_path / "good.pt")
    state = torch.load(good, weights_only=True)

    files["unknown family"] = tmp_path / "family.pt"
    io.save_checkpoint(files["unknown family"], {**state, "family": "transformer"})
    files["newer version"] = tmp_path / "newer.pt"
    io.save_checkpoint(files["newer version"], {**state, "version": 99})
    files["truncated"] = tmp_path / "truncated.pt"
    files["truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["empty"] = tmp_path / "empty.pt"
    files["empty"].write_bytes(b"")
    files["pickle payload"] = tmp_path / "payload.pt"
    torch.save({"format": "spikesmith.model", "x": _Marker(str(tmp_path / "MARKER"))}, files["pickle payload"])
    files["raw pickle"] = tmp_path / "raw.pt"
    files["raw pickle"].write_bytes(pickle.dumps(_Marker(str(tmp_path / "MARKER"))))
    wrong = dict(state["state_dict"])
    wrong["layers.0.weight"] = torch.zeros(9, 1, 3, 3)
    files["weights do not fit"] = tmp_path / "wrong.pt"
    io.save_checkpoint(files["weights do not fit"], {**state, "state_dict": wrong})
    nan = dict(state["state_dict"])
    nan["layers.0.weight"] = nan["layers.0.weight"].clone()
    nan["layers.0.weight"][0, 0, 1, 1] = float("nan")
    files["nan weight"] = tmp_path / "nan.pt"
    io.save_checkpoint(files["nan weight"], {**state, "state_dict": nan})
    return files


EXPECT = {
    "unknown family": "unknown network family 'transformer' (known: conv, gee, nas)",
    "newer version": "model file version 99 is not one this spikesmith reads",
    "truncated": "unreadable checkpoint",
    "empty": "empty file",
    "pickle payload": "unreadable checkpoint",
    "raw pickle": "unreadable checkpoint",
    "weights do not fit": "weights do not fit the spec of family 'conv' (size mismatch for layers.0.weight",
    "nan weight": "weight 'layers.0.weight' has 1 NaN or infinite value(s) (first at index (0, 0, 1, 1))",
}


def test_bad_model_files_are_one_line_errors_naming_the_file(tmp_path):
    files = bad_files(tmp_path)
    for what, path in files.items():
        with pytest.raises(InputError) as err:
            load_model(path)
        msg = str(err.value)
        assert str(path) in msg and EXPECT[what] in msg and "\n" not in msg, (what, msg)
    assert not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize("what", ["unknown family", "truncated", "pickle payload", "weights do not fit"])
def test_cli_rejects_bad_model_files_and_writes_nothing(tmp_path, what):
    path = bad_files(tmp_path)[what]
    out = tmp_path / "out"
    r = cli("compile", path, "--to", "nir", "-o", out / "m.nir")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], r.stderr
    assert EXPECT[what] in lines[0] and "Traceback" not in r.stderr
    assert not out.exists() and not (tmp_path / "MARKER").exists()


def test_conv_model_of_the_earlier_format_still_loads(tmp_path):
    model = build(SPEC, seed=3)
    old = tmp_path / "old.pt"
    arch = {"kind": "conv", "values": SPEC.values, "input_shape": [1, 8, 8], "num_classes": 10, "steps": 6,
            "encoding": "rate", "dt": 1e-3}
    io.save_checkpoint(old, {"format": "spikesmith.snn/1", "arch": arch, "state_dict": model.state_dict()})
    loaded, mf = load_model(old)
    assert mf.family == "conv" and mf.steps == 6 and mf.encoding == "rate"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_sequential_gee_model_of_the_earlier_format_still_loads(tmp_path):
    from spikesmith.nn.families.gee import build_network

    model = build_network("digits", genes=8, seed=2)
    indexed = {}
    names = [n for n, _ in model.graph]
    for key, v in model.state_dict().items():  # the earlier layout: layers.<index>.<param>
        head, _, rest = key.partition(".")
        name, _, tail = rest.partition(".")
        indexed[f"layers.{names.index(name)}.{tail}" if head == "layers" else key] = v
    old = tmp_path / "gee.pt"
    io.save_checkpoint(old, {"model": indexed, "arch": "digits", "genes": 8})
    loaded, mf = load_model(old)
    assert mf.family == "gee" and mf.spec["arch"] == "digits"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_nas_model_of_the_earlier_format_says_how_to_recreate_it(tmp_path):
    old = tmp_path / "nas.pt"
    io.save_checkpoint(old, {"format": "spikesmith.nas-model/1", "meta": {}, "state_dict": {}})
    with pytest.raises(InputError, match=r"nas.pt: an MSE-NAS model .* re-create it with `spikesmith evolve nas"):
        load_model(old)


def test_a_zip_checkpoint_with_a_payload_never_runs(tmp_path):
    path = tmp_path / "zipped.pt"
    good = good_file(tmp_path / "good.pt")
    with zipfile.ZipFile(good) as src:
        names = src.namelist()
        data_pkl = next(n for n in names if n.endswith("data.pkl"))
        with zipfile.ZipFile(path, "w") as dst:
            for n in names:
                payload = pickle.dumps(_Marker(str(tmp_path / "MARKER"))) if n == data_pkl else src.read(n)
                dst.writestr(n, payload)
    with pytest.raises(InputError, match="unreadable checkpoint"):
        load_model(path)
    assert not (tmp_path / "MARKER").exists()
