"""Expected calibration error and mean confidence against a NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from keras_edda import metrics


def reference_ece(probabilities, labels, num_bins=15):
    """The textbook loop: bins (lo, hi] over (0, 1], empty bins skipped."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return ece


def random_predictions(n, classes, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities.astype("float32"), rng.integers(0, classes, size=n)


@pytest.mark.parametrize("num_bins", [15, 10, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_ece_matches_numpy_reference(num_bins, seed):
    probabilities, labels = random_predictions(500, 7, seed)
    ece = metrics.expected_calibration_error(probabilities, labels, num_bins)
    assert ece.dtype == tf.float32 and ece.shape == ()
    np.testing.assert_allclose(float(ece), reference_ece(probabilities, labels, num_bins), atol=1e-6)


def test_ece_one_hot_labels_and_tf_function():
    probabilities, labels = random_predictions(64, 4, 2)
    one_hot = np.eye(4, dtype="float32")[labels]
    expected = reference_ece(probabilities, labels)
    np.testing.assert_allclose(float(metrics.expected_calibration_error(probabilities, one_hot)), expected, atol=1e-6)
    compiled = tf.function(lambda p, y: metrics.expected_calibration_error(p, y))
    np.testing.assert_allclose(float(compiled(tf.constant(probabilities), tf.constant(labels))), expected, atol=1e-6)


def test_ece_hand_made():
    # Two bins used of 15 (the others empty): confidence 0.9 right 3 times of 4,
    # confidence 0.6 right once of 2.
    probabilities = np.array([[0.9, 0.1]] * 4 + [[0.4, 0.6]] * 2, "float32")
    labels = np.array([0, 0, 0, 1, 1, 0])
    expected = 4 / 6 * abs(0.75 - 0.9) + 2 / 6 * abs(0.5 - 0.6)
    np.testing.assert_allclose(float(metrics.expected_calibration_error(probabilities, labels)), expected, atol=1e-6)
    np.testing.assert_allclose(float(metrics.mean_confidence(probabilities)), (4 * 0.9 + 2 * 0.6) / 6, atol=1e-6)


def test_ece_perfectly_calibrated_is_zero():
    # Confidence 0.8, right on 4 of 5; confidence 1.0, always right.
    probabilities = np.array([[0.8, 0.2]] * 5 + [[0.0, 1.0]] * 3, "float32")
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert float(metrics.expected_calibration_error(probabilities, labels)) == pytest.approx(0.0, abs=1e-6)


def test_mean_confidence_matches_numpy():
    probabilities, _ = random_predictions(100, 5, 3)
    np.testing.assert_allclose(float(metrics.mean_confidence(probabilities)), probabilities.max(axis=1).mean(),
                               rtol=1e-6)


def test_ece_bad_input():
    probabilities, labels = random_predictions(8, 3, 0)
    with pytest.raises(ValueError, match="num_bins=0"):
        metrics.expected_calibration_error(probabilities, labels, num_bins=0)
    with pytest.raises(ValueError, match="probabilities.shape"):
        metrics.expected_calibration_error(probabilities[0], labels)
    with pytest.raises(ValueError, match="labels.shape"):
        metrics.expected_calibration_error(probabilities, labels[:5])
    with pytest.raises(TypeError, match="probabilities.dtype"):
        metrics.expected_calibration_error(labels[:, None].repeat(3, 1), labels)


def test_single_sigmoid_output_is_the_probability_of_class_one():
    p = np.array([[0.9], [0.8], [0.2], [0.1]], "float32")
    labels = np.array([1, 1, 0, 0])
    two_columns = np.concatenate([1.0 - p, p], axis=1)
    # Every prediction is right; the confidences are 0.9, 0.8, 0.8, 0.9.
    assert float(metrics.expected_calibration_error(p, labels)) == pytest.approx(reference_ece(two_columns, labels))
    assert float(metrics.expected_calibration_error(p, labels)) == pytest.approx(0.15)
    assert float(metrics.mean_confidence(p)) == pytest.approx(0.85)


def test_labels_outside_the_classes_and_one_hot_rows_are_refused():
    probabilities, labels = random_predictions(8, 3, 0)
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\)"):
        metrics.expected_calibration_error(probabilities, np.array([0, 1, 2, 5, 0, 1, 2, 0]))
    with pytest.raises(ValueError, match="rows and classes"):
        metrics.expected_calibration_error(probabilities, np.eye(3, dtype="float32")[:1])
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.function(metrics.expected_calibration_error)(probabilities, tf.constant([0, 1, 2, 5, 0, 1, 2, 0]))


def test_scores_that_are_not_probabilities_are_refused():
    """Issue 25 item 8: logits gave an ECE of 3.0 (the docstring promises [0, 1])."""
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(32, 5)).astype("float32")
    labels = rng.integers(0, 5, 32)
    for bad, what in ((logits, "values in"), (np.full((4, 3), 0.5, "float32"), "row sums"),
                      (np.array([[1.5], [0.2]], "float32"), "values in")):
        with pytest.raises(ValueError, match=f"must be class probabilities.*{what}"):
            metrics.expected_calibration_error(bad, labels[:len(bad)] % bad.shape[-1])
        with pytest.raises(ValueError, match="must be class probabilities"):
            metrics.mean_confidence(bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be class probabilities"):
        tf.function(metrics.expected_calibration_error)(tf.constant(logits), tf.constant(labels))
    # What a model's head gives from the logits is accepted, and lies in [0, 1].
    probabilities = tf.nn.softmax(logits)
    assert 0.0 <= float(metrics.expected_calibration_error(probabilities, labels)) <= 1.0
    assert 0.0 <= float(tf.function(metrics.mean_confidence)(probabilities)) <= 1.0
    half = tf.cast(tf.nn.softmax(logits), tf.float16)  # a mixed-precision softmax's row sums are off by ~1e-3
    metrics.expected_calibration_error(half, labels)
