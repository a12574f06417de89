"""Pointing game and energy pointing game: known answers, parity with
quantus.PointingGame, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_edda import metrics


def box_masks(n, size, seed):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size, 1), "float32")
    for mask in masks:
        top, left = rng.integers(0, size // 2, size=2)
        height, width = rng.integers(2, size // 2, size=2)
        mask[top:top + height, left:left + width] = 1.0
    return masks


def test_map_equal_to_the_mask_scores_one():
    masks = box_masks(5, 16, 0)
    np.testing.assert_array_equal(metrics.PointingGame()(masks, masks), np.ones(5))
    np.testing.assert_allclose(metrics.EnergyPointingGame()(masks, masks), np.ones(5), rtol=1e-6)
    # Masks given as (N, H, W) and as booleans work the same.
    np.testing.assert_allclose(metrics.EnergyPointingGame()(masks, masks[..., 0] > 0), np.ones(5), rtol=1e-6)


def test_constant_and_negative_maps():
    masks = box_masks(6, 16, 1)
    constant = np.full(masks.shape, 0.3, "float32")
    area_share = masks.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(metrics.EnergyPointingGame()(constant, masks), area_share, rtol=1e-5)
    # Clipped at 0: negative mass outside the object does not count; all-negative maps score 0.
    rng = np.random.default_rng(2)
    maps = rng.normal(size=masks.shape).astype("float32")
    positive = np.maximum(maps, 0)
    expected = (positive * masks).sum(axis=(1, 2, 3)) / positive.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(metrics.EnergyPointingGame()(maps, masks), expected, rtol=1e-5)
    np.testing.assert_array_equal(metrics.EnergyPointingGame()(-np.abs(maps), masks), np.zeros(6))
    # Peak outside the object: a miss.
    outside = (1.0 - masks) * (1.0 + rng.uniform(size=masks.shape).astype("float32"))
    np.testing.assert_array_equal(metrics.PointingGame()(outside, masks), np.zeros(6))


def test_pointing_game_matches_quantus():
    quantus = pytest.importorskip("quantus")
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    rng = np.random.default_rng(3)
    images = rng.uniform(size=(16, 12, 12, 1)).astype("float32")
    masks = box_masks(16, 12, 4)
    # Smooth random maps, some peaking inside the box, some outside; two with a tied maximum.
    maps = rng.uniform(size=masks.shape).astype("float32") + 0.6 * masks * rng.integers(0, 2, size=(16, 1, 1, 1))
    maps[0] = maps[1] = 0.0
    maps[0, 0, 0, 0] = maps[0, 8, 8, 0] = 1.0
    maps[1, 0, 0, 0] = maps[1, 11, 11, 0] = 1.0
    masks[0, 8, 8, 0] = 1.0
    reference = quantus.PointingGame(disable_warnings=True, display_progressbar=False)
    expected = reference(model=model, x_batch=images, y_batch=np.zeros(16, int),
                         a_batch=np.transpose(maps, (0, 3, 1, 2)), s_batch=np.transpose(masks, (0, 3, 1, 2)),
                         channel_first=False)
    ours = metrics.PointingGame()(maps, masks).numpy()
    np.testing.assert_array_equal(ours, np.asarray(expected, "float32"))
    assert 0 < ours.mean() < 1


def test_registry_channels_first_and_tf_function():
    masks = box_masks(4, 10, 5)
    maps = np.random.default_rng(6).uniform(size=masks.shape).astype("float32")
    for name in ("pointing_game", "energy_pointing_game"):
        metric = metrics.get(name)
        assert metric.name == name and metric.score_direction == "higher"
        expected = metric(maps, masks).numpy()
        first = metrics.get(name, data_format="channels_first")
        np.testing.assert_allclose(first(np.transpose(maps, (0, 3, 1, 2)), np.transpose(masks, (0, 3, 1, 2))),
                                   expected, rtol=1e-6)
        np.testing.assert_allclose(tf.function(metric)(tf.constant(maps), tf.constant(masks)), expected, rtol=1e-6)
    assert set(metrics.LOCALIZATION_METRICS) == {"pointing_game", "energy_pointing_game"}


def test_bad_input():
    masks = box_masks(3, 10, 7)
    maps = np.ones_like(masks)
    metric = metrics.PointingGame()
    with pytest.raises(ValueError, match=r"Received: object_masks.shape=\(3, 8, 8, 1\)"):
        metric(maps, masks[:, :8, :8])
    with pytest.raises(ValueError, match=r"Received: object_masks.shape=\(2, 10, 10, 1\)"):
        metric(maps, masks[:2])
    empty = masks.copy()
    empty[1] = 0.0
    with pytest.raises(ValueError, match=r"no object pixel at images \[1\]"):
        metrics.EnergyPointingGame()(maps, empty)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least one object pixel"):
        tf.function(metric)(tf.constant(maps), tf.constant(empty))
    with pytest.raises(ValueError, match="one channel"):
        metric(np.ones((3, 10, 10, 3), "float32"), masks)
    nan_masks = masks.copy()
    nan_masks[0] = np.nan  # would count as all object pixels: a hit for any map
    with pytest.raises(ValueError, match="object_masks` contains NaN"):
        metric(maps, nan_masks)
