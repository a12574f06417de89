"""SmoothGrad: NumPy references of the formula, the Gaussian expectation,
the contract, bad input."""

import keras
import numpy as np
import pytest
import scipy.stats
from conftest import random_images, small_cnn

from keras_edda import explainers


def relu_unit_model(weights, bias):
    """logits = [relu(w . x + b), 0]: the gradient of class 0 is w 1[w . x + b > 0]."""
    shape = weights.shape
    model = keras.Sequential([
        keras.Input(shape), keras.layers.Flatten(),
        keras.layers.Dense(1, activation="relu", name="unit"),
        keras.layers.Dense(2, use_bias=False, name="head")])
    model.get_layer("unit").set_weights([weights.reshape(-1, 1), np.array([bias], "float32")])
    model.get_layer("head").set_weights([np.array([[1.0, 0.0]], "float32")])
    return model


def test_formula_against_numpy_on_the_same_noise():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 4, 2)).astype("float32")
    model = relu_unit_model(weights, 0.1)
    images = random_images(3, (4, 4, 2), seed=2) - 0.5
    explainer = explainers.SmoothGrad(model, samples=50, sigma=0.3, batch_size=32)
    maps = explainer(images, targets=0).numpy()

    noise = explainer.noise((4, 4, 2)).numpy()
    scale = 0.3 * (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))
    noisy = images[:, None] + scale[:, None, None, None, None] * noise[None]
    active = (np.sum(noisy * weights, axis=(2, 3, 4)) + 0.1) > 0
    mean_gradient = active.mean(axis=1)[:, None, None, None] * weights[None]
    expected = np.abs(mean_gradient).max(axis=-1, keepdims=True)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    assert 0 < active.mean() < 1  # the noise crosses the kink


def test_mean_gradient_converges_to_the_gaussian_expectation():
    # E[1[w.(x + s n) + b > 0]] = Phi((w.x + b) / (s |w|)) for n ~ N(0, I).
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(3, 3, 1)).astype("float32")
    model = relu_unit_model(weights, 0.0)
    image = np.zeros((1, 3, 3, 1), "float32")
    image[0, 0, 0, 0], image[0, 2, 2, 0] = 1.0, 0.0
    explainer = explainers.SmoothGrad(model, samples=4000, sigma=0.5, batch_size=4000)
    maps = explainer(image, targets=0).numpy()[0, ..., 0]
    share = scipy.stats.norm.cdf(np.sum(weights * image[0]) / (0.5 * np.linalg.norm(weights)))
    np.testing.assert_allclose(maps, share * np.abs(weights[..., 0]), rtol=0.05, atol=1e-3)


def test_zero_sigma_is_saliency_and_linear_model_ignores_noise(model, images):
    smooth = explainers.SmoothGrad(model, samples=3, sigma=0.0)(images)
    np.testing.assert_allclose(smooth, explainers.Saliency(model)(images), rtol=1e-5, atol=1e-7)

    weights = np.random.default_rng(3).normal(size=(5, 5, 3)).astype("float32")
    linear = keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Flatten(),
                               keras.layers.Dense(1, use_bias=False)])
    linear.set_weights([weights.reshape(-1, 1)])
    maps = explainers.SmoothGrad(linear, samples=7, sigma=1.0)(random_images(2, (5, 5, 3)), targets=1)
    np.testing.assert_allclose(maps[0, ..., 0], np.abs(weights).max(axis=-1), rtol=1e-5)


def test_batch_and_chunking_do_not_change_a_map():
    model = small_cnn((8, 8, 3), 4)
    images = random_images(4, (8, 8, 3))
    whole = explainers.SmoothGrad(model, samples=5, batch_size=None)(images).numpy()
    chunked = explainers.SmoothGrad(model, samples=5, batch_size=3)(images).numpy()
    single = explainers.SmoothGrad(model, samples=5)(images[2:3]).numpy()
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(single[0], whole[2], rtol=1e-4, atol=1e-7)
    assert explainers.get("smoothgrad", model).samples == 16


@pytest.mark.parametrize("kwargs, match", [
    ({"samples": 0}, "samples=0"),
    ({"sigma": -0.1}, "sigma=-0.1"),
    ({"sigma": "big"}, "sigma='big'"),
    ({"seed": 1.5}, "seed=1.5"),
])
def test_bad_arguments(model, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        explainers.SmoothGrad(model, **kwargs)
