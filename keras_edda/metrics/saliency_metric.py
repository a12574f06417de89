"""The saliency metric (Dabkowski & Gal, NeurIPS 2017): is the smallest box
around the salient region enough for the model to keep its class?"""

import tensorflow as tf

from keras_edda import _checks
from keras_edda.metrics.base import AlignmentMetric, class_probability
from keras_edda.ops.layout import from_channels_last, to_channels_last
from keras_edda.ops.masks import threshold_mask


def salient_boxes(maps, threshold):
    """Tightest box around the salient pixels of each map.

    Args:
        maps: float32 maps (N, H, W, 1), channels last.
        threshold: salient = min-max normalised map above it.

    Returns:
        `(boxes, area)`: int32 (N, 4) boxes `[top, left, bottom, right]`
        (inclusive pixel indices; the whole image when no pixel is salient)
        and float32 (N,) area fractions.
    """
    salient = threshold_mask(maps, threshold)[..., 0] > 0
    height, width = tf.shape(maps)[1], tf.shape(maps)[2]

    def extent(any_on_axis, size):
        positions = tf.range(size)[None, :]
        first = tf.reduce_min(tf.where(any_on_axis, positions, size), axis=1)
        last = tf.reduce_max(tf.where(any_on_axis, positions, -1), axis=1)
        empty = first > last
        return tf.where(empty, 0, first), tf.where(empty, size - 1, last)

    top, bottom = extent(tf.reduce_any(salient, axis=2), height)
    left, right = extent(tf.reduce_any(salient, axis=1), width)
    area = tf.cast((bottom - top + 1) * (right - left + 1), tf.float32) / tf.cast(height * width, tf.float32)
    return tf.stack([top, left, bottom, right], axis=1), area


class SaliencyMetric(AlignmentMetric):
    """Saliency metric (Dabkowski & Gal, 2017), per image; lower is better.

    Protocol: the class is the model's top-1 on the original (or `targets`);
    the map is min-max normalised and thresholded (`threshold`, 0.5); the
    tightest box around the salient pixels is cropped and resized
    (bilinear, `tf.image.crop_and_resize`, box corners on pixel centres) to
    the full image size; a = the box's area fraction, p = the class
    probability on the resized crop. Score = log(max(a, 0.05)) - log(p): a
    small box that keeps the class scores low. A map with no salient pixel
    (constant) gets the whole image as its box. One model evaluation of the
    image and one of the crop per image.

    Args:
        threshold: salient = normalised map above it, in (0, 1).
        min_area: floor of the area fraction (0.05 in the paper).
        batch_size: most model evaluations per forward call.
        data_format: layout of images and maps.

    Example:

    ```python
    maps = keras_edda.explainers.GradCAM(model)(images)
    scores = keras_edda.metrics.SaliencyMetric()(model, images, maps)   # (N,)
    ```
    """

    name = "saliency_metric"
    score_direction = "lower"
    kind = "fill_free"

    def __init__(self, threshold=0.5, min_area=0.05, batch_size=None, data_format=None):
        super().__init__(batch_size, data_format)
        self.threshold = _checks.check_fraction(threshold, "threshold")
        self.min_area = _checks.check_fraction(min_area, "min_area", high_open=False)

    def crops(self, images, maps):
        """`(resized crops, area fractions)` of a batch (float32 images and maps)."""
        images = to_channels_last(images, self.data_format)
        boxes, area = salient_boxes(to_channels_last(maps, self.data_format), self.threshold)
        size = tf.shape(images)[1:3]
        last = tf.cast(tf.maximum(size - 1, 1), tf.float32)
        corners = tf.cast(boxes, tf.float32) / tf.concat([last, last], axis=0)
        resized = tf.image.crop_and_resize(images, corners, tf.range(tf.shape(images)[0]), size)
        return from_channels_last(resized, self.data_format), area

    def score_batch(self, reader, images, maps, classes, original):
        resized, area = self.crops(images, maps)
        p = class_probability(reader(resized), classes)
        return tf.math.log(tf.maximum(area, self.min_area)) - tf.math.log(tf.maximum(p, 1e-12))

    def get_config(self):
        return {"threshold": self.threshold, "min_area": self.min_area, **super().get_config()}
