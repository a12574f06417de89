"""Heatmaps over images, for TensorBoard and PNG reports."""

import tensorflow as tf

from keras_edda import _checks
from keras_edda._files import write_atomically
from keras_edda.ops.layout import to_channels_last
from keras_edda.ops.normalize import minmax_normalize

# The "jet" colour map as piecewise-linear ramps of the normalised value.
_JET_CENTRES = (0.75, 0.5, 0.25)


def jet(values):
    """Maps values in [0, 1] (..., 1) to RGB (..., 3) with the jet colour map."""
    channels = [
        tf.clip_by_value(1.5 - tf.abs(4.0 * values - 4.0 * centre), 0.0, 1.0)
        for centre in _JET_CENTRES
    ]
    return tf.concat(channels, axis=-1)


def overlay(images, maps, alpha=0.5, data_format=None):
    """Blends each normalised map, coloured with jet, over its image.

    Args:
        images: float images; each image is min-max scaled to [0, 1] first,
            so preprocessed inputs display too. Grey images become RGB.
        maps: saliency maps of the images (one channel).
        alpha: weight of the heatmap.
        data_format: layout of `images` and `maps`.

    Returns:
        float32 RGB images (N, H, W, 3) in [0, 1], channels_last (the layout
        `tf.summary.image` and PNG encoders take).
    """
    data_format = _checks.standardize_data_format(data_format)
    images = minmax_normalize(to_channels_last(tf.cast(images, tf.float32), data_format))
    if images.shape[-1] == 1:
        images = tf.image.grayscale_to_rgb(images)
    heat = jet(minmax_normalize(to_channels_last(maps, data_format)))
    return (1.0 - alpha) * images[..., :3] + alpha * heat


def image_grid(rows):
    """Tiles a list of equal-size image batches (N, H, W, 3) as rows, 2-px gaps."""
    padded = [tf.pad(row, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=1.0) for row in rows]
    lines = [tf.concat(tf.unstack(row), axis=1) for row in padded]
    return tf.concat(lines, axis=0)


def write_png(path, image, scale=1):
    """Writes a float RGB image in [0, 1] (H, W, 3) as a PNG file, atomically (a link at `path` is refused)."""

    image = tf.convert_to_tensor(image)
    if scale > 1:
        size = tf.shape(image)[:2] * scale
        image = tf.image.resize(image, size, method="nearest")
    encoded = tf.io.encode_png(tf.cast(tf.clip_by_value(image, 0.0, 1.0) * 255.0, tf.uint8))
    write_atomically(str(path), encoded.numpy())
