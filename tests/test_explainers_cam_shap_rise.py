"""Grad-CAM++, Score-CAM, RISE and Kernel SHAP: axioms, the explainer contract in every context, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers, metrics

SETTINGS = {
    "grad_cam_pp": {},
    "score_cam": {"batch_size": 20},
    "rise": {"num_masks": 40, "grid_size": 4, "batch_size": 64},
    "kernel_shap": {"num_samples": 40, "grid_size": 4, "batch_size": 64},
}
NAMES = list(SETTINGS)


def make(name, model, **extra):
    return explainers.get(name, model, **{**SETTINGS[name], **extra})


# Axioms -----------------------------------------------------------------------------------------


def test_grad_cam_pp_is_grad_cam_when_the_gradients_are_constant_over_the_layer():
    # Conv -> global average pooling -> Dense: dY/dA_k = W[k, c] / (h w) at every position; with W >= 0 the
    # normalised alphas are 1 / (h w) and Grad-CAM++'s channel weights are Grad-CAM's.
    model = small_cnn(activation=None)
    kernel, bias = model.get_layer("head").get_weights()
    model.get_layer("head").set_weights([np.abs(kernel), bias])
    images = random_images()
    plus_plus = explainers.GradCAMPlusPlus(model)(images, 2).numpy()
    grad_cam = explainers.GradCAM(model)(images, 2).numpy()
    assert plus_plus.max() > 0
    np.testing.assert_allclose(plus_plus, grad_cam, rtol=1e-5, atol=1e-7)
    # Where gradients are not constant (a max-pooled layer) they differ.
    pooled = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(6, 3, activation="relu", name="c"),
                               keras.layers.Conv2D(6, 3, activation="relu"), keras.layers.MaxPooling2D(),
                               keras.layers.Flatten(), keras.layers.Dense(3)])
    assert not np.allclose(explainers.GradCAMPlusPlus(pooled, layer="c")(images, 1),
                           explainers.GradCAM(pooled, layer="c")(images, 1), atol=1e-6)


def one_pixel_model(row, col, size):
    """f(x) = x[row, col, 0]: a model that reads one pixel."""
    weights = np.zeros((size * size * 3, 1), "float32")
    weights[(row * size + col) * 3] = 1.0
    model = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.set_weights([weights, np.zeros(1, "float32")])
    return model


def test_rise_expectation_on_a_model_that_reads_one_pixel():
    # f(x * M) = x_rc M(r, c), so S(a, b) = x_rc / (N p) sum_i M_i(r, c) M_i(a, b): the masks' own
    # co-occurrence with the pixel, largest at the pixel. Where no cell reaches both (a, b) and (r, c),
    # M(r, c) and M(a, b) are independent with mean p: the expectation of S(a, b) is p x_rc.
    row, col, p, count = 2, 2, 0.3, 3000
    model = one_pixel_model(row, col, size=24)
    images = random_images(2, (24, 24, 3), seed=4) + 0.5
    explainer = explainers.Rise(model, num_masks=count, grid_size=6, p=p, seed=1, batch_size=1024)
    maps = explainer(images, 1).numpy()[..., 0]
    masks = explainer.masks(*explainer.mask_parameters(), 24, 24).numpy()
    expected = np.einsum("i,iab->ab", masks[:, row, col], masks) / (count * p)
    for image, found in zip(images, maps):
        np.testing.assert_allclose(found, image[row, col, 0] * expected, rtol=1e-4, atol=1e-6)
        assert np.unravel_index(found.argmax(), found.shape) == (row, col)
    # Cells 0-1 reach (2, 2) in every shift, cells 4-5 the far border: (23, 23), (0, 23), (23, 0) are
    # independent of it. Their Monte Carlo standard error is below 1 / sqrt(count) = 0.018.
    far = maps[:, [23, 0, 23], [23, 23, 0]] / images[:, row, col, :1]
    np.testing.assert_allclose(far, p, atol=0.06)


def linear_model(size=8, channels=2, seed=0):
    weights = np.random.default_rng(seed).normal(size=(size * size * channels, 1)).astype("float32")
    model = keras.Sequential([keras.Input((size, size, channels)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.set_weights([weights, np.array([0.3], "float32")])
    return model, weights.reshape(size, size, channels)


@pytest.mark.parametrize("num_samples, grid_size", [(14, (2, 2)), (254, (2, 4)), (60, 4)])
def test_kernel_shap_of_a_linear_model_is_each_superpixels_contribution(num_samples, grid_size):
    # f is additive over superpixels with the zero fill: its Shapley values are c_k = sum_{pixels of k} w x,
    # exactly, whether the coalitions are enumerated or sampled.
    model, weights = linear_model()
    images = random_images(3, (8, 8, 2), seed=2)
    explainer = explainers.KernelShap(model, num_samples=num_samples, grid_size=grid_size, batch_size=100)
    assert explainer.enumerates == (num_samples >= 2 ** np.prod(explainer.superpixels.grid_size) - 2)
    maps = explainer(images, 1).numpy()[..., 0]
    segments = explainer.superpixels.segment(tf.constant(images)).numpy()
    for image, found, cells in zip(images, maps, segments):
        contribution = (weights * image).sum(axis=-1)
        for k in range(cells.max() + 1):
            np.testing.assert_allclose(found[cells == k], contribution[cells == k].sum(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("settings", [{"num_samples": 510, "grid_size": 3}, {"num_samples": 50, "grid_size": 4},
                                      {"num_samples": 50, "segments": "slic", "slic_options": {"n_segments": 12}}])
def test_kernel_shap_efficiency_sums_to_the_full_minus_the_empty_coalition(settings):
    model = small_cnn(activation="softmax")
    images = random_images()
    explainer = explainers.KernelShap(model, fill=0.25, batch_size=256, **settings)
    maps = explainer(images, 3).numpy()[..., 0]
    segments = explainer.superpixels.segment(tf.constant(images)).numpy()
    totals = [sum(found[cells == k][0] for k in np.unique(cells)) for found, cells in zip(maps, segments)]
    linear = small_cnn(activation=None)
    linear.set_weights(model.get_weights())
    expected = linear(images).numpy()[:, 3] - linear(np.full_like(images, 0.25)).numpy()[:, 3]
    np.testing.assert_allclose(totals, expected, rtol=1e-4, atol=1e-5)


def test_score_cam_weights_are_the_scores_of_the_masked_images():
    # A layer of one channel: the map is ReLU(w A) with w the score of the image times its normalised
    # upsampled channel; here the score is positive, so the map is w A upsampled.
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 1, use_bias=False, name="c"),
                              keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([np.ones((1, 1, 1, 1), "float32"), np.ones((64, 1), "float32")])
    images = random_images(2, (8, 8, 1), seed=5)
    maps = explainers.ScoreCAM(model, layer="c")(images, 1).numpy()
    low, high = images.min(axis=(1, 2, 3), keepdims=True), images.max(axis=(1, 2, 3), keepdims=True)
    weight = (images * (images - low) / (high - low)).sum(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(maps, weight * images, rtol=1e-4)


# The contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_shapes_targets_and_scores(name):
    softmax_model = small_cnn(activation="softmax")
    linear = small_cnn(activation=None)
    linear.set_weights(softmax_model.get_weights())
    images = random_images()
    explainer = make(name, softmax_model)
    labels = np.arange(6) % 5
    as_ids = explainer(images, labels)
    assert as_ids.shape == (6, 16, 16, 1) and as_ids.dtype == tf.float32
    assert bool(tf.reduce_all(tf.math.is_finite(as_ids)))
    np.testing.assert_allclose(explainer(images, tf.one_hot(labels, 5)), as_ids, rtol=1e-5, atol=1e-6)
    predicted = np.argmax(linear(images), axis=-1)
    np.testing.assert_allclose(explainer(images), explainer(images, predicted), rtol=1e-5, atol=1e-6)
    assert not np.allclose(explainer(images, 1), explainer(images, 2), atol=1e-6)
    maps, scores = explainer.explain_with_scores(images, labels)
    np.testing.assert_allclose(maps, as_ids, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, linear(images), rtol=1e-5, atol=1e-5)
    assert explainers.name_of(explainer) == name


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_single_images_and_permutation(name):
    model = small_cnn()
    images = random_images()
    explainer = make(name, model)
    labels = np.array([0, 1, 2, 3, 4, 0])
    batch = explainer(images, labels).numpy()
    for index in (0, 4):
        single = explainer(images[index:index + 1], labels[index:index + 1]).numpy()
        np.testing.assert_allclose(single[0], batch[index], rtol=1e-4, atol=1e-6)
    order = np.array([3, 0, 5, 1, 4, 2])
    np.testing.assert_allclose(explainer(images[order], labels[order]), batch[order], rtol=1e-4, atol=1e-6)


class LargestBatch(keras.layers.Layer):
    """Records the largest batch the model is called with, in any graph."""

    def build(self, input_shape):
        self.largest = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False)

    def call(self, x):
        self.largest.assign(tf.maximum(self.largest, tf.shape(x)[0]))
        return x


@pytest.mark.parametrize("name", NAMES)
def test_batch_size_bounds_the_model_calls_and_does_not_change_the_maps(name):
    probe = LargestBatch()
    base = small_cnn()
    model = keras.Sequential([keras.Input((16, 16, 3)), probe, base])
    images = random_images()
    whole = make(name, model, batch_size=None)(images, 1).numpy()
    probe.largest.assign(0)
    chunked = make(name, model, batch_size=7)(images, 1).numpy()
    assert 1 <= int(probe.largest.numpy()) <= 7
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_inside_tf_function_and_tf_data_map(name):
    model = small_cnn()
    images = random_images()
    labels = np.arange(6) % 5
    explainer = make(name, model)
    eager = explainer(images, labels).numpy()
    compiled = tf.function(lambda x, y: explainer(x, y))
    np.testing.assert_allclose(compiled(tf.constant(images), tf.constant(labels)), eager, rtol=1e-4, atol=1e-6)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)
    mapped = np.concatenate([m.numpy() for m in dataset.map(lambda x, y: explainer(x, y))])
    np.testing.assert_allclose(mapped, eager, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_nested_model_gives_the_maps_of_the_flat_one(name):
    inner = small_cnn(activation=None)
    nested = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1.0), inner,
                               keras.layers.Softmax()])
    images = random_images()
    nested_maps = make(name, nested)(images, 2).numpy()
    np.testing.assert_allclose(nested_maps, make(name, inner)(images, 2).numpy(), rtol=1e-4, atol=1e-6)
    if name in ("grad_cam_pp", "score_cam"):
        assert make(name, nested).layer_path.endswith("conv2")


def permuted_cnn(data_format):
    """small_cnn's layers behind a Permute: channels_first inputs on a CPU (no NCHW convolution here)."""
    layers = [keras.Input((3, 16, 16) if data_format == "channels_first" else (16, 16, 3))]
    if data_format == "channels_first":
        layers.append(keras.layers.Permute((2, 3, 1)))
    layers += [keras.layers.Conv2D(8, 3, padding="same", activation="relu", data_format="channels_last"),
               keras.layers.Conv2D(8, 3, padding="same", activation="relu", data_format="channels_last",
                                   name="conv2"),
               keras.layers.GlobalAveragePooling2D(data_format="channels_last"), keras.layers.Dense(5)]
    return keras.Sequential(layers)


