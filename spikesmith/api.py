"""The Python API: one function per pipeline stage, and the end-to-end demo.

Every CLI command is a thin wrapper over a function here. Heavy modules (torch, Norse,
Lava, onnx) are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from spikesmith import io, options
from spikesmith.compile.semantics import resolve_dt, resolve_reset, resolve_semantics  # noqa: F401 (facade)
from spikesmith.errors import GraphError, InputError

Progress = Callable[[str, dict], None]
TARGETS = ("norse", "lava", "loihi")


def _emit(on_progress: Progress | None, stage: str, info: dict) -> None:
    if on_progress is not None:
        on_progress(stage, info)


# ---------------------------------------------------------------- models on disk

def load_model(path: str | Path):
    """(network in eval mode, :class:`~spikesmith.io.ModelFile`) of any model file spikesmith writes."""
    from spikesmith.nn import load_model as load

    return load(path)


# ---------------------------------------------------------------- stages

def evolve_architecture(*, data: str = "digits", steps: int = 8, population: int = 8, generations: int = 3,
                        seed: int = 0, samples: int = 256, encoding: str | None = None,
                        out_dir: str | Path | None = None, resume: bool = False,
                        on_progress: Progress | None = None):
    """Search the conv-SNN space with the training-free RDM fitness; returns a SearchResult.

    With ``out_dir``, writes the driver's files (checkpoint.pt, generations.jsonl, generations.png)
    and model.pt (the best architecture, untrained, with the weights the search scored it with).
    """
    from spikesmith.evolve import EvolveConfig
    from spikesmith.evolve.conv_search import ConvOptions

    cfg = EvolveConfig(population=population, generations=generations, seed=seed, data=data, steps=steps,
                       options=ConvOptions(samples=samples, encoding=encoding))
    return evolve("search", cfg, out_dir=out_dir, resume=resume,
                  on_progress=lambda stage, row: _emit(on_progress, stage, row))


def evolve(problem: str, cfg, *, out_dir: str | Path | None = None, resume: bool = False,
           on_progress: Progress | None = None):
    """Run evolution problem ``problem`` ('search', 'nas' or 'gee') with the composed ``cfg``
    (:class:`spikesmith.evolve.EvolveConfig`); returns the problem's result.

    The config was validated on construction; the output directory is checked and locked before any
    work and kept when the run fails (its checkpoint is what ``resume`` continues from).
    ``on_progress("evolve", row)`` receives each generation's metrics.
    """
    from spikesmith.data import DATASETS
    from spikesmith.evolve import driver

    prob = driver.problem_class(problem)(cfg)
    if cfg.data not in DATASETS:
        raise InputError(f"--data: unknown dataset {cfg.data!r}; known datasets are {', '.join(DATASETS)}")
    out = io.check_output(out_dir, kind="dir", what="output") if out_dir is not None else None
    if resume and out is not None and not (out / driver.CHECKPOINT).is_file():
        _emit(on_progress, "note", {"text": f"--resume: no checkpoint in {out}; starting fresh"})
    with io.output_dir(out, keep_on_error=True) if out is not None else contextlib.nullcontext():
        return driver.run(prob, out_dir=out, resume=resume,
                          on_progress=lambda row: _emit(on_progress, "evolve", row | {"problem": problem}))


def train_nas_best(result_or_dir, *, targets: tuple[str, ...] = TARGETS, **kwargs) -> list[dict]:
    """Train the best networks of an MSE-NAS search and run each on ``targets`` (see
    :func:`spikesmith.evolve.nas.train_best` for the other arguments)."""
    from spikesmith.evolve.nas import train_best

    return train_best(result_or_dir, targets=targets, simulate=simulate, **kwargs)


def train_model(values: dict, *, data: str = "digits", steps: int = 8, epochs: int = 15, batch_size: int = 64,
                lr: float = 5e-3, seed: int = 0, out_dir: str | Path | None = None, resume: bool = False,
                device: str | None = None, data_dir: str | None = None, encoding: str | None = None,
                on_progress: Progress | None = None):
    """Build the conv SNN of gene ``values`` and train it; returns (model, spec, TrainResult).

    With ``out_dir`` writes model.pt (a model file), checkpoint.pt, metrics.jsonl and training.png.
    """
    from spikesmith.data import make_loaders
    from spikesmith.nn import build, save_model
    from spikesmith.nn.families.conv import ConvSpec
    from spikesmith.seeding import epoch_order
    from spikesmith.train import TrainConfig, fit

    cfg = TrainConfig(epochs=epochs, lr=lr, seed=seed, device=device)
    options.integer("steps", steps, low=1, high=options.MAX_STEPS)
    options.integer("batch_size", batch_size, low=1, high=65_536)
    out = io.check_output(out_dir, kind="dir", what="output") if out_dir is not None else None
    train, test, info = make_loaders(data, batch_size=batch_size, steps=steps, seed=seed, data_dir=data_dir,
                                     encoding=encoding)
    spec = ConvSpec.from_values(values, input_shape=info.input_shape, num_classes=info.num_classes)
    model = build(spec, seed=seed)
    with io.output_dir(out, keep_on_error=True) if out is not None else contextlib.nullcontext():
        if resume and out is not None and not (out / "checkpoint.pt").is_file():
            _emit(on_progress, "note", {"text": f"--resume: no checkpoint in {out}; starting fresh"})
        result = fit(model, epoch_order(train, seed), lambda: test, cfg, out_dir=out, resume=resume,
                     on_progress=lambda row: _emit(on_progress, "train", row))
        model.eval()
        if out is not None:
            save_model(out / "model.pt", model.cpu(), spec, steps=steps, data=data, encoding=info.encoding,
                       meta={"test_accuracy": result.test_accuracy, "epochs": epochs, "seed": seed})
    return model, spec, result


def export_model(model_or_path, *, dt: float | None = None, encoding: str | None = None):
    """The NIR graph of a network (object or model file); dt, reset rule and input encoding go into its metadata."""
    from spikesmith.compile.export import export_network
    from spikesmith.compile.graph import ResetRule

    if isinstance(model_or_path, (str, Path)):
        model, mf = load_model(model_or_path)
        return export_network(model, dt=dt or mf.dt, encoding=encoding or mf.encoding, family=mf.family,
                              reset=ResetRule(mode=mf.reset, timing=mf.reset_timing))
    return export_network(model_or_path.cpu().eval(), dt=dt, encoding=encoding)


def graph_encoding(graph) -> str | None:
    """The input encoding stored in a graph spikesmith exported, if any."""
    from spikesmith.compile.export import META_ENCODING

    value = (getattr(graph, "metadata", None) or {}).get(META_ENCODING)
    return None if value is None else str(value)


def compile_model(model_path: str | Path, *, out: str | Path, to: str = "nir", dt: float | None = None,
                  reset: str | None = None, reset_timing: str | None = None,
                  type_check: bool = True, for_framework: str | None = None) -> tuple[Path, str | None]:
    """Compile a model file (or a NIR file) to a NIR file; returns (the written path, notice).

    The graph is written with its time step and reset rule resolved (:func:`resolve_semantics`:
    options, stored metadata, a recognised exporter convention) and stored in its metadata, so
    later runs need no options. ``for_framework`` (norse, sinabs, snntorch, spikingjelly) rewrites
    it for that framework's own NIR importer (:func:`spikesmith.compile.conventions.for_framework`).
    """
    from spikesmith.compile.conventions import consumer, for_framework as rewrite_for
    from spikesmith.compile.graph import META_DT, META_RESET, META_RESET_TIMING

    if to != "nir":
        raise InputError(f"--to {to!r} is not supported here (expected 'nir' or 'lava')")
    options.optional_number("--dt", dt, low=0.0, low_open=True, high=3600.0)
    out = io.check_output(out, kind="file", inputs=[model_path], what="NIR file")
    target = consumer(for_framework) if for_framework is not None else None
    graph, _ = _model_graph(model_path, type_check=type_check)
    dt, rule, notice = resolve_semantics(graph, dt, reset, reset_timing)
    if target is not None:
        graph = rewrite_for(graph, for_framework, dt=dt, reset=rule)
        notice = "\n".join(filter(None, [notice, f"written for {target.name}'s NIR import: {target.hint}"]))
    else:
        graph.metadata = {**(graph.metadata or {}), META_DT: dt, META_RESET: rule.mode, META_RESET_TIMING: rule.timing}
    return io.write_nir(out, graph), notice


def _model_graph(path: str | Path, *, type_check: bool = True) -> tuple[Any, dict]:
    """(NIR graph, settings) of a NIR file or of any model file (settings: steps, encoding, data; {} for NIR)."""
    from spikesmith.compile.export import export_network
    from spikesmith.compile.graph import ResetRule

    p = Path(path)
    if p.suffix == ".nir":
        return load_graph(p, type_check=type_check), {}
    model, mf = load_model(p)
    graph = export_network(model, dt=mf.dt, encoding=mf.encoding, family=mf.family,
                           reset=ResetRule(mode=mf.reset, timing=mf.reset_timing))
    return graph, {"steps": mf.steps, "encoding": mf.encoding, "data": mf.data}


def _dataset_batch(data: str, *, n: int, steps: int, seed: int, encoding: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` test samples of ``data`` as (x (T, n, ...) float64, labels)."""
    from spikesmith.data import make_loaders

    _, test, _ = make_loaders(data, batch_size=n, steps=steps, seed=seed, encoding=encoding)
    xb, yb = next(iter(test))
    return np.asarray(xb, dtype=np.float64), np.asarray(yb)


