"""Right for the Right Reasons (Ross, Hughes & Doshi-Velez, 2017) as a method layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_cnn

from keras_edda.data import method_map_fn
from keras_edda.methods import METHODS, RightForRightReasons

SHAPE = (6, 6, 2)


def linear_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax", name="head")])


def data(n=8, seed=1):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(n, *SHAPE)).astype("float32")
    labels = (np.arange(n) % 3).astype("int64")
    masks = np.zeros((n, 6, 6, 1), "float32")
    masks[:, :, :3] = 1.0   # the left half is "irrelevant"
    return images, labels, masks


def numpy_penalty(model, images, masks, weight):
    """For softmax(x W + b): d/dx sum_k log p_k = W (1 - K p), in NumPy."""
    kernel, bias = (w.numpy() for w in model.get_layer("head").weights)
    flat = images.reshape(len(images), -1)
    logits = flat @ kernel + bias
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    gradients = ((1.0 - 3 * p) @ kernel.T).reshape(images.shape)
    return weight * np.mean(np.sum((masks * gradients) ** 2, axis=(1, 2, 3)))


def test_registered_as_rrr():
    assert METHODS["rrr"] is RightForRightReasons


def test_penalty_equals_the_numpy_reference():
    model = linear_model()
    images, _, masks = data()
    layer = RightForRightReasons(model, weight=3.0)
    expected = numpy_penalty(model, images, masks, 3.0)
    assert expected > 1e-3
    np.testing.assert_allclose(float(layer.penalty(images, masks)), expected, rtol=1e-4)
    # A (N, H, W) mask and a mask with the images' channels give the same penalty.
    np.testing.assert_allclose(float(layer.penalty(images, masks[..., 0])), expected, rtol=1e-4)
    np.testing.assert_allclose(float(layer.penalty(images, np.repeat(masks, 2, -1))), expected, rtol=1e-4)


def test_the_training_gradient_is_the_double_backprop_of_the_penalty():
    model = small_cnn(SHAPE, 3)
    images, _, masks = data()
    x = tf.constant(images)
    layer = RightForRightReasons(model, weight=5.0)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(x)
            total = tf.reduce_sum(tf.math.log(model(x, training=True)))
        input_gradients = inner.gradient(total, x)
        expected = 5.0 * tf.reduce_mean(tf.reduce_sum(tf.square(masks * input_gradients), axis=[1, 2, 3]))
    expected_grads = outer.gradient(expected, model.trainable_variables)
    with tf.GradientTape() as tape:
        out = layer({"images": x, "masks": masks}, training=True)
        loss = layer.losses[0]
    grads = tape.gradient(loss, model.trainable_variables)
    np.testing.assert_array_equal(out, images)   # the images pass through
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def masked_gradient_energy(model, images, masks):
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(tf.math.log(model(x)))
    return float(tf.reduce_sum(tf.square(masks * tape.gradient(total, x))))


@pytest.mark.parametrize("surface", ["model", "map_fn"])
def test_in_a_model_and_in_tf_data_it_moves_the_gradient_out_of_the_mask(surface):
    images, labels, masks = data(16)
    energies = {}
    for weight in (0.0, 100.0):
        classifier = linear_model(seed=2)
        layer = RightForRightReasons(classifier, weight=weight)
        model = layer.wrap()
        model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
        if surface == "model":
            history = model.fit({"images": images, "masks": masks}, labels, batch_size=8, epochs=10, verbose=0)
        else:
            ds = tf.data.Dataset.from_tensor_slices((images, labels, masks)).batch(8).map(method_map_fn(layer))
            history = model.fit(ds, epochs=10, verbose=0)
        assert np.isfinite(history.history["loss"]).all() and "penalty" in layer.statistics()
        energies[weight] = masked_gradient_energy(classifier, images, masks)
    assert energies[100.0] < 0.1 * energies[0.0]


def test_save_and_load(tmp_path):
    images, labels, masks = data()
    classifier = small_cnn(SHAPE, 3)
    layer = RightForRightReasons(classifier, weight=2.0, warmup_steps=1)
    model = layer.wrap()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit({"images": images, "masks": masks}, labels, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "rrr.keras")
    loaded = keras.saving.load_model(tmp_path / "rrr.keras")
    rebuilt = next(lay for lay in loaded.layers if isinstance(lay, RightForRightReasons))
    assert rebuilt.weight == 2.0 and rebuilt.warmup_steps == 1
    assert any(rebuilt.get_classifier() is lay for lay in loaded.layers)
    np.testing.assert_allclose(float(rebuilt.penalty(images, masks)), float(layer.penalty(images, masks)),
                               rtol=1e-5)
    np.testing.assert_allclose(loaded.predict({"images": images, "masks": masks}, verbose=0),
                               classifier.predict(images, verbose=0), rtol=1e-6)
    loaded.fit({"images": images, "masks": masks}, labels, batch_size=8, epochs=1, verbose=0)


def test_bad_masks_and_settings_are_refused():
    images, labels, masks = data(4)
    layer = RightForRightReasons(linear_model())
    with pytest.raises(ValueError, match=r"masks.shape=\(4, 5, 6, 1\)"):
        layer.penalty(images, masks[:, :5])
    with pytest.raises(ValueError, match="masks.shape="):
        layer.penalty(images, np.ones((4, 6, 6, 3), "float32"))
    bad = masks.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`masks` contains NaN"):
        layer.penalty(images, bad)
    with pytest.raises(ValueError, match="'images' and 'masks'"):
        layer({"images": images, "labels": labels})
    ds = tf.data.Dataset.from_tensors((images, labels, bad)).map(method_map_fn(layer))
    with pytest.raises(tf.errors.InvalidArgumentError, match="`masks` contains NaN"):
        list(ds)
    with pytest.raises(ValueError, match="takes no `rate`"):
        RightForRightReasons(linear_model(), rate=0.5)
    with pytest.raises(ValueError, match="weight=-1"):
        RightForRightReasons(linear_model(), weight=-1)


class CountedPasses(keras.layers.Layer):
    """Identity that counts the forward passes the model runs."""

    def build(self, input_shape):
        self.passes = self.add_weight(shape=(), initializer="zeros", trainable=False, name="passes")

    def call(self, inputs):
        self.passes.assign_add(1.0)
        return inputs


def test_the_wrapped_model_runs_one_forward_with_the_reference_gradients():
    counter = CountedPasses()
    classifier = keras.Sequential([keras.Input(SHAPE), counter, *small_cnn(SHAPE, 3).layers])
    model = RightForRightReasons(classifier, weight=5.0).wrap()
    images, labels, masks = data()
    x = tf.constant(images)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(x)
            probabilities = classifier(x, training=True)
            total = tf.reduce_sum(tf.math.log(probabilities))
        gradients = inner.gradient(total, x)
        expected = cross_entropy(labels, probabilities) + 5.0 * tf.reduce_mean(
            tf.reduce_sum(tf.square(masks * gradients), axis=[1, 2, 3]))
    expected_grads = outer.gradient(expected, classifier.trainable_variables)
    model({"images": x, "masks": masks}, training=True)   # builds
    before = float(counter.passes.numpy())
    with tf.GradientTape() as tape:
        outputs = model({"images": x, "masks": masks}, training=True)
        loss = cross_entropy(labels, outputs) + tf.add_n(model.losses)
    grads = tape.gradient(loss, classifier.trainable_variables)
    assert float(counter.passes.numpy()) - before == 1   # the penalty and the loss share one forward
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_the_layer_in_front_of_the_classifier_in_a_functional_model():
    images, labels, masks = data()
    classifier = small_cnn(SHAPE, 3)
    layer = RightForRightReasons(classifier, weight=1.0)
    inputs = {"images": keras.Input(SHAPE, name="images"), "masks": keras.Input((6, 6, 1), name="masks")}
    model = keras.Model(inputs, classifier(layer(inputs)))
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit({"images": images, "masks": masks}, labels, batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all() and layer.statistics()["penalty"] > 0
    assert int(layer.steps.numpy()) == 2
