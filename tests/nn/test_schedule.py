"""Every schedule of the time loop computes what the reference schedule computes: the same spikes in
every layer and the same gradients (relative to their norm), on networks driven to spike."""

from __future__ import annotations

import pytest
import torch

from spikesmith.errors import InputError
from spikesmith.nn import REFERENCE, NeuronParams, Neurons, Schedule, auto_schedule, build
from spikesmith.nn.families.conv import ConvSpec
from spikesmith.nn.families.gee import GeeSpec

SCHEDULES = {
    "all steps, fused": Schedule(),
    "one step per conv call": Schedule(conv_steps=1),
    "3-step conv chunks": Schedule(conv_steps=3),
    "byte budget": Schedule(conv_bytes=20_000),
    "channels-last": Schedule(conv_steps=2, channels_last=True),
    "reference neurons, chunked convs": Schedule(conv_steps=1, fused=False),
}

NETS = {
    "conv": lambda: ConvSpec(c1=4, c2=6, hidden=8, tau_steps=2.0, v_th=0.5, input_shape=(2, 8, 8), num_classes=5),
    "gee-digits": lambda: GeeSpec(arch="digits", genes=8, width=0.5, input_shape=(1, 8, 8)),
    "gee-resnet18": lambda: GeeSpec(arch="resnet18", genes=8, encoded=False, width=1 / 16),
}


def driven(model):
    """Biases raised so every layer spikes in training mode (batch-norm shifts and readout biases)."""
    for m in model.modules():
        bias = getattr(m, "bias", None)
        if isinstance(bias, torch.nn.Parameter):
            with torch.no_grad():
                bias.add_(0.5 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) else 0.7)
    return model.train()


def outputs_and_grads(model, x, weights, schedule):
    model.zero_grad(set_to_none=True)
    out, recorded = model(x, record=True, schedule=schedule)
    (out * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), {k: v.detach() for k, v in recorded.items()}, grads


@pytest.mark.parametrize("net,dtype", [(n, torch.float64) for n in sorted(NETS)] + [("conv", torch.float32)])
def test_every_schedule_matches_the_reference(net, dtype):
    torch.manual_seed(0)
    model = driven(build(NETS[net](), seed=3)).to(dtype)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(6, 4, *model.input_shape, generator=g) < 0.4).to(dtype)
    with torch.no_grad():
        shape = model(x, schedule=REFERENCE).shape
    weights = torch.randn(shape, generator=g, dtype=dtype)
    out_ref, rec_ref, grads_ref = outputs_and_grads(model, x, weights, REFERENCE)
    for name, spikes in rec_ref.items():
        assert float(spikes.mean()) > 0, f"layer {name} is silent: the comparison would be trivial"
    assert grads_ref and all(float(v.norm()) > 0 for v in grads_ref.values())
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    for label, schedule in {**SCHEDULES, "auto": auto_schedule(x)}.items():
        out, rec, grads = outputs_and_grads(model, x, weights, schedule)
        assert torch.equal(out, out_ref), label
        for name in rec_ref:
            assert torch.equal(rec[name], rec_ref[name]), f"{label}: layer {name}"
        assert grads.keys() == grads_ref.keys(), label
        for name, ref in grads_ref.items():
            err = float((grads[name] - ref).norm() / ref.norm())
            assert err <= tol, f"{label}: gradient of {name} off by {err:.2e} of its norm"


@pytest.mark.parametrize("v_leak,v_reset", [(0.0, 0.0), (0.2, -0.3)])
def test_fused_lif_is_norses_cell(v_leak, v_reset):
    g = torch.Generator().manual_seed(2)
    neurons = Neurons(NeuronParams(tau_steps=3.0, v_th=0.5, v_reset=v_reset, v_leak=v_leak).cell())
    drive = (torch.randn(12, 5, 40, generator=g) * 0.8 + 0.3).requires_grad_()
    upstream = torch.randn(12, 5, 40, generator=g)
    z_ref = neurons.run(drive, fused=False)
    (g_ref,) = torch.autograd.grad(z_ref, drive, upstream)
    z = neurons.run(drive, fused=True)
    (g_fused,) = torch.autograd.grad(z, drive, upstream)
    assert 0.05 < float(z_ref.detach().mean()) < 0.95
    assert torch.equal(z, z_ref)
    assert float((g_fused - g_ref).norm() / g_ref.norm()) < 1e-6
    with torch.no_grad():  # inference keeps no sequence of potentials and gives the same spikes
        assert torch.equal(neurons.run(drive, fused=True), z_ref)


def test_neurons_without_a_fused_update_say_so():
    recurrent = Neurons(NeuronParams().cell(), recurrent=torch.nn.Linear(3, 3))
    assert not recurrent.fusable
    with pytest.raises(InputError, match="recurrent"):
        recurrent.run(torch.zeros(2, 1, 3), fused=True)
    assert recurrent.run(torch.zeros(2, 1, 3)).shape == (2, 1, 3)  # the default steps Norse's cell


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_schedule_rejects_bad_chunks(bad):
    with pytest.raises(InputError, match="conv_steps"):
        Schedule(conv_steps=bad)


def test_schedule_rejects_bad_byte_budgets():
    with pytest.raises(InputError, match="conv_bytes"):
        Schedule(conv_bytes=0)


def test_auto_schedule_cuts_large_cpu_convolutions_only(monkeypatch):
    from spikesmith.nn import network

    assert auto_schedule(torch.zeros(8, 32, 2, 34, 34)).conv_bytes == network.CPU_CONV_BYTES
    calls = []
    conv = torch.nn.Conv2d(2, 32, 3, padding=1)
    monkeypatch.setattr(conv, "forward", lambda c, f=conv.forward: calls.append(c.shape[0]) or f(c))
    plan = auto_schedule(torch.zeros(1))
    network._conv(conv, torch.zeros(8, 32, 2, 34, 34), plan)  # 157 kB per sample: one step (32) per call
    assert calls == [32] * 8
    calls.clear()
    network._conv(conv, torch.zeros(8, 32, 2, 8, 8), plan)  # 8 kB per sample: all 256 samples at once
    assert calls == [256]


@pytest.mark.slow
def test_compiled_schedule_matches_the_reference():
    """torch.compile of the fused update (opt-in; compiles for a minute on a small CPU)."""
    model = driven(build(NETS["conv"](), seed=3))
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(6, 4, *model.input_shape, generator=g) < 0.4).float()
    weights = torch.randn(6, 4, 5, generator=g)
    out_ref, rec_ref, grads_ref = outputs_and_grads(model, x, weights, REFERENCE)
    out, rec, grads = outputs_and_grads(model, x, weights, Schedule(conv_steps=2, compiled=True))
    assert all(float(s.mean()) > 0 for s in rec_ref.values())
    assert torch.equal(out, out_ref) and all(torch.equal(rec[k], rec_ref[k]) for k in rec_ref)
    for name, ref in grads_ref.items():
        assert float((grads[name] - ref).norm() / ref.norm()) <= 2e-4, name
