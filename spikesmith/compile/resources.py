"""Loihi 2 resource estimate of a deployment plan.

Per-chip figures from Intel's Loihi 2 product brief (2021): 128 neuromorphic cores, up to
1 million neurons and 120 million synapses per chip. spikesmith divides them evenly per
core (8192 neurons and 937,500 synapses per core): an estimate, since the real limit depends
on how synaptic memory is encoded (dense vs sparse, weight precision) and on axon
routing tables. A population is split over as many cores as its neurons or its incoming
synapses need; populations do not share cores.
"""

from __future__ import annotations

import math

import numpy as np

from spikesmith.compile.plan import Plan

CORES_PER_CHIP = 128
NEURONS_PER_CORE = 8192  # 128 x 8192 = 1,048,576: the brief's "1 million neurons"
SYNAPSES_PER_CORE = 120_000_000 // 128
SOURCE = "Intel Loihi 2 product brief (2021): 128 cores, 1M neurons, 120M synapses per chip; evenly divided per core"


def estimate(plan: Plan) -> dict:
    """Neurons, synapses, fan-in and cores per population and in total."""
    rows = []
    for pop in plan.neurons:
        name = pop.name
        syn = fan_in = 0
        for c in plan.incoming(name):
            # a convolution shares its kernel, but every connection it makes is counted
            nonzero = np.count_nonzero(c.weight, axis=1) if c.conv is None else c.conv.fan_in(c.weight)
            syn += int(nonzero.sum())
            fan_in += int(nonzero.max(initial=0))
        cores = max(1, math.ceil(pop.size / NEURONS_PER_CORE), math.ceil(syn / SYNAPSES_PER_CORE))
        rows.append({"population": name, "neurons": pop.size, "synapses": syn, "max_fan_in": fan_in, "cores": cores})
    total_cores = sum(r["cores"] for r in rows)
    return {
        "populations": rows,
        "neurons": sum(r["neurons"] for r in rows),
        "synapses": sum(r["synapses"] for r in rows),
        "max_fan_in": max((r["max_fan_in"] for r in rows), default=0),
        "cores": total_cores,
        "chips": math.ceil(total_cores / CORES_PER_CHIP),
        "limits": {"neurons_per_core": NEURONS_PER_CORE, "synapses_per_core": SYNAPSES_PER_CORE, "cores_per_chip": CORES_PER_CHIP,
                   "source": SOURCE, "estimate": True},
    }


def render(est: dict) -> str:
    """The estimate as a short text table."""
    lines = [f"{'population':<24}{'neurons':>10}{'synapses':>12}{'fan-in':>8}{'cores':>7}"]
    for r in est["populations"]:
        lines.append(f"{r['population']:<24}{r['neurons']:>10,}{r['synapses']:>12,}{r['max_fan_in']:>8}{r['cores']:>7}")
    lines.append(f"{'total':<24}{est['neurons']:>10,}{est['synapses']:>12,}{est['max_fan_in']:>8}{est['cores']:>7}"
                 f"  ({est['chips']} Loihi 2 chip(s); limits per core are estimates)")
    return "\n".join(lines)
