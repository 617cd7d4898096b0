"""NIR export of a :class:`~spikesmith.evolve.nas.network.NasNet` (a non-sequential graph).

One ``nir.LIF`` node per population (relays: tau = dt, so they copy their input spike), one
``nir.Conv2d`` node per connection with the sign-constrained, masked weights materialised and
the destination's batch norm folded in (its scale into every forward conv, its shift as the
bias of the first forward conv), several conv nodes into one population as several edges (NIR
sums them), and each recurrent connection as a conv node on a cycle ``pop -> conv -> pop``,
which the targets run as a back edge with one step of delay. The readout is
``Flatten -> Affine -> LIF`` with the channel selection and average pooling composed into the
affine weight.
"""

from __future__ import annotations

import nir
import numpy as np
import torch

from spikesmith.compile.graph import META_DT, META_RESET, META_RESET_TIMING, META_VERSION
from spikesmith.evolve.nas.network import INPUT, READOUT, NasNet


def _lif(shape, tau: float, v_th: float) -> nir.LIF:
    return nir.LIF(tau=np.full(shape, tau), r=np.ones(shape), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, v_th), v_reset=np.zeros(shape))


def _conv(weight: np.ndarray, bias: np.ndarray, hw) -> nir.Conv2d:
    k = weight.shape[-1]
    return nir.Conv2d(input_shape=np.array(hw), weight=weight, bias=bias, stride=np.array([1, 1]),
                      padding=np.array([k // 2, k // 2]), dilation=np.array([1, 1]), groups=1)


def export_nas(model: NasNet, *, dt: float | None = None, name: str = "spikesmith.nas") -> nir.NIRGraph:
    """The NIR graph of ``model`` (its eval-mode computation: running batch-norm statistics)."""
    wiring = model.wiring
    dt = float(dt if dt is not None else model.dt)
    c_in, h, w = wiring.input_shape
    hw = (h, w)
    neuron = wiring.neuron
    nodes: dict[str, nir.NIRNode] = {INPUT: nir.Input(input_type={"input": np.array(wiring.input_shape)})}
    edges: list[tuple[str, str]] = []
    with torch.no_grad():
        for p in wiring.populations:
            shape = (p.channels, h, w)
            if p.kind == "relay":
                # tau = dt: v = input exactly; a copied spike (1) crosses threshold 0.5, silence does not
                nodes[p.name] = _lif(shape, dt, 0.5)
            else:
                nodes[p.name] = _lif(shape, neuron.tau_steps * dt, neuron.v_th)
            # channel blocks as numbers (sign, start, stop): HDF5 stores no mixed lists
            nodes[p.name].metadata = {"spikesmith.kind": p.kind,
                                      "spikesmith.blocks": np.array([b[1:] for b in p.blocks], dtype=np.int64)}
        for p in wiring.populations:
            if p.kind == "relay":
                (c,) = wiring.into(p.name, feedback=False)
                node = _conv(np.eye(p.channels).reshape(p.channels, p.channels, 1, 1), np.zeros(p.channels), hw)
                nodes[c.name] = node
                edges += [(c.src, c.name), (c.name, p.name)]
                continue
            a, b = model.norms[_key(p.name)].affine()
            a, b = a.double().cpu().numpy(), b.double().cpu().numpy()
            for i, c in enumerate(wiring.into(p.name, feedback=False)):
                wt = model.conv(c).weight().double().cpu().numpy() * a[:, None, None, None]
                nodes[c.name] = _conv(wt, b.copy() if i == 0 else np.zeros(p.channels), hw)
                nodes[c.name].metadata = {"spikesmith.mask_nonzero": int(wiring.mask(c).sum())}
                edges += [(c.src, c.name), (c.name, p.name)]
            for c in wiring.into(p.name, feedback=True):
                wt = model.conv(c).weight().double().cpu().numpy()
                nodes[c.name] = _conv(wt, np.zeros(p.channels), hw)
                nodes[c.name].metadata = {"spikesmith.feedback": True}
                edges += [(c.src, c.name), (c.name, p.name)]
        src = wiring.population(wiring.readout_src)
        n_src = src.channels * h * w
        eye = torch.eye(n_src, dtype=torch.float64).reshape(n_src, src.channels, h, w)
        lin = model.readout
        weight = lin.weight.detach().double()
        bias = lin.bias.detach().double() if lin.bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
        a, bb = wiring.readout_block
        hp = eye[:, a:bb]
        if model.pool > 1:
            hp = torch.nn.functional.avg_pool2d(hp, model.pool)
        dense = (hp.flatten(1) @ weight.T).T.cpu().numpy()  # (classes, n_src)
    nodes["readout.flatten"] = nir.Flatten(input_type={"input": np.array((src.channels, h, w))}, start_dim=0, end_dim=-1)
    nodes["readout.affine"] = nir.Affine(weight=dense, bias=bias.cpu().numpy())
    nodes[READOUT] = _lif((wiring.num_classes,), neuron.tau_steps * dt, neuron.v_th)
    nodes["output"] = nir.Output(output_type={"output": np.array([wiring.num_classes])})
    edges += [(src.name, "readout.flatten"), ("readout.flatten", "readout.affine"), ("readout.affine", READOUT),
              (READOUT, "output")]
    metadata = {META_DT: dt, META_RESET: "value", META_RESET_TIMING: "immediate", META_VERSION: 1, "spikesmith.name": name}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _key(name: str) -> str:
    from spikesmith.evolve.nas.network import _key as k

    return k(name)
