"""Adversarial robustness: accuracy under the fast gradient sign method
(FGSM; Goodfellow, Shlens and Szegedy, ICLR 2015), as ExCon reports it."""

import numbers
import weakref

import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers import capture as capture_lib
from keras_edda.explainers import heads as heads_lib
from keras_edda.metrics.base import ProbabilityReader
from keras_edda.ops.batching import map_rows

_COMPILED = weakref.WeakKeyDictionary()


def _check_settings(epsilon, pixel_range):
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not epsilon >= 0:
        raise ValueError(f"`epsilon` must be a float >= 0. Received: epsilon={epsilon!r}")
    try:
        low, high = (float(v) for v in pixel_range)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`pixel_range` must be a pair (low, high). Received: pixel_range={pixel_range!r}") from error
    if not low < high:
        raise ValueError(f"`pixel_range` must have low < high. Received: pixel_range={pixel_range!r}")
    return float(epsilon), (low, high)


def _compiled_attack(model, images):
    if model not in _COMPILED:
        head = heads_lib.describe(model, images[:1])
        num_classes = head.num_outputs
        tap = head.logits_tap()
        del head
        # A weak reference: the cached function must not keep its key, the model, alive.
        model_ref = weakref.ref(model)

        def logits_of(batch):
            with capture_lib.Capture([tap] if tap is not None else []) as capture:
                outputs = model_ref()(batch, training=False)
            return tf.cast(capture[tap] if tap is not None else outputs, tf.float32)

        def attack(images, labels, step, low, high, batch_size):
            def perturb(batch, batch_labels):
                with tf.GradientTape() as tape:
                    tape.watch(batch)
                    logits = logits_of(batch)
                    if num_classes == 1:
                        loss = tf.nn.sigmoid_cross_entropy_with_logits(
                            tf.cast(batch_labels, tf.float32), logits[:, 0])
                    else:
                        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(batch_labels, logits)
                gradient = tape.gradient(loss, batch)
                return tf.clip_by_value(batch + step * tf.sign(gradient), low, high)

            return map_rows(perturb, images, labels, images.shape[1:], batch_size)

        _COMPILED[model] = tf.function(attack, reduce_retracing=True)
    return _COMPILED[model]


def _check_pixel_range(images, low, high):
    """Refuses images outside `pixel_range`: the attack clips to it, so they would be scored clipped."""
    slack = 1e-6 * (high - low)
    smallest, largest = tf.reduce_min(images), tf.reduce_max(images)
    inside = (smallest >= low - slack) & (largest <= high + slack)
    message = ("`images` must lie in `pixel_range` (the attacked images are clipped to it, so images outside "
               "it would be scored after clipping, even at epsilon=0): pass the range of the model's inputs.")
    if tf.executing_eagerly():
        if not bool(inside):
            raise ValueError(f"{message} Received: images with values in [{float(smallest):.4g}, "
                             f"{float(largest):.4g}], pixel_range={(low, high)}")
        return images
    with tf.control_dependencies([tf.debugging.Assert(inside, [message, smallest, largest])]):
        return tf.identity(images)


def fgsm_images(model, images, labels, epsilon=4 / 255, pixel_range=(0.0, 1.0), batch_size=None):
    """Adversarial images by one signed-gradient step (FGSM).

    `x' = clip(x + epsilon * (high - low) * sign(d CE(model(x), y) / dx), low,
    high)`: `epsilon` is in [0, 1] pixel space and `pixel_range` is what
    [0, 1] pixels become at the model's input (e.g. (-1, 1)); the
    cross-entropy is taken on the logits (read before a softmax/sigmoid
    output, as the explainers do), one gradient per image.

    Args:
        model: a `keras.Model` classifier.
        images: float images (N, H, W, C) (or (N, C, H, W)).
        labels: int class ids (N,).
        epsilon: the step in [0, 1] pixel space (4/255, ExCon's).
        pixel_range: `(low, high)` of the model's inputs; the images must
            lie in it (e.g. [0, 255] or [-1, 1] images need
            `pixel_range=(0, 255)` or `(-1, 1)`).
        batch_size: most images per forward/backward call (`None`: all).

    Returns:
        float32 images of the shape of `images`.

    Raises:
        ValueError: for images outside `pixel_range` (inside a graph: an
            `InvalidArgumentError`), which the attack would clip into it.

    Example:

    ```python
    shifted = keras_edda.metrics.robustness.fgsm_images(model, x_test, y_test, 4 / 255)
    ```
    """
    model = _checks.check_model(model)
    images = tf.cast(_checks.check_images(images, "images"), tf.float32)
    labels = tf.cast(_checks.check_class_ids(labels, images, "images", "image"), tf.int32)
    epsilon, (low, high) = _check_settings(epsilon, pixel_range)
    batch_size = _checks.check_positive_int(batch_size, "batch_size", allow_none=True)
    images = _check_pixel_range(images, low, high)
    step = tf.constant(epsilon * (high - low), tf.float32)
    return _compiled_attack(model, images)(images, labels, step, tf.constant(low), tf.constant(high), batch_size)


def fgsm_accuracy(model, images, labels, epsilon=4 / 255, pixel_range=(0.0, 1.0), batch_size=None):
    """Top-1 accuracy on FGSM images (see `fgsm_images` for the arguments).

    Returns:
        float32 scalar tensor in [0, 1].

    Example:

    ```python
    robust = keras_edda.metrics.robustness.fgsm_accuracy(model, x_test, y_test, epsilon=4 / 255)
    ```
    """
    shifted = fgsm_images(model, images, labels, epsilon, pixel_range, batch_size)
    labels = tf.cast(_checks.check_class_ids(labels, shifted, "images", "image"), tf.int32)
    probabilities = ProbabilityReader(model, shifted, batch_size)(shifted)
    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(predicted, labels), tf.float32))
