"""Parameter report: per-layer dense vs encoded counts and the network's compression.

Compression = 1 - encoded / dense, where ``encoded`` counts every X, G once, every weight kept
dense, biases and BatchNorm affine parameters, and ``dense`` is the same architecture with dense
weights. On neuromorphic hardware the synapse memory still holds the materialised weights: the
saving is in what is trained, stored and shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from spikesmith.errors import InputError
from spikesmith.nn.gee import is_encoded


@dataclass(frozen=True, kw_only=True)
class LayerParams:
    """One row of the report: a weight layer, a BatchNorm, or the shared G."""

    name: str
    kind: str  # "conv2d", "linear", "batchnorm", "gene-interaction"
    shape: str
    dense: int
    encoded: int
    status: str  # "encoded", "dense (fallback)", "dense", "shared"

    def __post_init__(self) -> None:
        if self.dense < 0 or self.encoded < 0:
            raise InputError(f"LayerParams {self.name}: counts must be non-negative")


@dataclass(frozen=True, kw_only=True)
class ParamReport:
    """The per-layer parameter report of one architecture at one gene count."""

    arch: str
    genes: int
    layers: tuple[LayerParams, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise InputError(f"ParamReport {self.arch}: no layers")

    @property
    def dense_total(self) -> int:
        """Return the parameter count of the architecture with dense weights."""
        return sum(r.dense for r in self.layers)

    @property
    def encoded_total(self) -> int:
        """Return the parameter count of the encoded network (X, G once, dense leftovers, BN)."""
        return sum(r.encoded for r in self.layers)

    @property
    def compression(self) -> float:
        """Return 1 - encoded_total / dense_total (0.8 means 80% fewer parameters)."""
        return 1.0 - self.encoded_total / self.dense_total

    @property
    def encoded_layers(self) -> int:
        """Return how many weight layers are encoded."""
        return sum(r.status == "encoded" for r in self.layers)

    @property
    def fallback_layers(self) -> int:
        """Return how many weight layers stayed dense because encoding would not be smaller."""
        return sum(r.status == "dense (fallback)" for r in self.layers)

    def summary(self) -> dict:
        """Return the totals as a JSON-ready dict."""
        return {"arch": self.arch, "genes": self.genes, "dense_params": self.dense_total,
                "encoded_params": self.encoded_total, "compression": self.compression,
                "encoded_layers": self.encoded_layers, "fallback_layers": self.fallback_layers}

    def to_dict(self) -> dict:
        """Return the report with every row, JSON-ready."""
        return {**self.summary(), "layers": [r.__dict__.copy() for r in self.layers]}

    def render(self, *, per_layer: bool = True) -> str:
        """Return the report as a plain-text table (per-layer rows, then totals)."""
        lines = []
        if per_layer:
            w = max(len(r.name) for r in self.layers)
            lines.append(f"{'layer':<{w}}  {'kind':<16} {'shape':<22} {'dense':>10} {'encoded':>10}  status")
            for r in self.layers:
                lines.append(f"{r.name:<{w}}  {r.kind:<16} {r.shape:<22} {r.dense:>10,} {r.encoded:>10,}  {r.status}")
        lines.append(f"{self.arch} g={self.genes}: dense {self.dense_total:,} params, encoded "
                     f"{self.encoded_total:,} params, compression {100 * self.compression:.1f}% "
                     f"({self.encoded_layers} layers encoded, {self.fallback_layers} kept dense by fallback)")
        return "\n".join(lines)


def report_of(model: nn.Module, *, arch: str, genes: int) -> ParamReport:
    """Return the ParamReport of a built network (encoded or dense)."""
    rows: list[LayerParams] = []
    for name, m in model.named_modules():
        if is_encoded(m):
            kind = m.kind
            shape = tuple(m.weight.shape) if kind == "linear" else (m.out_channels, m.in_channels, *m.kernel_size)
            rows.append(LayerParams(name=name, kind=kind, shape=str(shape), dense=m.dense_parameters(),
                                    encoded=m.encoded_parameters(), status="encoded"))
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            n = sum(p.numel() for p in m.parameters(recurse=False))
            status = "dense (fallback)" if getattr(model, "gene", None) is not None else "dense"
            rows.append(LayerParams(name=name, kind="conv2d" if isinstance(m, nn.Conv2d) else "linear",
                                    shape=str(tuple(m.weight.shape)), dense=n, encoded=n, status=status))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = sum(p.numel() for p in m.parameters(recurse=False))
            rows.append(LayerParams(name=name, kind="batchnorm", shape=f"({m.num_features},)", dense=n,
                                    encoded=n, status="dense"))
    gene = getattr(model, "gene", None)
    if gene is not None:
        rows.append(LayerParams(name="gene", kind="gene-interaction", shape=str(tuple(gene.g.shape)), dense=0,
                                encoded=gene.g.numel(), status="shared"))
    return ParamReport(arch=arch, genes=genes, layers=tuple(rows))


def parameter_report(arch: str, genes: int) -> ParamReport:
    """Return the parameter report of ``arch`` encoded with ``genes`` genes against its dense form."""
    from spikesmith.nn.families.gee import build_network

    model = build_network(arch, genes=genes, encoded=True, seed=0)
    return report_of(model, arch=arch, genes=genes)


def compression_table(arch: str, genes_list: list[int] | tuple[int, ...]) -> str:
    """Return a text table of dense/encoded counts and compression of ``arch`` for each g."""
    if not genes_list:
        raise InputError("genes: expected at least one gene count")
    lines = [f"{'arch':<10} {'genes':>5} {'dense':>12} {'encoded':>12} {'compression':>11} {'encoded layers':>15}"]
    for g in genes_list:
        r = parameter_report(arch, int(g))
        lines.append(f"{arch:<10} {g:>5} {r.dense_total:>12,} {r.encoded_total:>12,} "
                     f"{100 * r.compression:>10.1f}% {r.encoded_layers:>7} of "
                     f"{r.encoded_layers + r.fallback_layers:<5}")
    return "\n".join(lines)