def _check_input_shape(graph, x: np.ndarray, where) -> None:
    """Raise InputError naming ``where`` unless ``x`` is (T, B, *graph input shape)."""
    from spikesmith.compile.graph import FlatGraph, flatten

    flat = graph if isinstance(graph, FlatGraph) else flatten(graph)
    in_shape = flat.output_shape(flat.inputs[0])
    if x.ndim != 2 + len(in_shape) or tuple(x.shape[2:]) != in_shape:
        raise InputError(f"{where}: input has shape {x.shape}; expected (T, B, {', '.join(map(str, in_shape))})")


def _calibration_inputs(data: str | None, *, n: int, steps: int, seed: int, encoding: str | None,
                        in_shape: tuple[int, ...], rate: float) -> tuple[np.ndarray, str]:
    """(calibration inputs (T, n, ...), where they came from): the first ``n`` samples of the training
    split of ``data`` in the dataset's own (seeded) order, else Bernoulli spikes from a seed stream
    apart from the verification inputs'. Never the test split, which verification uses."""
    if data is not None:
        from spikesmith.data import make_loaders

        train, _, _ = make_loaders(data, batch_size=n, steps=steps, seed=seed, encoding=encoding)
        ds = train.dataset
        n = min(n, len(ds))
        x = np.stack([np.asarray(ds[i][0], dtype=np.float64) for i in range(n)], axis=1)
        return x, f"{data} training split (seed {seed}, encoding {encoding or 'default'}), samples 0..{n - 1}"
    seq = np.random.SeedSequence([seed, 1])  # the verification inputs use default_rng(seed)
    x = (np.random.default_rng(seq).random((steps, n, *in_shape)) < rate).astype(np.float64)
    return x, f"Bernoulli({rate:g}) spikes, seed stream [{seed}, 1]"


