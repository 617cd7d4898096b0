"""The ``spikesmith`` command line: thin wrappers over :mod:`spikesmith.api`.

Errors a user can fix print one line and exit 2; heavy libraries load only inside commands.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="spikesmith: evolve, train, compile and deploy spiking neural networks, with energy reports.")
evolve_app = typer.Typer(no_args_is_help=True, help="Find networks: architecture search and genetic encodings.")
app.add_typer(evolve_app, name="evolve")


def _console():
    from spikesmith.console import Console

    return Console()


@app.command()
def demo(out: Path = typer.Option(Path("out/demo"), "-o", "--out", help="Output directory."),
         seed: int = typer.Option(0, help="Seed of the whole run."),
         epochs: int = typer.Option(15, help="Training epochs."),
         steps: int = typer.Option(8, help="Time steps per sample."),
         encoding: str = typer.Option("rate", help="Input encoding of the digits: rate or direct."),
         lava_samples: Optional[int] = typer.Option(None, help="Test samples run on Lava (default: all).")):
    """Run the whole pipeline on the embedded digits: evolve, train, NIR, Norse + Lava, energy report."""
    from spikesmith import api

    con = _console()
    s = api.demo(out, api.DemoConfig(seed=seed, epochs=epochs, steps=steps, lava_samples=lava_samples,
                                           encoding=encoding),
                 on_progress=con.progress)
    acc, e = s["accuracy"], s.get("energy", {})
    con.line("")
    typer.echo(f"accuracy on {acc['samples']} test samples: Norse {acc['norse']:.4f}, Lava {acc['lava']:.4f} "
               f"(torch {acc['torch']:.4f}); identical output spikes: {s['agreement']['output_spikes_identical']:.4f}")
    typer.echo(f"per sample: SNN {e['snn_synops']:.0f} SOPs + {e['snn_macs']:.0f} MACs vs ANN {e['ann_macs']:.0f} MACs; "
               f"energy SNN {e['snn_energy_j'] * 1e9:.3f} nJ vs ANN {e['ann_energy_j'] * 1e9:.3f} nJ "
               f"({e['snn_energy_profile']}): the ANN costs {e['energy_ratio_ann_over_snn']:.2f}x the SNN")
    typer.echo(f"wrote {', '.join(sorted(Path(p).name for p in s['files'].values()))} to {s['out_dir']}")


def _reset_option():
    return typer.Option(None, "--reset", help="Spike reset: value (to v_reset, NIR's) or subtract "
                        "(default: the graph's stored rule, else value).")


def _reset_timing_option():
    return typer.Option(None, "--reset-timing", help="immediate (NIR's) or delayed "
                        "(snnTorch's; the default for graphs exported by snnTorch).")


def _notes(notice: str | None) -> None:
    """Print each line of a notice on stderr."""
    for line in (notice or "").splitlines():
        typer.echo(f"note: {line}", err=True)


@app.command("compile")
def compile_cmd(model: Path = typer.Argument(..., help="Model file (model.pt) or NIR file."),
                to: str = typer.Option("nir", "--to", help="nir: write a NIR file; lava: compile for Lava and verify."),
                out: Path = typer.Option(..., "-o", "--out", help="Output file (nir) or directory (lava)."),
                dt: Optional[float] = typer.Option(None, help="Time step in seconds."),
                fixed_point: bool = typer.Option(False, "--fixed-point",
                                                 help="Also quantise to Loihi integers and verify the fixed-point "
                                                      "engine (every input) and Lava's bit-accurate models."),
                verify: str = typer.Option("16", "--verify", help="Inputs to verify (lava): a number, or 'all' for "
                                                                  "the whole test split of --data."),
                lava_samples: Optional[int] = typer.Option(None, "--lava-samples",
                                                           help="Inputs Lava runs (default: all up to 64)."),
                batch_size: Optional[int] = typer.Option(None, "--batch-size",
                                                         help="Samples simulated at once (Lava: copies side by side)."),
                data: Optional[str] = typer.Option(None, help="Draw verification inputs from this dataset."),
                steps: Optional[int] = typer.Option(None, help="Time steps of the verification inputs."),
                tolerance: float = typer.Option(0.9, help="Fixed-point output spike agreement required."),
                calibration_samples: int = typer.Option(256, "--calibration-samples",
                                                        help="Training samples (of --data; else random spikes) that "
                                                             "choose the fixed-point scales."),
                finetune: int = typer.Option(0, "--finetune", help="Epochs of quantisation-aware fine-tuning on the "
                                             "training split of --data (weights on the chip grid; 0: none)."),
                finetune_lr: float = typer.Option(1e-3, "--finetune-lr", help="Learning rate of --finetune."),
                reset: Optional[str] = _reset_option(),
                reset_timing: Optional[str] = _reset_timing_option(),
                type_check: bool = typer.Option(True, "--type-check/--no-type-check",
                                                help="Let nir check the graph's types when reading."),
                for_framework: Optional[str] = typer.Option(
                    None, "--for", help="With --to nir: write for this framework's own NIR import "
                    "(norse, sinabs, snntorch, spikingjelly); default: canonical NIR.")):
    """Compile a model to NIR, or to Lava with verification (exit 1 when verification fails)."""
    from spikesmith import api

    if to == "lava":
        from spikesmith.compile.resources import render
        from spikesmith.errors import InputError
        from spikesmith.targets.verify import render_verification

        if for_framework is not None:
            raise InputError("--for rewrites a NIR file: use it with --to nir")

        result, notice = api.compile_to_lava(model, out_dir=out, fixed_point=fixed_point, verify=verify, dt=dt,
                                             data=data, steps=steps, fixed_tolerance=tolerance, type_check=type_check,
                                             reset=reset, reset_timing=reset_timing, lava_samples=lava_samples,
                                             batch_size=batch_size, calibration_samples=calibration_samples,
                                             finetune=finetune, finetune_lr=finetune_lr,
                                             on_progress=_console().progress)
        _notes(notice)
        typer.echo(render(result.resources))
        typer.echo(render_verification(result).splitlines()[-1])
        typer.echo(f"wrote the deploy bundle {out} (manifest.json, network.json, weights.npz, verification.json) "
                   "and verification.md")
        return 0 if result.ok else 1
    path, notice = api.compile_model(model, out=out, to=to, dt=dt, reset=reset, reset_timing=reset_timing,
                                     type_check=type_check, for_framework=for_framework)
    _notes(notice)
    typer.echo(f"wrote {path}")


@app.command("run")
def run_cmd(model: Path = typer.Argument(..., help="NIR file, model file (model.pt), or a deploy bundle directory "
                                                   "(compile --to lava)."),
            target: str = typer.Option("norse", help="norse (float reference), lava, or loihi (the fixed-point "
                                                     "engine, bit-exact to lava --fixed-point)."),
            input: Optional[Path] = typer.Option(None, "--input", help="Input .npy shaped (T, B, *input_shape) "
                                                 "(a bundle without it runs the inputs it was verified on)."),
            out: Path = typer.Option(..., "-o", "--out", help="Output .npy (T, B, *output_shape)."),
            dt: Optional[float] = typer.Option(None, help="Time step in seconds (default: the graph's, else 1e-3)."),
            fixed_point: bool = typer.Option(False, "--fixed-point", help="lava: run Lava's bit-accurate models."),
            batch_size: Optional[int] = typer.Option(None, "--batch-size",
                                                     help="Samples simulated at once (Lava: copies side by side)."),
            reset: Optional[str] = _reset_option(),
            reset_timing: Optional[str] = _reset_timing_option(),
            type_check: bool = typer.Option(True, "--type-check/--no-type-check",
                                            help="Let nir check the graph's types when reading.")):
    """Simulate a NIR graph, a model file or a deploy bundle (on loihi or lava --fixed-point) and save its output."""
    from spikesmith import api
    from spikesmith.errors import InputError

    if model.is_dir():
        trace, check = api.run_bundle(model, input, target=target, out=out, fixed_point=fixed_point,
                                      batch_size=batch_size)
        typer.echo(f"wrote {out}: output {tuple(trace.output.shape)} from {trace.target} on the bundle {model}"
                   + ("" if check is None else f"; {'reproduces' if check else 'DOES NOT reproduce'} the verified "
                      "outputs"))
        return 0 if check is not False else 1
    if input is None:
        raise InputError("--input X.npy is needed to run a NIR file")
    trace, notice = api.run_file(model, input, target=target, out=out, dt=dt, type_check=type_check, reset=reset,
                                 reset_timing=reset_timing, fixed_point=fixed_point, batch_size=batch_size)
    _notes(notice)
    for name, n in (trace.meta.get("wraps") or {}).items():
        if n:
            typer.echo(f"note: population '{name}': u wrapped {n} times in 24 bits (Lava's bit-accurate wrap)", err=True)
    typer.echo(f"wrote {out}: output {tuple(trace.output.shape)} from {trace.target} "
               f"({trace.per_sample_seconds() * 1e3:.2f} ms per sample)")


@app.command("train")
def train_cmd(data: str = typer.Option("digits", help="Dataset name."),
              out: Path = typer.Option(..., "-o", "--out", help="Output directory."),
              genes: str = typer.Option("c1=12,c2=32,hidden=0,tau_steps=2,v_th=0.5",
                                        help="Architecture genes as name=value pairs."),
              epochs: int = typer.Option(15), steps: int = typer.Option(8), batch_size: int = typer.Option(64),
              seed: int = typer.Option(0), resume: bool = typer.Option(False, help="Continue from out/checkpoint.pt."),
              data_dir: Optional[Path] = typer.Option(None, help="Where the dataset lies.")):
    """Train a conv SNN with Norse (CUDA when available)."""
    from spikesmith import api
    from spikesmith.nn.families.conv import parse_values

    _, _, result = api.train_model(parse_values(genes), data=data, epochs=epochs, steps=steps, batch_size=batch_size, seed=seed,
                                   out_dir=out, resume=resume, data_dir=str(data_dir) if data_dir else None,
                                   on_progress=_console().progress)
    typer.echo(f"test accuracy {result.test_accuracy:.4f} after {result.epochs} epochs on {result.device}; "
               f"wrote {out / 'model.pt'}")


# -- evolve: one option shape for search, nas and gee (spikesmith.evolve.driver.EvolveConfig)

def _population(default: int):
    return typer.Option(default, "--population", help="Individuals per generation.")


def _generations(default: int):
    return typer.Option(default, "--generations", help="Generations after the initial one (0: evaluate it only).")


def _seed():
    return typer.Option(0, "--seed", help="Seed of the whole run.")


def _backend():
    return typer.Option("local", "--backend", help="Where candidates are evaluated: local, process, dask or ray.")


def _cluster():
    return typer.Option(None, "--cluster", help="Attach to a running cluster instead of starting one: "
                        "tcp://host:port (Dask) or ray://host:port / auto (Ray).")


def _workers():
    return typer.Option(2, "--workers", help="Workers the process/dask/ray backends start.")


def _resume():
    return typer.Option(False, "--resume", help="Continue a killed run from OUT/checkpoint.pt.")


def _out(name: str):
    return typer.Option(Path(f"out/{name}"), "-o", "--out", help="Output directory (checkpoint.pt, "
                        "generations.jsonl, generations.png, model.pt, ...).")


def _evolve(problem: str, cfg, out: Path, resume: bool):
    """Run an evolution problem with progress on the console; returns its result."""
    from spikesmith import api

    return api.evolve(problem, cfg, out_dir=out, resume=resume, on_progress=_console().progress)


@evolve_app.command("search")
def evolve_search(population: int = _population(8), generations: int = _generations(3), seed: int = _seed(),
                  backend: str = _backend(), cluster: Optional[str] = _cluster(), workers: int = _workers(),
                  resume: bool = _resume(), out: Path = _out("search"),
                  data: str = typer.Option("digits", help="Dataset name."),
                  steps: int = typer.Option(8, help="Time steps per sample."),
                  samples: int = typer.Option(256, help="Samples in the fitness batch."),
                  metric: str = typer.Option("hamming", help="RDM metric: hamming or pearson.")):
    """Training-free search of the conv-SNN space (RDM fitness); writes OUT/model.pt (the best, untrained)."""
    from spikesmith.evolve import EvolveConfig
    from spikesmith.evolve.conv_search import ConvOptions

    cfg = EvolveConfig(population=population, generations=generations, seed=seed, backend=backend, cluster=cluster,
                       workers=workers, data=data, steps=steps, options=ConvOptions(samples=samples, metric=metric))
    r = _evolve("search", cfg, out, resume)
    typer.echo(f"best genes {r.best.values} (RDM score {r.best.score:.4f}, {r.best.parameters:,} parameters); "
               f"wrote {out / 'model.pt'} and generations.jsonl")


@evolve_app.command("gee")
def evolve_gee(population: int = _population(8), generations: int = _generations(7), seed: int = _seed(),
               backend: str = _backend(), cluster: Optional[str] = _cluster(), workers: int = _workers(),
               resume: bool = _resume(), out: Path = _out("gee"),
               data: str = typer.Option("digits", help="Dataset name."),
               steps: int = typer.Option(4, help="Time steps per sample."),
               arch: str = typer.Option("digits", help="digits, vgg11, resnet18 or resnet19."),
               genes: str = typer.Option("16", help="Number of genes g (a comma list with --params-only)."),
               dense: bool = typer.Option(False, "--dense", help="Dense weights instead of GEE (the baseline)."),
               epochs_per_generation: int = typer.Option(1, help="Training epochs of each individual per generation."),
               final_epochs: int = typer.Option(8, help="Epochs the best is trained after the last generation."),
               max_batches: Optional[int] = typer.Option(None, help="Batches per epoch (default: all)."),
               batch_size: int = typer.Option(64, help="Training batch size."),
               lr: float = typer.Option(3e-3, help="Learning rate (cosine decay over the run)."),
               tournament: int = typer.Option(3, help="Tournament size."),
               elite: int = typer.Option(1, help="Fittest individuals copied unchanged."),
               crossover_rate: float = typer.Option(0.9, help="Probability of crossover."),
               mutation_sigma: float = typer.Option(0.05, help="Mutation noise relative to each tensor's std."),
               sign: float = typer.Option(-1.0, help="Sign s of the temporal term: -1, 0 or +1."),
               inheritance: str = typer.Option("lamarckian", help="lamarckian (children inherit the trained "
                                               "values) or baldwinian (the untrained rules)."),
               device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when available)."),
               params_only: bool = typer.Option(False, "--params-only", help="Print the parameter report only.")):
    """Evolve a genetically encoded (GEE) network with spatio-temporal evolution, or print its parameter
    compression per g."""
    from dataclasses import replace

    from spikesmith import options
    from spikesmith.errors import InputError
    from spikesmith.evolve import EvolveConfig
    from spikesmith.evolve.gee import SteOptions, gee_params_table

    try:
        gs = [int(g) for g in genes.split(",") if g.strip()]
    except ValueError:
        raise InputError(f"--genes: expected integers separated by commas, got {genes!r}") from None
    if params_only:
        typer.echo(gee_params_table(arch, gs))
        return
    if len(gs) != 1:
        raise InputError("--genes: give one value for a run (a list only with --params-only)")
    options.number("--lr", lr, low=0.0, low_open=True, high=10.0)
    base = SteOptions()
    opts = SteOptions(arch=arch, genes=gs[0], encoded=not dense, device=device,
                      epochs_per_generation=epochs_per_generation, final_epochs=final_epochs, max_batches=max_batches,
                      batch_size=batch_size, train=replace(base.train, lr=lr), tournament=tournament, elite=elite,
                      crossover_rate=crossover_rate, mutation_sigma=mutation_sigma, sign=sign,
                      inheritance=inheritance)
    cfg = EvolveConfig(population=population, generations=generations, seed=seed, backend=backend, cluster=cluster,
                       workers=workers, data=data, steps=steps, options=opts)
    r = _evolve("gee", cfg, out, resume)
    typer.echo(f"test accuracy {r.test_accuracy:.3f} with {r.params:,} trained parameters "
               f"({100 * r.compression:.1f}% fewer than dense); wrote {out / 'model.pt'}")


@evolve_app.command("nas")
def evolve_nas(population: int = _population(20), generations: int = _generations(10), seed: int = _seed(),
               backend: str = _backend(), cluster: Optional[str] = _cluster(), workers: int = _workers(),
               resume: bool = _resume(), out: Path = _out("nas"),
               data: str = typer.Option("digits", help="Dataset name."),
               steps: int = typer.Option(6, help="Time steps per sample."),
               offspring: Optional[int] = typer.Option(None, help="Offspring per generation (default: population)."),
               cells: int = typer.Option(3, help="Cells of the multi-scale network."),
               min_cells: int = typer.Option(1, help="Constraint: at least this many non-empty cells (0: none)."),
               channels: int = typer.Option(16, help="Channels of the first stage."),
               fitness_batch: int = typer.Option(64, help="Samples per fitness batch."),
               fitness_batches: int = typer.Option(1, help="Fitness batches per candidate."),
               metric: str = typer.Option("hamming", help="RDM metric: hamming or pearson."),
               variant: str = typer.Option("free", help="RDM score: free (label-free), label (Spearman with the "
                                                         "class RDM) or label-kendall (Kendall tau-b)."),
               crossover_prob: float = typer.Option(0.9, help="Two-point crossover probability."),
               mutation_eta: float = typer.Option(3.0, help="Polynomial mutation distribution index."),
               train: int = typer.Option(0, help="Then train the best network this many epochs and run it on "
                                                 "Norse and Lava (0: search only)."),
               deploy_samples: Optional[int] = typer.Option(None, help="Test samples for the targets (default: all)."),
               device: Optional[str] = typer.Option(None, help="Where candidates are scored and the best trained: "
                                                                "cpu or cuda (default: cuda when available)."),
               loihi_cores: bool = typer.Option(False, "--loihi-cores", help="A fourth objective: the Loihi 2 cores "
                                                "each candidate needs (the compile fit report).")):
    """MSE-NAS: multi-scale architecture search (NSGA-II on RDM score, SOPs and parameters)."""
    from spikesmith import api, options
    from spikesmith.evolve import EvolveConfig
    from spikesmith.evolve.nas import NasOptions

    options.integer("--train", train, low=0, high=options.MAX_EPOCHS)
    options.optional_integer("--deploy-samples", deploy_samples, low=1, high=options.MAX_SAMPLES)
    opts = NasOptions(offspring=offspring, cells=cells, min_cells=min_cells, channels=channels,
                      fitness_batch=fitness_batch, fitness_batches=fitness_batches, metric=metric, variant=variant,
                      crossover_prob=crossover_prob, mutation_eta=mutation_eta, device=device,
                      loihi_cores=loihi_cores)
    cfg = EvolveConfig(population=population, generations=generations, seed=seed, backend=backend, cluster=cluster,
                       workers=workers, data=data, steps=steps, options=opts)
    r = _evolve("nas", cfg, out, resume)
    typer.echo(f"Pareto front of {len(r.front)} ({r.evaluated} evaluated, {r.seconds:.0f} s); best RDM score "
               f"{r.best.score:.4f} ({r.best.params:,} parameters, {r.best.synops:,.0f} synaptic ops/sample); "
               f"wrote {out}/pareto.json and model.pt")
    motifs = ", ".join(f"{k} {v}" for k, v in r.history[-1]["front_motifs"].items()) if r.history else ""
    typer.echo(f"front cells by motif (non-empty cells >= {opts.min_cells}): {motifs}")
    if train:
        con = _console()
        rows = api.train_nas_best(out, epochs=train, seed=seed, deploy_samples=deploy_samples, device=device,
                                  out_dir=Path(out) / "trained", on_progress=con.progress)
        typer.echo("test accuracy " + ", ".join(f"{k} {v:.3f}" for k, v in rows[0]["accuracy"].items()))


@app.command("energy-report")
def energy_report_cmd(model: Path = typer.Argument(..., help="NIR file or model file (model.pt)."),
                      data: Optional[str] = typer.Option(None, help="Dataset to draw inputs from (e.g. digits)."),
                      input: Optional[Path] = typer.Option(None, "--input", help="Input .npy (T, B, *input_shape)."),
                      target: str = typer.Option("lava", help="lava or norse."),
                      baseline: Optional[Path] = typer.Option(None, help="ANN baseline ONNX (default: the ANN twin)."),
                      profile: str = typer.Option("cmos45", help="Profile name or JSON file."),
                      samples: int = typer.Option(100, help="Samples drawn from --data."),
                      steps: Optional[int] = typer.Option(None, help="Time steps for --data (default: the model's)."),
                      dt: Optional[float] = typer.Option(None, help="Time step in seconds."),
                      reset: Optional[str] = _reset_option(),
                      reset_timing: Optional[str] = _reset_timing_option(),
                      out: Path = typer.Option(..., "-o", "--out", help="Output directory.")):
    """Count synaptic operations from simulated spikes and compare with an ANN baseline's MACs."""
    from spikesmith import api

    summary, files = api.energy_report(model, data=data, input_path=input, target=target, baseline=baseline,
                                       profile=profile, samples=samples, steps=steps, dt=dt, out_dir=out,
                                       reset=reset, reset_timing=reset_timing)
    typer.echo(f"SNN {summary['snn_energy_j'] * 1e9:.3f} nJ vs ANN "
               f"{(summary.get('ann_energy_j') or float('nan')) * 1e9:.3f} nJ per sample ({summary['snn_energy_profile']})"
               + (f"; accuracy {summary['accuracy']:.4f}" if summary.get("accuracy") is not None else ""))
    typer.echo(f"wrote {', '.join(sorted(Path(p).name for p in files.values()))} to {out}")


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is so that cleanup runs as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_signals: list[int] = []  # signals received during this main() call


