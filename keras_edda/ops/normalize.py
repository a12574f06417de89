"""Per-image normalisation of saliency maps."""

import tensorflow as tf


def minmax_normalize(maps, epsilon=1e-8):
    """Scales each map of the batch to [0, 1].

    Args:
        maps: float tensor (N, ...), one map per leading index.
        epsilon: added to the range so that a constant map becomes 0.

    Returns:
        float32 tensor of the same shape.

    Example:

    >>> minmax_normalize(tf.constant([[1.0, 3.0]])).numpy().round(3)
    array([[0., 1.]], dtype=float32)
    """
    maps = tf.cast(maps, tf.float32)
    axes = tf.range(1, tf.rank(maps))
    low = tf.reduce_min(maps, axis=axes, keepdims=True)
    high = tf.reduce_max(maps, axis=axes, keepdims=True)
    return (maps - low) / (high - low + epsilon)
