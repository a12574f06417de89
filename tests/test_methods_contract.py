"""The method family's contract: Keras' two-phase design, one import path, one
way explainers and fills enter a config, one pass over the copies, input checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

import keras_edda
from keras_edda import explainers
from keras_edda.data import method_map_fn
from keras_edda.excon import ExCon, small_encoder
from keras_edda.methods import EDDA, Cutout, SaliencyGuided
from keras_edda.methods.edda import decreased_targets, salient_masks
from keras_edda.ops import fills

SHAPE = (8, 8, 3)


def tiny_cnn(num_classes=3):
    return small_cnn(SHAPE, num_classes)


def batch(n=8, seed=1):
    return random_images(n, SHAPE, seed), (np.arange(n) % 3).astype("int64")


@keras.saving.register_keras_serializable(package="test_contract")
def mean_abs_maps(images, targets):
    """A user's explainer: the mean absolute value over the channels."""
    return tf.reduce_mean(tf.abs(images), axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="test_contract")
def half_fill(images, mask):
    """A user's fill: 0.5 everywhere."""
    return tf.fill(tf.shape(images), 0.5)


@explainers.register("contract_first_channel")
class FirstChannel(explainers.Explainer):
    def explain_batch(self, images, targets):
        return images[..., :1]


# Phase 1: the seed it is given, no side effects ----------------------------------------------------------


def test_get_random_transformation_draws_from_the_given_seed_and_has_no_side_effects():
    layer = Cutout(tiny_cnn(), rate=0.5, seed=0)
    images, labels = batch()
    data = {"images": images, "labels": labels}
    first = layer.get_random_transformation(data, seed=7)
    again = layer.get_random_transformation(data, seed=7)
    other = layer.get_random_transformation(data, seed=8)
    for key in ("copy_masks", "copy_weights"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["copy_masks"], other["copy_masks"])
    # No side effects: the step count (warm-up) and the statistics stay; the surfaces `record`.
    assert int(layer.steps.numpy()) == 0 and layer.statistics() == {}
    generated = [layer.get_random_transformation(data)["copy_masks"] for _ in range(2)]
    assert not np.array_equal(*generated)   # `None`: draws from the layer's SeedGenerator
    given = layer.get_random_transformation(data, seed=keras.random.SeedGenerator(3))
    assert given["copy_masks"].shape == first["copy_masks"].shape
    assert int(layer.steps.numpy()) == 0
    layer.record(first)
    assert int(layer.steps.numpy()) == 1 and layer.statistics()["erased_used"] == pytest.approx(
        float(np.mean(first["copy_weights"].numpy() > 0)))
    layer(data)   # the dict surface records
    method_map_fn(layer)(images, labels)   # and the map function
    assert int(layer.steps.numpy()) == 3


def test_warmup_reads_the_step_count_without_advancing_it():
    layer = Cutout(tiny_cnn(), seed=0, warmup_steps=1)
    data = {"images": batch()[0], "labels": batch()[1]}
    for _ in range(2):
        np.testing.assert_array_equal(layer.get_random_transformation(data)["copy_weights"], 0.0)
    layer(data)
    assert np.all(layer.get_random_transformation(data)["copy_weights"].numpy() == 1.0)


# One import path ----------------------------------------------------------------------------------------


def test_old_import_paths_are_deprecation_aliases_of_the_same_classes():
    from keras_edda import augment, layers

    with pytest.warns(DeprecationWarning, match="keras_edda.methods"):
        assert layers.EDDA is keras_edda.methods.EDDA
    with pytest.warns(DeprecationWarning, match="keras_edda.methods"):
        assert layers.Cutout is keras_edda.methods.Cutout
    with pytest.warns(DeprecationWarning):
        assert augment.decreased_targets is decreased_targets
    with pytest.raises(AttributeError):
        layers.NotAThing  # noqa: B018


# Explainers and fills in configs -----------------------------------------------------------------------


