"""Training-free fitness from representational dissimilarity matrices (RDMs).

An untrained network's binary spike responses to a batch are compared sample by
sample: per spiking layer and time step, a ``(B, B)`` dissimilarity matrix is built
(normalised Hamming distance, or 1 - Pearson correlation), and the matrices are
averaged. The score is either label-free (mean off-diagonal dissimilarity: how well
the network separates inputs) or label-aware: the rank correlation of the RDM with the
class-target RDM (0 for same class and 1 for different), Spearman's rho (variant ``label``)
or Kendall's tau-b (variant ``label-kendall``). Silent or saturated networks
score :data:`WORST`; a silent layer (typically the untrained readout) is left out of the
average.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

WORST = -1.0  # no valid score is below this (Spearman, Kendall >= -1, dissimilarity >= 0)
#: score variant -> the rank correlation with the class-target RDM (None: label-free)
CORRELATIONS = {"label": "spearman", "label-kendall": "kendall", "free": None}
SILENT_RATE = 1e-3
SATURATED_RATE = 0.99


@dataclass(frozen=True, kw_only=True)
class Fitness:
    """Result of one training-free evaluation."""

    score: float
    degenerate: bool
    firing_rates: tuple[float, ...]
    spike_count: float  # total spikes per sample, summed over layers and time
    metric: str = "hamming"
    variant: str = "label"
    extra: dict = field(default_factory=dict)


def spike_rdm(spikes: torch.Tensor, *, metric: str = "hamming") -> torch.Tensor:
    """(B, B) dissimilarities of spikes shaped (T, B, *neurons), averaged over time.

    Hamming: fraction of neurons whose spike differs. Pearson: 1 - correlation of the
    two spike vectors (a constant vector correlates 0 with anything).
    """
    steps, batch = spikes.shape[:2]
    s = spikes.reshape(steps, batch, -1).float()
    n = s.shape[-1]
    if metric == "hamming":
        # |a - b| summed = a.1 + b.1 - 2 a.b for binary vectors
        counts = s.sum(-1)
        inner = s @ s.transpose(1, 2)
        d = (counts[:, :, None] + counts[:, None, :] - 2 * inner) / n
    elif metric == "pearson":
        c = s - s.mean(-1, keepdim=True)
        norm = c.norm(dim=-1, keepdim=True)
        c = torch.where(norm > 0, c / norm.clamp_min(1e-12), torch.zeros_like(c))
        d = 1.0 - c @ c.transpose(1, 2)
    else:
        raise ValueError(f"unknown RDM metric '{metric}' (expected 'hamming' or 'pearson')")
    return d.mean(0)


def _rank(x: torch.Tensor) -> torch.Tensor:
    """Average ranks of a 1-D tensor (ties share their mean rank)."""
    order = torch.argsort(x, stable=True)
    ranks = torch.empty_like(x, dtype=torch.float64)
    ranks[order] = torch.arange(len(x), dtype=torch.float64, device=x.device)
    # average ties
    uniq, inv = torch.unique(x, return_inverse=True)
    sums = torch.zeros(len(uniq), dtype=torch.float64, device=x.device).index_add_(0, inv, ranks)
    counts = torch.zeros(len(uniq), dtype=torch.float64, device=x.device).index_add_(
        0, inv, torch.ones_like(ranks)
    )
    return (sums / counts)[inv]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two 1-D tensors (0 when either is constant)."""
    ra, rb = _rank(a.double()), _rank(b.double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = ra.norm() * rb.norm()
    return float((ra @ rb) / denom) if denom > 0 else 0.0


def kendall_binary(values: torch.Tensor, target: torch.Tensor) -> float:
    """Kendall's tau-b of ``values`` against a 0/1 ``target`` (0 when either is constant), in O(n log n).

    With a binary target every concordant-minus-discordant pair is a (target 1, target 0) pair, so
    S = 2 U - n0 n1 with U the Mann-Whitney statistic from average ranks (a tie in ``values`` counts
    0 in S and 1/2 in U); tau-b = S / sqrt((P - ties in values) (P - ties in target)), P = n(n-1)/2.
    """
    v = values.double()
    t = target.bool()
    n = v.numel()
    n1 = int(t.sum())
    n0 = n - n1
    if n < 2 or n0 == 0 or n1 == 0:
        return 0.0
    ranks = _rank(v)
    u = float(ranks[t].sum()) + n1 - n1 * (n1 + 1) / 2  # ranks are 0-based
    s = 2.0 * u - n0 * n1
    pairs = n * (n - 1) / 2
    _, counts = torch.unique(v, return_counts=True)
    tied_v = float((counts.double() * (counts.double() - 1)).sum() / 2)
    tied_t = (n0 * (n0 - 1) + n1 * (n1 - 1)) / 2
    denom = ((pairs - tied_v) * (pairs - tied_t)) ** 0.5
    return s / denom if denom > 0 else 0.0


def rdm_score(rdm: torch.Tensor, labels: torch.Tensor | None = None, *, correlation: str = "spearman") -> float:
    """Score an RDM: its rank correlation (``"spearman"`` or ``"kendall"`` tau-b) with the class-target
    RDM if ``labels`` are given, else the mean off-diagonal dissimilarity."""
    b = rdm.shape[0]
    iu = torch.triu_indices(b, b, offset=1, device=rdm.device)
    values = rdm[iu[0], iu[1]]
    if labels is None:
        return float(values.mean())
    target = (labels[:, None] != labels[None, :]).double()[iu[0], iu[1]]
    if correlation == "spearman":
        return spearman(values, target)
    if correlation == "kendall":
        return kendall_binary(values, target)
    raise ValueError(f"unknown rank correlation '{correlation}' (expected 'spearman' or 'kendall')")


def fitness_from_spikes(
    spikes,
    labels: torch.Tensor | None = None,
    *,
    metric: str = "hamming",
    correlation: str = "spearman",
) -> Fitness:
    """Training-free fitness of recorded binary spikes: a sequence of per-layer tensors (T, B, ...).

    Every layer's RDM is averaged over time steps (:func:`spike_rdm`), then over the active
    layers; silent-everywhere or saturated-anywhere networks score :data:`WORST`. With ``labels``
    the score is the RDM's ``correlation`` ("spearman" or "kendall") with the class-target RDM.
    """
    spiking = list(spikes)
    batch = spiking[0].shape[1] if spiking else 1
    rates = tuple(float(o.float().mean()) for o in spiking)
    spike_count = float(sum(o.float().sum() for o in spiking) / batch)
    variant = "free" if labels is None else ("label-kendall" if correlation == "kendall" else "label")
    # silent everywhere or saturated anywhere: no usable representation. A single silent
    # layer (typically the untrained readout) only drops out of the average.
    if not spiking or max(rates) < SILENT_RATE or max(rates) > SATURATED_RATE:
        return Fitness(score=WORST, degenerate=True, firing_rates=rates, spike_count=spike_count,
                       metric=metric, variant=variant)
    active = [o for o, r in zip(spiking, rates) if r >= SILENT_RATE]
    rdm = torch.stack([spike_rdm(o, metric=metric) for o in active]).mean(0)
    score = rdm_score(rdm, labels, correlation=correlation)
    return Fitness(score=score, degenerate=False, firing_rates=rates, spike_count=spike_count,
                   metric=metric, variant=variant)


def mean_fitness(parts: list[Fitness]) -> Fitness:
    """One Fitness from several batches: mean score (WORST if any batch is degenerate), mean rates and counts."""
    if not parts:
        raise ValueError("mean_fitness needs at least one Fitness")
    degenerate = any(p.degenerate for p in parts)
    score = WORST if degenerate else float(np.mean([p.score for p in parts]))
    rates = tuple(float(v) for v in np.mean([p.firing_rates for p in parts], axis=0))
    return Fitness(score=score, degenerate=degenerate, firing_rates=rates,
                   spike_count=float(np.mean([p.spike_count for p in parts])),
                   metric=parts[0].metric, variant=parts[0].variant)


def network_fitness(
    model: torch.nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    metric: str = "hamming",
) -> Fitness:
    """Training-free fitness of ``model`` (a :class:`~spikesmith.nn.Network`) on one batch ``x`` (T, B, ...).

    One forward pass (``torch.inference_mode``: no autograd records) records every neuron layer's
    spikes; RDMs of those layers are averaged.
    """
    with torch.inference_mode():
        _, recorded = model(x, record=True)
    return fitness_from_spikes(list(recorded.values()), labels, metric=metric)


def _layer_rdms(s: torch.Tensor, metrics: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """(B, B) RDMs of one layer's binary spikes ``s`` (T, B, N), one Gram matrix shared by every metric.

    For binary vectors with counts c and inner products g: Hamming = (c_i + c_j - 2 g) / N, and the
    Pearson correlation is (g - c_i c_j / N) / sqrt((c_i - c_i^2/N)(c_j - c_j^2/N)) (0 for a constant vector).
    """
    n = s.shape[-1]
    counts = s.sum(-1)
    gram = s @ s.transpose(1, 2)
    out = {}
    if "hamming" in metrics:
        out["hamming"] = ((counts[:, :, None] + counts[:, None, :] - 2 * gram) / n).mean(0)
    if "pearson" in metrics:
        centred = gram - counts[:, :, None] * counts[:, None, :] / n
        norm = torch.sqrt(torch.clamp(counts - counts * counts / n, min=0.0))
        denom = norm[:, :, None] * norm[:, None, :]
        corr = torch.where(denom > 0, centred / denom.clamp_min(1e-12), torch.zeros_like(centred))
        out["pearson"] = (1.0 - corr).mean(0)
    return out


def fitness_variants(
    spikes,
    labels: torch.Tensor | None,
    pairs,
) -> dict[tuple[str, str], Fitness]:
    """Every requested (variant, metric) Fitness of recorded spikes from one set of RDMs.

    ``pairs`` holds (a :data:`CORRELATIONS` variant, "hamming" | "pearson"); each layer's Gram matrix
    is computed once for all of them (:func:`_layer_rdms`), so scoring six variants costs about one.
    The numbers equal :func:`fitness_from_spikes` for each pair (up to float rounding).
    """
    pairs = tuple(pairs)
    spiking = list(spikes)
    batch = spiking[0].shape[1] if spiking else 1
    rates = tuple(float(o.float().mean()) for o in spiking)
    spike_count = float(sum(o.float().sum() for o in spiking) / batch)
    if not spiking or max(rates) < SILENT_RATE or max(rates) > SATURATED_RATE:
        return {(v, m): Fitness(score=WORST, degenerate=True, firing_rates=rates, spike_count=spike_count,
                                metric=m, variant=v) for v, m in pairs}
    metrics = tuple(dict.fromkeys(m for _, m in pairs))
    for v, _ in pairs:
        if v not in CORRELATIONS:
            raise ValueError(f"unknown RDM score variant '{v}' (expected one of {', '.join(CORRELATIONS)})")
    for m in metrics:
        if m not in ("hamming", "pearson"):
            raise ValueError(f"unknown RDM metric '{m}' (expected 'hamming' or 'pearson')")
    per_layer = [_layer_rdms(o.reshape(o.shape[0], o.shape[1], -1).float(), metrics)
                 for o, r in zip(spiking, rates) if r >= SILENT_RATE]
    out = {}
    for m in metrics:
        rdm = torch.stack([d[m] for d in per_layer]).mean(0)
        for v, mm in pairs:
            if mm == m:
                corr = CORRELATIONS[v]
                if corr is not None and labels is None:
                    raise ValueError(f"the label-aware variant '{v}' needs labels")
                score = rdm_score(rdm, labels if corr is not None else None, correlation=corr or "spearman")
                out[(v, m)] = Fitness(score=score, degenerate=False, firing_rates=rates, spike_count=spike_count,
                                      metric=m, variant=v)
    return out


_PASS = (torch.nn.Flatten, torch.nn.Identity, torch.nn.AvgPool2d)


def synaptic_operations(model: torch.nn.Module, recorded: dict[str, torch.Tensor]) -> float:
    """Estimated synaptic operations per sample of a :class:`~spikesmith.nn.Network` from the spikes
    :meth:`~spikesmith.nn.Network.forward` recorded: for every weight layer fed by spikes (directly
    or through flatten, relays and average pooling), each spike times the non-zero weights it reaches
    (border effects ignored). Layers fed by analog values (the input) are MACs, not counted."""
    from spikesmith.nn.layers import Relay

    producers = {name: inputs for name, inputs in model.graph}
    total = 0.0
    for name, inputs in model.graph:
        layer = model.layers[name]
        weight = getattr(layer, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() not in (2, 4):
            continue
        for src in inputs:
            chain = []
            while src in producers and isinstance(model.layers[src], _PASS + (Relay,)):
                chain.append(model.layers[src])
                (src,) = producers[src]
            if src not in recorded:
                continue
            h = recorded[src].detach().float().sum(0)  # spikes per neuron per sample (B, ...)
            for op in reversed(chain):
                if isinstance(op, torch.nn.AvgPool2d):
                    h = op(h) * float(np.prod(torch.nn.modules.utils._pair(op.kernel_size)))  # counts, not means
                elif isinstance(op, torch.nn.Flatten):
                    h = h.flatten(1)
            if weight.dim() == 4:
                fan_out = (weight.detach() != 0).sum(dim=(0, 2, 3)).to(h.dtype)  # per input channel
                total += float((h.sum(dim=(2, 3)).mean(0) * fan_out).sum())
            else:
                fan_out = (weight.detach() != 0).sum(dim=0).to(h.dtype)  # per input feature
                total += float((h.reshape(h.shape[0], -1).mean(0) * fan_out).sum())
    return total
