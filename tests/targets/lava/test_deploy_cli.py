"""The deployment commands in-process (spikesmith.cli.main): run --target loihi equals run --target lava
--fixed-point bit for bit; bad input is one line, exit 2, nothing written; verify --all on a dataset."""

import numpy as np
import pytest

from deploy_graphs import demo_graph
from factories import ff_graph, spikes
from spikesmith import io
from spikesmith.cli import main
from test_lowering import CORPUS_RUNS


def run(*args) -> int:
    return main([str(a) for a in args])


def both_fixed_targets(graph_path, x_path, tmp_path, *extra):
    outs = {}
    for target, flags in (("loihi", []), ("lava", ["--fixed-point", "--batch-size", "2"])):
        out = tmp_path / f"{target}.npy"
        assert run("run", graph_path, "--target", target, "--input", x_path, "-o", out, *flags, *extra) == 0
        outs[target] = np.load(out)
    return outs


@pytest.mark.parametrize("name,dt,steps", CORPUS_RUNS + [("lif_rockpool.nir", 1e-3, 30)])
def test_run_loihi_equals_run_lava_fixed_point_on_the_corpus(corpus, tmp_path, name, dt, steps):
    from spikesmith.compile.graph import flatten

    extra = ["--no-type-check"] if name == "lif_rockpool.nir" else []
    g = io.read_nir(corpus / name, type_check=not extra)
    flat = flatten(g)
    x = spikes((steps, 3, *flat.output_shape(flat.inputs[0])), 0.3, seed=7)
    io.save_array(tmp_path / "x.npy", x)
    outs = both_fixed_targets(corpus / name, tmp_path / "x.npy", tmp_path, *extra)
    np.testing.assert_array_equal(outs["loihi"], outs["lava"])


def test_run_loihi_equals_run_lava_fixed_point_on_the_demo_model_and_a_voltage_readout(tmp_path):
    import nir

    g = demo_graph(seed=1)
    g.metadata = {"spikesmith.dt": 1e-3}
    io.write_nir(tmp_path / "demo.nir", g)
    io.save_array(tmp_path / "x.npy", np.random.default_rng(0).random((8, 4, 1, 8, 8)))  # direct (graded) input
    outs = both_fixed_targets(tmp_path / "demo.nir", tmp_path / "x.npy", tmp_path)
    np.testing.assert_array_equal(outs["loihi"], outs["lava"])
    assert 0 < outs["loihi"].mean() < 1
    # an LI readout: the graph's output is a voltage, equal to the last bit too
    li = ff_graph(seed=3)
    li.nodes["n2"] = nir.LI(tau=np.full(3, 3e-3), r=np.ones(3), v_leak=np.zeros(3))
    io.write_nir(tmp_path / "li.nir", li)
    io.save_array(tmp_path / "s.npy", spikes((12, 3, 6), 0.5, seed=2))
    outs = both_fixed_targets(tmp_path / "li.nir", tmp_path / "s.npy", tmp_path)
    np.testing.assert_array_equal(outs["loihi"], outs["lava"])
    assert np.abs(outs["loihi"]).max() > 0


@pytest.mark.parametrize("target", ["norse", "lava", "loihi"])
@pytest.mark.parametrize("size", ["0", "-2"])
def test_bad_batch_size_is_one_line_exit_2_nothing_written(tmp_path, capsys, target, size):
    io.write_nir(tmp_path / "g.nir", ff_graph(seed=1))
    io.save_array(tmp_path / "x.npy", spikes((5, 2, 6)))
    assert run("run", tmp_path / "g.nir", "--target", target, "--input", tmp_path / "x.npy", "-o", tmp_path / "o.npy",
               "--batch-size", size) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--batch-size must be a positive number of samples" in err
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize("scale,rate,limit", [(1e7, 0.0, "exponent -8..7"), (1e7, 0.5, "24-bit state"),
                                              (1e-9, 0.5, "17 bits")])
def test_weights_and_states_beyond_loihis_formats_are_one_line_exit_2_nothing_written(tmp_path, capsys, scale, rate,
                                                                                      limit):
    g = ff_graph(seed=1)
    g.nodes["fc1" if scale > 1 else "fc2"].weight = g.nodes["fc1" if scale > 1 else "fc2"].weight * scale
    io.write_nir(tmp_path / "g.nir", g)
    io.save_array(tmp_path / "x.npy", spikes((5, 2, 6), rate))  # silent input: weights alone; spikes: states too
    for target, flags in (("loihi", []), ("lava", ["--fixed-point"])):
        assert run("run", tmp_path / "g.nir", "--target", target, "--input", tmp_path / "x.npy",
                   "-o", tmp_path / "o.npy", *flags) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "node 'n" in err and limit in err
        assert not (tmp_path / "o.npy").exists()


def test_fixed_point_flag_belongs_to_lava(tmp_path, capsys):
    io.write_nir(tmp_path / "g.nir", ff_graph(seed=1))
    io.save_array(tmp_path / "x.npy", spikes((5, 2, 6)))
    assert run("run", tmp_path / "g.nir", "--target", "norse", "--fixed-point", "--input", tmp_path / "x.npy",
               "-o", tmp_path / "o.npy") == 2
    assert "--fixed-point applies to the lava target" in capsys.readouterr().err


def test_compile_verify_all_runs_the_whole_test_split(tmp_path, capsys):
    g = demo_graph(seed=1)
    g.metadata = {"spikesmith.dt": 1e-3}
    io.write_nir(tmp_path / "demo.nir", g)
    code = run("compile", tmp_path / "demo.nir", "--to", "lava", "--fixed-point", "--verify", "all", "--data",
               "digits", "--lava-samples", "12", "--tolerance", "0", "-o", tmp_path / "v")
    assert code == 0
    report = io.read_json(tmp_path / "v" / "verification.json")
    assert report["samples"] == 360
    assert report["target_samples"] == {"norse": 360, "lava-float": 12, "loihi": 360, "lava-fixed": 12}
    assert report["comparisons"][0]["identical"] and report["comparisons"][2]["identical"]
    assert set(report["accuracy"]) == {"norse", "lava-float", "loihi", "lava-fixed"}
    assert "verify" in capsys.readouterr().err  # progress was drawn
    assert run("compile", tmp_path / "demo.nir", "--to", "lava", "--verify", "all", "-o", tmp_path / "w") == 2
    assert "--verify all needs --data" in capsys.readouterr().err and not (tmp_path / "w").exists()
