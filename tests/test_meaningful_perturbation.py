"""Meaningful perturbation: a known square, a numpy TV reference, fills, graphs, errors."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_cnn

from keras_edda import explainers
from keras_edda.explainers.meaningful_perturbation import MeaningfulPerturbation, total_variation
from keras_edda.inpainting import Inpainter, build_inpainter

SIZE = 16


def square_model_and_images():
    """A linear softmax model whose class-0 evidence is the pixels of one square."""
    square = np.zeros((SIZE, SIZE), "float32")
    square[4:10, 6:12] = 1.0
    kernel = np.zeros((SIZE * SIZE, 2), "float32")
    kernel[:, 0] = 0.2 * square.ravel()
    model = keras.Sequential([keras.Input((SIZE, SIZE, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.layers[-1].set_weights([kernel, np.array([0.0, 3.6], "float32")])
    rng = np.random.default_rng(0)
    images = (rng.uniform(0, 0.3, (3, SIZE, SIZE, 1)) + 0.7 * square[None, :, :, None]).astype("float32")
    return model, images, square > 0


@pytest.mark.parametrize("fill", ["blur", 0.0, "inpaint"])
def test_recovers_the_square_that_holds_the_evidence(fill):
    model, images, square = square_model_and_images()
    maps = MeaningfulPerturbation(model, steps=300, mask_size=8, l1=1e-2, fill=fill)(images, targets=0).numpy()
    for saliency in maps[..., 0]:
        top = saliency >= np.sort(saliency.ravel())[-square.sum()]
        assert (top & square).sum() / (top | square).sum() >= 0.7


def test_total_variation_matches_numpy():
    masks = np.random.default_rng(2).uniform(size=(2, 5, 4, 1)).astype("float32")
    expected = [(np.abs(np.diff(m[..., 0], axis=0)) ** 3).sum() + (np.abs(np.diff(m[..., 0], axis=1)) ** 3).sum()
                for m in masks]
    np.testing.assert_allclose(total_variation(masks, 3.0).numpy(), expected, rtol=1e-5)


def test_map_is_one_minus_the_upsampled_mask_in_range_and_does_nothing_without_evidence():
    model, images, _ = square_model_and_images()
    # An all-zero image holds no evidence and its blur is itself: nothing to delete, the map stays 0.
    maps = MeaningfulPerturbation(model, steps=20, mask_size=4)(np.zeros_like(images), targets=0).numpy()
    np.testing.assert_allclose(maps, 0.0, atol=1e-6)
    maps = MeaningfulPerturbation(model, steps=20, mask_size=4)(images, targets=0).numpy()
    assert maps.min() >= 0.0 and maps.max() <= 1.0 and maps.max() > 0.1


FILLS = ["blur", "constant", "mean", "noise", "inpaint", 0.5, "inpainter"]


@pytest.mark.parametrize("fill", FILLS)
def test_every_fill_inside_tf_function_on_a_nested_model(fill):
    inner = small_cnn((SIZE, SIZE, 3), 4)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), inner, keras.layers.Activation("linear")])
    if fill == "inpainter":
        fill = Inpainter(build_inpainter((SIZE, SIZE, 3), filters=4))
    explainer = explainers.get("meaningful_perturbation", model, steps=5, fill=fill, batch_size=3)
    images = np.random.default_rng(0).uniform(size=(4, SIZE, SIZE, 3)).astype("float32")
    maps = tf.function(lambda x: explainer(x, targets=[0, 1, 2, 3]))(tf.constant(images)).numpy()
    assert maps.shape == (4, SIZE, SIZE, 1) and np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0


def test_chunks_do_not_change_the_maps_and_channels_first_agrees(model, images):
    whole = MeaningfulPerturbation(model, steps=10, batch_size=None)(images).numpy()
    chunked = MeaningfulPerturbation(model, steps=10, batch_size=4)(images).numpy()
    np.testing.assert_allclose(whole, chunked, atol=1e-4)
    keras.config.set_image_data_format("channels_first")
    first_model = small_cnn((3, 16, 16), 5)
    first_model.set_weights(model.get_weights())
    first = MeaningfulPerturbation(first_model, steps=10)(np.transpose(images, (0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(np.transpose(first, (0, 2, 3, 1)), whole, atol=1e-3)


def test_bad_input_gets_clear_errors(model, images):
    with pytest.raises(ValueError, match="mask_size"):
        MeaningfulPerturbation(model, mask_size=17)(images)
    with pytest.raises(ValueError, match="steps=0"):
        MeaningfulPerturbation(model, steps=0)
    with pytest.raises(ValueError, match="learning_rate=0"):
        MeaningfulPerturbation(model, learning_rate=0)
    with pytest.raises(ValueError, match="l1=-1"):
        MeaningfulPerturbation(model, l1=-1)


def scaled_square_model_and_images(size, scale=1.0):
    """`square_model_and_images` at another image size; `scale` multiplies the logits."""
    square = np.zeros((size, size), "float32")
    a = size // 4
    square[a:a + 3 * size // 8, a + size // 8:a + size // 2] = 1.0
    kernel = np.zeros((size * size, 2), "float32")
    kernel[:, 0] = scale * 0.2 * 36 / square.sum() * square.ravel()
    model = keras.Sequential([keras.Input((size, size, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.layers[-1].set_weights([kernel, np.array([0.0, 3.6 * scale], "float32")])
    rng = np.random.default_rng(0)
    images = (rng.uniform(0, 0.3, (2, size, size, 1)) + 0.7 * square[None, :, :, None]).astype("float32")
    return model, images, square > 0


@pytest.mark.parametrize("size", [16, 32])
def test_the_defaults_find_the_square_at_small_image_sizes(size):
    """Issue 25 item 11: with its defaults the map was 1.0 (16 px) or nearly constant (32 px) everywhere."""
    model, images, square = scaled_square_model_and_images(size)
    explainer = MeaningfulPerturbation(model)
    assert explainer._mask_shape(size, size) == (8, 8)
    maps = explainer(images, targets=0).numpy()
    for saliency in maps[..., 0]:
        assert saliency.std() > 0.2  # not constant
        top = saliency >= np.sort(saliency.ravel())[-square.sum()]
        assert (top & square).sum() / (top | square).sum() >= 0.7
    assert MeaningfulPerturbation(model)._mask_shape(224, 224) == (28, 28)  # Agarwal & Nguyen's at 224 px
    assert MeaningfulPerturbation(model)._mask_shape(4, 6) == (4, 6)


def test_a_mask_that_never_moves_is_warned_about():
    """Issue 25 item 11: a saturated class probability has no gradient: the map was all zero, silently."""
    model, images, _ = scaled_square_model_and_images(16, scale=200.0)
    assert np.all(model.predict(images, verbose=0)[:, 0] == 1.0)  # p = 1 in float32
    explainer = MeaningfulPerturbation(model, steps=5)
    with pytest.warns(UserWarning, match="mask never moved for 2 of 2 images"):
        maps = explainer(images, targets=0).numpy()
    np.testing.assert_array_equal(maps, 0.0)
    with pytest.warns(UserWarning, match="never moved"):
        explainer.explain_with_scores(images, targets=0)
    moving, _, _ = scaled_square_model_and_images(16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MeaningfulPerturbation(moving, steps=5)(images, targets=0)
