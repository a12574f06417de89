"""SmoothGrad (Smilkov et al., 2017): gradients averaged over noisy copies."""

import numbers

import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.explainers.targets import explained_score
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import channel_axis, to_channels_last


@register("smoothgrad")
class SmoothGrad(Explainer):
    """SmoothGrad: the mean input gradient over Gaussian-noised copies.

    map = max_c |(1 / K) sum_k d score / d x_c (x + noise_k)|, with
    noise_k ~ N(0, (sigma * (max(x) - min(x)))^2) per pixel and channel: the
    noise level is relative to each image's value range, as in the paper.
    The K = `samples` noise patterns are drawn once per call from `seed`
    and shared by all images, so an image's map does not depend on the other
    images of the batch (nor on their order), and repeated calls agree.
    The explained class is the one of the clean image. Cost: `samples`
    forward and backward passes per image (+1 forward when `targets` is
    None), at most `batch_size` per call.

    Args:
        model: the `keras.Model` to explain.
        samples: number of noisy copies K, at least 1.
        sigma: noise standard deviation as a fraction of each image's value
            range, >= 0 (0 gives `Saliency`).
        seed: int seed of the noise patterns.
        batch_size: most noisy copies per forward/backward call.
        use_logits: explain the pre-softmax logit (default).
        data_format: layout of the images.

    Example:

    ```python
    maps = SmoothGrad(model, samples=32, sigma=0.15)(images, targets=labels)
    ```
    """

    def __init__(self, model, samples=16, sigma=0.15, seed=0, batch_size=256,
                 use_logits=True, data_format=None):
        self.samples = _checks.check_positive_int(samples, "samples")
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
            raise TypeError(f"`sigma` must be a float. Received: sigma={sigma!r}")
        if not sigma >= 0:
            raise ValueError(f"`sigma` must be >= 0. Received: sigma={sigma!r}")
        self.sigma = float(sigma)
        self.seed = _checks.check_seed(seed, allow_none=False)
        super().__init__(model, batch_size, use_logits, data_format)

    def noise(self, image_shape):
        """The `samples` unit-variance noise patterns (K, *image_shape)."""
        return tf.random.stateless_normal(
            (self.samples, *image_shape), seed=(self.seed, 0), dtype=tf.float32)

    def explain_batch(self, images, targets):
        samples = self.samples
        noise = self.noise(images.shape[1:])
        axes = tf.range(1, tf.rank(images))
        scale = self.sigma * (tf.reduce_max(images, axis=axes) - tf.reduce_min(images, axis=axes))
        scores_at_input = None if targets is not None else self.predict_scores(images)
        weights = self.target_weights(targets, scores_at_input)

        def body(start, stop, total):
            item = tf.range(start, stop)
            image_index = item // samples
            noisy = tf.gather(images, image_index) + tf.reshape(
                tf.gather(scale, image_index), (-1, 1, 1, 1)) * tf.gather(noise, item % samples)
            with tf.GradientTape() as tape:
                tape.watch(noisy)
                scores, _ = self.scores(noisy)
                score = explained_score(tf.gather(weights, image_index), scores)
            gradients = tape.gradient(score, noisy)
            return tf.tensor_scatter_nd_add(total, image_index[:, None], gradients)

        total = chunked_loop(body, self._static_count(images, samples), self.batch_size,
                             tf.zeros_like(images))
        maps = tf.reduce_max(tf.abs(total / samples), axis=channel_axis(self.data_format),
                             keepdims=True)
        return to_channels_last(maps, self.data_format)

    def get_config(self):
        return {"samples": self.samples, "sigma": self.sigma, "seed": self.seed,
                **super().get_config()}
