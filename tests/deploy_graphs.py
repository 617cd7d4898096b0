"""Graphs and checks shared by the deployment tests: a demo-shaped conv net, a conv net with pooling,
residual blocks (identity and 1x1-conv shortcuts), a recurrent net, and the bit-exactness check
of the fixed-point engine against Lava's bit-accurate models."""

from __future__ import annotations

import nir
import numpy as np


def lif(shape, tau: float = 2e-3, threshold: float = 0.5) -> nir.LIF:
    shape = tuple(np.atleast_1d(shape))
    return nir.LIF(tau=np.full(shape, tau), r=np.ones(shape), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, threshold), v_reset=np.zeros(shape))


def conv(rng, c_in: int, c_out: int, hw: int, k: int = 3, stride: int = 1, padding: int = 1, scale: float = 1.0,
         bias: bool = True) -> nir.Conv2d:
    w = rng.normal(0, scale / np.sqrt(c_in * k * k), (c_out, c_in, k, k))
    return nir.Conv2d(input_shape=(hw, hw), weight=w, stride=stride, padding=padding, dilation=1, groups=1,
                      bias=rng.normal(0, 0.05, c_out) if bias else np.zeros(c_out))


def _graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def demo_graph(seed: int = 0) -> nir.NIRGraph:
    """The shape of the demo's exported model: (1, 8, 8) -> conv 12 -> LIF -> conv 32 stride 2 -> LIF
    -> flatten -> affine 10 -> LIF (batch norm folded into the convolutions' weights and biases)."""
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
             "0_conv2d": conv(rng, 1, 12, 8, scale=3.0), "1_lifboxcell": lif((12, 8, 8)),
             "2_conv2d": conv(rng, 12, 32, 8, stride=2, scale=4.0), "3_lifboxcell": lif((32, 4, 4)),
             "4_flatten": nir.Flatten(input_type={"input": np.array([32, 4, 4])}, start_dim=0),
             "5_linear": nir.Affine(weight=rng.normal(0, 4.0 / np.sqrt(512), (10, 512)), bias=rng.normal(0, 0.05, 10)),
             "6_lifboxcell": lif(10), "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    return _graph(nodes, list(zip(names[:-1], names[1:])))


def pooled_conv_graph(seed: int = 0, hw: int = 12, channels: tuple[int, int] = (6, 8)) -> nir.NIRGraph:
    """(2, hw, hw) -> conv -> LIF -> AvgPool 2 -> conv -> LIF -> SumPool 2 -> flatten -> affine -> LIF."""
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    q = hw // 4
    nodes = {"in": nir.Input(input_type={"input": np.array([2, hw, hw])}),
             "c1": conv(rng, 2, c1, hw, scale=3.0), "l1": lif((c1, hw, hw)),
             "p1": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "c2": conv(rng, c1, c2, hw // 2, scale=5.0), "l2": lif((c2, hw // 2, hw // 2)),
             "p2": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "fl": nir.Flatten(input_type={"input": np.array([c2, q, q])}, start_dim=0),
             "fc": nir.Affine(weight=rng.normal(0, 1.5 / np.sqrt(c2 * q * q), (5, c2 * q * q)), bias=np.zeros(5)),
             "l3": lif(5), "out": nir.Output(output_type={"output": np.array([5])})}
    names = list(nodes)
    return _graph(nodes, list(zip(names[:-1], names[1:])))


def residual_graph(shortcut: str = "identity", seed: int = 0, channels: int = 6, hw: int = 8) -> nir.NIRGraph:
    """A residual block: in -> conv -> LIF a -> conv -> LIF b -> conv -> LIF c, and a -> c directly
    (``shortcut`` 'identity': an edge without a weight node) or through a 1x1 conv ('conv1x1'); NIR sums
    the edges into c. Read out through flatten -> affine -> LIF."""
    rng = np.random.default_rng(seed)
    c = channels
    nodes = {"in": nir.Input(input_type={"input": np.array([3, hw, hw])}),
             "conv0": conv(rng, 3, c, hw, scale=3.0), "a": lif((c, hw, hw)),
             "conv1": conv(rng, c, c, hw, scale=3.0), "b": lif((c, hw, hw)),
             "conv2": conv(rng, c, c, hw, scale=2.0), "c": lif((c, hw, hw)),
             "fl": nir.Flatten(input_type={"input": np.array([c, hw, hw])}, start_dim=0),
             "fc": nir.Affine(weight=rng.normal(0, 2.0 / np.sqrt(c * hw * hw), (4, c * hw * hw)), bias=np.zeros(4)),
             "o": lif(4), "out": nir.Output(output_type={"output": np.array([4])})}
    edges = [("in", "conv0"), ("conv0", "a"), ("a", "conv1"), ("conv1", "b"), ("b", "conv2"), ("conv2", "c"),
             ("c", "fl"), ("fl", "fc"), ("fc", "o"), ("o", "out")]
    if shortcut == "identity":
        edges.append(("a", "c"))
    else:
        nodes["short"] = conv(rng, c, c, hw, k=1, padding=0, scale=2.0, bias=False)
        edges += [("a", "short"), ("short", "c")]
    return _graph(nodes, edges)


def recurrent_graph(seed: int = 0, n: int = 12) -> nir.NIRGraph:
    """in (5) -> affine -> CubaLIF with a recurrent linear -> affine -> LIF."""
    rng = np.random.default_rng(seed)
    nodes = {"in": nir.Input(input_type={"input": np.array([5])}),
             "fc": nir.Affine(weight=rng.normal(0, 1.5, (n, 5)), bias=rng.normal(0, 0.1, n)),
             "rnn": nir.CubaLIF(tau_syn=np.full(n, 3e-3), tau_mem=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n),
                                v_threshold=np.full(n, 0.3), v_reset=np.zeros(n), w_in=np.ones(n)),
             "rec": nir.Linear(weight=rng.normal(0, 0.5, (n, n))),
             "ro": nir.Affine(weight=rng.normal(0, 1.0, (3, n)), bias=np.zeros(3)),
             "o": lif(3, threshold=0.3), "out": nir.Output(output_type={"output": np.array([3])})}
    edges = [("in", "fc"), ("fc", "rnn"), ("rnn", "rec"), ("rec", "rnn"), ("rnn", "ro"), ("ro", "o"), ("o", "out")]
    return _graph(nodes, edges)


