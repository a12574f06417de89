"""Turning the `targets` argument into per-class weights of the score.

Every explainer explains `score = sum_c weights[n, c] * output[n, c]`:
a class id gives a one-hot row, a soft target its own row, `None` the
model's own prediction. For a single-output (sigmoid / binary) head the
weight is +1 for class 1 and -1 for class 0.
"""

import numbers

import tensorflow as tf


def _raise_or_assert(condition, message):
    """Raises `ValueError` when `condition` is known to be false now; inside a
    graph where it is only known at run time, returns a runtime assertion.

    `message` is a callable so that it is only built when needed.
    """
    value = tf.get_static_value(condition)
    if value is not None:
        if not bool(value):
            raise ValueError(message())
        return []
    return [tf.debugging.Assert(condition, [message()])]


def standardize_targets(targets, batch_size, num_classes):
    """Checks `targets` and returns `None`, int32 ids (N,) or float32 (N, C).

    Args:
        targets: `None`, an int, an int vector (N,), or one-hot / soft
            targets (N, C).
        batch_size: N as an int32 scalar tensor (dynamic shapes allowed).
        num_classes: C, a Python int.

    Returns:
        `(targets, checks)`: the standardised targets and the runtime
        assertions to run before using them (empty outside graphs).
    """
    if targets is None:
        return None, []
    if isinstance(targets, bool):
        raise TypeError(f"`targets` must be class ids or (N, C) weights. Received: targets={targets!r}")
    received = None
    if isinstance(targets, numbers.Integral):
        received = f"targets={int(targets)}"
        targets = tf.fill([batch_size], tf.constant(int(targets), tf.int32))
    try:
        targets = tf.convert_to_tensor(targets)
    except (TypeError, ValueError) as error:
        raise TypeError(
            "`targets` must be None, an int, an int vector (N,) or one-hot / "
            f"soft targets (N, C). Received: targets of type {type(targets)}"
        ) from error
    if targets.shape.rank == 0 and targets.dtype.is_integer:
        targets = tf.fill([batch_size], tf.cast(targets, tf.int32))
    rank = targets.shape.rank
    received = received or (
        f"targets.shape={targets.shape}, dtype={targets.dtype.name}"
    )
    classes = max(num_classes, 2)
    checks = []
    if rank == 1 and targets.dtype.is_integer:
        targets = tf.cast(targets, tf.int32)
        checks += _raise_or_assert(
            tf.equal(tf.shape(targets)[0], batch_size),
            lambda: f"`targets` must have one entry per image. Received: "
            f"{received} for a batch of {batch_size} images",
        )
        checks += _raise_or_assert(
            tf.reduce_all((targets >= 0) & (targets < classes)),
            lambda: f"`targets` must be class ids in [0, {classes}). Received: "
            + (
                f"targets={targets.numpy().tolist()[:16]}"
                if tf.executing_eagerly()
                else received
            ),
        )
        return targets, checks
    if rank == 2 and targets.dtype.is_floating:
        if targets.shape[1] is not None and targets.shape[1] != num_classes:
            raise ValueError(
                f"`targets` given as (N, C) weights must have C={num_classes} "
                f"columns, as the model has. Received: {received}"
            )
        checks += _raise_or_assert(
            tf.equal(tf.shape(targets)[0], batch_size),
            lambda: f"`targets` must have one row per image. Received: "
            f"{received} for a batch of {batch_size} images",
        )
        checks += _raise_or_assert(
            tf.reduce_all(tf.math.is_finite(targets)),
            lambda: f"`targets` must be finite numbers. Received: {received} with NaN or inf",
        )
        return tf.cast(targets, tf.float32), checks
    raise ValueError(
        "`targets` must be None, an int, an int vector (N,) or float one-hot / "
        f"soft targets (N, C). Received: {received}"
    )


def target_weights(targets, scores, num_classes, binary_threshold=0.0):
    """Per-class weights (N, C) of the explained score.

    Args:
        targets: output of `standardize_targets`.
        scores: the model's float32 scores (N, C); only used when `targets`
            is `None` (the prediction is explained). May be `None` otherwise.
        num_classes: C.
        binary_threshold: decision threshold of a single-output head (0 for
            logits, 0.5 for probabilities).
    """
    if targets is None:
        scores = tf.stop_gradient(scores)
    if num_classes == 1:
        if targets is None:
            positive = scores > binary_threshold
        elif targets.dtype.is_integer:
            positive = tf.equal(targets, 1)[:, None]
        else:
            return targets
        return tf.where(positive, 1.0, -1.0)
    if targets is None:
        targets = tf.argmax(scores, axis=-1, output_type=tf.int32)
    if targets.dtype.is_integer:
        return tf.one_hot(targets, num_classes, dtype=tf.float32)
    return targets


def explained_score(weights, scores):
    """The score that is explained: sum_c weights[n, c] * scores[n, c]."""
    return tf.reduce_sum(weights * scores, axis=-1)
