"""Bad input gives the right exception, with the core's message, and nothing crashes."""

import gzip

import numpy as np
import pytest

import ppml
from conftest import normalise


@pytest.fixture(scope="module")
def plain(lenet):
    b = ppml.backend("plain")
    b.setup(lenet)
    return b


def test_hierarchy():
    assert issubclass(ppml.InputError, ppml.Error) and issubclass(ppml.InputError, ValueError)
    assert issubclass(ppml.FileError, OSError)
    assert issubclass(ppml.PeerError, ppml.BackendError)
    assert issubclass(ppml.PeerError, ConnectionError)
    assert issubclass(ppml.ProtocolError, ppml.BackendError)


@pytest.mark.parametrize(
    "shape",
    [(5, 28, 27), (5, 2, 28, 28), (28,), (5, 1, 1, 28, 28), (0, 28, 28)],
)
def test_wrong_shape(lenet, plain, shape):
    x = np.zeros(shape, dtype=np.uint8)
    with pytest.raises(ppml.InputError, match="shape|empty"):
        lenet.predict(x)
    with pytest.raises(ppml.InputError, match="shape|empty"):
        plain.infer(x)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.complex64, np.bool_])
def test_wrong_dtype(lenet, plain, dtype):
    x = np.zeros((2, 28, 28), dtype=dtype)
    with pytest.raises(ppml.InputError, match="uint8"):
        lenet.predict(x)
    with pytest.raises(ppml.InputError, match="uint8"):
        plain.infer(x)


def test_not_an_array(lenet):
    with pytest.raises(ppml.InputError, match="list"):
        lenet.predict([[0] * 28] * 28)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs(lenet, plain, test_set, bad):
    x = normalise(test_set.images[:4])
    x[2, 0, 3, 4] = bad
    with pytest.raises(ppml.InputError, match="NaN or infinite"):
        lenet.predict(x)
    with pytest.raises(ppml.InputError, match="NaN or infinite"):
        plain.infer(x)
    # The backend still works afterwards.
    logits, _ = plain.infer(test_set.images[:4])
    assert logits.shape == (4, 10)


def test_missing_files(tmp_path):
    with pytest.raises(ppml.FileError, match="no-such.onnx"):
        ppml.import_onnx(tmp_path / "no-such.onnx")
    with pytest.raises(ppml.Error, match="no-such"):
        ppml.load_model(tmp_path / "no-such.safetensors")
    with pytest.raises(ppml.FileError):
        ppml.datasets.mnist(path=tmp_path)
    with pytest.raises(ppml.FileError):
        ppml.datasets.load_idx(tmp_path / "a", tmp_path / "b")
    with pytest.raises(ppml.FileError):
        ppml.backend("mpc3", parties=tmp_path / "parties.toml")


def test_unknown_names():
    with pytest.raises(ppml.InputError, match="unknown backend `nope`.*plain"):
        ppml.backend("nope")
    with pytest.raises(ppml.ModelError, match="unknown model `nope`"):
        ppml.load_model("nope")
    with pytest.raises(ppml.InputError, match="split"):
        ppml.datasets.mnist("validation")


def test_malformed_files(tmp_path, lenet):
    bad_model = tmp_path / "bad.safetensors"
    bad_model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(ppml.ModelError, match="bad.safetensors"):
        ppml.load_model(bad_model)
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(b"not a protobuf at all \xff\xff")
    with pytest.raises(ppml.ModelError, match="ONNX"):
        ppml.import_onnx(bad_onnx)
    images, labels = tmp_path / "images.gz", tmp_path / "labels"
    with gzip.open(images, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x01")  # truncated header
    labels.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(ppml.DataError, match="IDX"):
        ppml.datasets.load_idx(images, labels)


def test_backend_options():
    with pytest.raises(ppml.InputError, match="allow-simulated|allow_simulated"):
        ppml.backend("tee")
    with pytest.raises(ppml.InputError, match="measurement"):
        ppml.backend("tee", enclave="127.0.0.1:1", measurement="00ff")
    with pytest.raises(ppml.InputError, match="measurement"):
        ppml.backend("tee", enclave="127.0.0.1:1")
    with pytest.raises(ppml.InputError, match="comparison"):
        ppml.backend("mpc3", comparison="magic")
    with pytest.raises(TypeError):
        ppml.backend("mpc3", no_such_option=1)


def test_backend_refuses_model_it_cannot_run(lenet, test_set):
    he = ppml.backend("he")
    with pytest.raises(ppml.ModelError, match="polynomial"):
        he.setup(lenet)


def test_infer_before_setup():
    with pytest.raises(ppml.BackendError, match="before setup"):
        ppml.backend("mpc3").infer(np.zeros((1, 28, 28), np.uint8))


def test_tee_unreachable_enclave_is_a_peer_error():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = ppml.backend("tee", enclave=f"127.0.0.1:{port}", measurement="00" * 32)
    with pytest.raises(ppml.PeerError):
        b.setup(ppml.load_model("mlp"))


def test_evaluate_input_checks(lenet, test_set):
    x, y = test_set.images[:10], test_set.labels[:10]
    with pytest.raises(ppml.InputError, match="labels"):
        ppml.evaluate(lenet, "plain", x, y[:9])
    with pytest.raises(ppml.InputError, match="uint8"):
        ppml.evaluate(lenet, "plain", normalise(x), y)
    with pytest.raises(ppml.InputError, match="integers"):
        ppml.evaluate(lenet, "plain", x, y.astype(np.float32))
    with pytest.raises(ppml.InputError, match="batch"):
        ppml.evaluate(lenet, "plain", x, y, batch=0)
    with pytest.raises(ppml.InputError, match="shape"):
        ppml.evaluate(lenet, "plain", x[:, :20, :20], y)


def test_progress_callback_error_is_raised(lenet, test_set):
    seen = []

    def boom(done, total):
        seen.append((done, total))
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        ppml.evaluate(lenet, "plain", test_set.images[:30], test_set.labels[:30], batch=10,
                      progress=boom)
    assert seen == [(10, 30)]  # called once, not again after it raised
