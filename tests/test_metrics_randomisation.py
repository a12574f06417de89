"""Sanity checks: model-parameter randomisation and the random-logit test.
Known answers (a model-independent explainer scores 1), the randomisation
itself, parity with Quantus 0.6's MPRT / RandomLogit, bad input."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers, metrics
from keras_edda.metrics import randomisation


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, (5, 80)).astype("float32")  # many ties
    b = rng.normal(size=(5, 80)).astype("float32")
    b[:, :20] = 0.0
    expected = [scipy.stats.spearmanr(x, y)[0] for x, y in zip(a, b)]
    np.testing.assert_allclose(metrics.spearman_correlation(a, b), expected, atol=1e-6)
    np.testing.assert_allclose(randomisation.average_ranks(a), scipy.stats.rankdata(a, axis=1), atol=1e-6)
    # A constant row has no ranks to correlate (scipy gives NaN): 0 against a ranking, 1 against another constant.
    np.testing.assert_array_equal(metrics.spearman_correlation(np.ones((2, 9)), np.stack([b[0, 20:29], np.zeros(9)])),
                                  [0.0, 1.0])


class ModelFree(explainers.Explainer):
    """A map that ignores the model and the class: the images' brightness."""

    def explain_batch(self, images, targets):
        return tf.reduce_mean(images, axis=-1, keepdims=True)


def test_a_map_that_ignores_the_model_fails_both_checks(model, images):
    np.testing.assert_allclose(metrics.ModelParameterRandomisation(ModelFree)(model, images),
                               np.ones(6), atol=1e-6)
    np.testing.assert_allclose(metrics.RandomLogit(ModelFree)(model, images), np.ones(6), atol=1e-6)
    # Saliency depends on the parameters and on the class.
    scores = metrics.ModelParameterRandomisation("saliency")(model, images)
    assert np.all(scores.numpy() < 0.9)
    assert np.all(metrics.RandomLogit("saliency")(model, images).numpy() < 0.99)


