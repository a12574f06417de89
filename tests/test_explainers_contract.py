"""The shared explainer contract: shapes, dtypes, targets, model kinds,
graph contexts, data formats and mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_cnn

from keras_edda import explainers

SETTINGS = {
    "grad_cam": {},
    "integrated_gradients": {"steps": 8, "batch_size": 20},
    "occlusion": {"patch_size": 4, "batch_size": 30},
    "saliency": {},
    "random": {"seed": 1},
}
NAMES = list(SETTINGS)


def make(name, model, **extra):
    return explainers.get(name, model, **{**SETTINGS[name], **extra})


def target_forms(n, num_classes):
    labels = np.arange(n) % num_classes
    return {
        "none": None,
        "int": 2,
        "vector": labels,
        "tensor_vector": tf.constant(labels, tf.int64),
        "one_hot": tf.one_hot(labels, num_classes),
        "soft": np.full((n, num_classes), 1.0 / num_classes, "float32"),
    }


@pytest.mark.parametrize("name", NAMES)
def test_shape_and_dtype_for_every_target_form(name, model, images):
    explainer = make(name, model)
    for form, targets in target_forms(len(images), 5).items():
        maps = explainer(images, targets)
        assert maps.shape == (6, 16, 16, 1), form
        assert maps.dtype == tf.float32, form
        assert bool(tf.reduce_all(tf.math.is_finite(maps))), form


@pytest.mark.parametrize("name", ["grad_cam", "integrated_gradients", "occlusion", "saliency"])
def test_targets_select_the_class(name, model, images):
    explainer = make(name, model)
    as_int = explainer(images, 3)
    as_one_hot = explainer(images, tf.one_hot([3] * 6, 5))
    other = explainer(images, 1)
    np.testing.assert_allclose(as_int, as_one_hot, rtol=1e-5, atol=1e-6)
    assert not np.allclose(as_int, other)


@pytest.mark.parametrize("name", ["grad_cam", "integrated_gradients", "occlusion", "saliency"])
def test_none_targets_explain_the_prediction(name, model, images):
    explainer = make(name, model)
    predicted = np.argmax(model.predict(images, verbose=0), axis=-1)
    np.testing.assert_allclose(
        explainer(images), explainer(images, predicted), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", NAMES)
def test_explain_with_scores_returns_the_maps_and_the_logits(name, images):
    softmax_model = small_cnn(activation="softmax")
    linear_model = small_cnn(activation=None)
    linear_model.set_weights(softmax_model.get_weights())
    explainer = make(name, softmax_model)
    maps, scores = explainer.explain_with_scores(images, 2)
    if name != "random":
        np.testing.assert_allclose(maps, explainer(images, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, linear_model(images), rtol=1e-5, atol=1e-5)
    chunked = make(name, softmax_model, batch_size=4)
    np.testing.assert_allclose(chunked.explain_with_scores(images)[1], scores,
                               rtol=1e-5, atol=1e-5)


def test_grad_cam_is_relu_of_weighted_activations(model, images):
    maps = explainers.GradCAM(model)(images, 0)
    assert float(tf.reduce_min(maps)) >= 0.0


def test_softmax_model_is_explained_at_the_logit(images):
    softmax_model = small_cnn(activation="softmax")
    linear_model = small_cnn(activation=None)
    linear_model.set_weights(softmax_model.get_weights())
    for name in ["grad_cam", "integrated_gradients", "saliency"]:
        on_softmax = make(name, softmax_model)(images, 1)
        on_linear = make(name, linear_model)(images, 1)
        np.testing.assert_allclose(on_softmax, on_linear, rtol=1e-4, atol=1e-6)
        on_probabilities = make(name, softmax_model, use_logits=False)(images, 1)
        assert not np.allclose(on_probabilities, on_linear, atol=1e-6)
    # The user's layer is left as it was.
    assert softmax_model.get_layer("head").activation.__name__ == "softmax"
    np.testing.assert_allclose(
        np.sum(softmax_model.predict(images, verbose=0), axis=-1), 1.0, rtol=1e-5
    )


def test_softmax_layer_at_the_end_is_explained_at_its_input(images):
    base = small_cnn(activation=None)
    with_layer = keras.Sequential([base, keras.layers.Softmax()])
    np.testing.assert_allclose(
        explainers.Saliency(with_layer)(images, 2),
        explainers.Saliency(base)(images, 2),
        rtol=1e-5, atol=1e-7,
    )


def test_binary_sigmoid_head(images):
    binary = small_cnn(num_classes=1, activation="sigmoid")
    explainer = explainers.Saliency(binary)
    positive = explainer(images, 1)
    negative = explainer(images, 0)
    np.testing.assert_allclose(positive, negative, rtol=1e-5)  # |grad| is symmetric
    grad_cam = explainers.GradCAM(binary)
    assert grad_cam(images, 1).shape == (6, 16, 16, 1)
    logits = explainers.IntegratedGradients(binary, steps=4)
    np.testing.assert_allclose(logits(images, 1), -logits(images, 0), rtol=1e-4, atol=1e-6)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(6, 3, activation="relu", name="conv")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head = keras.layers.Dense(4, activation="softmax")

    def call(self, inputs):
        return self.head(self.pool(self.conv(inputs)))


def functional_cnn():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
    skip = keras.layers.Conv2D(6, 1, name="skip")(x)
    x = keras.layers.Add(name="merge")([x, skip])
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
@pytest.mark.parametrize("name", NAMES)
def test_model_kinds(kind, name, images):
    model = {"sequential": small_cnn, "functional": functional_cnn,
             "subclassed": Subclassed}[kind]()
    maps = make(name, model)(images, 1)
    assert maps.shape == (6, 16, 16, 1)


def test_grad_cam_layer_found_automatically(model):
    assert explainers.GradCAM(model).layer_path == "conv2"
    assert explainers.GradCAM(functional_cnn()).layer_path == "merge"


@pytest.mark.parametrize("name", NAMES)
def test_inside_tf_function(name, model, images):
    explainer = make(name, model)
    compiled = tf.function(lambda x, y: explainer(x, y))
    eager = explainer(images, [0, 1, 2, 3, 4, 0])
    graph = compiled(tf.constant(images), tf.constant([0, 1, 2, 3, 4, 0]))
    if name != "random":
        np.testing.assert_allclose(graph, eager, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_inside_tf_data_map(name, model, images):
    explainer = make(name, model)
    labels = np.arange(6) % 5
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)
    mapped = dataset.map(lambda x, y: explainer(x, y), num_parallel_calls=2)
    maps = np.concatenate([m.numpy() for m in mapped])
    assert maps.shape == (6, 16, 16, 1)
    if name != "random":
        np.testing.assert_allclose(maps, explainer(images, labels), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["grad_cam", "integrated_gradients", "occlusion"])
def test_inside_custom_train_step(name, images):
    """A model whose train_step explains its own inputs with its own weights."""

    class Explained(keras.Model):
        def __init__(self):
            super().__init__()
            self.net = small_cnn()
            self.explainer = None
            self.map_means = []

        def call(self, x):
            return self.net(x)

        def train_step(self, data):
            x, y = data
            maps = self.explainer(x, tf.cast(y, tf.int32))
            with tf.GradientTape() as tape:
                loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return {"loss": loss, "map_mean": tf.reduce_mean(maps)}

    model = Explained()
    model(images)
    model.explainer = make(name, model.net)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(images, np.arange(6) % 5, batch_size=3, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["map_mean"]))
    assert np.all(np.isfinite(history.history["loss"]))


def test_built_once_per_shape(model, images):
    explainer = explainers.IntegratedGradients(model, steps=4)
    for _ in range(3):
        explainer(images, 1)
    explainer(images[:4], 1)
    explainer(images[:5], 2)
    traces = explainer.tracing_count()
    # int-id targets: one trace for N=6, one for N=4, then a shape-relaxed one.
    assert traces <= 3


@pytest.mark.parametrize("name", NAMES)
def test_channels_first(name, images):
    keras.config.set_image_data_format("channels_first")
    model_first = small_cnn(input_shape=(3, 16, 16))
    explainer = make(name, model_first)
    assert explainer.data_format == "channels_first"
    maps = explainer(np.transpose(images, (0, 3, 1, 2)), 1)
    assert maps.shape == (6, 1, 16, 16)


@pytest.mark.parametrize("name", ["grad_cam", "integrated_gradients", "occlusion", "saliency"])
def test_channels_first_matches_channels_last(name, images):
    last = small_cnn()
    keras.config.set_image_data_format("channels_first")
    first = small_cnn(input_shape=(3, 16, 16))
    first.set_weights(last.get_weights())
    maps_first = make(name, first)(np.transpose(images, (0, 3, 1, 2)), 1)
    keras.config.set_image_data_format("channels_last")
    maps_last = make(name, last)(images, 1)
    np.testing.assert_allclose(
        np.transpose(maps_first, (0, 2, 3, 1)), maps_last, rtol=1e-3, atol=1e-5
    )


@pytest.mark.parametrize("name", NAMES)
def test_mixed_float16_maps_are_float32(name, images):
    reference = small_cnn()
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = small_cnn()
    model.set_weights(reference.get_weights())
    maps = make(name, model)(images, 1)
    assert maps.dtype == tf.float32
    assert bool(tf.reduce_all(tf.math.is_finite(maps)))
    if name in ("grad_cam", "occlusion"):
        keras.mixed_precision.set_global_policy("float32")
        expected = make(name, reference)(images, 1)
        scale = float(tf.reduce_max(tf.abs(expected))) + 1e-6
        assert float(tf.reduce_max(tf.abs(maps - expected))) < 0.05 * scale


def test_batch_size_chunks_give_the_same_result(model, images):
    whole = explainers.Occlusion(model, patch_size=4, batch_size=None)(images, 1)
    chunked = explainers.Occlusion(model, patch_size=4, batch_size=7)(images, 1)
    np.testing.assert_allclose(whole, chunked, rtol=1e-5, atol=1e-6)
    whole = explainers.GradCAM(model)(images, 1)
    chunked = explainers.GradCAM(model, batch_size=4)(images, 1)
    np.testing.assert_allclose(whole, chunked, rtol=1e-5, atol=1e-6)


def test_get_returns_instances_and_passes_through(model):
    explainer = explainers.get("saliency", model)
    assert isinstance(explainer, explainers.Saliency)
    assert explainers.get(explainer, model) is explainer
    assert "Saliency" in repr(explainer)
