"""Cutout (DeVries & Taylor, 2017): random erasing, the label kept."""

import keras
import tensorflow as tf

from keras_edda import _checks
from keras_edda.methods.base import MethodLayer
from keras_edda.methods.registry import register
from keras_edda.ops.layout import from_channels_last, spatial_size


def box_masks(num_images, height, width, size, centers):
    """Square boxes of side `size * min(H, W)` at `centers`, cut at the border.

    Args:
        num_images: N.
        height, width: image size.
        size: side of the box as a share of the shorter image side.
        centers: float (N, 2) in [0, 1): the box centres (row, column).

    Returns:
        float32 masks (N, H, W, 1), 1.0 inside the box.
    """
    side = tf.cast(tf.maximum(tf.round(size * min(height, width)), 1.0), tf.float32)
    rows = tf.range(height, dtype=tf.float32)[None, :] + 0.5
    cols = tf.range(width, dtype=tf.float32)[None, :] + 0.5
    center_rows = centers[:, :1] * height
    center_cols = centers[:, 1:] * width
    in_rows = tf.abs(rows - center_rows) <= side / 2
    in_cols = tf.abs(cols - center_cols) <= side / 2
    return tf.cast(in_rows[:, :, None, None] & in_cols[:, None, :, None], tf.float32)


@register("cutout")
@keras.saving.register_keras_serializable(package="keras_edda")
class Cutout(MethodLayer):
    """Cutout: a copy of each image with a random square filled, the label kept.

    The augmentation a user would try first, and the non-explanation peer of
    EDDA's non-salient copies: the box's centre is uniform over the image
    and the box is cut at the border (DeVries & Taylor). It explains
    nothing. Inside a model, with no labels, the copy's target is the
    classifier's prediction on the original.

    Cost per step, for a batch of N: the forward and backward of the N
    copies (inside a model, plus one forward pass of the batch for the
    prediction).

    Args:
        model: the classifier.
        size: side of the square as a share of the shorter image side, in
            (0, 1] (0.5: 16 pixels of 32, as the authors on CIFAR-10).
        fill, fill_value: what fills the square (constant 0.0).
        rate, seed, warmup_steps, warmup_epochs, steps_per_epoch,
            copies_weight: see `MethodLayer`.

    Example:

    ```python
    cutout = keras_edda.methods.Cutout(classifier, seed=0)   # made once, outside the map
    ds = ds.batch(64).map(lambda x, y: cutout({"images": x, "labels": y}))
    ```
    """

    def __init__(self, model, size=0.5, fill="constant", fill_value=0.0, **kwargs):
        super().__init__(model, ("erased",), fill=fill, fill_value=fill_value, **kwargs)
        self.size = _checks.check_fraction(size, "size", True, False)

    def make_transformation(self, images, targets, chosen, seed=None):
        head = self.head()
        if targets is None:
            targets = tf.one_hot(tf.argmax(
                head.probabilities(self.get_classifier()(images, training=False)), axis=-1), head.num_classes)
        height, width = spatial_size(images, self.data_format)
        num_images = tf.shape(images)[0]
        centers = keras.random.uniform(tf.stack([num_images, 2]), seed=self.seed_generator if seed is None else seed)
        masks = from_channels_last(box_masks(num_images, height, width, self.size, centers), self.data_format)[None]
        return {
            "targets": targets,
            "copy_masks": masks,
            "fill_values": self.fill_values(images, masks),
            "copy_targets": tf.stop_gradient(targets)[None],
            "copy_weights": (chosen * self.copies_weight)[None],
        }

    def get_config(self):
        return {**super().get_config(), "size": self.size}