def test_cascading_randomisation_from_the_top_leaves_the_model_alone(model, images):
    trained = [w.numpy() for w in model.weights]
    names = [layer.name for layer in model.layers if layer.weights][::-1]
    steps = list(randomisation.randomised_models(model, seed=3))
    assert [name for name, _ in steps] == names == ["head", "conv2", "conv1"]
    copies = randomisation.RandomisedCopies(model, seed=3)
    copies.restore()
    for step in range(3):
        copies.randomise(step)
        for name in ("conv1", "conv2", "head"):
            changed = not np.array_equal(copies.work.get_layer(name).kernel.numpy(),
                                         model.get_layer(name).kernel.numpy())
            assert changed == (name in names[:step + 1]), (step, name)
    # The user's model never changes; the same seed gives the same fresh weights.
    for now, before in zip(model.weights, trained):
        np.testing.assert_array_equal(now.numpy(), before)
    again = randomisation.RandomisedCopies(model, seed=3)
    again.restore()
    for step in range(3):
        again.randomise(step)
    for a, b in zip(again.work.weights, copies.work.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_scores_per_layer_follow_the_order_and_the_model(model, images):
    mprt = metrics.ModelParameterRandomisation("grad_cam", explainer_kwargs={"layer": "conv2"}, batch_size=4)
    per_layer = mprt.layer_scores(model, images)
    assert list(per_layer) == ["head", "conv2", "conv1"]
    np.testing.assert_allclose(mprt(model, images), np.mean(list(per_layer.values()), axis=0), atol=1e-6)
    # Given maps and targets are used as they are.
    labels = np.arange(6) % 5
    maps = explainers.GradCAM(model, layer="conv2")(images, targets=labels)
    np.testing.assert_allclose(mprt(model, images, maps, targets=labels), mprt(model, images, targets=labels),
                               atol=1e-6)
    # Independent: the first step is the cascade's; the last randomises the bottom layer alone.
    independent = metrics.ModelParameterRandomisation(
        "grad_cam", explainer_kwargs={"layer": "conv2"}, order="independent").scores_per_layer(model, images)
    cascading = mprt.scores_per_layer(model, images)
    np.testing.assert_allclose(independent[:, 0], cascading[:, 0], atol=1e-6)
    assert not np.allclose(independent[:, 2], cascading[:, 2])
    # The metric follows the model's weights (a cached clone must not go stale).
    for weight in model.weights:
        weight.assign(weight * 1.5 + 0.01)
    fresh = metrics.ModelParameterRandomisation("grad_cam", explainer_kwargs={"layer": "conv2"})
    np.testing.assert_allclose(mprt(model, images, targets=labels), fresh(model, images, targets=labels),
                               atol=1e-5)


def test_random_logit_draws_another_class(model, images):
    metric = metrics.RandomLogit(seed=2)
    classes = tf.constant([0, 1, 2, 3, 4, 4] * 5, tf.int32)
    off = metric.off_classes(classes, 5)
    assert not np.any(off.numpy() == classes.numpy())
    assert set(off.numpy()) <= set(range(5)) and len(set(off.numpy())) == 5
    # Given other classes are used; same seed, same draw.
    labels = np.arange(6) % 5
    given = metric(model, images, targets=labels, off_targets=(labels + 1) % 5)
    maps = explainers.Saliency(model)(images, targets=labels)
    others = explainers.Saliency(model)(images, targets=(labels + 1) % 5)
    expected = [scipy.stats.spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(maps.numpy(), others.numpy())]
    np.testing.assert_allclose(given, expected, atol=1e-5)
    np.testing.assert_array_equal(metric(model, images), metrics.RandomLogit(seed=2)(model, images))


def quantus_explain_func(explainer_class, **kwargs):
    """Our explainer as Quantus' `explain_func`: channels-first maps (N, 1, H, W) in NumPy."""

    def explain(model, inputs, targets, **_):
        inputs = np.asarray(inputs, "float32")
        if inputs.shape[-1] != model.input_shape[-1]:  # Quantus hands channels-first copies around
            inputs = np.transpose(inputs, (0, 2, 3, 1))
        maps = explainer_class(model, **kwargs)(inputs, targets=np.asarray(targets).astype("int32"))
        return np.transpose(maps.numpy(), (0, 3, 1, 2))

    return explain


@pytest.mark.parametrize("explainer,kwargs", [(explainers.Saliency, {}), (explainers.GradCAM, {"layer": "conv2"})])
def test_model_parameter_randomisation_matches_quantus(monkeypatch, explainer, kwargs):
    quantus = pytest.importorskip("quantus")
    from quantus.helpers.model import tf_model

    model = small_cnn((12, 12, 3), num_classes=4)
    images = random_images(8, (12, 12, 3), seed=4)
    labels = np.argmax(model(images), axis=-1)
    explain = quantus_explain_func(explainer, **kwargs)
    # Quantus 0.6 randomises a `clone_model` of the model, which Keras re-initialises entirely, so each of its
    # "layers" is a fully random model; it is handed our cascade instead (the same model, the same order), and
    # everything else -- explanations of each randomised model, abs, normalisation, Spearman -- is its own.
    monkeypatch.setattr(tf_model.TensorFlowModel, "get_random_layer_generator",
                        lambda self, order="top_down", seed=42: randomisation.randomised_models(self.model, order, 0))
    reference = quantus.MPRT(disable_warnings=True, display_progressbar=False)(
        model=model, x_batch=images, y_batch=labels, a_batch=explain(model, images, labels), channel_first=False,
        explain_func=explain, batch_size=8)
    reference.pop("original")
    ours = metrics.ModelParameterRandomisation(explainer, explainer_kwargs=kwargs).layer_scores(
        model, images, targets=labels)
    assert list(ours) == list(reference)
    for name in ours:
        # Where a randomised model's map is uniform (Grad-CAM's ReLU leaves zeros), Spearman is undefined:
        # Quantus gives NaN, ours 0 (see `pearson_correlation`).
        undefined = np.isnan(reference[name])
        np.testing.assert_allclose(ours[name], np.where(undefined, 0.0, reference[name]), atol=1e-5, err_msg=name)
    assert explainer is explainers.Saliency or np.isnan(np.concatenate(list(reference.values()))).any()


@pytest.mark.parametrize("explainer,kwargs", [(explainers.Saliency, {}), (explainers.GradCAM, {"layer": "conv2"})])
def test_random_logit_matches_quantus(explainer, kwargs):
    quantus = pytest.importorskip("quantus")
    model = small_cnn((12, 12, 3), num_classes=4)
    images = random_images(8, (12, 12, 3), seed=5)
    labels = np.argmax(model(images), axis=-1)
    explain = quantus_explain_func(explainer, **kwargs)
    reference = quantus.RandomLogit(num_classes=4, similarity_func=quantus.similarity_func.correlation_spearman,
                                    disable_warnings=True, display_progressbar=False)(
        model=model, x_batch=images, y_batch=labels, a_batch=explain(model, images, labels), channel_first=False,
        explain_func=explain, batch_size=8)
    # Quantus' draw (random_logit.py): seed 42, an index into the classes without the explained one.
    np.random.seed(42)
    index = np.random.randint(0, 3, len(labels))
    off = np.stack([np.delete(np.arange(4), c) for c in labels])[np.arange(len(labels)), index]
    ours = metrics.RandomLogit(explainer, explainer_kwargs=kwargs)(model, images, targets=labels, off_targets=off)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_sanity_checks_in_the_registry(model, images):
    assert set(metrics.SANITY_METRICS) == {"model_parameter_randomisation", "random_logit"}
    mprt = metrics.get("model_parameter_randomisation", explainer="saliency", seed=1)
    assert mprt.score_direction == "lower" and mprt.order == "top_down"
    assert metrics.get(mprt) is mprt
    assert "explainer='saliency'" in repr(mprt)


def test_bad_input(model, images):
    with pytest.raises(ValueError, match=r"Unknown explainer.*explainer='nope'"):
        metrics.ModelParameterRandomisation("nope")
    with pytest.raises(TypeError, match=r"Explainer subclass.*explainer=<function"):
        metrics.RandomLogit(lambda images, targets: images)
    with pytest.raises(ValueError, match=r"order=.*bottom_up"):
        metrics.ModelParameterRandomisation(order="bottom_up")
    with pytest.raises(ValueError, match=r"similarity=.*ssim"):
        metrics.RandomLogit(similarity="ssim")
    with pytest.raises(TypeError, match=r"absolute=1"):
        metrics.RandomLogit(absolute=1)
    mprt = metrics.ModelParameterRandomisation()
    with pytest.raises(ValueError, match=r"`maps` must have one channel.*maps.shape=\(6, 8, 8, 1\)"):
        mprt(model, images, np.zeros((6, 8, 8, 1), "float32"))
    bad = images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"`images` contains NaN"):
        mprt(model, bad)
    for fresh in (metrics.ModelParameterRandomisation(), metrics.RandomLogit()):  # checked before any model call
        with pytest.raises(ValueError, match=r"must fit the input of model.*images.shape=\(2, 8, 8, 3\)"):
            fresh(model, random_images(2, (8, 8, 3)))
    with pytest.raises(ValueError, match=r"off_targets` must differ.*\[1, 1, 2, 3, 4, 0\]"):
        metrics.RandomLogit()(model, images, targets=[1, 0, 2, 3, 4, 0], off_targets=[1, 1, 2, 3, 4, 0])
    with pytest.raises(ValueError, match=r"off_targets` must be class ids in \[0, 5\)"):
        metrics.RandomLogit()(model, images, off_targets=[9] * 6)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(self.pool(self.conv(x)))

    subclassed = Subclassed()
    subclassed(images)
    with pytest.raises(ValueError, match=r"needs a copy of the model.*Subclassed"):
        mprt(subclassed, images)