def compile_to_lava(model_path: str | Path, *, out_dir: str | Path, fixed_point: bool = False, verify: int | str = 16,
                    dt: float | None = None, data: str | None = None, steps: int | None = None, seed: int = 0,
                    fixed_tolerance: float = 0.9, rate: float = 0.2, type_check: bool = True,
                    reset: str | None = None, reset_timing: str | None = None, lava_samples: int | None = None,
                    batch_size: int | None = None, calibration_samples: int = 256, calibrate_search: bool = True,
                    finetune: int = 0, finetune_lr: float = 1e-3, on_progress: Progress | None = None):
    """Compile a model (NIR or model file) for Lava: calibrate, verify, and write a deploy bundle.

    The fixed-point scales are chosen once from ``calibration_samples`` calibration inputs (the
    training split of ``data``, else seeded random spikes; :mod:`spikesmith.targets.calibration`),
    never from the verification inputs. Verification runs ``verify`` inputs (a number, or "all":
    the whole test split of ``data``), drawn from ``data`` when given (then accuracies are
    reported), else random Bernoulli spikes with probability ``rate``. The reference (and, with
    ``fixed_point``, the fixed-point engine) run every input; Lava runs ``lava_samples`` of them
    (default: all up to 64). Writes into ``out_dir`` a deploy bundle
    (:mod:`spikesmith.compile.bundle`: manifest.json, network.json, weights.npz,
    verification.json/.npz) and verification.md; returns (Verification, notice).
    ``finetune``: epochs of quantisation-aware fine-tuning of the calibrated plan on the training
    split of ``data`` (:mod:`spikesmith.compile.qat`; weights rounded to the chip grid in the
    forward pass, straight-through backward, the realised decays); the fine-tuned plan is
    calibrated again and verified against its own float twin, and the record (accuracies of the
    original float model and of the fine-tuned plan) goes into the bundle's calibration record.
    ``reset``/``reset_timing``: see :func:`resolve_reset`.
    """
    from spikesmith.compile.bundle import write_bundle
    from spikesmith.compile.graph import flatten
    from spikesmith.compile.plan import build_plan
    from spikesmith.compile.resources import check_fits, estimate, render
    from spikesmith.targets.calibration import calibrate
    from spikesmith.targets.loihi import run_quantised
    from spikesmith.targets.verify import DEFAULT_LAVA_SAMPLES, render_verification, verify as run_verify

    if isinstance(verify, str) and verify != "all":
        try:
            verify = int(verify)
        except ValueError:
            raise InputError(f"--verify must be a number of samples or 'all', got {verify!r}") from None
    if verify != "all" and verify < 1:
        raise InputError(f"--verify must be at least 1, got {verify}")
    if verify != "all":
        options.integer("--verify", verify, low=1, high=options.MAX_SAMPLES)
    if verify == "all" and data is None:
        raise InputError("--verify all needs --data: the test split it runs")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"--batch-size must be a positive number of samples, got {batch_size}")
    options.optional_integer("--batch-size", batch_size, low=1, high=options.MAX_SAMPLES)
    options.optional_integer("--steps", steps, low=1, high=options.MAX_STEPS)
    options.optional_integer("--lava-samples", lava_samples, low=1, high=options.MAX_SAMPLES)
    options.number("--tolerance", fixed_tolerance, low=0.0, high=1.0)
    options.number("rate", rate, low=0.0, high=1.0)
    options.seed("seed", seed)
    options.optional_number("--dt", dt, low=0.0, low_open=True, high=3600.0)
    options.integer("--calibration-samples", calibration_samples, low=1, high=options.MAX_SAMPLES)
    options.integer("--finetune", finetune, low=0, high=options.MAX_EPOCHS)
    options.number("--finetune-lr", finetune_lr, low=0.0, low_open=True, high=10.0)
    out = io.check_output(out_dir, kind="dir", inputs=[model_path], what="output")
    graph, arch = _model_graph(model_path, type_check=type_check)
    dt, rule, notice = resolve_semantics(graph, dt, reset, reset_timing)
    n_steps = steps or int(arch.get("steps") or (8 if data is not None else 20))
    encoding = arch.get("encoding") or graph_encoding(graph)
    flat = flatten(graph)
    in_shape = flat.output_shape(flat.inputs[0])
    plan = build_plan(flat, dt, rule)
    check_fits(estimate(plan))  # a network Loihi 2 cannot hold is refused before any work
    xc, source = _calibration_inputs(data, n=calibration_samples, steps=n_steps, seed=seed, encoding=encoding,
                                     in_shape=in_shape, rate=rate)
    _check_input_shape(flat, xc, data or "calibration inputs")
    _emit(on_progress, "calibrate", {"samples": int(xc.shape[1]), "source": source})
    qplan, calib = calibrate(plan, xc, source=source, search=calibrate_search, batch_size=batch_size)
    record = calib.to_dict()
    if finetune:
        if data is None:
            raise InputError("--finetune needs --data: the training split it fine-tunes on")
        before = record
        plan_ft, ft = _finetune(qplan, data=data, epochs=finetune, lr=finetune_lr, steps=n_steps, seed=seed,
                                encoding=encoding, on_progress=on_progress)
        qplan, calib = calibrate(plan_ft, xc, source=source, search=calibrate_search, batch_size=batch_size)
        record = {**calib.to_dict(), "before_finetune": before, "finetune": ft}
    kwargs = dict(dt=dt, fixed_point=fixed_point, fixed_tolerance=fixed_tolerance, reset=rule,
                  lava_samples=lava_samples, batch_size=batch_size, qplan=qplan, reference_plan=bool(finetune),
                  on_progress=on_progress)
    want = lava_samples if lava_samples is not None else DEFAULT_LAVA_SAMPLES
    if verify == "all":
        from spikesmith.data import make_loaders

        _, test, _ = make_loaders(data, batch_size=batch_size or 256, steps=n_steps, seed=seed, encoding=encoding)

        def batches():
            for xb, yb in test:
                xb = np.asarray(xb, dtype=np.float64)
                _check_input_shape(flat, xb, data)
                yield xb, np.asarray(yb)

        sample = np.concatenate([xb for xb, _ in _first(batches(), want)], axis=1)[:, :want]
        run = lambda: run_verify(graph, batches=batches, samples=len(test.dataset), **kwargs)  # noqa: E731
    else:
        labels = None
        if data is not None:
            x, labels = _dataset_batch(data, n=verify, steps=n_steps, seed=seed, encoding=encoding)
            _check_input_shape(flat, x, data)
        else:
            rng = np.random.default_rng(seed)
            x = (rng.random((n_steps, verify, *in_shape)) < rate).astype(np.float64)
        sample = x[:, :want]
        run = lambda: run_verify(graph, x, labels=labels, **kwargs)  # noqa: E731
    with io.output_dir(out):
        result = run()
        sample_out = run_quantised(qplan, sample, batch_size=batch_size).output
        write_bundle(out, qplan, calibration=record, resources=result.resources,
                     verification=result.to_dict(), sample_input=sample, sample_output=sample_out,
                     producer=f"spikesmith {_version()}")
        io.write_text(out / "verification.md", render_verification(result) + "\n\n" + render(result.resources) + "\n")
    return result, notice


