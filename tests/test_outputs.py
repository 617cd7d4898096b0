"""Outputs: checked before work, never an input, the umask's permissions, locked while in use, and left as
found when a command fails."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from spikesmith import io
from spikesmith.errors import InputError


def test_outputs_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        for write in (lambda p: io.write_text(p, "x"), lambda p: io.save_array(p, np.zeros(3)),
                      lambda p: io.save_checkpoint(p, {"a": 1})):
            path = tmp_path / f"f{len(list(tmp_path.iterdir()))}"
            write(path)
            assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)
        io.write_text(tmp_path / "private", "x")
        assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_check_output_refuses_what_cannot_or_must_not_be_written(tmp_path):
    src = tmp_path / "x.npy"
    io.save_array(src, np.ones((2, 1, 3)))
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    cases = [
        (dict(path=src, inputs=[src]), "is the input"),
        (dict(path=tmp_path / "." / "x.npy", inputs=[src]), "is the input"),
        (dict(path=tmp_path / "adir"), "is a directory; expected a file path"),
        (dict(path=tmp_path / "afile", kind="dir"), "exists as a file"),
        (dict(path=tmp_path / "afile" / "y.npy"), "which is a file"),
        (dict(path=tmp_path, kind="dir", inputs=[src], writes=("x.npy",)), "would overwrite the input"),
    ]
    for kw, msg in cases:
        with pytest.raises(InputError, match=msg):
            io.check_output(**kw)
    assert io.check_output(tmp_path / "new" / "deeper" / "y.npy") == tmp_path / "new" / "deeper" / "y.npy"
    assert not (tmp_path / "new").exists()  # checking writes nothing


def test_read_only_file_system_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a read-only file system here (needs root and mount permission)")
    try:
        with pytest.raises(InputError, match="read-only file system"):
            io.check_output(ro / "out" / "m.nir")
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_a_failing_command_leaves_the_directory_as_found(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with io.output_dir(out):
            io.write_text(out / "half.json", "{}")
            io.write_text(out / "sub" / "deep.txt", "x")
            raise RuntimeError("failed midway")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        with io.output_dir(fresh):
            io.write_text(fresh / "a.txt", "x")
            raise RuntimeError("failed")
    assert not fresh.exists()
    with pytest.raises(RuntimeError):
        with io.output_dir(out, keep_on_error=True):  # a resumable run keeps its checkpoint
            io.write_text(out / "checkpoint.json", "{}")
            raise RuntimeError("killed")
    assert (out / "checkpoint.json").is_file()


def test_a_directory_in_use_is_locked_and_a_dead_holder_is_taken_over(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out.mkdir()
        (out / io.LOCK_NAME).write_text(f"{holder.pid}\n")
        with pytest.raises(InputError, match=rf"in use by another spikesmith command .*PID {holder.pid}"):
            with io.output_dir(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with io.output_dir(out):  # its holder is dead: taken over
        assert (out / io.LOCK_NAME).read_text().strip() == str(os.getpid())
        with io.output_dir(out):  # re-entered by the same command (a stage of a pipeline)
            pass
        assert (out / io.LOCK_NAME).is_file()
    assert not (out / io.LOCK_NAME).exists()


def test_non_finite_and_empty_inputs_are_named(tmp_path):
    x = np.zeros((3, 2, 4))
    x[1, 0, 2] = np.nan
    x[2, 1, 3] = np.inf
    io.save_array(tmp_path / "nan.npy", x)
    with pytest.raises(InputError, match=r"nan.npy: 2 NaN or infinite value\(s\) \(first at index \(1, 0, 2\)\)"):
        io.load_array(tmp_path / "nan.npy")
    io.save_array(tmp_path / "empty.npy", np.zeros((0, 2, 4)))
    with pytest.raises(InputError, match=r"empty.npy: the input is empty \(shape \(0, 2, 4\)\)"):
        io.load_array(tmp_path / "empty.npy")
