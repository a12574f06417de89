"""Supervised contrastive loss (Khosla et al., NeurIPS 2020), with ExCon's
background samples that act only as negatives."""

import numbers

import keras
import tensorflow as tf

from keras_edda import _checks


def _check_temperature(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a float. Received: {name}={value!r}")
    if not value > 0:
        raise ValueError(f"`{name}` must be positive. Received: {name}={value!r}")
    return float(value)


def _check_shapes(labels, projections):
    if projections.shape.rank != 3:
        raise ValueError(
            "`projections` must have shape (N, V, d): N samples, V views. "
            f"Received: projections.shape={projections.shape}")
    _checks.check_class_ids(labels, projections, "projections", "sample", integer=False)


def supcon_loss(labels, projections, temperature=0.1, base_temperature=0.07,
                background=None, valid=None):
    """Supervised contrastive loss, contrast mode "all", as one scalar.

    The projections are L2-normalised; every view of every sample is an
    anchor. For anchor i, the positives are the other views with i's label
    (itself excluded) and the denominator runs over all other views; logits
    are dot products over `temperature`, with the row maximum subtracted.
    The anchor's loss is `-(temperature / base_temperature)` times the mean
    log-probability of its positives.

    Background samples (ExCon's masked images that the model misclassifies)
    are negatives only: they are in every denominator, but are neither
    anchors nor positives. The loss is the sum over the other anchors divided
    by `V * (number of non-background samples)`, which is the ExCon authors'
    mean over all anchors rescaled by original / actual batch size. An anchor
    without a positive (a class with one sample and one view) adds 0 and
    still counts in that mean, as in the authors' code with background
    anchors off (Khosla et al.'s code gives NaN there).

    Args:
        labels: int class ids (N,).
        projections: float (N, V, d), V views of each sample.
        temperature: softmax temperature.
        base_temperature: the loss is scaled by `temperature / base_temperature`.
        background: optional bool (N,), True for background samples.
        valid: optional bool (N,); False leaves a sample out entirely (it
            keeps shapes static when the number of samples varies per batch).

    Returns:
        float32 scalar tensor.
    """
    projections = tf.convert_to_tensor(projections)
    labels = tf.convert_to_tensor(labels)
    _check_shapes(labels, projections)
    projections = tf.math.l2_normalize(tf.cast(projections, tf.float32), axis=-1)
    shape = tf.shape(projections)
    num_samples, num_views = shape[0], shape[1]
    present = tf.ones([num_samples], tf.bool) if valid is None else tf.cast(valid, tf.bool)
    foreground = present
    if background is not None:
        foreground = present & tf.logical_not(tf.cast(background, tf.bool))

    # View-major order: row v * N + n is view v of sample n.
    features = tf.reshape(tf.transpose(projections, (1, 0, 2)), (num_samples * num_views, -1))
    labels = tf.tile(labels, [num_views])
    present = tf.tile(present, [num_views])
    foreground = tf.tile(foreground, [num_views])
    not_self = tf.logical_not(tf.eye(num_samples * num_views, dtype=tf.bool))

    logits = tf.matmul(features, features, transpose_b=True) / temperature
    row_max = tf.reduce_max(tf.where(present[None, :], logits, logits.dtype.min), axis=1, keepdims=True)
    logits = logits - tf.stop_gradient(row_max)
    in_denominator = not_self & present[None, :]
    denominator = tf.reduce_sum(tf.where(in_denominator, tf.exp(logits), 0.0), axis=1, keepdims=True)
    log_prob = logits - tf.math.log(tf.maximum(denominator, 1e-30))

    positive = (tf.equal(labels[:, None], labels[None, :]) & not_self
                & foreground[:, None] & foreground[None, :])
    num_positives = tf.reduce_sum(tf.cast(positive, tf.float32), axis=1)
    mean_log_prob = tf.reduce_sum(tf.where(positive, log_prob, 0.0), axis=1) / tf.maximum(num_positives, 1.0)
    anchor_loss = -(temperature / base_temperature) * mean_log_prob
    total = tf.reduce_sum(tf.where(foreground, anchor_loss, 0.0))
    return total / tf.maximum(tf.reduce_sum(tf.cast(foreground, tf.float32)), 1.0)


@keras.saving.register_keras_serializable(package="keras_edda")
class SupConLoss(keras.losses.Loss):
    """Supervised contrastive loss (Khosla et al., 2020), contrast mode "all".

    Called as `loss(labels, projections)` with int labels (N,) and
    projections (N, V, d) of V views (L2-normalised inside). Samples whose
    label is `background_label` are ExCon's background samples: negatives
    only, and the loss is rescaled as the ExCon authors do (see
    `keras_edda.losses.supcon_loss` for the formula and edge cases).

    Args:
        temperature: softmax temperature (0.1, the ExCon authors' setting).
        base_temperature: the loss is scaled by `temperature / base_temperature`.
        background_label: the label that marks a background sample (-1);
            `None`: no background samples.
        name: name of the loss.
        **kwargs: other `keras.losses.Loss` arguments (`reduction`, `dtype`);
            the loss is already a scalar, so the reduction leaves it as it is.

    Example:

    ```python
    loss = keras_edda.losses.SupConLoss(temperature=0.1)
    value = loss(labels, tf.stack([projection_a, projection_b], axis=1))
    ```
    """

    def __init__(self, temperature=0.1, base_temperature=0.07, background_label=-1,
                 name="supcon_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = _check_temperature(temperature, "temperature")
        self.base_temperature = _check_temperature(base_temperature, "base_temperature")
        if background_label is not None and (
                isinstance(background_label, bool) or not isinstance(background_label, numbers.Integral)):
            raise TypeError(
                "`background_label` must be an int or None. "
                f"Received: background_label={background_label!r}")
        self.background_label = None if background_label is None else int(background_label)

    def call(self, y_true, y_pred):
        labels = tf.convert_to_tensor(y_true)
        _check_shapes(labels, tf.convert_to_tensor(y_pred))
        labels = tf.cast(tf.round(tf.cast(labels, tf.float32)), tf.int32)
        background = None
        if self.background_label is not None:
            background = tf.equal(labels, self.background_label)
        return supcon_loss(labels, y_pred, self.temperature, self.base_temperature, background)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "base_temperature": self.base_temperature,
            "background_label": self.background_label,
        }