def _finetune(qplan, *, data: str, epochs: int, lr: float, steps: int, seed: int, encoding: str | None,
              on_progress: Progress | None):
    """(the fine-tuned plan on the chip grid, its record): :class:`~spikesmith.compile.qat.PlanNetwork`
    trained by :func:`spikesmith.train.fit` on the training split of ``data`` (CPU, seeded)."""
    from spikesmith.compile.qat import PlanNetwork
    from spikesmith.data import make_loaders
    from spikesmith.seeding import epoch_order
    from spikesmith.train import TrainConfig, fit

    options.integer("--finetune", epochs, low=1, high=options.MAX_EPOCHS)
    cfg = TrainConfig(epochs=epochs, lr=lr, seed=seed, device="cpu", amp=False, warmup_epochs=0.0)
    train, test, _ = make_loaders(data, batch_size=64, steps=steps, seed=seed, encoding=encoding)
    net = PlanNetwork(qplan)  # no random initialisation: the calibrated plan's weights
    result = fit(net, epoch_order(train, seed), lambda: test, cfg,
                 on_progress=lambda row: _emit(on_progress, "finetune", row))
    return net.snapped_plan(), {"epochs": epochs, "lr": lr, "data": data, "train_accuracy": result.train_accuracy,
                                "test_accuracy_on_grid": result.test_accuracy}


