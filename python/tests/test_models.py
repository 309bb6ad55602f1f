"""Models: the zoo, model files, plain prediction."""

import numpy as np
import pytest

import ppml
from conftest import normalise


def test_zoo_lists_every_model_with_committed_weights():
    entries = {e.name: e for e in ppml.zoo()}
    assert {"mlp", "cnn", "lenet", "minionn", "chameleon", "mlp-sq", "lenet-sq"} <= set(entries)
    assert all(e.committed for e in entries.values())
    assert "LeNet-5" in entries["lenet"].description


def test_lenet_properties(lenet):
    assert lenet.name == "lenet"
    assert lenet.input_shape == (1, 28, 28)
    assert lenet.classes == 10
    assert lenet.param_count == 431080
    assert not lenet.is_polynomial
    assert lenet.layers[0] == "conv2d" and lenet.layers.count("max_pool2d") == 2
    assert lenet.normalization == pytest.approx((0.1307, 0.3081))
    assert "lenet" in lenet.summary() and "lenet" in repr(lenet)


def test_predict_accuracy_matches_the_readme_table(lenet, test_set):
    # README zoo table: lenet 99.33% on the 10,000 test images; 99.30% on the first 1000.
    logits = lenet.predict(test_set.images)
    assert logits.shape == (1000, 10) and logits.dtype == np.float32
    accuracy = float(np.mean(logits.argmax(axis=1) == test_set.labels))
    assert accuracy == pytest.approx(0.993, abs=1e-9)


def test_pixels_and_normalised_inputs_agree(lenet, test_set):
    pixels = test_set.images[:50]
    from_pixels = lenet.predict(pixels)
    from_inputs = lenet.predict(normalise(pixels))
    from_f64 = lenet.predict(normalise(pixels).astype(np.float64))
    np.testing.assert_allclose(from_pixels, from_inputs, rtol=0, atol=1e-4)
    np.testing.assert_allclose(from_f64, from_inputs, rtol=0, atol=1e-4)
    # One image without the batch dimension, and a non-contiguous view.
    np.testing.assert_allclose(lenet.predict(pixels[0]), from_pixels[:1], atol=1e-5)
    np.testing.assert_allclose(lenet.predict(test_set.images[:100:2]), lenet.predict(
        np.ascontiguousarray(test_set.images[:100:2])), atol=0)


def test_save_and_load_round_trip(lenet, tmp_path, test_set):
    written = lenet.save(tmp_path / "mine")
    assert str(written).endswith("mine.safetensors")
    again = ppml.load_model(tmp_path / "mine")  # the extension may be left out
    assert again.param_count == lenet.param_count
    x = test_set.images[:20]
    np.testing.assert_array_equal(again.predict(x), lenet.predict(x))
