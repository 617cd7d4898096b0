"""The deploy bundle: a :class:`~spikesmith.compile.quantise.QuantisedPlan` as a self-contained, versioned directory.

A bundle holds everything the fixed-point targets need and nothing of the model it came from:

- ``network.json``: the population/connection graph (shapes, neuron family, reset rule, lags,
  convolution geometry, delays), every population's threshold mantissa and message shift, every
  connection's weight exponent, the input and readout scales, the quantisation report, the core
  mapping (:mod:`spikesmith.compile.resources`) and the calibration record;
- ``weights.npz``: per connection the 8-bit weight mantissas, per population the 12-bit du/dv
  registers, bias mantissas and exponents, and the NIR scale/offset of its voltage;
- ``verification.json``: the verification report of the compile run, and ``verification.npz``:
  the inputs Lava ran and the fixed-point output spikes they gave (the bundle checks itself
  against them);
- ``manifest.json``: the bundle version and the sha256 of every other file.

Every file is written atomically, and ``weights.npz`` byte for byte deterministically (fixed zip
timestamps), so the same plan gives the same bytes. :func:`read_bundle` refuses, in one line naming
the file, a missing or edited file, a bundle of a newer version, or a directory that is no bundle.
"""

from __future__ import annotations

import hashlib
import io as _bytes
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikesmith import io
from spikesmith.compile import neurons, units
from spikesmith.compile.graph import ResetRule
from spikesmith.compile.ops import ConvGeometry
from spikesmith.compile.plan import BIAS_SOURCE, Connection, Plan, Population, Readout
from spikesmith.compile.quantise import (LayerQuant, QuantConfig, QuantisedPlan, QuantisedPopulation,
                                         QuantisedSynapse)
from spikesmith.errors import InputError

FORMAT = "spikesmith-deploy-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
NETWORK = "network.json"
WEIGHTS = "weights.npz"
VERIFICATION = "verification.json"
SAMPLES = "verification.npz"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, kw_only=True, eq=False)
class Bundle:
    """A bundle read back: the quantised plan, and the records that travel with it."""

    qplan: QuantisedPlan
    path: Path
    calibration: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)
    verification: dict = field(default_factory=dict)
    sample_input: np.ndarray | None = None  # (T, B, *input_shape): the inputs Lava ran at compile time
    sample_output: np.ndarray | None = None  # their fixed-point outputs

    @property
    def input_shape(self) -> tuple[int, ...]:
        p = self.qplan.plan
        return p.populations[p.input].shape


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding a bundle manifest."""
    p = Path(path)
    return p.is_dir() and (p / MANIFEST).is_file()


# ---------------------------------------------------------------- writing

def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive of ``arrays`` whose bytes depend only on the arrays (sorted names, fixed times)."""
    buf = _bytes.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            arr = _bytes.BytesIO()
            np.lib.format.write_array(arr, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, arr.getvalue())
    return buf.getvalue()


def _geometry(g: ConvGeometry | None) -> dict | None:
    if g is None:
        return None
    return {"stride": list(g.stride), "padding": list(g.padding), "dilation": list(g.dilation), "groups": g.groups,
            "in_shape": list(g.in_shape), "out_shape": list(g.out_shape)}


def _conn_record(c: Connection, q: QuantisedSynapse, key: str) -> dict:
    return {"key": key, "src": c.src, "dst": c.dst, "conv": _geometry(c.conv), "recurrent": c.recurrent,
            "graded": c.graded, "nodes": list(c.nodes), "delay": c.delay, "lag_delay": c.lag_delay,
            "weight_exp": q.exp, "in_scale": q.in_scale, "weight_shape": list(q.weight.shape)}