def _first(it, n: int):
    """Chunks of ``it`` until they hold at least ``n`` samples."""
    got = 0
    for xb, yb in it:
        yield xb, yb
        got += xb.shape[1]
        if got >= n:
            return


def _version() -> str:
    from spikesmith import __version__

    return __version__


def load_bundle(path: str | Path):
    """The deploy bundle in directory ``path`` (:class:`spikesmith.compile.bundle.Bundle`)."""
    from spikesmith.compile.bundle import read_bundle

    return read_bundle(path)


def run_bundle(bundle_path: str | Path, input_path: str | Path | None, *, target: str, out: str | Path,
               fixed_point: bool = False, batch_size: int | None = None, on_progress: Progress | None = None):
    """Run a deploy bundle on a fixed-point target and save the output; returns (trace, check).

    ``target``: 'loihi', or 'lava' with ``fixed_point``. Without ``input_path`` the bundle runs the
    inputs it was verified on and ``check`` says whether it reproduced their recorded outputs
    (True/False; None when an input was given)."""
    from spikesmith.targets.loihi import run_quantised

    if target == "lava" and not fixed_point:
        raise InputError("a deploy bundle holds Loihi integers: run it with --target lava --fixed-point, or --target loihi")
    if target not in ("loihi", "lava"):
        raise InputError(f"a deploy bundle runs on --target loihi or lava --fixed-point, not {target!r}")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"--batch-size must be a positive number of samples, got {batch_size}")
    options.optional_integer("--batch-size", batch_size, low=1, high=options.MAX_SAMPLES)
    out = io.check_output(out, kind="file", inputs=[input_path, bundle_path], what="output")
    b = load_bundle(bundle_path)
    check = None
    if input_path is None:
        if b.sample_input is None:
            raise InputError(f"{bundle_path}: the bundle holds no verification inputs; give --input X.npy")
        x = b.sample_input
    else:
        x = io.load_array(input_path)
        _check_bundle_input(b, x, input_path)
    trace = run_quantised(b.qplan, x, target=target, batch_size=batch_size, on_progress=on_progress)
    if input_path is None:
        check = bool(np.array_equal(trace.output, b.sample_output))
    io.save_array(out, trace.output)
    return trace, check