def assert_fixed_identical(g, x, dt: float = 1e-3, reset=None, batch_size=None, plan=None):
    """The fixed-point engine and Lava's bit-accurate models give the same spikes, outputs, u and v, bit for bit.

    Returns (engine trace, Lava trace)."""
    from spikesmith.compile.graph import flatten
    from spikesmith.compile.plan import build_plan
    from spikesmith.targets import loihi
    from spikesmith.targets.lava import simulate as lava

    flat = flatten(g)
    qplan = plan or loihi.prepare(build_plan(flat, dt, reset), x)
    en = loihi.simulate(flat, x, dt=dt, plan=qplan, record_state=True)
    lf = lava(flat, x, dt=dt, fixed_point=True, plan=qplan, record_state=True, batch_size=batch_size)
    assert set(en.states) == set(lf.states) == set(qplan.populations)
    for name in qplan.populations:
        for k in ("u", "v"):
            np.testing.assert_array_equal(lf.states[name][k], en.states[name][k], err_msg=f"{name}.{k}")
        np.testing.assert_array_equal(lf.activity[name], en.activity[name], err_msg=name)
    np.testing.assert_array_equal(lf.output, en.output)
    return en, lf


def _pool() -> nir.AvgPool2d:
    return nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))


def vgg_graph(seed: int = 0, hw: int = 32, width: int = 8) -> nir.NIRGraph:
    """A reduced-width VGG on (3, hw, hw): conv -> LIF -> conv -> LIF -> avgpool -> conv -> LIF -> avgpool
    -> conv -> LIF -> avgpool -> flatten -> linear -> LIF (width, width, 2 width, 4 width channels)."""
    rng = np.random.default_rng(seed)
    c1, c2, c3 = width, 2 * width, 4 * width
    q = hw // 8
    nodes = {"in": nir.Input(input_type={"input": np.array([3, hw, hw])}),
             "k1": conv(rng, 3, c1, hw, scale=4.0), "n1": lif((c1, hw, hw)),
             "k2": conv(rng, c1, c1, hw, scale=6.0), "n2": lif((c1, hw, hw)), "p2": _pool(),
             "k3": conv(rng, c1, c2, hw // 2, scale=8.0), "n3": lif((c2, hw // 2, hw // 2)), "p3": _pool(),
             "k4": conv(rng, c2, c3, hw // 4, scale=8.0), "n4": lif((c3, hw // 4, hw // 4)), "p4": _pool(),
             "fl": nir.Flatten(input_type={"input": np.array([c3, q, q])}, start_dim=0),
             "fc": nir.Linear(weight=rng.normal(0, 6.0 / np.sqrt(c3 * q * q), (10, c3 * q * q))), "n5": lif(10),
             "out": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    return _graph(nodes, list(zip(names[:-1], names[1:])))


def resnet_graph(seed: int = 0, hw: int = 32, width: int = 16) -> nir.NIRGraph:
    """A reduced-width CIFAR ResNet stage on (3, hw, hw): stem conv -> LIF s; a basic block with identity
    shortcut (s -> conv -> LIF -> conv -> LIF b1, plus s -> b1); a downsampling block (b1 -> conv stride 2
    -> LIF -> conv -> LIF b2, plus b1 -> 1x1 conv stride 2 -> b2); avgpool -> flatten -> linear -> LIF."""
    rng = np.random.default_rng(seed)
    c, h2 = width, hw // 2
    q = h2 // 2
    nodes = {"in": nir.Input(input_type={"input": np.array([3, hw, hw])}),
             "stem": conv(rng, 3, c, hw, scale=4.0), "s": lif((c, hw, hw)),
             "a1": conv(rng, c, c, hw, scale=5.0), "m1": lif((c, hw, hw)),
             "a2": conv(rng, c, c, hw, scale=3.0), "b1": lif((c, hw, hw)),
             "d1": conv(rng, c, 2 * c, hw, stride=2, scale=6.0), "m2": lif((2 * c, h2, h2)),
             "d2": conv(rng, 2 * c, 2 * c, h2, scale=3.0), "b2": lif((2 * c, h2, h2)),
             "short": conv(rng, c, 2 * c, hw, k=1, stride=2, padding=0, scale=3.0, bias=False),
             "pool": _pool(), "fl": nir.Flatten(input_type={"input": np.array([2 * c, q, q])}, start_dim=0),
             "fc": nir.Linear(weight=rng.normal(0, 6.0 / np.sqrt(2 * c * q * q), (10, 2 * c * q * q))), "o": lif(10),
             "out": nir.Output(output_type={"output": np.array([10])})}
    edges = [("in", "stem"), ("stem", "s"), ("s", "a1"), ("a1", "m1"), ("m1", "a2"), ("a2", "b1"), ("s", "b1"),
             ("b1", "d1"), ("d1", "m2"), ("m2", "d2"), ("d2", "b2"), ("b1", "short"), ("short", "b2"),
             ("b2", "pool"), ("pool", "fl"), ("fl", "fc"), ("fc", "o"), ("o", "out")]
    return _graph(nodes, edges)