def network_record(qplan: QuantisedPlan) -> tuple[dict, dict[str, np.ndarray]]:
    """(the JSON description of ``qplan``, its arrays) as a bundle stores them."""
    plan = qplan.plan
    arrays: dict[str, np.ndarray] = {}
    pops = []
    for pop in plan.populations.values():
        rec: dict[str, Any] = {"name": pop.name, "shape": list(pop.shape),
                               "family": None if pop.family is None else pop.family.name,
                               "subtract": pop.subtract, "delayed": pop.delayed, "lag": pop.lag}
        if not pop.is_input:
            qp = qplan.populations[pop.name]
            rec.update(vth_mant=qp.vth_mant, msg_shift=qp.msg_shift)
            for k, v in (("du", qp.du), ("dv", qp.dv), ("bias_mant", qp.bias_mant), ("bias_exp", qp.bias_exp)):
                arrays[f"pop/{pop.name}/{k}"] = np.asarray(v, dtype=np.int64)
            arrays[f"pop/{pop.name}/scale"] = np.asarray(pop.scale, dtype=np.float64)
            arrays[f"pop/{pop.name}/offset"] = np.asarray(pop.offset, dtype=np.float64)
        pops.append(rec)
    groups = {"connections": zip(plan.connections, qplan.connections),
              "bias_connections": zip(plan.bias_connections, qplan.bias_connections)}
    conns: dict[str, list] = {}
    for group, pairs in groups.items():
        conns[group] = []
        for i, (c, q) in enumerate(pairs):
            key = f"{group}/{i}"
            arrays[f"{key}/weight"] = np.asarray(q.weight, dtype=np.int16)
            conns[group].append(_conn_record(c, q, key))
    readouts, k = [], 0
    for r in plan.readouts:
        rc = []
        for c in r.connections:
            q = qplan.readout_connections[k]
            key = f"readout_connections/{k}"
            arrays[f"{key}/weight"] = np.asarray(q.weight, dtype=np.int16)
            rc.append(_conn_record(c, q, key))
            k += 1
        if r.bias is not None:
            arrays[f"readout/{r.output}/bias"] = np.asarray(r.bias, dtype=np.float64)
        readouts.append({"output": r.output, "population": r.population, "connections": rc, "shape": list(r.shape),
                         "lag": r.lag, "bias": r.bias is not None})
    net = {"dt": plan.dt, "input": plan.input, "reset": {"mode": plan.reset.mode, "timing": plan.reset.timing},
           "populations": pops, **conns, "readouts": readouts, "input_scale": qplan.input_scale,
           "readout_scale": qplan.readout_scale,
           "quant_config": {"max_vth_mant": qplan.config.max_vth_mant, "input_frac_bits": qplan.config.input_frac_bits},
           "report": [_finite(r.to_dict()) for r in qplan.report]}
    return net, arrays


def _finite(row: dict) -> dict:
    """A report row with infinite headroom (a state that never moved) as None, which JSON can hold."""
    return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in row.items()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(out_dir: str | Path, qplan: QuantisedPlan, *, calibration: dict, resources: dict,
                 verification: dict | None = None, sample_input: np.ndarray | None = None,
                 sample_output: np.ndarray | None = None, producer: str = "spikesmith") -> dict[str, Path]:
    """Write ``qplan`` as a bundle into ``out_dir`` (each file atomically, the manifest last); returns the files."""
    out = Path(out_dir)
    net, arrays = network_record(qplan)
    net["calibration"] = calibration
    net["resources"] = resources
    payload: dict[str, bytes] = {
        NETWORK: io.json_bytes(net),
        WEIGHTS: npz_bytes(arrays),
    }
    if verification is not None:
        payload[VERIFICATION] = io.json_bytes(verification)
    if sample_input is not None and sample_output is not None:
        payload[SAMPLES] = npz_bytes({"input": np.asarray(sample_input, dtype=np.float64),
                                      "output": np.asarray(sample_output, dtype=np.float64)})
    written = {}
    for name, data in payload.items():
        written[name] = io.write_bytes(out / name, data)
    manifest = {"format": FORMAT, "bundle_version": BUNDLE_VERSION, "producer": producer,
                "files": {name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in sorted(payload.items())}}
    written[MANIFEST] = io.write_json(out / MANIFEST, manifest)
    return written


