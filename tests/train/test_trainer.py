import torch

from spikesmith import io
from spikesmith.evolve import build_conv_snn
from spikesmith.seeding import seeded_torch
from spikesmith.train import TrainConfig, evaluate, fit


def loaders(n=512, steps=6, batch=32):
    from spikesmith.data import direct, load_digits_split

    s = load_digits_split(seed=0)
    xtr, ytr = torch.as_tensor(s.x_train[:n]), torch.as_tensor(s.y_train[:n])
    xte, yte = torch.as_tensor(s.x_test[:128]), torch.as_tensor(s.y_test[:128])

    def train(epoch):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
        for i in range(0, n, batch):
            j = order[i:i + batch]
            yield torch.as_tensor(direct(xtr[j], steps)), ytr[j]

    def test():
        yield torch.as_tensor(direct(xte, steps)), yte

    return train, test


def model(seed=0):
    with seeded_torch(seed):
        return build_conv_snn({"c1": 4, "c2": 8, "hidden": 0, "tau_steps": 2.0, "v_th": 0.5},
                              input_shape=(1, 8, 8), num_classes=10)


def test_training_learns_with_real_gradients():
    train, test = loaders()
    m = model()
    before = evaluate(m, test())
    r = fit(m, train, test, TrainConfig(epochs=4, lr=1e-2, device="cpu"))
    assert r.test_accuracy > max(0.5, before + 0.3)
    assert r.history[-1]["loss"] < r.history[0]["loss"]


class Interrupted(Exception):
    pass


def test_resume_continues_from_checkpoint(tmp_path):
    train, test = loaders(n=128, steps=4)
    full = fit(model(), train, test, TrainConfig(epochs=3, device="cpu"), out_dir=tmp_path / "full")

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise Interrupted  # the run dies after its second checkpoint

    try:
        fit(model(), train, test, TrainConfig(epochs=3, device="cpu"), out_dir=tmp_path / "part",
            on_progress=stop_after_two)
    except Interrupted:
        pass
    assert io.load_checkpoint(tmp_path / "part" / "checkpoint.pt")["epoch"] == 2
    resumed = fit(model(seed=99), train, test, TrainConfig(epochs=3, device="cpu"), out_dir=tmp_path / "part",
                  resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[-1]["loss"] == full.history[-1]["loss"]
    assert resumed.test_accuracy == full.test_accuracy
    assert (tmp_path / "part" / "training.png").stat().st_size > 1000