_fork = {"gen": 0, "active": False}  # set from just before a fork until shortly after its callbacks ran
_deferred: list[int] = []  # signals that arrived during a fork, delivered again once it is done


def _raise_interrupted(signum, frame) -> None:
    if _fork["active"]:
        # An exception raised inside an at-fork callback (logging's lock release runs in the parent
        # after every fork of a worker) is printed and dropped: the signal would be lost. Deliver it
        # again once the fork is over instead.
        _deferred.append(signum)
        return
    _signals.append(signum)
    raise Interrupted(signum)


def _fork_begins() -> None:
    _fork["gen"] += 1
    _fork["active"] = True


def _fork_over(gen: int) -> None:
    if _fork["gen"] != gen:  # another fork began meanwhile: its own timer ends it
        return
    _fork["active"] = False
    if _deferred:
        signum = _deferred[0]
        _deferred.clear()
        os.kill(os.getpid(), signum)


def _fork_ends() -> None:
    # The other after-fork callbacks (registered before or after ours) run right after this one, in
    # the main thread: the fork counts as over a moment later, from another thread.
    threading.Timer(0.05, _fork_over, (_fork["gen"],)).start()


def _fork_ends_in_child() -> None:
    _fork["active"] = False
    _deferred.clear()


_fork_hooks: list[bool] = []


