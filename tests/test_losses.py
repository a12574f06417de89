"""SupConLoss against a NumPy implementation of the formula (Khosla et al.,
2020, with the ExCon authors' background samples)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_edda.losses import SupConLoss, supcon_loss


def numpy_supcon(labels, projections, temperature=0.1, base_temperature=0.07, background=None):
    """The formula, anchor by anchor, in float64.

    Anchors: every view of every non-background sample. Positives: the other
    views with the same label, background excluded. Denominator: every other
    view, background included. Anchors without positives add 0. Mean over
    the non-background anchors.
    """
    labels = np.asarray(labels)
    z = np.asarray(projections, np.float64)
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    n, v, _ = z.shape
    background = np.zeros(n, bool) if background is None else np.asarray(background)
    items = [(s, view) for view in range(v) for s in range(n)]
    losses = []
    for s, view in items:
        if background[s]:
            continue
        others = [(t, w) for t, w in items if (t, w) != (s, view)]
        logits = np.array([z[s, view] @ z[t, w] for t, w in others]) / temperature
        log_denominator = np.log(np.sum(np.exp(logits)))
        positive = [i for i, (t, _) in enumerate(others) if labels[t] == labels[s] and not background[t]]
        if not positive:
            losses.append(0.0)
            continue
        mean_log_prob = np.mean(logits[positive] - log_denominator)
        losses.append(-(temperature / base_temperature) * mean_log_prob)
    return float(np.mean(losses))


def _data(n=8, views=2, dim=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, classes, n).astype("int32"), rng.normal(size=(n, views, dim)).astype("float32")


@pytest.mark.parametrize("views", [1, 2, 3])
def test_parity_with_numpy(views):
    labels, projections = _data(views=views)
    expected = numpy_supcon(labels, projections)
    assert float(SupConLoss()(labels, projections)) == pytest.approx(expected, abs=1e-5)


def test_parity_other_temperatures():
    labels, projections = _data(seed=3)
    loss = SupConLoss(temperature=0.5, base_temperature=0.5)
    assert float(loss(labels, projections)) == pytest.approx(
        numpy_supcon(labels, projections, 0.5, 0.5), abs=1e-5)


def test_single_sample_classes():
    # Classes 3 and 4 have one sample: with two views they still have a positive
    # (the other view); with one view their anchors have none and add 0.
    labels = np.array([0, 0, 1, 1, 3, 4], "int32")
    for views in (1, 2):
        _, projections = _data(n=6, views=views, seed=views)
        value = float(SupConLoss()(labels, projections))
        assert np.isfinite(value)
        assert value == pytest.approx(numpy_supcon(labels, projections), abs=1e-5)


def test_background_samples_are_negatives_only():
    labels, projections = _data(n=10, seed=4)
    labels[7:] = -1
    background = labels == -1
    expected = numpy_supcon(labels, projections, background=background)
    assert float(SupConLoss()(labels, projections)) == pytest.approx(expected, abs=1e-5)
    # Background samples change the loss (they are in the denominators) ...
    without = numpy_supcon(labels[:7], projections[:7])
    assert abs(expected - without) > 1e-3
    # ... and the functional form with a mask gives the same value.
    functional = supcon_loss(np.where(background, 0, labels), projections, background=background)
    assert float(functional) == pytest.approx(expected, abs=1e-5)


def test_invalid_samples_are_left_out():
    labels, projections = _data(n=10, seed=5)
    valid = np.arange(10) < 6
    value = supcon_loss(labels, projections, valid=valid)
    assert float(value) == pytest.approx(numpy_supcon(labels[:6], projections[:6]), abs=1e-5)


def test_gradient_is_finite_with_background_and_lonely_anchors():
    labels = tf.constant([0, 1, -1, -1])
    projections = tf.Variable(tf.random.normal((4, 1, 3), seed=1))
    with tf.GradientTape() as tape:
        value = SupConLoss()(labels, projections)
    gradient = tape.gradient(value, projections)
    assert bool(tf.reduce_all(tf.math.is_finite(gradient)))


def test_runs_in_tf_function_and_serialises():
    labels, projections = _data()
    loss = SupConLoss(temperature=0.2, background_label=None)
    compiled = tf.function(lambda a, b: loss(a, b), jit_compile=True)
    assert float(compiled(labels, projections)) == pytest.approx(
        numpy_supcon(labels, projections, 0.2), abs=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SupConLoss)
    assert restored.get_config() == loss.get_config()


@pytest.mark.parametrize("kwargs", [{"temperature": 0.0}, {"temperature": -1.0}, {"base_temperature": 0}])
def test_bad_temperature(kwargs):
    with pytest.raises(ValueError, match=f"Received: {next(iter(kwargs))}="):
        SupConLoss(**kwargs)


def test_bad_shapes():
    labels, projections = _data()
    with pytest.raises(ValueError, match="labels.shape"):
        SupConLoss()(labels[:, None], projections)
    with pytest.raises(ValueError, match="one entry per sample"):
        SupConLoss()(labels[:5], projections)
    with pytest.raises(ValueError, match="projections.shape"):
        SupConLoss()(labels, projections[:, 0])
