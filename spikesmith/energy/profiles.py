"""Energy profiles: named, cited energy-per-operation constants loaded from JSON files.

A profile file (``spikesmith/energy/profiles/<name>.json``, or any path) looks like::

    {"name": "cmos45", "description": "...", "use": ["snn", "ann"],
     "constants": {"mac": {"value": 4.6, "unit": "pJ", "source": "...", "estimate": false}, ...},
     "reference": {...same form, listed in reports but not used by the model...}}

Constants the energy model uses (all optional except as noted):

* ``ac``: one synaptic operation (accumulate), required for ``"snn"`` use;
* ``mac``: one multiply-accumulate, required for both uses (analog first layer, ANN);
* ``flop``: one element-wise ANN op (add, ReLU, pooling);
* ``neuron_update``: one neuron's state update for one time step;
* ``spike``: one emitted spike (routing/firing cost beyond its synaptic ops).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from spikesmith.errors import InputError
from spikesmith.io import read_json

#: unit -> joules
UNITS: dict[str, float] = {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "nJ": 1e-9, "pJ": 1e-12, "fJ": 1e-15}
#: constants the energy model reads, and what each one costs
MODEL_CONSTANTS: dict[str, str] = {
    "ac": "one synaptic operation (accumulate) per existing synapse of a spike",
    "mac": "one multiply-accumulate (analog SNN input, ANN layers)",
    "flop": "one element-wise ANN operation (add, ReLU, pooling)",
    "neuron_update": "one neuron update (leak, integrate, compare) per neuron per time step",
    "spike": "one emitted spike",
}
USES = ("snn", "ann")
_REQUIRED = {"snn": ("ac", "mac"), "ann": ("mac",)}

PROFILE_DIR = Path(__file__).with_name("profiles")


@dataclass(frozen=True, kw_only=True)
class Constant:
    """One energy constant with its provenance.

    Attributes:
        value: energy per operation in ``unit``.
        unit: one of :data:`UNITS`.
        source: citation (paper, table) or derivation.
        estimate: True when the figure is derived or comes from a secondary source rather
            than being published as such in the primary source.
        note: free-form remark.
    """

    value: float
    unit: str
    source: str
    estimate: bool
    note: str = ""

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit {self.unit!r} is not one of {sorted(UNITS)}")
        if not (isinstance(self.value, (int, float)) and math.isfinite(self.value) and self.value >= 0):
            raise ValueError(f"value {self.value!r} must be a finite number >= 0")
        if not self.source.strip():
            raise ValueError("source must name where the figure comes from")

    @property
    def joules(self) -> float:
        """The value in joules."""
        return float(self.value) * UNITS[self.unit]

    def to_dict(self) -> dict:
        """JSON-ready form (the file's form plus ``joules``)."""
        d = {"value": self.value, "unit": self.unit, "joules": self.joules,
             "source": self.source, "estimate": self.estimate}
        if self.note:
            d["note"] = self.note
        return d


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A named set of energy constants.

    Attributes:
        name: profile name.  description: what it models and leaves out.
        use: ``("snn",)``, ``("ann",)`` or both: what the profile can price.
        constants: model constants (keys from :data:`MODEL_CONSTANTS`).
        reference: published figures listed for context, not used by the model.
        path: file it was loaded from.
    """

    name: str
    description: str
    use: tuple[str, ...]
    constants: Mapping[str, Constant]
    reference: Mapping[str, Constant] = field(default_factory=dict)
    path: str = ""

    def __post_init__(self) -> None:
        where = self.path or f"profile '{self.name}'"
        if not self.name:
            raise ValueError(f"{where}: profile needs a name")
        if not self.use or any(u not in USES for u in self.use):
            raise ValueError(f"{where}: 'use' must list some of {list(USES)}, got {list(self.use)}")
        unknown = sorted(set(self.constants) - set(MODEL_CONSTANTS))
        if unknown:
            raise ValueError(
                f"{where}: unknown constant(s) {unknown}; the model reads {sorted(MODEL_CONSTANTS)} "
                "(put other figures under 'reference')"
            )
        for u in self.use:
            missing = [k for k in _REQUIRED[u] if k not in self.constants]
            if missing:
                raise ValueError(f"{where}: a profile for '{u}' use needs constant(s) {missing}")
        object.__setattr__(self, "constants", MappingProxyType(dict(self.constants)))
        object.__setattr__(self, "reference", MappingProxyType(dict(self.reference)))

    def joules(self, key: str) -> float:
        """Energy of one ``key`` operation in joules; 0 when the profile does not price it."""
        c = self.constants.get(key)
        return 0.0 if c is None else c.joules

    def has(self, key: str) -> bool:
        """Whether the profile prices ``key``."""
        return key in self.constants

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "name": self.name,
            "description": self.description,
            "use": list(self.use),
            "path": self.path,
            "constants": {k: c.to_dict() for k, c in self.constants.items()},
            "reference": {k: c.to_dict() for k, c in self.reference.items()},
        }


def available_profiles() -> list[str]:
    """Names of the profiles shipped with spikesmith."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def _constant(raw, where: str) -> Constant:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected an object with value, unit, source, estimate; got {raw!r}")
    missing = [k for k in ("value", "unit", "source", "estimate") if k not in raw]
    if missing:
        raise InputError(f"{where}: missing field(s) {missing}")
    extra = sorted(set(raw) - {"value", "unit", "source", "estimate", "note"})
    if extra:
        raise InputError(f"{where}: unknown field(s) {extra}")
    if not isinstance(raw["estimate"], bool):
        raise InputError(f"{where}.estimate: expected true or false, got {raw['estimate']!r}")
    if isinstance(raw["value"], bool) or not isinstance(raw["value"], (int, float)):
        raise InputError(f"{where}.value: expected a number, got {raw['value']!r}")
    if not isinstance(raw["source"], str) or not isinstance(raw["unit"], str):
        raise InputError(f"{where}: unit and source must be strings")
    try:
        return Constant(value=float(raw["value"]), unit=raw["unit"], source=raw["source"],
                        estimate=raw["estimate"], note=str(raw.get("note", "")))
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def profile_from_dict(raw, *, path: str = "") -> Profile:
    """Build and validate a :class:`Profile` from parsed JSON; errors name the file and field."""
    where = path or "profile"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    extra = sorted(set(raw) - {"name", "description", "use", "constants", "reference"})
    if extra:
        raise InputError(f"{where}: unknown top-level field(s) {extra}")
    for key in ("name", "constants"):
        if key not in raw:
            raise InputError(f"{where}: missing field '{key}'")
    if not isinstance(raw["name"], str):
        raise InputError(f"{where}: 'name' must be a string")
    use = raw.get("use", ["snn", "ann"])
    if not isinstance(use, list) or not all(isinstance(u, str) for u in use):
        raise InputError(f"{where}: 'use' must be a list of strings from {list(USES)}")
    sections = {}
    for sec in ("constants", "reference"):
        body = raw.get(sec, {})
        if not isinstance(body, dict):
            raise InputError(f"{where}: '{sec}' must be an object of named constants")
        sections[sec] = {k: _constant(v, f"{where}: {sec}.{k}") for k, v in body.items()}
    try:
        return Profile(
            name=raw["name"], description=str(raw.get("description", "")), use=tuple(use),
            constants=sections["constants"], reference=sections["reference"], path=path,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None


def load_profile(name_or_path: str | os.PathLike | Profile) -> Profile:
    """The profile shipped under that name, or the one in a JSON file at that path.

    Raises :class:`InputError` naming the file and field for an unknown name or a
    malformed file.
    """
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.suffix.lower() != ".json" and os.sep not in text and "/" not in text:
        shipped = PROFILE_DIR / f"{text}.json"
        if not shipped.is_file():
            raise InputError(
                f"unknown energy profile '{text}' (shipped: {', '.join(available_profiles())}; "
                "or give the path of a .json profile file)"
            )
        path = shipped
    return profile_from_dict(read_json(path), path=str(path))
