"""ExCon: the masked view, the fallback, training (tf.function, XLA, tf.data,
tf.distribute), save/load in a new process, FGSM and ECE against NumPy."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_edda import datasets, excon, explainers, metrics
from keras_edda.excon import ExCon, RandomResizedCrop

SIZE = 12


@pytest.fixture(scope="module")
def digits():
    (x, y), (x_test, y_test) = datasets.load_digits(SIZE)
    return x[:96], y[:96], x_test[:64], y_test[:64]


def make_model(**settings):
    settings = {"jitter": None, "seed": 3, **settings}
    return ExCon(excon.small_encoder((SIZE, SIZE, 1), width=4), 10, projection_dim=8, **settings)


def numpy_minmax(maps):
    low = maps.min(axis=(1, 2, 3), keepdims=True)
    high = maps.max(axis=(1, 2, 3), keepdims=True)
    return (maps - low) / (high - low + 1e-8)


@pytest.mark.parametrize("threshold", [0.3, pytest.param(0.6, marks=pytest.mark.slow)])
def test_masked_view_keeps_exactly_the_pixels_above_tau(digits, threshold):
    x, y = digits[0][:16], digits[1][:16]
    model = make_model(threshold=threshold, fill=0.0)
    masked, kept = model.masked_views(x, y)
    maps = explainers.GradCAM(model)(x, y).numpy()
    salient = numpy_minmax(maps) > threshold
    np.testing.assert_allclose(masked.numpy(), np.where(salient, x, 0.0), atol=1e-6)
    assert 0 < salient.mean() < 1
    predicted = model.predict(np.where(salient, x, 0.0), verbose=0).argmax(-1)
    np.testing.assert_array_equal(kept.numpy(), predicted == y)


def test_fallback_picks_the_random_view_when_the_masked_prediction_is_wrong(digits):
    x = digits[0][:12]
    model = make_model()
    # A classifier biased to class 0: the masked image keeps the label 0 only.
    weights = model.classifier.get_weights()
    weights[1][:] = 0.0
    weights[1][0] = 50.0
    model.classifier.set_weights(weights)
    labels = np.array([0, 1] * 6, "int32")
    view_a, view_b, masked, kept, background = model.contrastive_views(x, labels, active=True)
    np.testing.assert_array_equal(kept.numpy(), labels == 0)
    np.testing.assert_array_equal(background.numpy(), labels == 1)
    np.testing.assert_allclose(view_a.numpy()[labels == 0], masked.numpy()[labels == 0])
    difference = np.abs(view_a.numpy() - masked.numpy()).reshape(12, -1).max(axis=1)
    assert np.all(difference[labels == 1] > 1e-3)
    # Before the warm-up ends nothing is masked and nothing joins as background.
    view_a, _, _, kept, background = model.contrastive_views(x, labels, active=False)
    assert not kept.numpy().any() and not background.numpy().any()
    # Without negative pairs the misclassified masked images are dropped.
    _, _, _, _, background = make_model(negative_pair=False).contrastive_views(x, labels, active=True)
    assert not background.numpy().any()


@pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_fit_on_tf_data_in_graph(digits, jit_compile):
    x, y = digits[0], digits[1]
    model = make_model(warmup_steps=1)
    model.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)
    before = [w.numpy().copy() for w in model.encoder.weights]
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    history = model.fit(dataset, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and np.isfinite(history["supcon_loss"][0])
    assert 0.0 <= history["masked_kept"][0] <= 1.0
    assert int(model.steps.numpy()) == 3
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, model.encoder.weights))
    evaluation = model.evaluate(x, y, verbose=0, return_dict=True)
    assert 0.0 <= evaluation["accuracy"] <= 1.0


@pytest.mark.slow
def test_warmup_and_plain_supcon(digits):
    x, y = digits[0][:64], digits[1][:64]
    for model in (make_model(warmup_epochs=5, steps_per_epoch=2), make_model(explanations=False)):
        model.compile("adam", loss="sparse_categorical_crossentropy")
        history = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
        assert history["masked_kept"] == [0.0]
        assert np.isfinite(history["supcon_loss"][0])


@pytest.mark.slow
def test_alternating_classifier_training(digits):
    x, y = digits[0][:64], digits[1][:64]
    model = make_model(classifier_training="alternating", steps_per_epoch=2)
    model.compile(keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    classifier_before = model.classifier.get_weights()[0].copy()
    encoder_before = model.encoder.get_weights()[0].copy()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    # Epoch 0 trains the encoder only (plain SGD: the classifier stays put).
    np.testing.assert_array_equal(model.classifier.get_weights()[0], classifier_before)
    assert not np.allclose(model.encoder.get_weights()[0], encoder_before)
    encoder_after = model.encoder.get_weights()[0].copy()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.encoder.get_weights()[0], encoder_after)
    assert not np.allclose(model.classifier.get_weights()[0], classifier_before)


@pytest.mark.slow
def test_fit_under_mirrored_strategy(digits):
    x, y = digits[0][:64], digits[1][:64]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = make_model()
        model.compile("adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])


def test_classifier_trains_with_its_own_optimizer(digits):
    x, y = digits[0][:32], digits[1][:32]
    default = make_model()
    assert isinstance(default.classifier_optimizer, keras.optimizers.SGD)
    assert float(default.classifier_optimizer.learning_rate) == 0.5
    assert float(default.classifier_optimizer.momentum) == 0.9
    for classifier_optimizer, moves in ((keras.optimizers.SGD(0.0), False), ("shared", True),
                                        ({"class_name": "SGD", "config": {"learning_rate": 0.1}}, True)):
        model = make_model(classifier_optimizer=classifier_optimizer)
        model.compile("adam", loss="sparse_categorical_crossentropy")
        classifier_before = model.classifier.get_weights()[0].copy()
        encoder_before = model.encoder.get_weights()[0].copy()
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        assert not np.allclose(model.encoder.get_weights()[0], encoder_before)
        assert np.allclose(model.classifier.get_weights()[0], classifier_before) != moves, classifier_optimizer
        restored = ExCon.from_config(model.get_config())
        expected = "shared" if classifier_optimizer == "shared" else type(model.classifier_optimizer)
        assert (restored.classifier_optimizer is None if expected == "shared"
                else isinstance(restored.classifier_optimizer, expected))


def test_save_and_load_in_a_new_process(digits, tmp_path):
    x = digits[0][:32]
    model = make_model()
    model.steps.assign(7)
    path = str(tmp_path / "excon.keras")
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    expected = model.predict(x, verbose=0)
    script = textwrap.dedent(f"""
        import numpy as np, keras
        import keras_edda.excon  # noqa: F401  (registers ExCon)
        model = keras.saving.load_model({path!r})
        assert type(model).__name__ == "ExCon", type(model)
        assert int(model.steps.numpy()) == 7
        np.save({str(tmp_path / "y.npy")!r}, model.predict(np.load({str(tmp_path / "x.npy")!r}), verbose=0))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)


