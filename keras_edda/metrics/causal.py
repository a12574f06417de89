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


def _check_normalize(normalize):
    if normalize not in (None, "start"):
        raise ValueError(f"`normalize` must be None or 'start'. Received: normalize={normalize!r}")
    return normalize


class CausalMetric(AlignmentMetric):
    """Deletion or Insertion: the class probability along a pixel ranking.

    Pixels are ranked by their saliency, all channels of a pixel together
    (ties by pixel order). Step k of `steps` changes the
    `min(k * ceil(H * W / steps), H * W)` most salient pixels, so the curve
    has `steps + 1` points from "nothing changed" to "all changed". The
    fill is applied at every step to the image and the mask of that step,
    so a fill that reads the surroundings (`"inpaint"`, `"noisy_linear"`,
    a learned inpainter) sees the pixels that are still there. All
    `N * (steps + 1)` images go through the fill and the model in chunks
    of `batch_size`.

    Args:
        steps: number of steps. `None` (default) takes the image height,
            i.e. one image width of pixels per step: at 224 x 224 that is
            RISE's 224 pixels per step.
        fill: a fill function `fill(images, mask) -> images`.
        normalize: `None` (the class probability) or `"start"` (the class
            probability divided by its value on the unperturbed image, so
            that a model's confidence does not enter the score); the
            normalised metric's `name` ends in `_normalized`.
        batch_size: most model evaluations per forward call (default 512).
        data_format: layout of images and maps.
    """

    kind = "fill"

    def __init__(self, steps=None, fill=None, normalize=None, batch_size=512, data_format=None):
        super().__init__(batch_size, data_format)
        self.steps = _checks.check_positive_int(steps, "steps", allow_none=True)
        self.normalize = _check_normalize(normalize)
        if self.normalize is not None:
            self.name = f"{type(self).name}_normalized"
        self._fill_fn = fill

    def curve(self, model, images, maps, targets=None):
        """Class probabilities along the ranking: (N, points) float32."""
        return self._run("curve", model, images, maps, targets)

    def _compiled_methods(self):
        return {"score": self.score_batch, "curve": self.curve_batch}

    def ranks(self, maps):
        """Order in which pixels change: rank 0 first."""
        return pixel_ranks(maps)

    def counts(self, num_pixels, height):
        """Number of changed pixels at each point of the curve (Python ints)."""
        steps = self.steps or height
        per_step = -(-num_pixels // steps)
        return [min(k * per_step, num_pixels) for k in range(steps + 1)]

    def fill_mask(self, changed):
        """The mask handed to the fill: 1.0 on the pixels it replaces."""
        raise NotImplementedError

    def curves_batch(self, reader, images, maps, classes, original):
        """`(probabilities, correct)` (N, points) of a batch along the ranking.

        `correct` is 1.0 where the model's top-1 class on the step's image
        is the explained class. See `score_batch` for the arguments.
        """
        height, width = spatial_size(images, self.data_format)
        num_pixels = height * width
        counts = tf.constant(self.counts(num_pixels, height), tf.int32)
        points = int(counts.shape[0])
        ranks = self.ranks(maps)

        def body(first, stop, curves):
            item = tf.range(first, stop)
            image_index = item // points
            count = tf.gather(counts, item % points)
            changed = tf.cast(
                tf.gather(ranks, image_index) < tf.reshape(count, (-1, 1, 1, 1)),
                images.dtype)
            step_images = fills.fill_masked(tf.gather(images, image_index), self.fill_mask(changed),
                                            self._fill_fn)
            probabilities = reader.evaluate(step_images)
            step_classes = tf.gather(classes, image_index)
            correct = tf.cast(tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32), step_classes),
                              tf.float32)
            rows = tf.stack([class_probability(probabilities, step_classes), correct], axis=-1)
            return tf.tensor_scatter_nd_update(curves, item[:, None], rows)

        num_images = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
        curves = chunked_loop(body, num_images * points, self.batch_size,
                              tf.zeros([num_images * points, 2]))
        probability = tf.reshape(curves[:, 0], (-1, points))
        if self.normalize == "start":
            probability = tf.math.divide_no_nan(probability, class_probability(original, classes)[:, None])
        return probability, tf.reshape(curves[:, 1], (-1, points))

    def curve_batch(self, reader, images, maps, classes, original):
        """Probability curves (N, points) of a batch; see `score_batch` for the arguments."""
        return self.curves_batch(reader, images, maps, classes, original)[0]

    def score_batch(self, reader, images, maps, classes, original):
        return trapezoid_auc(self.curve_batch(reader, images, maps, classes, original))

    def get_config(self):
        return {"steps": self.steps, "normalize": self.normalize, **super().get_config()}


