"""The method family: two phases, three surfaces, serialisation, heads, reliability."""

import os
import subprocess
import sys
import textwrap
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers, metrics
from keras_edda.data import edda_map_fn, method_map_fn
from keras_edda.methods import EDDA, METHODS, Cutout, RandomOcclusion, SaliencyGuided, check_model, clone_model
from keras_edda.methods.edda import decreased_targets

SHAPE = (8, 8, 3)
COPIES = {EDDA: 2, RandomOcclusion: 2, SaliencyGuided: 1, Cutout: 1}
DETERMINISTIC = {EDDA: {}, RandomOcclusion: {}, SaliencyGuided: {}, Cutout: {}}


def tiny_cnn(num_classes=3, activation="softmax"):
    return small_cnn(SHAPE, num_classes, activation=activation)


def batch(n=4, seed=1):
    return random_images(n, SHAPE, seed), (np.arange(n) % 3).astype("int64")


def test_registry_has_the_family():
    assert {"edda": EDDA, "random": RandomOcclusion, "sgt": SaliencyGuided, "cutout": Cutout}.items() \
        <= METHODS.items()


@pytest.mark.parametrize("cls", list(COPIES))
def test_hand_built_transformation_gives_exact_images_labels_and_weights(cls):
    layer = cls(tiny_cnn())
    copies = COPIES[cls]
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, *SHAPE)).astype("float32")
    masks = (rng.uniform(size=(copies, 2, 8, 8, 1)) > 0.5).astype("float32")
    fill_values = rng.uniform(-1, 0, size=(copies, 2, *SHAPE)).astype("float32")
    copy_targets = rng.dirichlet(np.ones(3), size=(copies, 2)).astype("float32")
    copy_weights = rng.uniform(size=(copies, 2)).astype("float32")
    transformation = {"targets": np.eye(3, dtype="float32")[[0, 2]], "copy_masks": masks,
                      "fill_values": fill_values, "copy_targets": copy_targets, "copy_weights": copy_weights}

    out = layer.transform_images(images, transformation).numpy()
    expected = np.concatenate([images] + [images * (1 - masks[k]) + fill_values[k] * masks[k]
                                          for k in range(copies)])
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    labels = layer.transform_labels(np.array([0, 2]), transformation).numpy()
    np.testing.assert_allclose(labels, np.concatenate([np.eye(3)[[0, 2]], *copy_targets]), rtol=1e-6)
    weights = layer.transform_sample_weights(np.array([2.0, 3.0]), transformation).numpy()
    np.testing.assert_allclose(weights, np.concatenate([[2, 3], *(copy_weights * [2, 3])]), rtol=1e-6)
    assert layer.transform_images(images, None) is images


