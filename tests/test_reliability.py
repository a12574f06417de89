"""Reliability (issue 12): explainers reused at a second image size, images
that do not fit the model, empty batches, a non-spatial Grad-CAM layer, a
segmentation-shaped output, and the EDDA layer under XLA."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers, metrics
from keras_edda.methods import EDDA

SIZED = {"grad_cam": {}, "saliency": {}, "occlusion": {"patch_size": 4},
         # Issue 25 item 14: these crashed at a second size (sizes read as None after a retrace).
         "smoothgrad": {"samples": 3, "seed": 1}, "lime": {"num_samples": 16, "grid_size": 4, "seed": 1},
         "meaningful_perturbation": {"steps": 3}, "dance": {"patch_size": 4}}
# Small settings for the NaN test; registered explainers not listed here are built with their defaults
# (the check runs before any of their work).
LIGHT = {**SIZED, "integrated_gradients": {"steps": 4}, "random": {"seed": 0}}


def any_size_cnn():
    """A fully convolutional classifier: it takes images of any size."""
    return keras.Sequential([
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(4, activation="softmax"),
    ], name="any_size")


@pytest.mark.parametrize("name", sorted(SIZED))
def test_an_explainer_reused_at_other_image_sizes(name):
    model = any_size_cnn()
    explainer = explainers.get(name, model, **SIZED[name])
    for n, size in [(2, 16), (3, 12), (2, 20), (2, 16)]:
        images = random_images(n, (size, size, 3), seed=size)
        maps = explainer(images, targets=1)
        # A fresh explainer traces this size alone, with static shapes.
        expected = explainers.get(name, model, **SIZED[name])(images, targets=1)
        assert maps.shape == (n, size, size, 1)
        np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)


def test_occlusion_patch_larger_than_a_later_image_is_refused():
    explainer = explainers.Occlusion(any_size_cnn(), patch_size=6)
    explainer(random_images(1, (12, 12, 3)))
    assert explainer(random_images(1, (7, 7, 3))).shape == (1, 7, 7, 1)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="`patch_size` must not be larger"):
        explainer(random_images(1, (4, 4, 3)))


@pytest.mark.parametrize("name", ["grad_cam", "saliency", "occlusion", "integrated_gradients"])
def test_images_that_do_not_fit_the_model_are_refused(name):
    explainer = explainers.get(name, small_cnn((16, 16, 3), 5))
    with pytest.raises(ValueError, match=r"must fit the input of model 'small_cnn', one image of shape "
                                         r"\(16, 16, 3\). Received: images.shape=\(2, 8, 8, 3\)"):
        explainer(random_images(2, (8, 8, 3)))
    with pytest.raises(ValueError, match=r"Received: images.shape=\(2, 16, 16, 1\)"):
        explainer(random_images(2, (16, 16, 1)))


def test_an_empty_batch_is_a_clear_error():
    model = small_cnn()
    empty = np.zeros((0, 16, 16, 3), "float32")
    for explainer in (explainers.GradCAM(model), explainers.Saliency(model)):
        with pytest.raises(ValueError, match=r"empty batch.*Received: images.shape=\(0, 16, 16, 3\)"):
            explainer(empty)
        with pytest.raises(ValueError, match="empty batch"):
            explainer.explain_with_scores(empty)
    for metric in ("average_drop", "increase_in_confidence"):
        with pytest.raises(ValueError, match="empty batch"):
            metrics.get(metric)(model, empty, np.zeros((0, 16, 16, 1), "float32"))


@pytest.mark.parametrize("layer", ["head", "global_average_pooling2d"])
def test_an_explicit_non_spatial_grad_cam_layer_is_refused_at_construction(layer):
    model = small_cnn()
    name = layer if layer == "head" else model.layers[2].name
    with pytest.raises(ValueError, match=f"needs a layer with a 4-D output.*layer '{name}'.*Received: "
                                         f"layer='{name}'"):
        explainers.GradCAM(model, layer=name)


def test_a_segmentation_shaped_output_is_refused():
    model = keras.Sequential([keras.Input((16, 16, 3)),
                              keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                              keras.layers.Conv2D(3, 1, activation="softmax")], name="segmenter")
    for name in ("grad_cam", "saliency"):
        with pytest.raises(ValueError, match=r"explains classifiers.*'segmenter'.*\(16, 16, 3\)"):
            explainers.get(name, model)
    with pytest.raises(ValueError, match="explains classifiers"):
        metrics.get("average_drop")(model, random_images(2), np.ones((2, 16, 16, 1), "float32"))


def train_with_edda(jit_compile, steps=3):
    keras.utils.set_random_seed(0)
    classifier = small_cnn((16, 16, 3), 5)
    initial = classifier.get_weights()
    model = keras.Sequential([keras.Input((16, 16, 3)), EDDA(classifier, rate=1.0, seed=1), classifier])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", jit_compile=jit_compile)
    x = random_images(8 * steps, (16, 16, 3))
    y = np.arange(8 * steps) % 5
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model, classifier, initial, history.history["loss"][-1]


def test_the_edda_layer_trains_under_xla():
    model, classifier, initial, loss = train_with_edda(jit_compile=True)
    assert model.jit_compile  # Keras kept XLA on: the layer compiled
    _, reference, _, reference_loss = train_with_edda(jit_compile=False)
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, reference_loss, rtol=1e-3)
    for trained, expected in zip(classifier.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(trained, expected, rtol=1e-3, atol=1e-4)
    assert not np.allclose(classifier.get_weights()[0], initial[0])  # it trained


@pytest.mark.parametrize("name", sorted(explainers.EXPLAINERS))
def test_every_explainer_refuses_images_with_nan_or_inf(name):
    """Issue 25 item 10: one NaN pixel gave finite maps (all zero for SmoothGrad and DANCE)."""
    model = small_cnn((16, 16, 3), num_classes=4)
    explainer = explainers.get(name, model, **LIGHT.get(name, {}))
    images = random_images(2, (16, 16, 3))
    for bad in (np.nan, np.inf):
        broken = images.copy()
        broken[1, 3, 5, 0] = bad
        with pytest.raises(ValueError, match="`images` contains NaN or Inf"):
            explainer(broken, targets=1)
        with pytest.raises(ValueError, match="`images` contains NaN or Inf"):
            explainer.explain_with_scores(broken)
        # Inside a graph: an assertion of the same message.
        with pytest.raises(tf.errors.InvalidArgumentError, match="`images` contains NaN or Inf"):
            tf.function(lambda x: explainer(x, targets=1))(tf.constant(broken))
    assert explainer(images, targets=1).shape == (2, 16, 16, 1)


def test_fgsm_refuses_images_outside_the_pixel_range():
    """Issue 25 item 9: [0, 255] or [-1, 1] images were clipped to (0, 1) and scored clipped, even at eps 0."""
    model = small_cnn((16, 16, 3), num_classes=4)
    images = random_images(4, (16, 16, 3))
    labels = np.arange(4) % 4
    clean = float(metrics.fgsm_accuracy(model, images, labels, 0.0))
    predicted = np.argmax(model.predict(images, verbose=0), -1)
    assert clean == pytest.approx(np.mean(predicted == labels))  # eps 0 in range: the clean accuracy
    for scaled, pixel_range in ((images * 255.0, (0.0, 1.0)), (images * 2.0 - 1.0, (0.0, 1.0)),
                                (images * 255.0, (-1.0, 1.0))):
        with pytest.raises(ValueError, match=r"`images` must lie in `pixel_range`.*pixel_range=\("):
            metrics.fgsm_accuracy(model, scaled, labels, 0.0, pixel_range)
        with pytest.raises(tf.errors.InvalidArgumentError, match="must lie in `pixel_range`"):
            tf.function(lambda x, r=pixel_range: metrics.fgsm_images(model, x, labels, 0.0, r))(
                tf.constant(scaled))
    # The same images with their own range are accepted; eps 0 leaves them unchanged.
    shifted = metrics.fgsm_images(model, images * 255.0, labels, 0.0, (0.0, 255.0))
    np.testing.assert_array_equal(shifted.numpy(), images * 255.0)
