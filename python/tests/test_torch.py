"""The PyTorch user's path: a model trained and exported by torch (scripts/export-torch-mnist.py,
committed with its output), and `from_torch` itself where torch is installed."""

import os

import numpy as np
import pytest

import ppml

DATA = os.path.join(os.path.dirname(__file__), "data")


def test_committed_torch_export(test_set):
    ref = np.load(os.path.join(DATA, "torch_mnist.ref.npz"))
    model = ppml.import_onnx(os.path.join(DATA, "torch_mnist.onnx"), name="torch_mnist")
    n = ref["logits"].shape[0]
    x = test_set.images[:n]
    # ppml's plain engine gives torch's own logits.
    np.testing.assert_allclose(model.predict(x), ref["logits"], rtol=1e-4, atol=1e-4)
    assert float(ref["accuracy"]) > 0.95  # one epoch, as the script printed
    # And so does private inference, prediction for prediction.
    report = ppml.evaluate(model, "mpc3", x, test_set.labels[:n], batch=100)
    assert report.agreement == 1.0
    assert report.accuracy == pytest.approx(np.mean(ref["logits"].argmax(1) == test_set.labels[:n]))


def test_from_torch(test_set):
    """A small nn.Sequential trained for one epoch (over 6000 training images), through
    from_torch, then under mpc3."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 5, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(4 * 12 * 12, 10),
    )

    def inputs(pixels):
        return ((torch.from_numpy(pixels.astype(np.float32)) / 255 - 0.1307) / 0.3081).unsqueeze(1)

    train = ppml.datasets.mnist("train", limit=6000)
    x_train, y_train = inputs(train.images), torch.from_numpy(train.labels.astype(np.int64))
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    for start in range(0, 6000, 50):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(x_train[start:start + 50]),
                                                 y_train[start:start + 50])
        loss.backward()
        opt.step()

    model = ppml.from_torch(module, torch.zeros(1, 1, 28, 28), name="trained")
    assert module.training  # from_torch puts the module back in the mode it had
    assert model.name == "trained" and model.input_shape == (1, 28, 28)
    x, y = test_set.images[:300], test_set.labels[:300]
    module.eval()
    with torch.no_grad():
        expected = module(inputs(x)).numpy()
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-4)
    report = ppml.evaluate(model, "mpc3", x, y, batch=100)
    assert report.accuracy > 0.85 and report.agreement >= 0.99


def test_from_torch_without_torch_says_so(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ImportError, match="needs PyTorch"):
        ppml.from_torch(object(), None)
