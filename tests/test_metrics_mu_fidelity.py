"""MuFidelity: a direct NumPy computation, its symmetries, chunks, layouts and bad input (parity with
Quantus: tests/test_parity_cam_shap_rise.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers, metrics


def numpy_mu_fidelity(model, images, maps, removed, fill):
    """Per image: corrcoef over subsets of (sum of the map over the subset, p(x) - p(x without it))."""
    probabilities = model.predict(images, verbose=0)
    classes = probabilities.argmax(axis=-1)
    scores = []
    for image, saliency, cls, start in zip(images, maps, classes, probabilities):
        filled = image[None] * (1 - removed[..., None]) + fill * removed[..., None]
        drops = start[cls] - model.predict(filled, verbose=0)[:, cls]
        sums = (saliency[None, ..., 0] * removed).sum(axis=(1, 2))
        scores.append(np.corrcoef(sums, drops)[0, 1])
    return np.array(scores)


def test_matches_a_direct_numpy_computation_on_its_subsets():
    model = small_cnn(activation="softmax")
    images = random_images(4)
    maps = explainers.GradCAM(model)(images).numpy()
    metric = metrics.MuFidelity(num_subsets=50, grid_size=(4, 8), subset_fraction=0.3, fill=0.5, seed=2,
                                batch_size=64)
    cells = metric.removed_cells(16, 16).numpy().reshape(50, 4, 8)
    removed = np.repeat(np.repeat(cells, 4, axis=1), 2, axis=2)
    np.testing.assert_allclose(metric.subset_masks(tf.constant(cells.reshape(50, 32)), tf.range(50), None, 16, 16)
                               .numpy()[..., 0], removed)
    assert 0.15 < removed.mean() < 0.45
    expected = numpy_mu_fidelity(model, images, maps, removed, 0.5)
    np.testing.assert_allclose(metric(model, images, maps).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_sign_scale_chunks_seed_and_layout():
    model = small_cnn(activation="softmax")
    images = random_images()
    maps = explainers.Occlusion(model, patch_size=4)(images).numpy()
    metric = metrics.MuFidelity(num_subsets=40, grid_size=4)
    scores = metric(model, images, maps).numpy()
    assert scores.shape == (6,) and scores.min() > 0.5  # occlusion on the same cells: near-linear drops
    np.testing.assert_allclose(metric(model, images, -maps), -scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metric(model, images, 3.0 * maps), scores, rtol=1e-5, atol=1e-6)
    chunked = metrics.MuFidelity(num_subsets=40, grid_size=4, batch_size=7)(model, images, maps)
    np.testing.assert_allclose(chunked, scores, rtol=1e-5, atol=1e-6)
    other_seed = metrics.MuFidelity(num_subsets=40, grid_size=4, seed=9)(model, images, maps).numpy()
    assert not np.allclose(other_seed, scores)
    constant = metric(model, images, np.ones_like(maps)).numpy()
    assert np.all(np.isfinite(constant))
    # Channels first: a channels-first copy of the same model behind a Permute gives the same scores.
    first = keras.Sequential([keras.Input((3, 16, 16)), keras.layers.Permute((2, 3, 1)), model])
    channels_first = metrics.MuFidelity(num_subsets=40, grid_size=4, data_format="channels_first")(
        first, np.transpose(images, (0, 3, 1, 2)), np.transpose(maps, (0, 3, 1, 2)))
    np.testing.assert_allclose(channels_first, scores, rtol=1e-5, atol=1e-6)
    # Pixel subsets (the paper's) run too.
    assert metrics.MuFidelity(num_subsets=20, grid_size=None)(model, images, maps).shape == (6,)


def test_registered_and_explainers_by_name():
    assert metrics.get("mu_fidelity").score_direction == "higher"
    assert "mu_fidelity" in metrics.METRICS
    model = small_cnn()
    images = random_images()
    maps = explainers.get("rise", model, num_masks=40, grid_size=4)(images)
    assert metrics.get("mu_fidelity", num_subsets=16, grid_size=4)(model, images, maps).shape == (6,)


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="num_subsets=0"):
        metrics.MuFidelity(num_subsets=0)
    for fraction in (0.0, 1.0, 2.0):
        with pytest.raises(ValueError, match=f"subset_fraction={fraction}"):
            metrics.MuFidelity(subset_fraction=fraction)
    with pytest.raises(TypeError, match="seed='a'"):
        metrics.MuFidelity(seed="a")
    with pytest.raises(ValueError, match="grid_size=0"):
        metrics.MuFidelity(grid_size=0)
    # A grid finer than the image is one cell per pixel along that axis.
    model = small_cnn()
    images = random_images()
    maps = explainers.Saliency(model)(images)
    np.testing.assert_allclose(metrics.MuFidelity(grid_size=(17, 40), num_subsets=16)(model, images, maps),
                               metrics.MuFidelity(grid_size=None, num_subsets=16)(model, images, maps), rtol=1e-6)
