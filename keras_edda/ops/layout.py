"""Moving between channels_first and channels_last for per-pixel maps."""

import tensorflow as tf


def to_channels_last(tensor, data_format):
    """(N, C, H, W) -> (N, H, W, C) under channels_first; else unchanged."""
    if data_format == "channels_first":
        return tf.transpose(tensor, (0, 2, 3, 1))
    return tensor


def from_channels_last(tensor, data_format):
    """(N, H, W, C) -> (N, C, H, W) under channels_first; else unchanged."""
    if data_format == "channels_first":
        return tf.transpose(tensor, (0, 3, 1, 2))
    return tensor


def channel_axis(data_format):
    """Axis of the channels of a batch of images."""
    return 1 if data_format == "channels_first" else -1


def spatial_axes(data_format):
    """Axes (height, width) of a batch of images."""
    return (2, 3) if data_format == "channels_first" else (1, 2)


def spatial_size(images, data_format):
    """(height, width) of a batch of images: Python ints where the static
    shape has them, else int32 scalar tensors (a `tf.function` retraced for a
    second image size sees the sizes as unknown)."""
    dynamic = tf.shape(images)
    return tuple(images.shape[axis] if images.shape[axis] is not None else dynamic[axis]
                 for axis in spatial_axes(data_format))
