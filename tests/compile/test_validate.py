"""Malformed graphs are rejected with one line that names the defect, from the API and the CLI."""

import subprocess
import sys

import nir
import numpy as np
import pytest

from factories import ff_graph
from spikesmith import io
from spikesmith.compile.validate import validate
from spikesmith.errors import GraphError


def nan_weight():
    g = ff_graph()
    g.nodes["fc1"].weight[0, 0] = np.nan
    return g


def zero_tau():
    g = ff_graph()
    g.nodes["n1"].tau = np.zeros(8)
    return g


def shape_mismatch():
    g = ff_graph()
    g.nodes["fc2"] = nir.Affine(weight=np.ones((3, 5)), bias=np.zeros(3))
    return nir.NIRGraph(nodes=g.nodes, edges=g.edges, type_check=False)


def unsupported():
    class Softmax(nir.Scale):
        pass

    g = ff_graph()
    g.nodes["fc2"] = Softmax(scale=np.ones(8))
    return g


def dangling():
    g = ff_graph()
    g.nodes["orphan"] = nir.Linear(weight=np.ones((2, 2)))
    return g


def inf_threshold():
    g = ff_graph()
    g.nodes["n2"].v_threshold = np.full(3, np.inf)
    return g


CASES = {
    "nan_weight": (nan_weight, "node 'fc1': field 'weight' contains NaN or inf"),
    "zero_tau": (zero_tau, "node 'n1': field 'tau' must be positive"),
    "shape_mismatch": (shape_mismatch, "edge 'n1' -> 'fc2': shape mismatch"),
    "unsupported": (unsupported, "node 'fc2': type Softmax is not supported"),
    "dangling": (dangling, "dangling node(s) ['orphan']"),
    "inf_threshold": (inf_threshold, "node 'n2': field 'v_threshold' contains NaN or inf"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_names_the_defect(case):
    make, message = CASES[case]
    with pytest.raises(GraphError) as err:
        from spikesmith.targets.reference import supported_types

        validate(make(), supported=set(supported_types()))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("case,flags,message", [
    ("nan_weight", [], CASES["nan_weight"][1]),
    ("zero_tau", [], CASES["zero_tau"][1]),
    ("shape_mismatch", [], "nir rejects the graph's types (Type inference error: type mismatch: n1.output"),
    ("shape_mismatch", ["--no-type-check"], CASES["shape_mismatch"][1]),
])
def test_cli_rejects_malformed_graph_files_in_one_line(tmp_path, case, flags, message):
    make, _ = CASES[case]
    path = tmp_path / f"{case}.nir"
    io.write_nir(path, make())
    io.save_array(tmp_path / "x.npy", np.zeros((3, 1, 6)))
    r = subprocess.run([sys.executable, "-m", "spikesmith", "run", str(path), "--input", str(tmp_path / "x.npy"),
                        "-o", str(tmp_path / "y.npy"), *flags], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], r.stderr