class DeletionAUC(CausalMetric):
    """Deletion AUC (RISE): lower is better.

    Protocol: the class is the model's top-1 on the original (or `targets`);
    starting from the image, the most salient pixels are replaced by `fill`
    (0.0) step by step, and the curve is the softmax probability of the
    class; the score is its trapezoid area over [0, 1]. A faithful map makes
    the probability fall fast. See `CausalMetric` for the steps. The fill
    runs at every step on the image with the pixels deleted so far masked.

    Args:
        steps: number of steps (`None`: the image height).
        fill: replacement of deleted pixels: a number (default 0.0), a fill
            name or a callable `fill(images, mask) -> images`.
        normalize: `None` or `"start"`: divide the curve by the class
            probability on the original image (name
            `"deletion_auc_normalized"`).
        batch_size: most model evaluations per forward call.
        data_format: layout of images and maps.

    Example:

    ```python
    metric = keras_edda.metrics.DeletionAUC(steps=16)
    auc = metric(model, images, maps)           # (N,)
    curves = metric.curve(model, images, maps)  # (N, 17)
    inpainted = keras_edda.metrics.DeletionAUC(fill="inpaint", normalize="start")
    ```
    """

    name = "deletion_auc"
    score_direction = "lower"

    def __init__(self, steps=None, fill=0.0, normalize=None, batch_size=512, data_format=None):
        data_format = _checks.standardize_data_format(data_format)
        super().__init__(steps, fills.get(fill, data_format=data_format), normalize, batch_size, data_format)
        self.fill = fill

    def fill_mask(self, changed):
        return changed

    def get_config(self):
        return {"fill": fills.config_name(self.fill), **super().get_config()}


class InsertionAUC(CausalMetric):
    """Insertion AUC (RISE): higher is better.

    Protocol: the class is the model's top-1 on the original (or `targets`);
    starting from a Gaussian blur of the image (kernel 11, sigma 5), the most
    salient pixels are put back step by step, and the curve is the softmax
    probability of the class; the score is its trapezoid area over [0, 1].
    A faithful map makes the probability rise fast. With another `fill`,
    the pixels not yet put back are filled at every step, the fill seeing
    the pixels put back so far.

    Args:
        steps: number of steps (`None`: the image height).
        kernel_size: size of the Gaussian kernel of the start image.
        sigma: its standard deviation.
        fill: `None` (the Gaussian blur above) or what stands in for the
            pixels not yet put back: a number, a fill name or a callable
            `fill(images, mask) -> images`.
        normalize: `None` or `"start"`: divide the curve by the class
            probability on the original image (name
            `"insertion_auc_normalized"`).
        batch_size: most model evaluations per forward call.
        data_format: layout of images and maps.

    Example:

    ```python
    auc = keras_edda.metrics.InsertionAUC()(model, images, maps)
    ```
    """

    name = "insertion_auc"
    score_direction = "higher"

    def __init__(self, steps=None, kernel_size=11, sigma=5.0, fill=None, normalize=None, batch_size=512,
                 data_format=None):
        data_format = _checks.standardize_data_format(data_format)
        kernel_size = _checks.check_positive_int(kernel_size, "kernel_size")
        fill_fn = (fills.blur_fill(kernel_size, float(sigma), data_format) if fill is None
                   else fills.get(fill, data_format=data_format))
        super().__init__(steps, fill_fn, normalize, batch_size, data_format)
        self.kernel_size = kernel_size
        self.sigma = float(sigma)
        self.fill = fill

    def fill_mask(self, changed):
        return 1.0 - changed

    def get_config(self):
        return {"kernel_size": self.kernel_size, "sigma": self.sigma, "fill": fills.config_name(self.fill),
                **super().get_config()}
