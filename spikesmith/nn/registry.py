"""The registry of network families: each family's spec type and builder, registered once.

A family is a kind of network spikesmith builds (the searched conv SNN, the MSE-NAS cell
network, the GEE nets). Its *spec* is a frozen, JSON-serialisable dataclass that says everything
needed to rebuild the untrained network; ``build(spec, seed=...)`` returns a
:class:`~spikesmith.nn.network.Network`. Model files store ``(family, spec, weights)``
(:mod:`spikesmith.io`), and every family's networks export through one exporter, because they are
all made of the layers :mod:`spikesmith.compile.export` maps to NIR.

A family module registers itself with :func:`register` when imported; :func:`registered_families` imports the
built-in ones on purpose (no directory scanning).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from spikesmith.errors import InputError


@dataclass(frozen=True, kw_only=True)
class Family:
    """A network family: its name, spec type, builder and a one-line description."""

    name: str
    spec_type: type
    build: Callable[..., Any]  # build(spec, *, seed: int | None = None, dt: float = DT) -> Network
    description: str

    def spec_from_dict(self, d: dict, *, where: str = "spec") -> Any:
        """The spec of this family from its JSON form; InputError naming the bad field."""
        if not isinstance(d, dict):
            raise InputError(f"{where}: expected a JSON object for family '{self.name}', got {type(d).__name__}")
        from_dict = getattr(self.spec_type, "from_dict", None)
        try:
            if from_dict is not None:
                return from_dict(d)
            names = {f.name for f in dataclasses.fields(self.spec_type)}
            unknown = sorted(set(d) - names)
            if unknown:
                raise InputError(f"unknown field(s) {unknown} (known: {sorted(names)})")
            return self.spec_type(**d)
        except InputError as exc:
            raise InputError(f"{where}: family '{self.name}': {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(f"{where}: family '{self.name}': malformed spec ({type(exc).__name__}: {exc})") from None


_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add ``family`` to the registry (once per name)."""
    if family.name in _FAMILIES and _FAMILIES[family.name] is not family:
        raise ValueError(f"network family '{family.name}' is registered twice")
    _FAMILIES[family.name] = family
    return family


def registered_families() -> dict[str, Family]:
    """Every registered family, name -> Family (the built-in ones imported first)."""
    from spikesmith.nn.families import conv, gee, nas  # noqa: F401  (they register themselves)

    return dict(_FAMILIES)


def get_family(name: str) -> Family:
    """The family called ``name``; InputError listing the known ones otherwise."""
    known = registered_families()
    if name not in known:
        raise InputError(f"unknown network family {name!r} (known: {', '.join(sorted(known))})")
    return known[name]


def spec_to_dict(spec: Any) -> dict:
    """The JSON form of a spec (its ``to_dict`` or its dataclass fields)."""
    to_dict = getattr(spec, "to_dict", None)
    return to_dict() if callable(to_dict) else dataclasses.asdict(spec)


def family_of(spec: Any) -> Family:
    """The registered family whose spec type ``spec`` is."""
    for f in registered_families().values():
        if isinstance(spec, f.spec_type):
            return f
    raise InputError(f"{type(spec).__name__} is not the spec of a registered network family")


def build(spec: Any, *, seed: int | None = None, dt: float | None = None):
    """The untrained network of ``spec`` (its family's builder); initial weights from ``seed``."""
    from spikesmith.nn.neurons import DT

    return family_of(spec).build(spec, seed=seed, dt=DT if dt is None else float(dt))


def save_model(path, model, spec: Any, **settings):
    """Write ``model`` (built from ``spec``) as a model file (:func:`spikesmith.io.save_model`);
    ``settings``: dt (default: the model's), encoding, steps, data, reset, reset_timing, meta."""
    from spikesmith import io

    settings.setdefault("dt", getattr(model, "dt", None) or 1e-3)
    return io.save_model(path, family=family_of(spec).name, spec=spec_to_dict(spec), state_dict=model.state_dict(),
                         **settings)


def load_model(path):
    """(network in eval mode, :class:`~spikesmith.io.ModelFile`) of a model file, built by its family.

    One-line InputError naming the file for an unknown family (listing the known ones), a spec the
    family rejects, weights that do not fit the spec, and NaN or infinite weights.
    """
    from spikesmith import io

    mf = io.read_model_file(path)
    try:
        family = get_family(mf.family)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    spec = family.spec_from_dict(mf.spec, where=str(path))
    try:
        model = family.build(spec, seed=None, dt=mf.dt)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    state = mf.state_dict
    if mf.indexed_keys:
        state = _by_node_name(model, state)
    io.check_finite_weights(state, path)
    return io.load_weights(model, state, path, what=f"the spec of family '{family.name}'"), mf


def _by_node_name(model, state_dict: dict) -> dict:
    """An earlier release's sequential state dict (``layers.<index>.*``) keyed by the network's node names."""
    names = [name for name, _ in model.graph]

    def rename(key: str) -> str:
        head, _, rest = key.partition(".")
        index, _, tail = rest.partition(".")
        if head == "layers" and index.isdigit() and int(index) < len(names):
            return f"layers.{names[int(index)]}.{tail}"
        return key

    return {rename(k): v for k, v in state_dict.items()}