def _check_bundle_input(b, x: np.ndarray, where) -> None:
    shape = b.input_shape
    if x.ndim != 2 + len(shape) or tuple(x.shape[2:]) != tuple(shape):
        raise InputError(f"{where}: input has shape {x.shape}; the bundle expects (T, B, {', '.join(map(str, shape))})")


def load_graph(path: str | Path, *, type_check: bool = True):
    """Read and validate a NIR file (structure, parameters, shapes, supported node types)."""
    from spikesmith.compile.validate import validate
    from spikesmith.targets.reference import supported_types

    graph = io.read_nir(path, type_check=type_check)
    try:
        validate(graph, supported=set(supported_types()))
    except GraphError as exc:
        raise GraphError(f"{path}: {exc}") from None
    return graph


def _check_target(target: str, fixed_point: bool, batch_size: int | None) -> None:
    """InputError unless ``target`` is known, ``fixed_point`` goes with it and ``batch_size`` is sane."""
    if target not in TARGETS:
        raise InputError(f"unknown target {target!r} (expected one of {', '.join(TARGETS)})")
    if fixed_point and target != "lava":
        raise InputError(f"--fixed-point applies to the lava target (target {target!r}; 'loihi' is always fixed point)")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"--batch-size must be a positive number of samples, got {batch_size}")
    options.optional_integer("--batch-size", batch_size, low=1, high=options.MAX_SAMPLES)


def simulate(graph, x: np.ndarray, *, target: str = "norse", dt: float, record: bool = True, reset=None,
             fixed_point: bool = False, batch_size: int | None = None, on_progress: Progress | None = None):
    """Run ``graph`` on ``target`` for input (T, B, *input_shape); returns a Trace.

    Targets: 'norse' (the float reference), 'lava' (Lava's processes; ``fixed_point`` for its
    bit-accurate models) and 'loihi' (the fixed-point engine, equal bit for bit to 'lava' with
    ``fixed_point``). ``batch_size``: samples simulated at once (Lava: copies of the network side
    by side). ``reset``: a ResetRule; default: :func:`resolve_reset`'s choice (the graph's stored
    rule, else a recognised exporter's, e.g. snnTorch's delayed reset, else NIR's).
    """
    _check_target(target, fixed_point, batch_size)
    if reset is None:
        reset, _ = resolve_reset(graph)
    kwargs = dict(dt=dt, record=record, reset=reset, batch_size=batch_size)
    if target == "norse":
        from spikesmith.targets.reference import simulate as run
    elif target == "lava":
        from spikesmith.targets.lava import simulate as run

        kwargs.update(fixed_point=fixed_point, on_progress=on_progress)
    else:
        from spikesmith.targets.loihi import simulate as run

        kwargs.update(on_progress=on_progress)
    return run(graph, x, **kwargs)


def run_file(graph_path: str | Path, input_path: str | Path, *, target: str, out: str | Path,
             dt: float | None = None, type_check: bool = True, reset: str | None = None,
             reset_timing: str | None = None, fixed_point: bool = False, batch_size: int | None = None,
             on_progress: Progress | None = None) -> tuple[Any, str | None]:
    """Run a NIR file (or a model file) on an input ``.npy`` and save the output; returns (trace, notice).

    ``reset`` ('value' | 'subtract') and ``reset_timing`` ('immediate' | 'delayed') override the
    reset rule (:func:`resolve_reset`). Nothing is written when the run fails."""
    _check_target(target, fixed_point, batch_size)
    options.optional_number("--dt", dt, low=0.0, low_open=True, high=3600.0)
    out = io.check_output(out, kind="file", inputs=[graph_path, input_path], what="output")
    graph, _ = _model_graph(graph_path, type_check=type_check)
    x = io.load_array(input_path)
    dt, rule, notice = resolve_semantics(graph, dt, reset, reset_timing)
    _check_input_shape(graph, x, input_path)
    trace = simulate(graph, x, target=target, dt=dt, record=False, reset=rule, fixed_point=fixed_point,
                     batch_size=batch_size, on_progress=on_progress)
    io.save_array(out, trace.output)
    return trace, notice