@pytest.mark.parametrize("explainer", [mean_abs_maps, "contract_first_channel"])
def test_a_users_explainer_and_fill_work_in_excon_and_survive_save_and_load(explainer, tmp_path):
    images, labels = batch(8)
    model = ExCon(small_encoder(SHAPE, width=4), 3, projection_dim=8, explainer=explainer, fill=half_fill,
                  warmup_steps=0, seed=0, jitter=None)
    model.compile("adam", loss="sparse_categorical_crossentropy")
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and 0.0 <= history["masked_kept"][0] <= 1.0
    model.save(tmp_path / "excon.keras")
    loaded = keras.saving.load_model(tmp_path / "excon.keras")
    assert loaded.fill is half_fill
    assert explainers.name_of(loaded.explainer) == explainers.name_of(model.explainer)
    masked, _ = loaded.masked_views(tf.constant(images), tf.constant(labels))
    expected, _ = model.masked_views(tf.constant(images), tf.constant(labels))
    np.testing.assert_allclose(masked, expected, rtol=1e-5, atol=1e-6)


def test_excon_refuses_an_explainer_instance_and_an_unregistered_function():
    def unregistered(images, targets):
        return images[..., :1]

    with pytest.raises(ValueError, match="not an instance"):
        ExCon(small_encoder(SHAPE, width=4), 3, explainer=FirstChannel(tiny_cnn()))
    with pytest.raises(ValueError, match="cannot be saved"):
        ExCon(small_encoder(SHAPE, width=4), 3, explainer=unregistered)


@pytest.mark.parametrize("cls", [EDDA, SaliencyGuided])
def test_a_users_explainer_and_fill_round_trip_in_every_explainer_driven_method(cls, tmp_path):
    fills.register("contract_half")(lambda **kwargs: half_fill)
    images, labels = batch(4)
    for fill in (half_fill, "contract_half"):
        classifier = tiny_cnn()
        model = keras.Sequential([keras.Input(SHAPE), cls(classifier, explainer=mean_abs_maps, fill=fill, seed=0),
                                  classifier])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
        model.save(tmp_path / "model.keras")
        layer = keras.saving.load_model(tmp_path / "model.keras").layers[0]
        assert layer.explainer.fn is mean_abs_maps and layer.fill == fill
        out = layer({"images": images, "labels": labels})
        assert np.isfinite(out["images"].numpy()).all()


# One pass over the copies -------------------------------------------------------------------------------


class CountedPasses(keras.layers.Layer):
    """Identity that counts the forward passes the model runs."""

    def build(self, input_shape):
        self.passes = self.add_weight(shape=(), initializer="zeros", trainable=False, name="passes")

    def call(self, inputs):
        self.passes.assign_add(1.0)
        return inputs


def old_in_model_loss(classifier, images):
    """EDDA's copies' loss at its defaults as the layer computed it before: the keep-if-correct and
    "decrease" decisions from two inference passes of their own, then the training pass."""
    grad_cam = explainers.get("grad_cam", classifier)
    maps, scores = grad_cam.explain_with_scores(images, None)
    original = tf.stop_gradient(tf.nn.softmax(scores) if grad_cam.scores_are_logits else scores)
    targets = tf.one_hot(tf.argmax(original, -1), 3)
    salient = salient_masks(tf.stop_gradient(maps), 0.5)
    area = tf.reduce_mean(salient, axis=[1, 2, 3])
    weight = tf.cast((area > 0) & (area < 1), tf.float32)
    kept, hidden = images * salient, images * (1.0 - salient)   # fill: constant 0
    kept_weight = weight * tf.cast(tf.argmax(classifier(kept), -1) == tf.argmax(targets, -1), tf.float32)
    hidden_target, active = decreased_targets(tf.stop_gradient(classifier(hidden)), original, targets, 0.1)
    copy_targets = tf.concat([targets, hidden_target], 0)
    copy_weights = tf.concat([kept_weight, weight * active], 0)
    log_q = tf.math.log(classifier(tf.concat([kept, hidden], 0), training=True))
    log_t = tf.math.log(tf.maximum(copy_targets, 1e-12))
    return tf.reduce_sum(copy_weights * tf.reduce_sum(copy_targets * (log_t - log_q), -1)) / images.shape[0]


