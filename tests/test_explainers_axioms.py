"""Axioms that hold whatever the implementation: completeness of IG, batch
results equal one-image results, permuting the batch permutes the maps."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, smooth_cnn

from keras_edda import explainers

SETTINGS = {
    "grad_cam": {},
    "integrated_gradients": {"steps": 8, "batch_size": 16},
    "occlusion": {"patch_size": 3, "stride": 2, "batch_size": 40},
    "saliency": {},
}


@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_integrated_gradients_completeness(baseline):
    """Sum of attributions = f(x) - f(baseline) within 1 %, at 64 steps."""
    model = smooth_cnn()
    images = random_images(4, (12, 12, 3))
    targets = np.array([0, 1, 2, 3])
    explainer = explainers.IntegratedGradients(
        model, steps=64, baseline=baseline, batch_size=100
    )
    total = tf.reduce_sum(explainer(images, targets), axis=(1, 2, 3)).numpy()
    rows = np.arange(4)
    expected = (
        _logits(model, images)[rows, targets]
        - _logits(model, np.full_like(images, baseline))[rows, targets]
    )
    assert np.all(np.abs(total - expected) <= 0.01 * np.abs(expected)), (
        total, expected)


def _logits(model, images):
    """Pre-softmax logits, computed layer by layer with the Dense weights."""
    _, conv, conv_b, pool, dense = model.layers
    kernel, bias = dense.get_weights()
    return pool(conv_b(conv(images))).numpy() @ kernel + bias


@pytest.mark.parametrize("name", list(SETTINGS))
def test_batch_equals_single_images(name):
    model = smooth_cnn()
    images = random_images(5, (12, 12, 3))
    explainer = explainers.get(name, model, **SETTINGS[name])
    targets = np.array([0, 3, 1, 2, 1])
    batch = explainer(images, targets).numpy()
    for i in range(len(images)):
        single = explainer(images[i : i + 1], targets[i : i + 1]).numpy()
        np.testing.assert_allclose(batch[i : i + 1], single, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_permuting_the_batch_permutes_the_maps(name):
    model = smooth_cnn()
    images = random_images(6, (12, 12, 3))
    explainer = explainers.get(name, model, **SETTINGS[name])
    targets = np.array([0, 3, 1, 2, 1, 0])
    permutation = np.array([4, 2, 0, 5, 1, 3])
    maps = explainer(images, targets).numpy()
    permuted = explainer(images[permutation], targets[permutation]).numpy()
    np.testing.assert_allclose(permuted, maps[permutation], rtol=1e-4, atol=1e-6)


def test_occlusion_known_answer():
    """A linear model on one channel: the drop of a patch is known exactly."""
    import keras

    weights = np.zeros((8 * 8, 2), "float32")
    weights[:, 0] = np.arange(64) / 64.0
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(),
         keras.layers.Dense(2, use_bias=False)]
    )
    model.layers[-1].set_weights([weights])
    image = np.ones((1, 8, 8, 1), "float32")
    maps = explainers.Occlusion(model, patch_size=4, fill=0.0)(image, 0).numpy()
    pixel_weights = weights[:, 0].reshape(8, 8)
    for top in (0, 4):
        for left in (0, 4):
            expected = pixel_weights[top : top + 4, left : left + 4].sum()
            np.testing.assert_allclose(
                maps[0, top : top + 4, left : left + 4, 0], expected, rtol=1e-5
            )


def test_saliency_known_answer():
    """For a linear model the input gradient is the weight."""
    import keras

    weights = np.random.default_rng(0).normal(size=(4 * 4 * 2, 3)).astype("float32")
    model = keras.Sequential(
        [keras.Input((4, 4, 2)), keras.layers.Flatten(),
         keras.layers.Dense(3, use_bias=False, activation="softmax")]
    )
    model.layers[-1].set_weights([weights])
    maps = explainers.Saliency(model)(np.zeros((1, 4, 4, 2), "float32"), 1)
    expected = np.abs(weights[:, 1].reshape(4, 4, 2)).max(axis=-1)
    np.testing.assert_allclose(maps[0, :, :, 0], expected, rtol=1e-5)