@pytest.mark.parametrize("name", NAMES)
def test_channels_first_gives_the_channels_last_maps(name):
    last = permuted_cnn("channels_last")
    first = permuted_cnn("channels_first")
    first.set_weights(last.get_weights())
    images = random_images()
    maps_last = make(name, last)(images, 1).numpy()
    maps_first = make(name, first, data_format="channels_first")(np.transpose(images, (0, 3, 1, 2)), 1)
    assert maps_first.shape == (6, 1, 16, 16)
    np.testing.assert_allclose(np.transpose(maps_first, (0, 2, 3, 1)), maps_last, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_mixed_float16_maps_are_float32_and_close(name):
    reference = small_cnn()
    images = random_images()
    expected = make(name, reference)(images, 1).numpy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = small_cnn()
    model.set_weights(reference.get_weights())
    maps = make(name, model)(images, 1)
    assert maps.dtype == tf.float32
    assert float(np.abs(maps.numpy() - expected).max()) < 0.05 * (np.abs(expected).max() + 1e-6)


def test_usable_by_name_in_the_metrics_the_callback_and_edda():
    from keras_edda.callbacks import AlignmentCallback
    from keras_edda.methods import EDDA

    model = small_cnn()
    images = random_images()
    for name in NAMES:
        maps = make(name, model)(images)
        assert metrics.get("deletion_auc", steps=4)(model, images, maps).shape == (6,)
    assert {"grad_cam_pp", "score_cam", "rise", "kernel_shap"} <= set(explainers.EXPLAINERS)
    labels = np.arange(6) % 5
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = AlignmentCallback((images, labels), explainers=("grad_cam_pp", "rise"), metrics=("average_drop",),
                                 explainer_kwargs={"rise": SETTINGS["rise"]}, max_samples=6)
    history = model.fit(images, labels, epochs=1, batch_size=3, verbose=0, callbacks=[callback])
    assert {"val_alignment_grad_cam_pp_average_drop", "val_alignment_rise_average_drop"} <= set(history.history)
    # A classifier not compiled with a sparse loss: the dict path gives soft labels (N, C).
    out = EDDA(small_cnn(), explainer="score_cam")({"images": images, "labels": labels})
    assert out["images"].shape[0] > 6 and out["images"].shape[0] % 6 == 0
    assert bool(tf.reduce_all(tf.math.is_finite(out["images"])))


# Bad input ---------------------------------------------------------------------------------------


def test_bad_input_gets_clear_errors():
    model = small_cnn()
    images = random_images()
    with pytest.raises(ValueError, match="num_masks=0"):
        explainers.Rise(model, num_masks=0)
    for p in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match=f"p={p}"):
            explainers.Rise(model, p=p)
    with pytest.raises(TypeError, match="p='half'"):
        explainers.Rise(model, p="half")
    with pytest.raises(ValueError, match="grid_size"):
        explainers.Rise(model, grid_size=32)(images)
    with pytest.raises(ValueError, match="grid_size=0"):
        explainers.Rise(model, grid_size=0)
    with pytest.raises(TypeError, match="seed=1.5"):
        explainers.Rise(model, seed=1.5)
    with pytest.raises(ValueError, match="num_samples=0"):
        explainers.KernelShap(model, num_samples=0)
    with pytest.raises(ValueError, match="grid_size"):
        explainers.KernelShap(model, grid_size=(4, 17))(images)
    with pytest.raises(ValueError, match="segments='quickshift'"):
        explainers.KernelShap(model, segments="quickshift")
    with pytest.raises(ValueError, match="fill"):
        explainers.ScoreCAM(model, fill=float("nan"))
    with pytest.raises(ValueError, match="layer"):
        explainers.ScoreCAM(model, layer="head")
    with pytest.raises(ValueError, match="batch_size=0"):
        explainers.GradCAMPlusPlus(model, batch_size=0)