def test_in_model_step_reads_decisions_from_the_training_pass_with_the_same_gradients():
    keras.utils.set_random_seed(0)
    counter = CountedPasses()
    classifier = keras.Sequential([keras.Input(SHAPE), counter, *tiny_cnn().layers])
    layer = EDDA(classifier, seed=0)
    images = tf.constant(batch(8)[0])
    with tf.GradientTape() as tape:
        expected = old_in_model_loss(classifier, images)
    expected_grads = tape.gradient(expected, classifier.trainable_variables)
    assert float(expected) > 1e-4
    before = float(counter.passes.numpy())
    with tf.GradientTape() as tape:
        layer(images, training=True)
        loss = layer.losses[0]
    grads = tape.gradient(loss, classifier.trainable_variables)
    # The explanation's forward and the training pass over both copies: 2 (before: 4).
    assert float(counter.passes.numpy()) - before == 2
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# Bad input and what the losses mean ---------------------------------------------------------------------


@pytest.mark.parametrize("weights", [[1.0, np.nan, 1.0, 1.0], [1.0, -1.0, 1.0, 1.0]])
def test_nan_or_negative_sample_weights_are_refused(weights):
    layer = Cutout(tiny_cnn(), seed=0)
    images, labels = batch(4)
    weights = np.asarray(weights, "float32")
    with pytest.raises(ValueError, match="sample_weight` must be finite and >= 0"):
        layer({"images": images, "labels": labels, "sample_weight": weights})
    with pytest.raises(ValueError, match="sample_weight` must be finite and >= 0"):
        method_map_fn(layer)(images, labels, weights)
    ds = tf.data.Dataset.from_tensors((images, labels, weights)).map(method_map_fn(layer))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite and >= 0"):
        list(ds)


def test_excon_refuses_nan_images():
    images, labels = batch(8)
    images[3, 2, 2, 0] = np.nan
    model = ExCon(small_encoder(SHAPE, width=4), 3, projection_dim=8, warmup_steps=0, seed=0)
    model.compile("adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(tf.errors.InvalidArgumentError, match="images` contains NaN"):
        model.fit(images, labels, batch_size=8, epochs=1, verbose=0)


def test_a_sparse_loss_with_soft_labels_is_refused_with_the_reason():
    classifier = tiny_cnn()
    classifier.compile("adam", "sparse_categorical_crossentropy")
    layer = Cutout(classifier, seed=0)
    with pytest.raises(ValueError, match="soft labels"):
        method_map_fn(layer)
    with pytest.raises(ValueError, match="CategoricalCrossentropy"):
        layer({"images": batch(4)[0], "labels": batch(4)[1]})
    classifier.compile("adam", keras.losses.CategoricalCrossentropy())
    assert method_map_fn(layer)(*batch(4))[1].shape == (8, 3)


def test_the_copies_loss_is_logged_apart_so_that_loss_compares_with_val_loss():
    keras.utils.set_random_seed(0)
    classifier = tiny_cnn()
    layer = EDDA(classifier, keep_if_correct=False, seed=0)
    model = keras.Sequential([keras.Input(SHAPE), layer, classifier])
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy", metrics=["accuracy"])  # weights stay
    images, labels = batch(8)
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0).history
    copies_loss = layer.statistics()["copies_loss"]
    assert copies_loss > 1e-3 and float(layer.added_loss.result()) == copies_loss
    evaluated = model.evaluate(images, labels, verbose=0)
    assert len(evaluated) == 2   # loss, accuracy: evaluate's return values are unchanged
    np.testing.assert_allclose(history["loss"][0] - copies_loss, evaluated[0], rtol=1e-4)
    layer.reset_statistics()
    assert "copies_loss" not in layer.statistics()