def energy_report(model_path: str | Path, *, out_dir: str | Path, data: str | None = None,
                  input_path: str | Path | None = None, target: str = "lava", baseline: str | Path | None = None,
                  profile: str = "cmos45", samples: int = 100, steps: int | None = None,
                  dt: float | None = None, encoding: str | None = None, reset: str | None = None,
                  reset_timing: str | None = None) -> tuple[dict, dict]:
    """Simulate a model (NIR or model file) on ``target`` and write report.json/.md/.html.

    Inputs come from ``input_path`` (T, B, *input_shape) or from ``data`` (then accuracy is
    reported too). The ANN baseline is ``baseline`` (ONNX) or the graph's ANN twin.
    Returns (summary, written files).
    """
    from spikesmith.energy import count_onnx_macs, load_profile, make_report, write_report
    from spikesmith.energy.report import REPORT_FILES
    from spikesmith.targets.onnx import export_ann_twin

    if (data is None) == (input_path is None):
        raise InputError("give exactly one of --data NAME or --input X.npy")
    if target not in TARGETS:
        raise InputError(f"--target: unknown target {target!r} (expected one of {', '.join(TARGETS)})")
    options.integer("--samples", samples, low=1, high=options.MAX_SAMPLES)
    options.optional_integer("--steps", steps, low=1, high=options.MAX_STEPS)
    options.optional_number("--dt", dt, low=0.0, low_open=True, high=3600.0)
    out = io.check_output(out_dir, kind="dir", inputs=[model_path, input_path, baseline],
                          writes=REPORT_FILES + ("ann_twin.onnx",))
    load_profile(profile)  # a bad profile fails here, before anything is simulated or written
    if baseline is not None:
        count_onnx_macs(baseline)  # a missing, empty or unreadable baseline likewise
    graph, arch = _model_graph(model_path)
    dt, rule, notice = resolve_semantics(graph, dt, reset, reset_timing)
    labels = None
    if input_path is not None:
        x = io.load_array(input_path).astype(np.float64)
    else:
        x, labels = _dataset_batch(data, n=samples, steps=steps or int(arch.get("steps") or 8), seed=0,
                                   encoding=encoding or arch.get("encoding") or graph_encoding(graph))
    _check_input_shape(graph, x, input_path or data)
    trace = simulate(graph, x, target=target, dt=dt, reset=rule)
    accuracy = None if labels is None else float((trace.output.sum(0).argmax(-1) == labels).mean())
    with io.output_dir(out):
        ann = Path(baseline) if baseline else export_ann_twin(graph, out / "ann_twin.onnx")
        extra = {"model": str(model_path), "data": data or str(input_path), "dt_notice": notice}
        report = make_report(graph=graph, trace=trace, ann_onnx=ann, profile=profile, accuracy=accuracy,
                             extra=extra)
        files = write_report(report, out)
    return report.summary(), files


# ---------------------------------------------------------------- the demo