# ---------------------------------------------------------------- reading

def _checked_files(p: Path) -> dict[str, bytes]:
    """Every file the manifest lists, its hash verified (InputError naming the file otherwise)."""
    if not p.is_dir():
        raise InputError(f"{p}: not a deploy bundle directory")
    manifest = io.read_json(p / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{p / MANIFEST}: not a spikesmith deploy bundle manifest (format {FORMAT!r} expected)")
    version = manifest.get("bundle_version")
    if not isinstance(version, int) or version < 1:
        raise InputError(f"{p / MANIFEST}: bundle_version {version!r} is not a version number")
    if version > BUNDLE_VERSION:
        raise InputError(f"{p / MANIFEST}: bundle version {version} is newer than this spikesmith reads "
                         f"(up to {BUNDLE_VERSION}); upgrade spikesmith")
    files = manifest.get("files")
    if not isinstance(files, dict) or NETWORK not in files or WEIGHTS not in files:
        raise InputError(f"{p / MANIFEST}: lists no {NETWORK} and {WEIGHTS}")
    out = {}
    for name, meta in files.items():
        f = p / name
        if Path(name).name != name:
            raise InputError(f"{p / MANIFEST}: file name {name!r} leaves the bundle directory")
        if not f.is_file():
            raise InputError(f"{f}: missing from the bundle (listed in {MANIFEST})")
        data = f.read_bytes()
        want = meta.get("sha256") if isinstance(meta, dict) else None
        if _sha256(data) != want:
            raise InputError(f"{f}: sha256 does not match the bundle manifest (the file was edited or damaged)")
        out[name] = data
    return out


def _npz(data: bytes, name: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(_bytes.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{name}: not a readable .npz archive ({exc})") from None


def _conn(rec: dict, arrays: dict, dst_vth: int | None, where: Path) -> tuple[Connection, QuantisedSynapse]:
    try:
        w = arrays[f"{rec['key']}/weight"].astype(np.int64)
        g = rec["conv"]
        geom = None if g is None else ConvGeometry(stride=tuple(g["stride"]), padding=tuple(g["padding"]),
                                                   dilation=tuple(g["dilation"]), groups=int(g["groups"]),
                                                   in_shape=tuple(g["in_shape"]), out_shape=tuple(g["out_shape"]))
        q = QuantisedSynapse(weight=w, exp=int(rec["weight_exp"]), in_scale=float(rec["in_scale"]))
        # the weight the integers realise, in normalised units (what a float run of the bundle uses)
        real = w * 2.0 ** q.exp * q.in_scale / (dst_vth or 1)
        c = Connection(src=rec["src"], dst=rec["dst"], weight=real, conv=geom, recurrent=bool(rec["recurrent"]),
                       graded=bool(rec["graded"]), nodes=tuple(rec["nodes"]), delay=int(rec["delay"]),
                       lag_delay=int(rec["lag_delay"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: connection {rec.get('key', '?') if isinstance(rec, dict) else rec!r} is "
                         f"malformed ({type(exc).__name__}: {exc})") from None
    return c, q


def read_bundle(path: str | Path) -> Bundle:
    """The bundle in directory ``path`` (InputError naming the file when it is missing, edited or too new)."""
    p = Path(path)
    files = _checked_files(p)
    net = _json(files[NETWORK], p / NETWORK)
    arrays = _npz(files[WEIGHTS], p / WEIGHTS)
    try:
        pops: dict[str, Population] = {}
        qpops: dict[str, QuantisedPopulation] = {}
        for rec in net["populations"]:
            name, shape = rec["name"], tuple(rec["shape"])
            if rec["family"] is None:
                pops[name] = Population(name=name, shape=shape)
                continue
            fam = next((f for f in neurons.FAMILIES.values() if f.name == rec["family"]), None)
            if fam is None:
                raise InputError(f"{p / NETWORK}: population '{name}' has neuron family {rec['family']!r}, unknown "
                                 f"to this spikesmith")
            a = {k: arrays[f"pop/{name}/{k}"] for k in ("du", "dv", "bias_mant", "bias_exp", "scale", "offset")}
            qp = QuantisedPopulation(name=name, vth_mant=int(rec["vth_mant"]), du=a["du"], dv=a["dv"],
                                     bias_mant=a["bias_mant"], bias_exp=a["bias_exp"], msg_shift=int(rec["msg_shift"]))
            qpops[name] = qp
            pops[name] = Population(name=name, shape=shape, family=fam, du=units.current_decay_realised(a["du"]),
                                    dv=units.voltage_decay_realised(a["dv"]),
                                    bias=qp.bias / units.state_scale(qp.vth_mant), scale=a["scale"],
                                    offset=a["offset"], gain=np.ones(int(np.prod(shape))),
                                    subtract=bool(rec["subtract"]), delayed=bool(rec["delayed"]), lag=int(rec["lag"]))
        vth = {n: q.vth_mant for n, q in qpops.items()}
        readout_vth = units.state_scale(1)
        readout_vth = int(net["readout_scale"]) // readout_vth
        conns = [_conn(r, arrays, vth.get(r["dst"]), p / WEIGHTS) for r in net["connections"]]
        bias_conns = [_conn(r, arrays, vth.get(r["dst"]), p / WEIGHTS) for r in net["bias_connections"]]
        readouts, read_q = [], []
        for r in net["readouts"]:
            rc = [_conn(c, arrays, readout_vth, p / WEIGHTS) for c in r["connections"]]
            read_q += [q for _, q in rc]
            readouts.append(Readout(output=r["output"], population=r["population"], connections=tuple(c for c, _ in rc),
                                    bias=arrays[f"readout/{r['output']}/bias"] if r["bias"] else None,
                                    shape=tuple(r["shape"]), lag=int(r["lag"])))
        plan = Plan(dt=float(net["dt"]), populations=pops, connections=tuple(c for c, _ in conns),
                    readouts=tuple(readouts), input=net["input"], bias_connections=tuple(c for c, _ in bias_conns),
                    reset=ResetRule(mode=net["reset"]["mode"], timing=net["reset"]["timing"]))
        cfg = net["quant_config"]
        qplan = QuantisedPlan(plan=plan, config=QuantConfig(max_vth_mant=int(cfg["max_vth_mant"]),
                                                            input_frac_bits=cfg["input_frac_bits"]),
                              input_scale=float(net["input_scale"]), populations=qpops,
                              connections=tuple(q for _, q in conns), bias_connections=tuple(q for _, q in bias_conns),
                              readout_connections=tuple(read_q), readout_scale=int(net["readout_scale"]),
                              report=tuple(LayerQuant(**r) for r in net.get("report", [])))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{p / NETWORK}: malformed bundle description ({type(exc).__name__}: {exc})") from None
    if any(c.src not in pops and c.src != BIAS_SOURCE for c in plan.connections + plan.bias_connections):
        raise InputError(f"{p / NETWORK}: a connection names a population the bundle does not hold")
    sample_in = sample_out = None
    if SAMPLES in files:
        s = _npz(files[SAMPLES], p / SAMPLES)
        sample_in, sample_out = s.get("input"), s.get("output")
    verification = _json(files[VERIFICATION], p / VERIFICATION) if VERIFICATION in files else {}
    return Bundle(qplan=qplan, path=p, calibration=net.get("calibration") or {}, resources=net.get("resources") or {},
                  verification=verification, sample_input=sample_in, sample_output=sample_out)


def _json(data: bytes, where: Path) -> Any:
    import json

    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{where}: not valid JSON ({exc})") from None
