"""A keras.applications backbone nested in a Sequential with a new head: the
model that makes other Grad-CAM libraries fail with "Graph disconnected"."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images

from keras_edda import explainers


@pytest.fixture(scope="module")
def nested():
    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNetV2(
        input_shape=(64, 64, 3), weights=None, include_top=False, alpha=0.35
    )
    model = keras.Sequential(
        [keras.Input((64, 64, 3)), backbone,
         keras.layers.GlobalAveragePooling2D(),
         keras.layers.Dense(3, activation="softmax")]
    )
    return model, backbone


def test_automatic_layer_is_inside_the_backbone(nested):
    model, backbone = nested
    explainer = explainers.GradCAM(model)
    assert explainer.layer_path == f"{backbone.name}/out_relu"
    maps = explainer(random_images(2, (64, 64, 3)), 1)
    assert maps.shape == (2, 64, 64, 1)
    assert float(tf.reduce_max(maps)) > 0.0


def test_named_nested_path_and_tuple(nested):
    model, backbone = nested
    images = random_images(2, (64, 64, 3))
    by_path = explainers.GradCAM(model, layer=f"{backbone.name}/Conv_1")
    by_tuple = explainers.GradCAM(model, layer=(backbone.name, "Conv_1"))
    by_name = explainers.GradCAM(model, layer="Conv_1")
    assert by_path.layer is backbone.get_layer("Conv_1")
    np.testing.assert_allclose(by_path(images, 2), by_tuple(images, 2), rtol=1e-5)
    np.testing.assert_allclose(by_path(images, 2), by_name(images, 2), rtol=1e-5)


def test_nested_in_tf_function_train_step_and_dataset(nested):
    model, _ = nested
    explainer = explainers.GradCAM(model)
    images = random_images(4, (64, 64, 3))
    eager = explainer(images, [0, 1, 2, 0])
    graph = tf.function(lambda x: explainer(x, tf.constant([0, 1, 2, 0])))(images)
    np.testing.assert_allclose(graph, eager, rtol=1e-4, atol=1e-6)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(2)
    mapped = np.concatenate([m for m in dataset.map(lambda x: explainer(x, 1))])
    np.testing.assert_allclose(mapped, explainer(images, 1), rtol=1e-4, atol=1e-6)


def test_nested_in_train_step(nested):
    model, _ = nested

    class WithExplanations(keras.Model):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.explainer = explainers.GradCAM(inner)

        def call(self, x):
            return self.inner(x)

        def train_step(self, data):
            x, y = data
            maps = self.explainer(x, y)
            with tf.GradientTape() as tape:
                loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return {"loss": loss, "map_max": tf.reduce_max(maps)}

    wrapper = WithExplanations(model)
    wrapper.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = wrapper.fit(random_images(4, (64, 64, 3)), np.array([0, 1, 2, 0]),
                          batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["map_max"][0])