def _guard_forks() -> None:
    """Register the at-fork callbacks once."""
    if not _fork_hooks:
        os.register_at_fork(before=_fork_begins, after_in_parent=_fork_ends, after_in_child=_fork_ends_in_child)
        _fork_hooks.append(True)


# OS errors a user can fix (a path, a permission, a full or read-only disk): one line, exit 2
_USER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EROFS,
                errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.ELOOP}


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Exit codes: 0 ok, 1 verification failed, 2 bad input (one line on stderr),
    130 interrupted by SIGINT, 128 + n by signal n (SIGTERM 143, SIGHUP 129): SIGTERM and SIGHUP are
    handled like Ctrl-C, so simulations, worker pools and clusters we started are shut down."""
    import signal

    from spikesmith.errors import SpikesmithError

    previous = {}
    _signals.clear()
    if threading.current_thread() is threading.main_thread():
        _guard_forks()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, _raise_interrupted)
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="spikesmith")
        if _signals:  # typer returns 130 for any KeyboardInterrupt: say which signal it was
            return _interrupted(Interrupted(_signals[0]))
        return int(rv) if isinstance(rv, int) else 0
    except SpikesmithError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except OSError as exc:
        if exc.errno not in _USER_ERRNOS or os.environ.get("SPIKESMITH_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        return 2
    except Exception as exc:
        # typer bundles its own click: recognise its exceptions by their interface
        name = type(exc).__name__
        if name == "Exit":
            return int(getattr(exc, "exit_code", 0))
        if name == "Abort":
            return _interrupted(exc.__cause__ if isinstance(exc.__cause__, KeyboardInterrupt) else None)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.echo(f"error: {exc.format_message()}", err=True)
            return 2
        if os.environ.get("SPIKESMITH_DEBUG"):
            raise
        typer.echo(f"internal error: {name}: {str(exc).splitlines()[0] if str(exc) else ''} "
                   "(set SPIKESMITH_DEBUG=1 for the traceback)", err=True)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(exc: BaseException | None) -> int:
    import signal

    signum = getattr(exc, "signum", signal.SIGINT)
    typer.echo(f"interrupted by {signal.Signals(signum).name}", err=True)
    return 128 + int(signum)


if __name__ == "__main__":
    sys.exit(main())
