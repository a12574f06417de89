"""The one answer to "does this model output probabilities or logits?".

Explainers explain the pre-activation logit, metrics read probabilities and
the method layers pick their loss from it, so all of them ask here. The
answer is read once per model from one look at a model call and kept; it
never depends on layer state that another thread may be patching (the
capture wrappers keep the wrapped function reachable as `__wrapped__`).
"""

import threading
import weakref

import keras
import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.capture import Tap
from keras_edda.explainers.inspection import ModelInspection

SOFTMAX = "softmax"
SIGMOID = "sigmoid"

_SOFTMAX_FUNCTIONS = (keras.activations.softmax, keras.ops.softmax, tf.nn.softmax)
_SIGMOID_FUNCTIONS = (keras.activations.sigmoid, keras.ops.sigmoid, tf.nn.sigmoid, tf.math.sigmoid)


def _wrapping_chain(function):
    """`function` and every function it wraps (`functools.wraps` chains)."""
    chain = [function]
    while hasattr(chain[-1], "__wrapped__") and len(chain) < 16:
        chain.append(chain[-1].__wrapped__)
    return chain


def activation_kind(operation):
    """`"softmax"`, `"sigmoid"` or `None`: the probability function `operation` ends in.

    Recognises an activation given as a name, as `keras.activations.*`,
    `keras.ops.*` or `tf.nn.*` functions, a `keras.layers.Softmax` or
    `Activation` layer, and the `keras.ops.softmax` / `keras.ops.sigmoid`
    operations of a functional model.

    Args:
        operation: a layer (or functional-model operation).

    Returns:
        The kind, or `None` when the output is not a probability.
    """
    if isinstance(operation, keras.layers.Softmax):
        return SOFTMAX
    if isinstance(operation, keras.Operation) and not isinstance(operation, keras.layers.Layer):
        name = type(operation).__name__.lower()
        return name if name in (SOFTMAX, SIGMOID) else None
    activation = getattr(operation, "activation", None)
    if isinstance(activation, str):
        return activation if activation in (SOFTMAX, SIGMOID) else None
    for function in _wrapping_chain(activation) if activation is not None else ():
        if any(function is f for f in _SOFTMAX_FUNCTIONS):
            return SOFTMAX
        if any(function is f for f in _SIGMOID_FUNCTIONS):
            return SIGMOID
    return None


class OutputHead:
    """What a classifier's single output is, and where its logits are.

    Attributes:
        num_outputs: size of the output's last axis (1 for a binary head).
        num_classes: classes it decides between: `max(num_outputs, 2)`.
        activation: `"softmax"`, `"sigmoid"` or `None` (the output is logits).
        output_layer: the layer (or operation) that produced the output.
    """

    def __init__(self, num_outputs, activation, output_layer):
        self.num_outputs = int(num_outputs)
        self.num_classes = max(self.num_outputs, 2)
        self.activation = activation
        self.output_layer = output_layer

    @property
    def outputs_probabilities(self):
        """Whether the model's output is probabilities (ends in softmax/sigmoid)."""
        return self.activation is not None

    @property
    def is_binary(self):
        """A single output: the probability (or logit) of class 1."""
        return self.num_outputs == 1

    def logits_tap(self):
        """A `capture.Tap` that reads the logits entering the output activation.

        Returns `None` when the output already is logits.
        """
        if self.activation is None:
            return None
        if hasattr(self.output_layer, "activation") and not isinstance(self.output_layer, keras.layers.Softmax):
            return Tap(self.output_layer, read="activation_input")
        return Tap(self.output_layer, read="call_input")

    def probabilities(self, outputs, from_logits=None):
        """float32 class probabilities (N, num_classes) from outputs or logits.

        Args:
            outputs: the model's outputs, or the logits entering its activation.
            from_logits: whether `outputs` are logits; `None` means "as the
                model outputs them" (logits unless it ends in softmax/sigmoid).

        A binary head gives the two columns `[1 - p, p]`.
        """
        outputs = tf.cast(outputs, tf.float32)
        if from_logits is None:
            from_logits = not self.outputs_probabilities
        if self.is_binary:
            p = tf.sigmoid(outputs) if from_logits else outputs
            return tf.concat([1.0 - p, p], axis=-1)
        return tf.nn.softmax(outputs) if from_logits else outputs

    def log_probabilities(self, outputs, from_logits=None):
        """float32 log-probabilities (N, num_classes); stable for logits."""
        outputs = tf.cast(outputs, tf.float32)
        if from_logits is None:
            from_logits = not self.outputs_probabilities
        if not from_logits:
            return tf.math.log(tf.clip_by_value(self.probabilities(outputs, False), 1e-7, 1.0))
        if self.is_binary:
            return tf.concat([tf.math.log_sigmoid(-outputs), tf.math.log_sigmoid(outputs)], axis=-1)
        return tf.nn.log_softmax(outputs)

    def cross_entropy(self, targets, outputs):
        """Per-sample cross-entropy (N,) of soft targets (N, num_classes)."""
        return -tf.reduce_sum(tf.cast(targets, tf.float32) * self.log_probabilities(outputs), axis=-1)

    def kl_divergence(self, reference_outputs, outputs):
        """Per-sample KL(p_reference || p) (N,) of two output batches."""
        log_reference = self.log_probabilities(reference_outputs)
        return tf.reduce_sum(tf.exp(log_reference) * (log_reference - self.log_probabilities(outputs)), axis=-1)

    def targets_from_labels(self, labels):
        """Soft targets (N, num_classes) from int labels (N,) or soft (N, C) targets.

        For a binary head, (N, 1) float targets are read as p(class 1).
        """
        labels = tf.convert_to_tensor(labels)
        if labels.dtype.is_integer:
            return tf.one_hot(tf.reshape(labels, [-1]), self.num_classes, dtype=tf.float32)
        labels = tf.cast(labels, tf.float32)
        if self.is_binary and labels.shape[-1] == 1:
            return tf.concat([1.0 - labels, labels], axis=-1)
        return labels

    def labels_for_model(self, targets):
        """Soft targets (N, num_classes) in the layout the model's loss expects.

        (N, C) for several outputs; (N, 1) = p(class 1) for a binary head.
        """
        return targets[:, 1:] if self.is_binary else targets


_cache = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def describe(model, images=None):
    """The `OutputHead` of `model`, read once and kept per model.

    Args:
        model: a `keras.Model` with one output.
        images: a batch to call the model on when its input shape is not
            known (only its first image is used).

    Returns:
        An `OutputHead`.
    """
    with _lock:
        head = _cache.get(model)
    if head is not None:
        return head
    if images is None:
        shape = _checks.model_image_shape(model)
        if shape is None or None in shape:
            raise ValueError(
                f"The input shape of model '{model.name}' is not known; pass a batch of images.")
        images = tf.zeros((1,) + shape)
    inspection = ModelInspection(model, images)
    return describe_inspection(model, inspection)


def describe_inspection(model, inspection):
    """The `OutputHead` from a `ModelInspection` already made; kept per model."""
    output = inspection.output_layer
    head = OutputHead(inspection.num_classes, activation_kind(output) if output is not None else None, output)
    with _lock:
        return _cache.setdefault(model, head)
