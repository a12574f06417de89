"""Salient masks from saliency maps: by threshold or by top-k fraction.

A mask has the shape of its map, (N, H, W, 1) or (N, 1, H, W): 1.0 marks a
salient pixel, and the single channel broadcasts over the image's channels.
"""

import tensorflow as tf

from keras_edda import _checks
from keras_edda.ops.normalize import minmax_normalize


def pixel_ranks(maps):
    """Rank of each pixel within its map: 0 for the most salient.

    Ties are broken by pixel order (row-major), so the ranks of one map are a
    permutation of 0..H*W-1 and a top-k mask has exactly k pixels.

    Args:
        maps: float tensor (N, H, W, 1) or (N, 1, H, W).

    Returns:
        int32 tensor of the same shape.
    """
    shape = tf.shape(maps)
    flat = tf.reshape(tf.cast(maps, tf.float32), (shape[0], -1))
    order = tf.argsort(flat, axis=1, direction="DESCENDING", stable=True)
    size = tf.shape(flat)[1]
    rows = tf.broadcast_to(tf.range(shape[0])[:, None], tf.shape(order))
    indices = tf.stack([rows, order], axis=-1)
    ranks_of_order = tf.broadcast_to(tf.range(size)[None, :], tf.shape(order))
    ranks = tf.scatter_nd(indices, ranks_of_order, tf.shape(flat))
    return tf.reshape(ranks, shape)


def count_for_fraction(fraction, num_pixels):
    """Number of pixels that make up `fraction` of `num_pixels` (at least 1)."""
    count = tf.round(fraction * tf.cast(num_pixels, tf.float32))
    return tf.maximum(tf.cast(count, tf.int32), 1)


def top_fraction_mask(maps, fraction):
    """Marks the `fraction` most salient pixels of each map."""
    num_pixels = tf.reduce_prod(tf.shape(maps)[1:])
    count = count_for_fraction(fraction, num_pixels)
    return tf.cast(pixel_ranks(maps) < count, tf.float32)


def threshold_mask(maps, threshold):
    """Marks pixels whose min-max normalised saliency is above `threshold`."""
    return tf.cast(minmax_normalize(maps) > threshold, tf.float32)


def check_mask_settings(threshold, fraction):
    """Checks that exactly one of `threshold` and `fraction` is set."""
    if (threshold is None) == (fraction is None):
        raise ValueError(
            "Set exactly one of `threshold` (salient = normalised map above "
            "it) and `fraction` (salient = that share of most salient "
            f"pixels). Received: threshold={threshold!r}, fraction={fraction!r}"
        )
    if threshold is not None:
        return _checks.check_fraction(threshold, "threshold", True, True), None
    return None, _checks.check_fraction(fraction, "fraction", True, True)


def salient_mask(maps, threshold=None, fraction=None):
    """Salient mask by threshold on the normalised map or by top-k fraction.

    Args:
        maps: saliency maps (N, H, W, 1) or (N, 1, H, W).
        threshold: salient = min-max normalised map > `threshold`, in (0, 1).
        fraction: salient = the `fraction` most salient pixels, in (0, 1).
            Exactly one of `threshold` and `fraction` must be set.

    Returns:
        float32 mask of the maps' shape, 1.0 on salient pixels.
    """
    threshold, fraction = check_mask_settings(threshold, fraction)
    if threshold is not None:
        return threshold_mask(maps, threshold)
    return top_fraction_mask(maps, fraction)