@pytest.mark.slow
def test_build_methods_and_alignment_metrics(digits):
    x, y = digits[0][:32], digits[1][:32]
    for method in excon.METHODS:
        model = excon.build(method, lambda shape: excon.small_encoder(shape, width=4), (SIZE, SIZE, 1), 10,
                            projection_dim=8, jitter=None)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        assert model.predict(x, verbose=0).shape == (32, 10)
        maps = explainers.get("grad_cam", model)(x)
        drop = metrics.AverageDrop()(model, x, maps)
        assert drop.shape == (32,) and bool(tf.reduce_all(tf.math.is_finite(drop)))
    with pytest.raises(ValueError, match="method="):
        excon.build("simclr", excon.small_encoder, (SIZE, SIZE, 1), 10)


def test_random_resized_crop():
    images = np.random.default_rng(0).uniform(size=(4, 9, 7, 2)).astype("float32")
    identity = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0))(images, training=True)
    np.testing.assert_allclose(identity.numpy(), images, atol=1e-6)
    layer = RandomResizedCrop(scale=(0.2, 0.2), ratio=(1.0, 1.0), seed=1)
    crops = tf.function(lambda a: layer(a, training=True), jit_compile=True)(images).numpy()
    assert crops.shape == images.shape
    assert crops.min() >= images.min() - 1e-6 and crops.max() <= images.max() + 1e-6
    assert not np.allclose(crops, images)
    np.testing.assert_array_equal(layer(images, training=False), images)
    # A constant column stays constant: the resampling weights sum to one.
    flat = np.ones((2, 8, 8, 1), "float32")
    np.testing.assert_allclose(RandomResizedCrop()(flat, training=True).numpy(), flat, atol=1e-5)


def _linear_model(shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(classes, activation="softmax")])
    size = int(np.prod(shape))
    kernel, bias = rng.normal(size=(size, classes)).astype("float32"), rng.normal(size=classes).astype("float32")
    model.layers[-1].set_weights([kernel, bias])
    return model, kernel, bias


def _numpy_fgsm(images, labels, kernel, bias, epsilon, low, high):
    flat = images.reshape(len(images), -1).astype(np.float64)
    logits = flat @ kernel + bias
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    one_hot = np.eye(kernel.shape[1])[labels]
    gradient = (probabilities - one_hot) @ kernel.T
    shifted = np.clip(flat + epsilon * (high - low) * np.sign(gradient), low, high)
    return shifted.reshape(images.shape)


