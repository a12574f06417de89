"""Integrated Gradients (Sundararajan et al., ICML 2017), batched."""

import numbers

import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.explainers.targets import explained_score
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import channel_axis, to_channels_last

METHODS = ("trapezoid", "riemann_middle", "riemann_left", "riemann_right", "uniform")


def path_points(steps, method):
    """Positions alpha in [0, 1] on the straight path and their weights.

    `"trapezoid"` (default) and `"riemann_middle"` converge fastest.
    `"uniform"` is `steps` points from 0 to 1, both ends included, equally
    weighted: the scheme of tf-explain's `get_integrated_gradients`.
    """
    k = tf.range(steps, dtype=tf.float32)
    n = float(steps)
    if method == "riemann_middle":
        return (k + 0.5) / n, tf.fill([steps], 1.0 / n)
    if method == "riemann_left":
        return k / n, tf.fill([steps], 1.0 / n)
    if method == "riemann_right":
        return (k + 1.0) / n, tf.fill([steps], 1.0 / n)
    if method == "uniform":
        return k / max(n - 1.0, 1.0), tf.fill([steps], 1.0 / n)
    if steps == 1:
        return tf.constant([0.5]), tf.constant([1.0])
    ends = tf.one_hot([0, steps - 1], steps, dtype=tf.float32)
    weights = (1.0 - 0.5 * tf.reduce_sum(ends, axis=0)) / (n - 1.0)
    return k / (n - 1.0), weights


@register("integrated_gradients")
class IntegratedGradients(Explainer):
    """Integrated Gradients: path integral of gradients times (x - baseline).

    attribution = (x - x') * integral_0^1 grad f(x' + a (x - x')) da, summed
    over channels. The integral is a quadrature over `steps` points; the
    gradients are summed as they come (no stack of all steps is kept), and
    at most `batch_size` path points go through the model at once. Cost:
    `steps` forward and backward passes per image (+1 forward when `targets`
    is None). Completeness: the attributions of an image add up to
    f(x) - f(x') up to the quadrature error.

    Args:
        model: the `keras.Model` to explain.
        steps: number of points on the path, at least 1.
        baseline: a number, or an array broadcastable to one image or to the
            batch. Defaults to 0.0 (black in [0, 1] inputs).
        method: quadrature, one of `"trapezoid"`, `"riemann_middle"`,
            `"riemann_left"`, `"riemann_right"`, `"uniform"`.
        batch_size: most path points per forward/backward call.
        use_logits: explain the pre-softmax logit (default).
        data_format: layout of the images.

    Example:

    ```python
    maps = IntegratedGradients(model, steps=64, batch_size=256)(images, labels)
    ```
    """

    signed_maps = True

    def __init__(self, model, steps=32, baseline=0.0, method="trapezoid",
                 batch_size=256, use_logits=True, data_format=None):
        self.steps = _checks.check_positive_int(steps, "steps")
        self.method = _checks.check_choice(method, "method", METHODS)
        if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
            baseline = float(baseline)
        else:
            try:
                baseline = tf.cast(tf.convert_to_tensor(baseline), tf.float32)
            except (TypeError, ValueError) as error:
                raise TypeError(
                    "`baseline` must be a number or a float array. "
                    f"Received: baseline of type {type(baseline)}"
                ) from error
        self.baseline = baseline
        super().__init__(model, batch_size, use_logits, data_format)

    def _baselines(self, images):
        baseline = tf.cast(self.baseline, tf.float32)
        try:
            return tf.broadcast_to(baseline, tf.shape(images))
        except (ValueError, tf.errors.InvalidArgumentError) as error:
            raise ValueError(
                "`baseline` must broadcast to the images. Received: "
                f"baseline.shape={baseline.shape}, images.shape={images.shape}"
            ) from error

    def explain_batch(self, images, targets):
        if not isinstance(self.baseline, float):
            self._baselines(images[:1])  # clear error for a wrong shape
        baselines = self._baselines(images)
        alphas, step_weights = path_points(self.steps, self.method)
        scores_at_input = None if targets is not None else self.predict_scores(images)
        weights = self.target_weights(targets, scores_at_input)
        steps = self.steps

        def body(start, stop, total):
            item = tf.range(start, stop)
            image_index = item // steps
            step_index = item % steps
            x = tf.gather(images, image_index)
            x0 = tf.gather(baselines, image_index)
            alpha = tf.reshape(tf.gather(alphas, step_index), (-1, 1, 1, 1))
            with tf.GradientTape() as tape:
                path = x0 + alpha * (x - x0)
                tape.watch(path)
                scores, _ = self.scores(path)
                score = explained_score(tf.gather(weights, image_index), scores)
            gradients = tape.gradient(score, path)
            gradients *= tf.reshape(tf.gather(step_weights, step_index), (-1, 1, 1, 1))
            return tf.tensor_scatter_nd_add(total, image_index[:, None], gradients)

        total = chunked_loop(
            body,
            self._static_count(images, steps),
            self.batch_size,
            tf.zeros_like(images),
        )
        attributions = tf.reduce_sum(
            total * (images - baselines),
            axis=channel_axis(self.data_format),
            keepdims=True,
        )
        return to_channels_last(attributions, self.data_format)

    def get_config(self):
        baseline = self.baseline
        if not isinstance(baseline, float):
            baseline = baseline.numpy().tolist()
        return {
            "steps": self.steps,
            "baseline": baseline,
            "method": self.method,
            **super().get_config(),
        }
