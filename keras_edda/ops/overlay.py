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


# The diverging map's ends: negative values blue, positive red, 0 white.
_NEGATIVE = (0.23, 0.30, 0.75)
_POSITIVE = (0.71, 0.02, 0.15)


def diverging(values):
    """Maps signed values in [-1, 1] (..., 1) to RGB (..., 3): blue, white at 0, red.

    Linear in each half (a blue-white-red map like matplotlib's `bwr`, with
    coolwarm's ends): the sign is the hue and |value| the depth of colour,
    so 0 stays white whatever the map's range.
    """
    values = tf.clip_by_value(tf.cast(values, tf.float32), -1.0, 1.0)
    positive, negative = tf.maximum(values, 0.0), tf.maximum(-values, 0.0)
    white = tf.ones_like(values)
    channels = [white + positive * (high - 1.0) + negative * (low - 1.0)
                for low, high in zip(_NEGATIVE, _POSITIVE)]
    return tf.concat(channels, axis=-1)


def scale_signed(maps):
    """Each map (N, H, W, 1) divided by its largest |value|: [-1, 1] with 0 kept at 0."""
    maps = tf.cast(maps, tf.float32)
    largest = tf.reduce_max(tf.abs(maps), axis=(1, 2, 3), keepdims=True)
    return tf.math.divide_no_nan(maps, largest)


def overlay(images, maps, alpha=0.5, data_format=None, signed=False):
    """Blends each map, coloured, over its image.

    Unsigned (default): each map is min-max normalised and coloured with jet,
    right for maps whose sign carries nothing (Grad-CAM, occlusion,
    SmoothGrad's magnitudes). Signed maps (Integrated Gradients, gradient x
    input, LIME's weights) drawn that way show the sign as speckle: with
    `signed=True` each map is divided by its largest |value| and coloured
    with `diverging` (blue negative, white 0, red positive), so evidence for
    and against the class stay apart.

    Args:
        images: float images; each image is min-max scaled to [0, 1] first,
            so preprocessed inputs display too. Grey images become RGB.
        maps: saliency maps of the images (one channel).
        alpha: weight of the heatmap.
        data_format: layout of `images` and `maps`.
        signed: colour the maps as signed values (see above).

    Returns:
        float32 RGB images (N, H, W, 3) in [0, 1], channels_last (the layout
        `tf.summary.image` and PNG encoders take).

    Example:

    ```python
    maps = keras_edda.explainers.IntegratedGradients(model)(images)
    picture = keras_edda.ops.overlay.overlay(images, maps, signed=True)
    ```
    """
    data_format = _checks.standardize_data_format(data_format)
    if not isinstance(signed, bool):
        raise TypeError(f"`signed` must be a bool. Received: signed={signed!r}")
    images = minmax_normalize(to_channels_last(tf.cast(images, tf.float32), data_format))
    if images.shape[-1] == 1:
        images = tf.image.grayscale_to_rgb(images)
    maps = to_channels_last(maps, data_format)
    heat = diverging(scale_signed(maps)) if signed else jet(minmax_normalize(maps))
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