@pytest.mark.parametrize("pixel_range,batch_size", [((0.0, 1.0), None), ((-1.0, 1.0), 3)])
def test_fgsm_against_numpy(pixel_range, batch_size):
    low, high = pixel_range
    rng = np.random.default_rng(1)
    images = rng.uniform(low, high, size=(10, 4, 4, 2)).astype("float32")
    labels = rng.integers(0, 3, 10).astype("int32")
    model, kernel, bias = _linear_model((4, 4, 2), 3)
    expected = _numpy_fgsm(images, labels, kernel, bias, 4 / 255, low, high)
    shifted = metrics.fgsm_images(model, images, labels, 4 / 255, pixel_range, batch_size).numpy()
    np.testing.assert_allclose(shifted, expected, atol=1e-5)
    assert np.abs(shifted - images).max() == pytest.approx(4 / 255 * (high - low), abs=1e-5)
    flat = expected.reshape(10, -1)
    expected_accuracy = np.mean((flat @ kernel + bias).argmax(1) == labels)
    accuracy = metrics.fgsm_accuracy(model, images, labels, 4 / 255, pixel_range, batch_size)
    assert float(accuracy) == pytest.approx(expected_accuracy)
    # Larger steps do not raise accuracy on a linear model.
    assert float(metrics.fgsm_accuracy(model, images, labels, 0.5, pixel_range)) <= float(
        metrics.fgsm_accuracy(model, images, labels, 0.0, pixel_range))


def _numpy_ece(probabilities, labels, num_bins=15):
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == labels
    total = 0.0
    for b in range(num_bins):
        members = (confidence > b / num_bins) & (confidence <= (b + 1) / num_bins)
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return total


def test_ece_on_clean_and_fgsm_images(digits):
    x, y = digits[2], digits[3]
    model = make_model()
    for images in (x, metrics.fgsm_images(model, x, y, 4 / 255).numpy()):
        probabilities = model.predict(images, verbose=0)
        ece = metrics.expected_calibration_error(probabilities, y)
        assert float(ece) == pytest.approx(_numpy_ece(probabilities.astype(np.float64), y), abs=1e-5)


def test_bad_input(digits):
    encoder = excon.small_encoder((SIZE, SIZE, 1), width=4)
    for kwargs, match in [
        ({"threshold": 0.0}, "threshold=0.0"), ({"threshold": 1.5}, "threshold=1.5"),
        ({"temperature": 0.0}, "temperature=0.0"), ({"base_temperature": -1.0}, "base_temperature=-1.0"),
        ({"warmup_epochs": 2}, "steps_per_epoch=None"), ({"classifier_training": "both"}, "classifier_training="),
        ({"crop_scale": (0.0, 1.0)}, "crop_scale="), ({"jitter": (0.4, 0.4)}, "jitter="),
        ({"num_classes": 0}, "num_classes=0"),
    ]:
        with pytest.raises(ValueError, match=match):
            ExCon(encoder, **{"num_classes": 10, **kwargs})
    with pytest.raises(ValueError, match="classifier_optimizer='nonsense'"):
        ExCon(encoder, 10, classifier_optimizer="nonsense")
    with pytest.raises(TypeError, match="classifier_optimizer=3"):
        ExCon(encoder, 10, classifier_optimizer=3)
    unpooled = keras.Sequential([keras.Input((SIZE, SIZE, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="encoder.output_shape"):
        ExCon(unpooled, 10)
    model, _, _ = _linear_model((4, 4, 2), 3)
    images = np.zeros((4, 4, 4, 2), "float32")
    with pytest.raises(ValueError, match="labels.shape"):
        metrics.fgsm_accuracy(model, images, np.zeros((4, 1), "int32"))
    with pytest.raises(ValueError, match="one entry per image"):
        metrics.fgsm_accuracy(model, images, np.zeros(3, "int32"))
    with pytest.raises(ValueError, match="epsilon=-0.1"):
        metrics.fgsm_images(model, images, np.zeros(4, "int32"), -0.1)
    with pytest.raises(ValueError, match="pixel_range="):
        metrics.fgsm_images(model, images, np.zeros(4, "int32"), 0.1, (1.0, 0.0))


def test_fgsm_cache_does_not_keep_the_model_alive():
    import gc
    import weakref

    model, _, _ = _linear_model((4, 4, 2), 3)
    images = np.random.default_rng(0).uniform(size=(4, 4, 4, 2)).astype("float32")
    metrics.fgsm_images(model, images, np.zeros(4, "int32"), 0.1)
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None
