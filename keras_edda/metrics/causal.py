"""Deletion and Insertion (RISE, Petsiuk et al., 2018): the class
probability as pixels are removed, or put back, in order of saliency."""

import tensorflow as tf

from keras_edda import _checks
from keras_edda.metrics.base import AlignmentMetric, class_probability
from keras_edda.ops import fills
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import spatial_size
from keras_edda.ops.masks import pixel_ranks


def trapezoid_auc(curves):
    """Area under curves sampled evenly on [0, 1]: (N, K) -> (N,).

    (sum s - s_0 / 2 - s_last / 2) / (K - 1), as RISE computes it.
    """
    total = tf.reduce_sum(curves, axis=-1) - 0.5 * (curves[:, 0] + curves[:, -1])
    return total / tf.cast(tf.shape(curves)[-1] - 1, curves.dtype)


class CausalMetric(AlignmentMetric):
    """Deletion or Insertion: the class probability along a pixel ranking.

    Pixels are ranked by their saliency, all channels of a pixel together
    (ties by pixel order). Step k of `steps` changes the
    `min(k * ceil(H * W / steps), H * W)` most salient pixels, so the curve
    has `steps + 1` points from "nothing changed" to "all changed". All
    `N * (steps + 1)` images go through the model in chunks of
    `batch_size`.

    Args:
        steps: number of steps. `None` (default) takes the image height,
            i.e. one image width of pixels per step: at 224 x 224 that is
            RISE's 224 pixels per step.
        batch_size: most model evaluations per forward call (default 512).
        data_format: layout of images and maps.
    """

    def __init__(self, steps=None, batch_size=512, data_format=None):
        super().__init__(batch_size, data_format)
        self.steps = _checks.check_positive_int(steps, "steps", allow_none=True)

    def curve(self, model, images, maps, targets=None):
        """Class probabilities along the ranking: (N, steps + 1) float32."""
        return self._run("curve", model, images, maps, targets)

    def _compiled_methods(self):
        return {"score": self.score_batch, "curve": self.curve_batch}

    def start_and_end(self, images):
        """`(start, end)` images: step k shows `end` on the k-th ranked pixels."""
        raise NotImplementedError

    def curve_batch(self, reader, images, maps, classes, original):
        """Curves (N, steps + 1) of a batch; see `score_batch` for the arguments."""
        height, width = spatial_size(images, self.data_format)
        num_pixels = height * width
        steps = self.steps or height
        per_step = -(-num_pixels // steps)
        points = steps + 1
        ranks = pixel_ranks(maps)
        start, end = self.start_and_end(images)

        def body(first, stop, curves):
            item = tf.range(first, stop)
            image_index = item // points
            count = tf.minimum((item % points) * per_step, num_pixels)
            changed = tf.cast(
                tf.gather(ranks, image_index) < tf.reshape(count, (-1, 1, 1, 1)),
                images.dtype)
            step_images = (tf.gather(start, image_index) * (1.0 - changed)
                           + tf.gather(end, image_index) * changed)
            probability = class_probability(
                reader.evaluate(step_images), tf.gather(classes, image_index))
            return tf.tensor_scatter_nd_update(curves, item[:, None], probability)

        num_images = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
        curves = chunked_loop(body, num_images * points, self.batch_size,
                              tf.zeros([num_images * points]))
        return tf.reshape(curves, (-1, points))

    def score_batch(self, reader, images, maps, classes, original):
        return trapezoid_auc(self.curve_batch(reader, images, maps, classes, original))

    def get_config(self):
        return {"steps": self.steps, **super().get_config()}


class DeletionAUC(CausalMetric):
    """Deletion AUC (RISE): lower is better.

    Protocol: the class is the model's top-1 on the original (or `targets`);
    starting from the image, the most salient pixels are replaced by `fill`
    (0.0) step by step, and the curve is the softmax probability of the
    class; the score is its trapezoid area over [0, 1]. A faithful map makes
    the probability fall fast. See `CausalMetric` for the steps.

    Args:
        steps: number of steps (`None`: the image height).
        fill: replacement of deleted pixels: a number (default 0.0), a fill
            name or a callable `fill(images, mask) -> images`.
        batch_size: most model evaluations per forward call.
        data_format: layout of images and maps.

    Example:

    ```python
    metric = keras_edda.metrics.DeletionAUC(steps=16)
    auc = metric(model, images, maps)           # (N,)
    curves = metric.curve(model, images, maps)  # (N, 17)
    ```
    """

    name = "deletion_auc"
    score_direction = "lower"

    def __init__(self, steps=None, fill=0.0, batch_size=512, data_format=None):
        super().__init__(steps, batch_size, data_format)
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=self.data_format)

    def start_and_end(self, images):
        everything = tf.ones_like(images[..., :1] if self.data_format == "channels_last"
                                  else images[:, :1])
        return images, fills.fill_masked(images, everything, self._fill_fn)

    def get_config(self):
        return {"fill": fills.config_name(self.fill), **super().get_config()}


class InsertionAUC(CausalMetric):
    """Insertion AUC (RISE): higher is better.

    Protocol: the class is the model's top-1 on the original (or `targets`);
    starting from a Gaussian blur of the image (kernel 11, sigma 5), the most
    salient pixels are put back step by step, and the curve is the softmax
    probability of the class; the score is its trapezoid area over [0, 1].
    A faithful map makes the probability rise fast.

    Args:
        steps: number of steps (`None`: the image height).
        kernel_size: size of the Gaussian kernel of the start image.
        sigma: its standard deviation.
        batch_size: most model evaluations per forward call.
        data_format: layout of images and maps.

    Example:

    ```python
    auc = keras_edda.metrics.InsertionAUC()(model, images, maps)
    ```
    """

    name = "insertion_auc"
    score_direction = "higher"

    def __init__(self, steps=None, kernel_size=11, sigma=5.0, batch_size=512,
                 data_format=None):
        super().__init__(steps, batch_size, data_format)
        self.kernel_size = _checks.check_positive_int(kernel_size, "kernel_size")
        self.sigma = float(sigma)

    def start_and_end(self, images):
        blurred = fills.gaussian_blur(images, self.kernel_size, self.sigma, self.data_format)
        return blurred, images

    def get_config(self):
        return {"kernel_size": self.kernel_size, "sigma": self.sigma, **super().get_config()}