@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Budget of the end-to-end demo on the embedded digits."""

    seed: int = 0
    steps: int = 8
    population: int = 8
    generations: int = 3
    epochs: int = 15
    batch_size: int = 64
    lava_samples: int | None = None  # None: the whole test split
    profile: str = "cmos45"
    # rate-coded spikes: every layer, the first included, is driven by binary events
    encoding: str = "rate"

    def __post_init__(self) -> None:
        options.seed("--seed", self.seed)
        options.integer("--steps", self.steps, low=1, high=options.MAX_STEPS)
        options.integer("--epochs", self.epochs, low=1, high=options.MAX_EPOCHS)
        options.integer("population", self.population, low=2, high=10_000)
        options.integer("generations", self.generations, low=0, high=10_000)
        options.integer("batch_size", self.batch_size, low=1, high=65_536)
        options.optional_integer("--lava-samples", self.lava_samples, low=1, high=options.MAX_SAMPLES)
        if self.encoding not in ("rate", "direct"):
            raise InputError(f"--encoding: expected rate or direct, got {self.encoding!r}")


def demo(out_dir: str | Path, cfg: DemoConfig = DemoConfig(), *, on_progress: Progress | None = None) -> dict:
    """Run the whole slice on digits: evolve -> train -> NIR -> Norse and Lava -> energy report.

    Writes model.pt, model.nir, report.json, report.md, report.html and plots into ``out_dir``;
    returns the summary dict.
    """
    out = io.check_output(out_dir, kind="dir")
    with io.output_dir(out):
        return _demo(out, cfg, on_progress)


def _demo(out: Path, cfg: DemoConfig, on_progress: Progress | None) -> dict:
    import torch

    from spikesmith.data import make_loaders

    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    t = time.perf_counter()
    found = evolve_architecture(steps=cfg.steps, population=cfg.population, generations=cfg.generations,
                                seed=cfg.seed, encoding=cfg.encoding, on_progress=on_progress)
    io.write_jsonl(out / "search.jsonl", found.history)
    timings["evolve"] = time.perf_counter() - t
    _emit(on_progress, "stage", {"done": "evolve", "best": found.best.values, "score": found.best.score})

    t = time.perf_counter()
    model, _, trained = train_model(found.best.values, steps=cfg.steps, epochs=cfg.epochs,
                                    batch_size=cfg.batch_size, seed=cfg.seed, out_dir=out,
                                    encoding=cfg.encoding, on_progress=on_progress)
    timings["train"] = time.perf_counter() - t
    _emit(on_progress, "stage", {"done": "train", "test_accuracy": trained.test_accuracy})

    t = time.perf_counter()
    graph = export_model(out / "model.pt")  # what was written: the file every later command reads
    io.write_nir(out / "model.nir", graph)
    graph = load_graph(out / "model.nir")  # everything downstream uses what was written
    timings["compile"] = time.perf_counter() - t

    _, test, info = make_loaders("digits", batch_size=10_000, steps=cfg.steps, seed=cfg.seed,
                                 encoding=cfg.encoding)
    x, y = next(iter(test))
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if cfg.lava_samples is not None:
        x, y = x[:, : cfg.lava_samples], y[: cfg.lava_samples]
    dt = 1e-3

    t = time.perf_counter()
    ref = simulate(graph, x, target="norse", dt=dt)
    timings["norse"] = time.perf_counter() - t
    t = time.perf_counter()
    lava = simulate(graph, x, target="lava", dt=dt)
    timings["lava"] = time.perf_counter() - t

    def accuracy(trace) -> float:
        return float((trace.output.sum(0).argmax(-1) == y).mean())

    acc_ref, acc_lava = accuracy(ref), accuracy(lava)
    same_out = float((ref.output == lava.output).mean())
    layer_match = {k: float((ref.activity[k] == lava.activity[k]).mean()) for k in ref.activity
                   if k in lava.activity and ref.activity[k].shape == lava.activity[k].shape}
    with torch.no_grad():
        torch_acc = float((model(torch.as_tensor(x, dtype=torch.float32)).sum(0).argmax(-1).numpy() == y).mean())

    from spikesmith.energy import make_report, write_report
    from spikesmith.targets.onnx import export_ann_twin

    t = time.perf_counter()
    onnx_path = export_ann_twin(graph, out / "ann_twin.onnx")
    extra = {
        "accuracy": {"torch": torch_acc, "norse": acc_ref, "lava": acc_lava, "samples": int(len(y))},
        "agreement": {"output_spikes_identical": same_out, "per_node": layer_match},
        "per_sample_seconds": {"norse": ref.per_sample_seconds(), "lava": lava.per_sample_seconds(),
                               "lava_compile": lava.compile_seconds},
        "search": {"best": found.best.values, "rdm_score": found.best.score,
                   "evaluated": found.evaluated},
        "training": {"epochs": cfg.epochs, "test_accuracy": trained.test_accuracy, "device": trained.device,
                     "encoding": cfg.encoding, "time_steps": cfg.steps},
        "timings_s": timings,
    }
    report = make_report(graph=graph, trace=lava, ann_onnx=onnx_path, profile=cfg.profile,
                         accuracy=acc_lava, extra=extra)
    files = write_report(report, out)
    timings["energy"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    summary = {
        "out_dir": str(out), "files": {k: str(v) for k, v in files.items()} | {"model.nir": str(out / "model.nir")},
        **extra, "energy": report.summary(),
    }
    return summary
