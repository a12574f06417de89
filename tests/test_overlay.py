"""Heatmap overlays: jet for unsigned maps, a diverging map for signed ones (issue 25 item 16)."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers
from keras_edda.ops import overlay


def test_signed_maps_keep_their_sign_and_zero_is_white():
    images = np.zeros((1, 4, 4, 1), "float32")
    maps = np.zeros((1, 4, 4, 1), "float32")
    maps[0, 0, 0], maps[0, 0, 1], maps[0, 0, 2] = 2.0, -2.0, 1.0
    picture = overlay.overlay(images, maps, alpha=1.0, signed=True).numpy()[0]
    np.testing.assert_allclose(picture[0, 0], overlay._POSITIVE, atol=1e-6)  # the largest |value|, positive
    np.testing.assert_allclose(picture[0, 1], overlay._NEGATIVE, atol=1e-6)  # the same size, negative
    np.testing.assert_allclose(picture[1, 1], [1.0, 1.0, 1.0], atol=1e-6)  # 0: white, not the colour of the minimum
    np.testing.assert_allclose(picture[0, 2], (np.ones(3) + np.array(overlay._POSITIVE)) / 2, atol=1e-6)
    assert picture[0, 0, 0] > picture[0, 0, 2] and picture[0, 1, 2] > picture[0, 1, 0]  # red vs blue
    # Unsigned: min-max, so the same map's 0 is mid-scale and -2 the colour of "least salient".
    jet = overlay.overlay(images, maps, alpha=1.0).numpy()[0]
    np.testing.assert_allclose(jet[1, 1], overlay.jet(np.array([[0.5]], "float32")).numpy()[0], atol=1e-6)


def test_signed_overlay_of_integrated_gradients_matches_a_numpy_reference():
    model = small_cnn((16, 16, 3), num_classes=4)
    images = random_images(2, (16, 16, 3))
    explainer = explainers.IntegratedGradients(model, steps=4)
    assert explainer.signed_maps and not explainers.GradCAM(model).signed_maps
    maps = explainer(images, targets=1).numpy()
    assert maps.min() < 0 < maps.max()
    picture = tf.function(lambda x, m: overlay.overlay(x, m, alpha=0.4, signed=True))(images, maps).numpy()
    scaled = maps / np.abs(maps).max(axis=(1, 2, 3), keepdims=True)
    low, high = np.array(overlay._NEGATIVE), np.array(overlay._POSITIVE)
    heat = 1 + np.maximum(scaled, 0) * (high - 1) + np.maximum(-scaled, 0) * (low - 1)
    shown = (images - images.min(axis=(1, 2, 3), keepdims=True)) / np.ptp(images, axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(picture, 0.6 * shown + 0.4 * heat, atol=1e-5)
    first = overlay.overlay(np.transpose(images, (0, 3, 1, 2)), np.transpose(maps, (0, 3, 1, 2)),
                            alpha=0.4, data_format="channels_first", signed=True)
    np.testing.assert_allclose(first.numpy(), picture, atol=1e-6)
    # An all-zero map is drawn white (no division by zero).
    blank = overlay.overlay(images, np.zeros_like(maps), alpha=1.0, signed=True).numpy()
    np.testing.assert_allclose(blank, 1.0, atol=1e-6)
    with pytest.raises(TypeError, match="signed='yes'"):
        overlay.overlay(images, maps, signed="yes")