@pytest.mark.parametrize("cls", list(COPIES))
def test_direct_equals_dataset_map_equals_rebatched_equals_in_model(cls):
    model = tiny_cnn()
    images, labels = batch(8)
    settings = dict(seed=5, rate=0.75, **DETERMINISTIC[cls])

    direct_layer = cls(model, **settings)
    direct = [direct_layer({"images": images[i:i + 4], "labels": labels[i:i + 4]}) for i in (0, 4)]
    ds = tf.data.Dataset.from_tensor_slices({"images": images, "labels": labels})
    mapped = list(ds.batch(4).map(cls(model, **settings)))
    rebatched = list(ds.batch(2).unbatch().batch(4).map(cls(model, **settings)))
    for d, m, r in zip(direct, mapped, rebatched):
        for key in ("images", "labels", "sample_weight"):
            np.testing.assert_allclose(d[key], m[key], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(d[key], r[key], rtol=1e-5, atol=1e-6)
    assert direct[0]["images"].shape[0] == 4 * (1 + COPIES[cls])

    # In a model: the added loss is the copies' loss of the same transformation.
    reference = cls(model, **settings)
    in_model = cls(model, **settings)
    for start in (0, 4):
        x = tf.constant(images[start:start + 4])
        transformation = reference.get_random_transformation({"images": x})
        expected = reference.copy_loss(model(reference.copies(x, transformation)), transformation)
        in_model(x, training=True)
        np.testing.assert_allclose(float(in_model.losses[0]), float(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", list(COPIES))
def test_each_method_fits_in_a_model_and_is_identity_at_inference(cls):
    classifier = tiny_cnn()
    layer = cls(classifier, seed=0)
    model = keras.Sequential([keras.Input(SHAPE), layer, classifier])
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=False)
    images, labels = batch(8)
    history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_array_equal(layer(images, training=False), images)
    np.testing.assert_allclose(model.predict(images, verbose=0), classifier.predict(images, verbose=0), rtol=1e-6)
    stats = layer.statistics()
    assert stats.pop("copies_loss") >= 0.0   # the loss the layer added inside the model, kept apart
    assert set(stats) == {f"{name}_{kind}" for name in layer.copy_names for kind in ("area", "used")}
    assert all(0.0 <= value <= 1.0 for value in stats.values())


def test_save_and_load_each_method_in_a_new_process(tmp_path):
    images, labels = batch(8)
    np.save(tmp_path / "images.npy", images)
    for cls in COPIES:
        classifier = tiny_cnn()
        model = keras.Sequential([keras.Input(SHAPE), cls(classifier, seed=0, rate=0.5), classifier])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
        model.save(tmp_path / f"{cls.__name__}.keras")
        np.save(tmp_path / f"{cls.__name__}.npy", model.predict(images, verbose=0))
    script = textwrap.dedent(f"""
        import numpy as np, keras, keras_edda
        images = np.load({str(tmp_path / 'images.npy')!r})
        for name in {[cls.__name__ for cls in COPIES]!r}:
            model = keras.saving.load_model({str(tmp_path)!r} + "/" + name + ".keras")
            layer, classifier = model.layers
            assert type(layer).__name__ == name and layer.get_classifier() is classifier
            assert layer.rate == 0.5
            np.testing.assert_allclose(model.predict(images, verbose=0),
                                       np.load({str(tmp_path)!r} + "/" + name + ".npy"), rtol=1e-6)
            model.fit(images, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0)
        print("loaded-ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240,
                            stdin=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert "loaded-ok" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize("cls", list(COPIES))
def test_mixed_precision_and_channels_first(cls):
    keras.mixed_precision.set_global_policy("mixed_float16")
    classifier = tiny_cnn()
    model = keras.Sequential([keras.Input(SHAPE), cls(classifier, seed=0), classifier])
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(*batch(4), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    out = cls(classifier, seed=0)({"images": batch(4)[0], "labels": batch(4)[1]})
    assert out["images"].shape[0] == 4 * (1 + COPIES[cls])
    keras.mixed_precision.set_global_policy("float32")

    keras.config.set_image_data_format("channels_first")
    classifier = small_cnn((3, 8, 8), 3, data_format="channels_first")
    images = np.transpose(batch(4)[0], (0, 3, 1, 2))
    extra = {"keep_if_correct": False} if cls in (EDDA, RandomOcclusion) else {}
    layer = cls(classifier, seed=0, **extra)
    out = layer({"images": images, "labels": batch(4)[1]})
    assert out["images"].shape == (4 * (1 + COPIES[cls]), 3, 8, 8)
    masks = layer.get_random_transformation({"images": images, "labels": batch(4)[1]})["copy_masks"]
    assert masks.shape[2:] == (1, 8, 8)


@pytest.mark.parametrize("cls", list(COPIES))
def test_the_layout_is_saved_with_the_layer(cls):
    # A channels-first layer rebuilt from its config under a channels-last global setting keeps its layout
    # (before, it took the new global setting and occluded stripes across the channel axis, silently).
    try:
        keras.config.set_image_data_format("channels_first")
        classifier = small_cnn((3, 8, 8), 3, data_format="channels_first")
        extra = {"keep_if_correct": False} if cls in (EDDA, RandomOcclusion) else {}
        config = cls(classifier, seed=0, **extra).get_config()
        assert config["data_format"] == "channels_first"
        keras.config.set_image_data_format("channels_last")
        rebuilt = cls(**config)
        images = np.transpose(batch(4)[0], (0, 3, 1, 2))
        masks = rebuilt.get_random_transformation({"images": images, "labels": batch(4)[1]})["copy_masks"]
        assert rebuilt.data_format == "channels_first" and masks.shape[2:] == (1, 8, 8)
        explainer = getattr(rebuilt, "explainer", None)
        assert explainer is None or explainer.data_format == "channels_first"
    finally:
        keras.config.set_image_data_format("channels_last")


# Open registries ---------------------------------------------------------------


def top_rows(images, targets):
    """A plain-function explainer: the top half is salient."""
    rows = tf.range(tf.shape(images)[1])
    salient = tf.cast(rows < tf.shape(images)[1] // 2, tf.float32)
    return tf.broadcast_to(salient[None, :, None, None], tf.concat([tf.shape(images)[:3], [1]], 0))


class UnregisteredGradients(explainers.Explainer):
    def explain_batch(self, images, targets):
        with tf.GradientTape() as tape:
            tape.watch(images)
            scores, _ = self.scores(images)
            score = tf.reduce_sum(self.target_weights(targets, scores) * scores, axis=-1)
        return tf.reduce_sum(tf.abs(tape.gradient(score, images)), axis=-1, keepdims=True)


def test_plain_function_and_unregistered_subclass_through_every_entry_point():
    model = tiny_cnn()
    images, labels = batch(4)
    for given in (top_rows, UnregisteredGradients(model)):
        explainer = explainers.get(given, model)
        maps = explainer(images)
        assert maps.shape == (4, 8, 8, 1)
        assert explainers.name_of(given) in ("top_rows", "UnregisteredGradients")
        out = EDDA(model, explainer=given, keep_if_correct=False)({"images": images, "labels": labels})
        assert out["images"].shape[0] == 12
        x, _, _ = edda_map_fn(model, explainer=given)(tf.constant(images), tf.constant(labels))
        assert x.shape[0] == 12
        scores = metrics.AlignmentSuite((given,), ("deletion_auc",)).evaluate(model, images)
        assert np.isfinite(next(iter(scores.values()))["deletion_auc"]).all()
    out = EDDA(model, explainer=top_rows, keep_if_correct=False)({"images": images, "labels": labels})
    np.testing.assert_array_equal(out["images"][8:, :4].numpy(), 0.0)   # salient copy: top filled
    np.testing.assert_array_equal(out["images"][8:, 4:].numpy(), images[:, 4:])


def test_register_adds_an_explainer_by_name():
    @explainers.register("test_top_rows")
    class TopRows(explainers.Explainer):
        def explain_batch(self, images, targets):
            return top_rows(images, targets)

    try:
        model = tiny_cnn()
        assert isinstance(explainers.get("test_top_rows", model), TopRows)
        assert explainers.name_of(TopRows(model)) == "test_top_rows"
        layer = EDDA(model, explainer="test_top_rows")
        assert EDDA(**layer.get_config()).explainer.__class__ is TopRows
    finally:
        explainers.EXPLAINERS.pop("test_top_rows")


def test_unregistered_callables_are_refused_at_save_time_with_the_way_to_register(tmp_path):
    classifier = tiny_cnn()

    def my_fill(images, mask):
        return tf.zeros_like(images)

    for layer, argument in ((EDDA(classifier, fill=my_fill), "fill"),
                            (EDDA(classifier, explainer=top_rows), "explainer"),
                            (EDDA(classifier, explainer=UnregisteredGradients(classifier)), "explainer")):
        model = keras.Sequential([keras.Input(SHAPE), layer, classifier])
        with pytest.raises(ValueError, match=f"`{argument}` cannot be saved.*register"):
            model.save(tmp_path / "m.keras")


@keras.saving.register_keras_serializable(package="keras_edda_tests")
def registered_grey_fill(images, mask):
    return tf.fill(tf.shape(images), 0.25)


def test_a_registered_fill_function_round_trips_through_keras_files(tmp_path):
    classifier = tiny_cnn()
    model = keras.Sequential([keras.Input(SHAPE), EDDA(classifier, fill=registered_grey_fill), classifier])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.layers[0].fill is registered_grey_fill
    out = loaded.layers[0]({"images": batch(2)[0], "labels": batch(2)[1]})
    assert np.isclose(out["images"][2:].numpy(), 0.25).any()


def test_other_backends_are_refused():
    from keras_edda.methods import check_tensorflow_backend

    check_tensorflow_backend()
    with pytest.raises(RuntimeError, match="TensorFlow backend only.*backend='jax'"):
        check_tensorflow_backend("jax")


# One answer to "logits or probabilities?" -----------------------------------------


def heads_with_the_same_weights():
    inputs = keras.Input(SHAPE)
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs))
    reference = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(features))
    variants = {"softmax string": reference}
    for name, activation in (("tf.nn.softmax", tf.nn.softmax), ("keras.activations", keras.activations.softmax)):
        x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
        out = keras.layers.Dense(3, activation=activation, name="head")(keras.layers.GlobalAveragePooling2D()(x))
        variants[name] = keras.Model(inputs, out)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs))
    variants["keras.ops.softmax"] = keras.Model(inputs, keras.ops.softmax(keras.layers.Dense(3, name="head")(x)))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs))
    variants["Softmax layer"] = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(3, name="head")(x)))
    for model in variants.values():
        model.get_layer("conv").set_weights(reference.get_layer("conv").get_weights())
        model.get_layer("head").set_weights(reference.get_layer("head").get_weights())
    return variants


def test_every_softmax_head_gives_the_same_maps_and_scores():
    images = batch(4)[0]
    results = {}
    for name, model in heads_with_the_same_weights().items():
        cam = explainers.GradCAM(model)(images).numpy()
        saliency = explainers.Saliency(model)(images).numpy()
        deletion = metrics.DeletionAUC(steps=4)(model, images, tf.constant(saliency)).numpy()
        assert explainers.Saliency(model).head.outputs_probabilities, name
        results[name] = (cam, saliency, deletion)
    reference = results.pop("softmax string")
    for name, values in results.items():
        for ours, theirs in zip(values, reference):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6, err_msg=name)


def test_explainers_built_while_another_thread_calls_the_model_read_the_logits():
    model = tiny_cnn()
    images = tf.constant(batch(4)[0])
    reference = explainers.Saliency(model)(images).numpy()
    busy = explainers.GradCAM(model)
    stop = threading.Event()
    errors = []

    def keep_capturing():
        while not stop.is_set():
            busy(images)

    def build_and_explain():
        try:
            for _ in range(4):
                np.testing.assert_allclose(explainers.Saliency(model)(images).numpy(), reference, rtol=1e-4)
        except AssertionError as error:  # collected, then raised in the main thread
            errors.append(error)

    worker = threading.Thread(target=keep_capturing)
    worker.start()
    try:
        builders = [threading.Thread(target=build_and_explain) for _ in range(4)]
        for thread in builders:
            thread.start()
        for thread in builders:
            thread.join(timeout=120)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not errors, errors[0]
    assert model.layers[-1].activation is keras.activations.softmax  # the user's layer is untouched


# Binary heads, empty maps, warm-up, bad settings ------------------------------------


def test_binary_sigmoid_head_keeps_its_labels():
    model = small_cnn(SHAPE, 1, activation="sigmoid")
    images = batch(4)[0]
    labels = np.array([0, 1, 1, 0])
    out = EDDA(model, keep_if_correct=False, salient_target="uniform")({"images": images, "labels": labels})
    targets = out["labels"].numpy()
    assert targets.shape == (12, 1)
    np.testing.assert_allclose(targets[:8, 0], [0, 1, 1, 0, 0, 1, 1, 0])
    np.testing.assert_allclose(targets[8:, 0], 0.5)
    # Float 0/1 labels (N,), as Keras' binary losses take them, give the same targets.
    as_floats = EDDA(model, keep_if_correct=False, salient_target="uniform")(
        {"images": images, "labels": labels.astype("float32")})
    np.testing.assert_allclose(as_floats["labels"], out["labels"])
    layer = EDDA(model, keep_if_correct=False, salient_target="uniform")
    layer(tf.constant(images), training=True)
    assert float(layer.losses[0]) > 0.0


@pytest.mark.parametrize("surface", ["layer", "map_fn"])
def test_binary_head_learns_a_separable_task_with_edda(surface):
    rng = np.random.default_rng(0)
    labels = np.arange(64) % 2
    images = rng.uniform(0, 0.1, size=(64, *SHAPE)).astype("float32")
    images[labels == 1, 2:6, 2:6, :] += 0.9
    keras.utils.set_random_seed(0)
    classifier = small_cnn(SHAPE, 1, activation="sigmoid")
    if surface == "layer":
        model = keras.Sequential([keras.Input(SHAPE), EDDA(classifier, seed=0), classifier])
        model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
        model.fit(images, labels, batch_size=16, epochs=15, verbose=0)
    else:
        classifier.compile(keras.optimizers.Adam(0.01), keras.losses.BinaryCrossentropy())
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16).map(edda_map_fn(classifier))
        classifier.fit(ds, epochs=15, verbose=0)
    accuracy = np.mean((classifier.predict(images, verbose=0)[:, 0] > 0.5) == labels)
    assert accuracy >= 0.9


def test_empty_and_constant_maps_give_weight_zero_copies():
    model = tiny_cnn()
    images, labels = batch(4)

    def constant(images, targets):
        return tf.ones_like(images[..., :1])

    out = EDDA(model, explainer=constant, keep_if_correct=False)({"images": images, "labels": labels})
    np.testing.assert_allclose(out["sample_weight"].numpy(), [1] * 4 + [0] * 8)
    out = EDDA(model, explainer=constant, keep_if_correct=False, skip_uninformative=False, salient_target="uniform")(
        {"images": images, "labels": labels})
    np.testing.assert_allclose(out["sample_weight"].numpy(), 1.0)


def test_layer_warmup_of_one_step_skips_exactly_the_first_step():
    model = tiny_cnn()
    layer = EDDA(model, warmup_steps=1, keep_if_correct=False, skip_uninformative=False, salient_target="uniform")
    images = tf.constant(batch(4)[0])
    layer(images, training=True)
    assert float(layer.losses[0]) == 0.0
    layer(images, training=True)
    assert float(layer.losses[0]) > 0.0
    fn = edda_map_fn(model, warmup_steps=1, keep_if_correct=False, skip_uninformative=False,
                     salient_target="uniform")
    first = fn(images, tf.constant(batch(4)[1]))[2].numpy()
    second = fn(images, tf.constant(batch(4)[1]))[2].numpy()
    np.testing.assert_allclose(first[4:], 0.0)
    np.testing.assert_allclose(second[4:], 1.0)


@pytest.mark.parametrize("settings, message", [
    ({"fill_value": float("nan")}, "fill_value=nan"),
    ({"fill_value": float("inf")}, "fill_value=inf"),
    ({"salient_weight": -1.0}, "salient_weight=-1.0"),
    ({"salient_weight": float("nan")}, "salient_weight=nan"),
    ({"copies_weight": -0.5}, "copies_weight=-0.5"),
    ({"margin": 1.5}, "margin=1.5"),
    ({"non_salient_target": "blur"}, "non_salient_target='blur'"),
    ({"warmup_epochs": -1, "steps_per_epoch": 2}, "warmup_epochs=-1"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises((ValueError, TypeError), match=message):
        EDDA(tiny_cnn(), **settings)


def test_explainer_of_another_model_is_refused():
    with pytest.raises(ValueError, match="not the classifier"):
        EDDA(tiny_cnn(), explainer=explainers.GradCAM(tiny_cnn()))


def test_cloning_keeps_the_link_or_refuses():
    classifier = tiny_cnn()
    model = keras.Sequential([keras.Input(SHAPE), EDDA(classifier), classifier])
    with pytest.raises(ValueError, match="keras_edda.methods.clone_model"):
        keras.models.clone_model(model)
    with pytest.raises(ValueError, match="keras_edda.methods.clone_model"):
        keras.Sequential.from_config(model.get_config())
    twin = clone_model(model)
    assert twin.layers[0].get_classifier() is twin.layers[1]
    assert twin.layers[1] is not classifier


# Saliency-guided training ----------------------------------------------------------


def half_blind_model():
    """Dense on the flattened image whose weights on the right half are zero."""
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    kernel, bias = model.layers[-1].get_weights()
    kernel = kernel.reshape(8, 8, 3, 3)
    kernel[:, 4:] = 0.0
    model.layers[-1].set_weights([kernel.reshape(-1, 3), bias])
    return model


def test_saliency_guided_masks_exactly_the_lowest_fraction():
    model = half_blind_model()
    images, labels = batch(4)
    layer = SaliencyGuided(model, fraction=0.5)
    transformation = layer.get_random_transformation({"images": images, "labels": labels})
    masks = transformation["copy_masks"].numpy()[0, ..., 0]
    np.testing.assert_array_equal(masks[:, :, 4:], 1.0)
    np.testing.assert_array_equal(masks[:, :, :4], 0.0)
    layer = SaliencyGuided(tiny_cnn(), fraction=0.3)
    transformation = layer.get_random_transformation({"images": images, "labels": labels})
    maps = transformation["maps"].numpy().reshape(4, -1)
    masks = transformation["copy_masks"].numpy()[0].reshape(4, -1)
    assert (masks.sum(axis=1) == round(0.3 * 64)).all()
    for row_map, row_mask in zip(maps, masks):
        assert row_map[row_mask == 1].max() <= row_map[row_mask == 0].min()


def test_saliency_guided_kl_is_zero_when_the_model_ignores_the_masked_pixels():
    images, labels = batch(4)
    for model, zero in ((half_blind_model(), True), (tiny_cnn(), False)):
        layer = SaliencyGuided(model, fraction=0.5)
        transformation = layer.get_random_transformation({"images": images, "labels": labels})
        kl = float(layer.copy_loss(model(layer.copies(images, transformation)), transformation))
        assert (abs(kl) < 1e-6) if zero else (kl > 1e-6)


# EDDA's own settings ---------------------------------------------------------------


def test_decrease_target_is_a_hinge():
    labels = np.eye(3, dtype="float32")[[0, 0]]
    original = np.array([[0.8, 0.1, 0.1], [0.8, 0.1, 0.1]], "float32")
    copies = np.array([[0.75, 0.2, 0.05], [0.6, 0.3, 0.1]], "float32")
    targets, active = decreased_targets(copies, original, labels, 0.1)
    np.testing.assert_allclose(active, [1.0, 0.0])
    np.testing.assert_allclose(targets[0], [0.7, 0.3 * 0.2 / 0.25, 0.3 * 0.05 / 0.25], rtol=1e-5)
    np.testing.assert_allclose(targets.numpy().sum(axis=1), 1.0, rtol=1e-6)


def test_consistency_target_and_copies_weight():
    model = tiny_cnn()
    images, labels = batch(4)
    out = EDDA(model, non_salient_target="consistency", salient_target="uniform", keep_if_correct=False,
               copies_weight=0.5,
               salient_weight=2.0, skip_uninformative=False)({"images": images, "labels": labels})
    probabilities = model(images).numpy()
    np.testing.assert_allclose(out["labels"][4:8], probabilities, rtol=1e-5)
    np.testing.assert_allclose(out["sample_weight"].numpy(), [1] * 4 + [0.5] * 4 + [1.0] * 4)


def test_method_map_fn_refuses_other_objects():
    with pytest.raises(TypeError, match="method layer"):
        method_map_fn(lambda x, y: (x, y))


def test_a_model_whose_classifier_is_not_the_explained_one_is_refused():
    explained, trained = tiny_cnn(), tiny_cnn()
    model = keras.Sequential([keras.Input(SHAPE), EDDA(explained), trained])
    with pytest.raises(ValueError, match="which is not part of model"):
        check_model(model)
    nested = keras.Sequential([keras.Input(SHAPE), EDDA(explained), keras.Sequential([explained])])
    assert check_model(nested) is nested
    outer = keras.Sequential([keras.Input(SHAPE), keras.Sequential([keras.Input(SHAPE), EDDA(explained), trained])])
    with pytest.raises(ValueError, match="which is not part of model"):
        check_model(outer)
    nested.compile("adam", "sparse_categorical_crossentropy")
    nested.fit(*batch(4), batch_size=4, epochs=1, verbose=0)


def test_area_from_kwargs_reach_the_area_explainer_and_round_trip():
    model = tiny_cnn()
    layer = RandomOcclusion(model, area_from="integrated_gradients", area_from_kwargs={"steps": 3}, seed=0)
    assert layer.area_explainer.steps == 3
    config = layer.get_config()
    assert config["area_from_kwargs"] == {"steps": 3}
    images, labels = batch(4)
    ig = explainers.get("integrated_gradients", model, steps=3)(images, tf.constant(labels, tf.int32))
    transformation = layer.get_random_transformation({"images": images, "labels": labels})
    # The random mask of each image has the area of the 3-step IG mask at the same threshold.
    from keras_edda.ops.masks import threshold_mask
    expected = threshold_mask(ig, 0.5).numpy().reshape(4, -1).sum(axis=1)
    salient = transformation["copy_masks"].numpy()[1].reshape(4, -1).sum(axis=1)
    np.testing.assert_array_equal(salient, expected)


class CountedPasses(keras.layers.Layer):
    """Identity that counts the forward passes the model runs."""

    def build(self, input_shape):
        self.passes = self.add_weight(shape=(), initializer="zeros", trainable=False, name="passes")

    def call(self, inputs):
        self.passes.assign_add(1.0)
        return inputs


@pytest.mark.parametrize("settings, expected", [
    ({}, 2),                               # Grad-CAM (which gives the prediction) + one pass over both copies
    ({"fraction": 0.25}, 2),               # no area to match: one forward for the prediction instead
    ({"keep_if_correct": False, "salient_target": "none"}, 1),
])
def test_random_occlusion_reads_the_prediction_from_the_area_explanation(settings, expected):
    counter = CountedPasses()
    model = keras.Sequential([keras.Input(SHAPE), counter, *tiny_cnn().layers])
    layer = RandomOcclusion(model, seed=0, **settings)
    assert explainers.get("grad_cam", model).scores_come_free and not layer.explainer.scores_come_free
    images, labels = batch(4)
    layer.get_random_transformation({"images": images, "labels": labels})  # traces; inspection may call the model
    before = float(counter.passes.numpy())
    transformation = layer.get_random_transformation(images)
    assert float(counter.passes.numpy()) - before == expected
    # The prediction it read is the model's.
    predicted = np.argmax(model.predict(images, verbose=0), -1)
    np.testing.assert_array_equal(np.argmax(transformation["targets"], -1), predicted)


@pytest.mark.parametrize("cls", [SaliencyGuided, EDDA])
def test_in_model_copies_use_their_own_batch_statistics_and_leave_the_moving_averages(cls):
    keras.utils.set_random_seed(0)
    classifier = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(4, 3, name="conv"),
                                   keras.layers.BatchNormalization(momentum=0.5), keras.layers.ReLU(),
                                   keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    batch_norm = classifier.layers[1]
    # Moving averages far from any batch's statistics, so that a change shows.
    batch_norm.moving_mean.assign(np.full(4, 5.0, "float32"))
    batch_norm.moving_variance.assign(np.full(4, 9.0, "float32"))
    images, _ = batch(8)
    # Half of each image in each copy, and targets that always differ from the output: a nonzero loss.
    settings = {"keep_if_correct": False, "fraction": 0.5, "salient_target": "uniform"} if cls is EDDA else {}
    layer, reference = cls(classifier, seed=3, **settings), cls(classifier, seed=3, **settings)
    transformation = reference.get_random_transformation({"images": images})
    expected = reference.copy_loss(classifier(reference.copies(images, transformation), training=True),
                                   transformation)
    assert float(expected) > 1e-3
    batch_norm.moving_mean.assign(np.full(4, 5.0, "float32"))
    batch_norm.moving_variance.assign(np.full(4, 9.0, "float32"))

    @tf.function
    def step(x):
        layer(x, training=True)
        return layer.losses[0]

    np.testing.assert_allclose(float(step(tf.constant(images))), float(expected), rtol=1e-5)
    np.testing.assert_array_equal(batch_norm.moving_mean.numpy(), 5.0)
    np.testing.assert_array_equal(batch_norm.moving_variance.numpy(), 9.0)


def test_settings_a_layer_cannot_use_are_refused_or_honoured():
    classifier = tiny_cnn()
    # SaliencyGuided's copies weight is `weight`; the shared name `copies_weight` sets it too.
    layer = SaliencyGuided(classifier, copies_weight=0.0, seed=0)
    out = layer({"images": batch(4)[0], "labels": batch(4)[1]})
    np.testing.assert_array_equal(out["sample_weight"][4:], 0.0)
    assert layer.weight == 0.0 and SaliencyGuided(**layer.get_config()).weight == 0.0
    with pytest.raises(ValueError, match="copies_weight=0.5"):
        SaliencyGuided(classifier, weight=1.0, copies_weight=0.5)
    with pytest.raises(ValueError, match="explainer='saliency'"):
        RandomOcclusion(classifier, explainer="saliency")
    with pytest.raises(ValueError, match="explainer_kwargs="):
        RandomOcclusion(classifier, explainer_kwargs={"grid_size": 8})


def test_sample_weights_and_soft_labels_are_checked():
    layer = Cutout(tiny_cnn(), seed=0)
    images, labels = batch(4)
    for weights in (np.float32(2.0), np.ones(3, "float32"), np.ones((4, 2), "float32")):
        with pytest.raises(ValueError, match="sample_weight.shape="):
            layer({"images": images, "labels": labels, "sample_weight": weights})
    out = layer({"images": images, "labels": labels, "sample_weight": np.full((4, 1), 2.0, "float32")})
    np.testing.assert_array_equal(out["sample_weight"][:4], 2.0)
    soft = np.full((4, 3), np.nan, "float32")
    with pytest.raises(ValueError, match="must be finite"):
        layer({"images": images, "labels": soft})
