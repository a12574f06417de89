"""Parity with tf-explain's internals on the same model and images.

Tolerances: Grad-CAM and Integrated Gradients rtol 1e-4 / atol 1e-6 of the
map's scale (same float32 ops in another order); Occlusion 1e-5 (forward
passes only). tf-explain takes one class per call, so each class is compared
on its own.
"""

import cv2
import keras
import numpy as np
import pytest
from conftest import random_images, small_cnn

from keras_edda import explainers

tf_explain_core = pytest.importorskip("tf_explain.core")


def functional_cnn():
    """small_cnn as a Functional model: tf-explain reads `model.output`,
    which a Keras 3 Sequential does not define."""
    sequential = small_cnn(activation="softmax")
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for layer in sequential.layers:
        x = layer.__class__.from_config(layer.get_config())(x)
    model = keras.Model(inputs, x)
    model.set_weights(sequential.get_weights())
    return model


def _close(actual, expected, rtol):
    scale = float(np.max(np.abs(expected))) + 1e-12
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("class_index", [0, 3])
def test_grad_cam_matches_tf_explain(class_index):
    model = functional_cnn()
    images = random_images(4)
    outputs, grads = tf_explain_core.GradCAM.get_gradients_and_filters(
        model, images, "conv2", class_index, use_guided_grads=False
    )
    cams = tf_explain_core.GradCAM.generate_ponderated_output(outputs, grads)
    expected = np.stack(
        [cv2.resize(np.maximum(cam.numpy(), 0.0), (16, 16)) for cam in cams]
    )[..., None]
    ours = explainers.GradCAM(model, layer="conv2", use_logits=False)(
        images, class_index
    )
    _close(ours.numpy(), expected, 1e-4)


@pytest.mark.parametrize("class_index", [1, 2])
def test_integrated_gradients_matches_tf_explain(class_index):
    model = functional_cnn()
    images = random_images(3)
    steps = 10
    interpolations = tf_explain_core.IntegratedGradients.generate_interpolations(
        images, steps
    )
    mean_gradients = tf_explain_core.IntegratedGradients.get_integrated_gradients(
        interpolations, model, class_index, steps
    ).numpy()
    expected = np.sum(mean_gradients * (images - 0.0), axis=-1, keepdims=True)
    ours = explainers.IntegratedGradients(
        model, steps=steps, method="uniform", use_logits=False, batch_size=7
    )(images, class_index)
    _close(ours.numpy(), expected, 1e-4)


@pytest.mark.parametrize("patch_size", [1, 4])
def test_occlusion_matches_tf_explain(patch_size):
    model = functional_cnn()
    images = random_images(2) * 255.0
    sensitivity = tf_explain_core.OcclusionSensitivity(batch_size=64)
    class_index = 2
    ours = explainers.Occlusion(
        model, patch_size=patch_size, fill=127.5, use_logits=False, batch_size=100
    )(images, class_index).numpy()
    probabilities = model.predict(images, verbose=0)[:, class_index]
    for i, image in enumerate(images):
        expected = sensitivity.get_sensitivity_map(
            model, image, class_index, patch_size
        )
        # tf-explain scores 1 - p(occluded); ours p(x) - p(occluded).
        coarse = ours[i, ::patch_size, ::patch_size, 0] + (1.0 - probabilities[i])
        _close(cv2.resize(coarse, (16, 16)), expected, 1e-5)
