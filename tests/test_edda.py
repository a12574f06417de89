"""The EDDA transform, its map function and its layer."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers
from keras_edda.data import edda_map_fn
from keras_edda.methods import EDDA


def edda_transform(images, labels, model, explainer, sample_weight=None, **settings):
    """The dict surface: originals then copies, soft targets, weights."""
    out = EDDA(model, explainer=explainer, **settings)(
        {"images": images, "labels": np.asarray(labels),
         **({} if sample_weight is None else {"sample_weight": np.asarray(sample_weight, "float32")})})
    return out["images"], out["labels"], out["sample_weight"]


class FirstChannelExplainer(explainers.Explainer):
    """A real explainer whose map is the image's first channel: known masks."""

    def explain_batch(self, images, targets):
        return images[..., :1]


def known_batch():
    images = np.zeros((2, 4, 4, 3), "float32")
    images[:, :2, :, 0] = 1.0   # top half salient in channel 0
    images[:, :, :, 1] = 0.5
    return images


def test_transform_known_occlusions_and_targets():
    model = small_cnn((4, 4, 3), num_classes=3, activation="softmax")
    explainer = FirstChannelExplainer(model)
    out_images, targets, weights = edda_transform(
        known_batch(), np.array([0, 2]), model, explainer, threshold=0.5, fill_value=-1.0,
        keep_if_correct=False, salient_target=0.5)
    assert out_images.shape == (6, 4, 4, 3) and targets.shape == (6, 3)
    assert weights.shape == (6,)
    kept, hidden = out_images[2:4].numpy(), out_images[4:6].numpy()
    np.testing.assert_array_equal(kept[:, :2], known_batch()[:, :2])   # salient kept
    np.testing.assert_array_equal(kept[:, 2:], -1.0)                   # rest filled
    np.testing.assert_array_equal(hidden[:, :2], -1.0)                 # salient filled
    np.testing.assert_array_equal(hidden[:, 2:], known_batch()[:, 2:])
    np.testing.assert_allclose(targets[:2], [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(targets[2:4], targets[:2])
    np.testing.assert_allclose(targets[4], [0.5 + 0.5 / 3, 0.5 / 3, 0.5 / 3], rtol=1e-6)
    np.testing.assert_allclose(weights, 1.0)


def test_uniform_and_none_salient_targets():
    model = small_cnn((4, 4, 3), num_classes=4)
    explainer = FirstChannelExplainer(model)
    _, targets, _ = edda_transform(known_batch(), [1, 3], model, explainer, keep_if_correct=False,
                                   salient_target="uniform")
    np.testing.assert_allclose(targets[4:], 0.25)
    images, targets, weights = edda_transform(
        known_batch(), [1, 3], model, explainer, salient_target="none")
    assert images.shape[0] == targets.shape[0] == weights.shape[0] == 4


def test_keep_if_correct_zeroes_weights_of_misclassified_copies():
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([np.zeros_like(kernel), np.array([5.0, 0, 0], "float32")])
    explainer = FirstChannelExplainer(model)  # the model always predicts class 0
    _, _, weights = edda_transform(known_batch(), [0, 2], model, explainer, keep_if_correct=True)
    np.testing.assert_allclose(weights.numpy(), [1, 1, 1, 0, 1, 1])


def test_sample_weights_are_inherited_and_warmup_gives_zero():
    model = small_cnn((4, 4, 3), num_classes=3)
    explainer = FirstChannelExplainer(model)
    _, _, weights = edda_transform(known_batch(), [0, 1], model, explainer, keep_if_correct=False,
                                   salient_target="uniform", sample_weight=[2.0, 3.0])
    np.testing.assert_allclose(weights, [2, 3, 2, 3, 2, 3])
    _, _, weights = edda_transform(known_batch(), [0, 1], model, explainer, warmup_steps=1)
    np.testing.assert_allclose(weights, [1, 1, 0, 0, 0, 0])


def test_map_fn_warmup_counts_batches():
    model = small_cnn((16, 16, 3))
    fn = edda_map_fn(model, warmup_steps=1, keep_if_correct=False, salient_target="uniform")
    ds = tf.data.Dataset.from_tensor_slices((random_images(8), np.arange(8) % 5)).batch(4).map(fn)
    weights = [w.numpy() for _, _, w in ds]
    np.testing.assert_allclose(weights[0][4:], 0.0)
    np.testing.assert_allclose(weights[1][4:], 1.0)


def test_warmup_in_epochs():
    model = small_cnn((16, 16, 3))
    fn = edda_map_fn(model, warmup_epochs=2, steps_per_epoch=2, keep_if_correct=False, salient_target="uniform")
    assert fn.layer.warmup_steps == 4
    ds = tf.data.Dataset.from_tensor_slices((random_images(20), np.arange(20) % 5)).batch(4).map(fn)
    active = [bool(w.numpy()[4:].all()) for _, _, w in ds]
    assert active == [False, False, False, False, True]
    layer = EDDA(model, warmup_epochs=1, steps_per_epoch=3)
    assert layer.warmup_steps == 3
    with pytest.raises(ValueError, match="not both"):
        EDDA(model, warmup_steps=2, warmup_epochs=1, steps_per_epoch=2)
    with pytest.raises(ValueError, match="Received: steps_per_epoch=None"):
        EDDA(model, warmup_epochs=1)


def test_direct_call_equals_map_fn_equals_layer():
    model = small_cnn()
    images, labels = random_images(8), np.arange(8) % 5
    settings = dict(fraction=0.3, fill="mean", rate=0.5, seed=7)

    direct = []
    transform_fn = edda_map_fn(model, **settings)  # a fresh seed sequence
    for start in (0, 4):
        direct.append(transform_fn(tf.constant(images[start:start + 4]),
                                   tf.constant(labels[start:start + 4])))
    mapped = list(tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
                  .map(edda_map_fn(model, **settings)))
    layer = EDDA(model, **settings)
    layered = list(tf.data.Dataset.from_tensor_slices({"images": images, "labels": labels})
                   .batch(4).map(layer))
    for (x1, y1, w1), (x2, y2, w2), d in zip(direct, mapped, layered):
        np.testing.assert_allclose(x1, x2, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(x1, d["images"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(y1, d["labels"])
        np.testing.assert_allclose(w1, w2)
        np.testing.assert_allclose(w1, d["sample_weight"])
    chosen = np.concatenate([w[8:] for _, _, w in direct])
    assert 0 < chosen.sum() < 8  # rate=0.5 chose some images, not all


def test_map_fn_trains_with_categorical_crossentropy():
    model = small_cnn()
    model.compile("adam", keras.losses.CategoricalCrossentropy())
    ds = (tf.data.Dataset.from_tensor_slices((random_images(12), np.arange(12) % 5))
          .batch(4).map(edda_map_fn(model), num_parallel_calls=2))
    history = model.fit(ds, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_random_baseline_has_the_same_area_as_edda():
    from keras_edda.methods import RandomOcclusion

    model = small_cnn()
    images = random_images(6)
    x_edda, _, _ = edda_transform(images, np.arange(6) % 5, model, "grad_cam", threshold=0.5,
                                  skip_uninformative=False)
    out = RandomOcclusion(model, seed=3, threshold=0.5, skip_uninformative=False)(
        {"images": images, "labels": np.arange(6) % 5})
    x_random = out["images"]
    filled_edda = np.all(x_edda[12:].numpy() == 0.0, axis=-1).sum(axis=(1, 2))
    filled_random = np.all(x_random[12:].numpy() == 0.0, axis=-1).sum(axis=(1, 2))
    np.testing.assert_array_equal(filled_edda, filled_random)
    assert not np.array_equal(x_edda[12:].numpy(), x_random[12:].numpy())


def in_model(rate=1.0, **settings):
    classifier = small_cnn()
    model = keras.Sequential([keras.Input((16, 16, 3)),
                              EDDA(classifier, rate=rate, seed=1, **settings), classifier])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model, classifier


def test_in_model_fit_adds_a_finite_loss_and_is_identity_at_inference():
    model, classifier = in_model(rate=0.5)
    images, labels = random_images(8), np.arange(8) % 5
    history = model.fit(images, labels, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    layer = model.layers[0]
    layer(tf.constant(images), training=True)
    assert len(layer.losses) == 1 and np.isfinite(float(layer.losses[0]))
    np.testing.assert_array_equal(layer(images, training=False), images)
    np.testing.assert_allclose(model.predict(images, verbose=0),
                               classifier.predict(images, verbose=0), rtol=1e-6)


def test_in_model_adds_the_copies_loss_and_passes_the_batch_through():
    model, classifier = in_model(rate=1.0, keep_if_correct=False)
    images = random_images(4)
    layer = model.layers[0]
    out = layer(tf.constant(images), training=True).numpy()
    np.testing.assert_array_equal(out, images)
    assert len(layer.losses) == 1 and float(layer.losses[0]) > 0.0


def test_save_and_load_round_trip(tmp_path):
    model, _ = in_model(rate=0.5)
    images, labels = random_images(8), np.arange(8) % 5
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    path = os.fspath(tmp_path / "edda.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-5)
    layer = loaded.layers[0]
    assert isinstance(layer, EDDA)
    assert layer.get_classifier() is loaded.layers[1]  # explains the live classifier
    assert layer.rate == 0.5
    loaded.fit(images, labels, batch_size=4, epochs=1, verbose=0)


def test_layer_config_round_trip():
    layer = EDDA(small_cnn(), explainer="integrated_gradients",
                 explainer_kwargs={"steps": 4}, fraction=0.2, fill="blur",
                 salient_target=0.3, name="augment")
    config = layer.get_config()
    clone = EDDA(**config)
    assert clone.get_config() == config
    assert clone.explainer.steps == 4 and clone.name == "augment"
    assert clone.get_classifier() is layer.get_classifier()


@pytest.mark.parametrize("surface", ["layer", "map_fn"])
def test_mirrored_strategy_matches_a_single_device(surface):
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("two logical CPU devices are configured in conftest at start-up")
    images, labels = random_images(8), np.arange(8) % 5

    def train(strategy):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            classifier = small_cnn()
            if surface == "layer":
                model = keras.Sequential([keras.Input((16, 16, 3)),
                                          EDDA(classifier, keep_if_correct=False),
                                          classifier])
                model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
                data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
            else:
                model = classifier
                model.compile(keras.optimizers.SGD(0.1), "categorical_crossentropy")
                data = (tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
                        .map(edda_map_fn(classifier, keep_if_correct=False)))
        model.fit(data, epochs=2, verbose=0)
        return classifier.get_weights()

    single = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored = train(tf.distribute.MirroredStrategy([d.name for d in devices[:2]]))
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_bad_input():
    model = small_cnn()
    fn = edda_map_fn(model)
    images = random_images(4)
    with pytest.raises(ValueError, match="`targets` must have one entry per image"):
        fn(images, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"class ids in \[0, 5\).*9"):
        fn(images, np.array([0, 1, 2, 9]))
    with pytest.raises(ValueError, match="exactly one"):
        edda_map_fn(model, threshold=0.5, fraction=0.2)
    with pytest.raises(ValueError, match="Received: fraction=1.0"):
        edda_map_fn(model, fraction=1.0)
    with pytest.raises(ValueError, match="Received: explainer='no_such_explainer'"):
        edda_map_fn(model, explainer="no_such_explainer")
    with pytest.raises(ValueError, match="Received: fill='smudge'"):
        EDDA(model, fill="smudge")
    with pytest.raises(ValueError, match="Received: salient_target='background'"):
        EDDA(model, salient_target="background")
    with pytest.raises(ValueError, match="Received: rate=0"):
        EDDA(model, rate=0)
    nan_images = images.copy()
    nan_images[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`images` contains NaN"):
        fn(nan_images, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="keys 'images' and 'labels'"):
        EDDA(model)({"image": images})
    layer = EDDA(model)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="`images` contains NaN"):
        layer(tf.constant(nan_images), training=True)
