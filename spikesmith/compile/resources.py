"""Loihi 2 fit report of a deployment plan, from published limits.

Every limit the report uses is one row of :data:`LIMITS`, with its value and its source: Lava's own
Loihi 2 compiler constants, Intel's Loihi 2 brief, and the per-core distribution that Lava's Loihi 2
compiler printed for lava-dl's PilotNet LIF network (``tutorials/lava/lib/dl/netx/pilotnet_snn/
benchmark.ipynb``: 74 cores; per core up to 3,168 neurons, a synaptic memory register ``SynMem`` of
12,000 units). Figures marked *calibrated* are fitted to that published mapping; figures marked
*assumption* have no Loihi 2 publication and are stated so.

A population is placed on cores of its own (populations do not share cores), as Lava's compiler
does per process:

- **convolutional** populations (every incoming connection a convolution) are split along their
  last axis (width) into tiles of a power-of-two number of columns holding at most
  ``neurons_per_core_tile`` neurons (further split by channel when one column is too large); every
  core holds the shared kernels (``conv_weights_per_unit``);
- **dense** populations hold a power-of-two number of neurons per core such that their incoming
  synapses fit the synaptic memory: per neuron ``fan_in * weight_bits / dense_bits_per_unit`` units
  (dense encoding) or, when it is cheaper, ``nonzero * (weight_bits + sparse_index_bits) /
  dense_bits_per_unit`` (sparse encoding);
- a core receives at most ``axons_in_per_core`` distinct inputs: a dense population's sources
  count in full.

A population that cannot be placed at all (one neuron's synapses exceed a core's synaptic memory,
or its sources exceed the input axons of a core) is a problem naming the population and the limit;
:func:`check_fits` raises it as a one-line GraphError. The input is injected from the host unless
``include_input`` (lava-dl's netx keeps its input layer on chip as neurons driven by their bias, as
in the PilotNet mapping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikesmith.compile.plan import Plan, Population
from spikesmith.errors import GraphError

_PILOTNET = "lava-dl PilotNet LIF on Loihi 2 (tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb, per-core table)"


@dataclass(frozen=True, kw_only=True)
class Limit:
    """One published (or calibrated) figure the fit report uses."""

    name: str
    value: float
    unit: str
    source: str
    kind: str  # "published", "calibrated" or "assumption"


LIMITS: dict[str, Limit] = {x.name: x for x in (
    Limit(name="cores_per_chip", value=120, unit="neuro-cores usable by Lava's compiler per Loihi 2 chip",
          source="Lava: lava/magma/compiler/subcompilers/constants.py NUM_VIRTUAL_CORES_L3 = 120, the count "
                 "its mapper uses for N3 (Loihi 2) neuro-cores; Intel's Loihi 2 brief: 128 cores per chip",
          kind="published"),
    Limit(name="neurons_per_core_max", value=8192, unit="neurons",
          source="Intel Loihi 2 brief (2021): up to 1 million neurons on 128 cores", kind="published"),
    Limit(name="neurons_per_core_tile", value=4095, unit="neurons",
          source=f"{_PILOTNET}: every convolutional layer is split into power-of-two column tiles of 2,048 to "
                 "3,168 neurons, the largest below 4,096", kind="calibrated"),
    Limit(name="synmem_units_per_core", value=12000, unit="SynMem units",
          source=f"Lava's Loihi 2 cost database as printed in {_PILOTNET}: 'SynMem ... registers = 12000'",
          kind="published"),
    Limit(name="dense_bits_per_unit", value=22.6, unit="weight bits per SynMem unit (dense encoding)",
          source=f"{_PILOTNET}: 8 neurons x 2,560 inputs of 8-bit weights use 7,253 units", kind="calibrated"),
    Limit(name="sparse_index_bits", value=12, unit="bits per nonzero synapse besides its weight (sparse encoding)",
          source="assumption: an index into up to 4,096 input axons; no Loihi 2 figure is published",
          kind="assumption"),
    Limit(name="conv_weights_per_unit", value=8, unit="shared kernel weights per SynMem unit (conv encoding)",
          source=f"{_PILOTNET}: 648 kernel weights in 81 units (8 per unit; deeper layers pack 9 to 12.8)",
          kind="calibrated"),
    Limit(name="axons_in_per_core", value=4096, unit="input axons per core",
          source="Loihi 1 (Davies et al., IEEE Micro 2018: 4,096 input axons per core); no Loihi 2 figure is "
                 f"published; {_PILOTNET} uses at most 2,560", kind="assumption"),
    Limit(name="weight_bits", value=8, unit="bits per weight mantissa",
          source="spikesmith's quantisation (Lava's 8-bit weights, compile/quantise.py)", kind="published"),
)}

# published mappings the report is calibrated against (see docs/deploy.md and tests/compile/test_resources.py)
PUBLISHED = {"pilotnet_lif": {"cores": 74, "source": _PILOTNET}}


def _lim(name: str) -> float:
    return LIMITS[name].value


def _pow2_floor(x: float) -> int:
    return 1 << int(math.floor(math.log2(x))) if x >= 1 else 0


def _nonzero_rows(c) -> np.ndarray:
    return np.count_nonzero(c.weight, axis=1) if c.conv is None else c.conv.fan_in(c.weight)


def _conv_cores(pop: Population, conns) -> tuple[int, int, str | None]:
    """(cores, neurons per core, problem) of a convolutional population."""
    tile = _lim("neurons_per_core_tile")
    shape = pop.shape if len(pop.shape) == 3 else (pop.size, 1, 1)
    c, h, w = shape
    kernel_units = sum(math.ceil(int(np.prod(x.weight.shape)) / _lim("conv_weights_per_unit")) for x in conns)
    column = c * h
    if column <= tile:
        cols = min(_pow2_floor(tile / column), _pow2_floor(w)) or 1
        cores, per = math.ceil(w / cols), cols * column
    else:  # one column is too large: split its channels too
        per_ch = h
        chans = max(1, _pow2_floor(tile / per_ch))
        cores, per = w * math.ceil(c / chans), chans * per_ch
    if kernel_units > _lim("synmem_units_per_core"):
        # each core holds the kernels of its channels only: split by output channel
        split = math.ceil(kernel_units / _lim("synmem_units_per_core"))
        if split > c:
            return 0, 0, (f"population '{pop.name}': one output channel's shared kernels need "
                          f"{kernel_units / c:,.0f} SynMem units, more than a core's {_lim('synmem_units_per_core'):,.0f}")
        cores *= split
    return cores, per, None


def _dense_cores(pop: Population, conns, sizes: dict[str, int]) -> tuple[int, int, str | None, str]:
    """(cores, neurons per core, problem, encoding) of a population with dense incoming synapses."""
    bits, per_unit = _lim("weight_bits"), _lim("dense_bits_per_unit")
    fan_in = sum(sizes.get(c.src, 1) if c.conv is None else int(c.conv.fan_in(c.weight).max(initial=0))
                 for c in conns)
    nonzero = int(sum(_nonzero_rows(c).max(initial=0) for c in conns))
    dense_units = fan_in * bits / per_unit
    sparse_units = nonzero * (bits + _lim("sparse_index_bits")) / per_unit
    units, encoding = (dense_units, "dense") if dense_units <= sparse_units else (sparse_units, "sparse")
    axons = sum(sizes.get(c.src, 1) for c in conns if c.conv is None)
    if axons > _lim("axons_in_per_core"):
        return 0, 0, (f"population '{pop.name}': receives {axons:,} distinct inputs, more than a core's "
                      f"{_lim('axons_in_per_core'):,.0f} input axons"), encoding
    if units > _lim("synmem_units_per_core"):
        return 0, 0, (f"population '{pop.name}': one neuron's {nonzero:,} incoming synapses need {units:,.0f} "
                      f"SynMem units ({encoding}, {bits:.0f}-bit), more than a core's "
                      f"{_lim('synmem_units_per_core'):,.0f}"), encoding
    per = min(_pow2_floor(_lim("synmem_units_per_core") / max(units, 1e-9)), _pow2_floor(_lim("neurons_per_core_tile")))
    per = max(1, min(per, pop.size))
    return math.ceil(pop.size / per), per, None, encoding


def estimate(plan: Plan, *, include_input: bool = False) -> dict:
    """Neurons, synapses, fan-in, encoding, neurons per core and cores per population, in total and in chips;
    ``problems`` lists the populations that cannot be placed (name and limit)."""
    rows, problems = [], []
    sizes = {p.name: p.size for p in plan.populations.values()}
    pops = list(plan.populations.values()) if include_input else plan.neurons
    for pop in pops:
        conns = plan.incoming(pop.name)
        syn = sum(int(_nonzero_rows(c).sum()) for c in conns)
        fan_in = max((int(_nonzero_rows(c).max(initial=0)) for c in conns), default=0)
        if pop.is_input:  # on chip as neurons driven by their bias (lava-dl netx)
            cores, per, problem = _conv_cores(pop, [])
            encoding = "input"
        elif conns and all(c.conv is not None for c in conns):
            cores, per, problem = _conv_cores(pop, conns)
            encoding = "conv-shared"
        else:
            cores, per, problem, encoding = _dense_cores(pop, conns, sizes)
        if problem:
            problems.append(problem)
        rows.append({"population": pop.name, "neurons": pop.size, "synapses": syn, "max_fan_in": fan_in,
                     "encoding": encoding, "neurons_per_core": per, "cores": cores})
    total = sum(r["cores"] for r in rows)
    return {
        "populations": rows,
        "neurons": sum(r["neurons"] for r in rows),
        "synapses": sum(r["synapses"] for r in rows),
        "max_fan_in": max((r["max_fan_in"] for r in rows), default=0),
        "cores": total,
        "chips": max(1, math.ceil(total / _lim("cores_per_chip"))),
        "fits": not problems,
        "problems": problems,
        "include_input": include_input,
        "limits": {k: {"value": v.value, "unit": v.unit, "source": v.source, "kind": v.kind} for k, v in LIMITS.items()},
    }


def check_fits(est: dict) -> None:
    """Raise GraphError (one line naming the population and the limit) when the estimate has a problem."""
    if est["problems"]:
        more = len(est["problems"]) - 1
        raise GraphError(f"does not fit Loihi 2: {est['problems'][0]}" + (f" (and {more} more)" if more else ""))


def render(est: dict) -> str:
    """The estimate as a short text table."""
    lines = [f"{'population':<24}{'neurons':>10}{'synapses':>12}{'fan-in':>8}{'encoding':>13}{'per core':>10}"
             f"{'cores':>7}"]
    for r in est["populations"]:
        lines.append(f"{r['population']:<24}{r['neurons']:>10,}{r['synapses']:>12,}{r['max_fan_in']:>8}"
                     f"{r['encoding']:>13}{r['neurons_per_core']:>10,}{r['cores']:>7}")
    lines.append(f"{'total':<24}{est['neurons']:>10,}{est['synapses']:>12,}{est['max_fan_in']:>8}{'':>13}{'':>10}"
                 f"{est['cores']:>7}  ({est['chips']} Loihi 2 chip(s) of {_lim('cores_per_chip'):.0f} cores; "
                 "limits from Lava's Loihi 2 constants and the PilotNet mapping, see LIMITS)")
    for p in est.get("problems", []):
        lines.append(f"DOES NOT FIT: {p}")
    return "\n".join(lines)


def render_limits() -> str:
    """The limits table as Markdown (docs/deploy.md)."""
    lines = ["| limit | value | unit | kind | source |", "|---|---|---|---|---|"]
    for v in LIMITS.values():
        lines.append(f"| `{v.name}` | {v.value:,g} | {v.unit} | {v.kind} | {v.source} |")
    return "\n".join(lines)
