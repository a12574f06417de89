"""Calibration of a classifier's probabilities: expected calibration error
(Naeini et al., 2015; Guo et al., 2017) and mean confidence."""

import tensorflow as tf

from keras_edda import _checks


def _check_probabilities(probabilities):
    if not tf.is_tensor(probabilities):
        probabilities = tf.convert_to_tensor(probabilities)
    if not probabilities.dtype.is_floating:
        raise TypeError(
            "`probabilities` must be a float tensor (N, C). "
            f"Received: probabilities.dtype={probabilities.dtype.name}")
    if probabilities.shape.rank != 2:
        raise ValueError(
            "`probabilities` must have shape (N, C). "
            f"Received: probabilities.shape={probabilities.shape}")
    probabilities = tf.cast(probabilities, tf.float32)
    probabilities = _assert_probabilities(probabilities)
    if probabilities.shape[-1] == 1:
        # A single sigmoid output is the probability of class 1.
        probabilities = tf.concat([1.0 - probabilities, probabilities], axis=-1)
    return probabilities


# Slack of the probability check: float32 rounding of [0, 1], and the row sums of a float16 softmax.
_RANGE_SLACK = 1e-6
_SUM_SLACK = 1e-2


def _assert_probabilities(probabilities):
    """Refuses scores that are not probabilities (logits gave an ECE of 3.0).

    Every value must lie in [0, 1] and, for more than one column, every row
    must sum to 1 (a softmax output): eagerly a `ValueError`, in a graph an
    assertion with the same message.
    """
    low, high = tf.reduce_min(probabilities), tf.reduce_max(probabilities)
    in_range = (low >= -_RANGE_SLACK) & (high <= 1.0 + _RANGE_SLACK)
    sums = tf.reduce_sum(probabilities, axis=-1)
    if probabilities.shape[-1] == 1:
        sums = tf.ones_like(sums)
    worst_sum = tf.reduce_max(tf.abs(sums - 1.0))
    valid = in_range & (worst_sum <= _SUM_SLACK)
    message = ("`probabilities` must be class probabilities: values in [0, 1] and rows that sum to 1 (a "
               "softmax output), or one column of sigmoid probabilities. For logits, apply a softmax "
               "(sigmoid) first, as `keras_edda.explainers.heads.describe(model, images).probabilities` "
               "does.")
    if tf.executing_eagerly():
        if not bool(valid):
            raise ValueError(f"{message} Received: probabilities with values in [{float(low):.4g}, "
                             f"{float(high):.4g}] and row sums up to {float(worst_sum):.4g} away from 1")
        return probabilities
    with tf.control_dependencies([tf.debugging.Assert(valid, [message, low, high, worst_sum])]):
        return tf.identity(probabilities)


def _labels_as_classes(labels, probabilities):
    if not tf.is_tensor(labels):
        labels = tf.convert_to_tensor(labels)
    rank = labels.shape.rank
    if rank == 2:
        if labels.shape[-1] not in (None, probabilities.shape[-1]) or None not in (
                labels.shape[0], probabilities.shape[0]) and labels.shape[0] != probabilities.shape[0]:
            raise ValueError(
                "One-hot `labels` must have the rows and classes of `probabilities`. "
                f"Received: labels.shape={labels.shape}, probabilities.shape={probabilities.shape}")
        return tf.argmax(labels, axis=-1, output_type=tf.int32)
    classes = tf.cast(_checks.check_class_ids(labels, probabilities, "probabilities"), tf.int32)
    num_classes = tf.shape(probabilities)[-1]
    in_range = tf.reduce_all((classes >= 0) & (classes < num_classes))
    if tf.executing_eagerly():
        if not bool(in_range):
            raise ValueError(f"`labels` must be class ids in [0, {probabilities.shape[-1]}). "
                             f"Received: labels with values {sorted(set(classes.numpy().tolist()))[:10]}")
        return classes
    with tf.control_dependencies([tf.debugging.Assert(in_range, ["`labels` must be class ids in [0, C)"])]):
        return tf.identity(classes)


def mean_confidence(probabilities):
    """Mean top-1 probability of a batch of predictions.

    Args:
        probabilities: float class probabilities (N, C), or (N, 1) for a
            single sigmoid output (the probability of class 1). Scores
            that are not probabilities (logits: values outside [0, 1], or
            rows not summing to 1 within 0.01) are refused.

    Returns:
        float32 scalar tensor.

    Raises:
        ValueError: for scores that are not probabilities (inside a graph:
            an `InvalidArgumentError`).

    Example:

    ```python
    confidence = keras_edda.metrics.mean_confidence(model.predict(images))
    ```
    """
    probabilities = _check_probabilities(probabilities)
    return tf.reduce_mean(tf.reduce_max(probabilities, axis=-1))


def expected_calibration_error(probabilities, labels, num_bins=15):
    """Expected calibration error with equal-width confidence bins.

    The confidence of a prediction is its top-1 probability and it is
    correct when its argmax equals the label. Predictions go to `num_bins`
    equal-width bins over (0, 1] (bin b holds confidences in
    (b / num_bins, (b + 1) / num_bins]) and
    ECE = sum_b |B_b| / N * |accuracy(B_b) - confidence(B_b)|; empty bins
    add nothing. TensorFlow ops only: works inside `tf.function`.

    Args:
        probabilities: float class probabilities (N, C), or (N, 1) for a
            single sigmoid output (the probability of class 1). Scores
            that are not probabilities (logits: values outside [0, 1], or
            rows not summing to 1 within 0.01) are refused: an ECE of
            logits is not a calibration error.
        labels: int class indices (N,) in [0, C) (C = 2 for a sigmoid
            output) or one-hot / soft labels (N, C) (their argmax).
        num_bins: number of bins (default 15).

    Returns:
        float32 scalar tensor in [0, 1].

    Example:

    ```python
    ece = keras_edda.metrics.expected_calibration_error(model.predict(x), y)
    ```
    """
    num_bins = _checks.check_positive_int(num_bins, "num_bins")
    probabilities = _check_probabilities(probabilities)
    classes = _labels_as_classes(labels, probabilities)
    confidence = tf.reduce_max(probabilities, axis=-1)
    correct = tf.cast(tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32), classes),
                      tf.float32)
    # Bin b holds (b / B, (b + 1) / B]; a confidence of exactly 0 joins the first bin.
    bins = tf.cast(tf.math.ceil(confidence * num_bins), tf.int32) - 1
    bins = tf.clip_by_value(bins, 0, num_bins - 1)
    confidence_sums = tf.math.unsorted_segment_sum(confidence, bins, num_bins)
    correct_sums = tf.math.unsorted_segment_sum(correct, bins, num_bins)
    count = tf.maximum(tf.cast(tf.size(confidence), tf.float32), 1.0)
    # |B_b| / N * |acc_b - conf_b| = |sum correct - sum confidence| / N.
    return tf.reduce_sum(tf.abs(correct_sums - confidence_sums)) / count
