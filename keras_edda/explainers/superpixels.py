"""Superpixels and their coalitions: the segmentation, the on/off masks and
the chunked scoring shared by LIME and Kernel SHAP."""

import numpy as np
import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.targets import explained_score
from keras_edda.ops import fills
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import to_channels_last

SLIC_DEFAULTS = {"n_segments": 50, "compactness": 30.0, "sigma": 3.0}


def grid_segments(num_images, height, width, grid_size):
    """Superpixels as a grid of `grid_size` (rows, cols) cells: int32 (N, H, W)."""
    rows = tf.range(height) * grid_size[0] // height
    cols = tf.range(width) * grid_size[1] // width
    cells = rows[:, None] * grid_size[1] + cols[None, :]
    return tf.broadcast_to(cells, (num_images, height, width))


def slic_segments(images, data_format=None, **slic_options):
    """SLIC superpixels of each image with scikit-image: int32 (N, H, W).

    Runs on the host in NumPy through `tf.numpy_function`, once per image,
    before the sampling; labels are renumbered 0..K-1 per image. Works eagerly
    and in `tf.function` (not in a SavedModel or on a TPU).

    Args:
        images: (N, H, W, C) or (N, C, H, W) images.
        data_format: layout of the images.
        **slic_options: arguments of `skimage.segmentation.slic`; the
            defaults are Agarwal & Nguyen's (`n_segments=50`,
            `compactness=30`, `sigma=3`).
    """
    options = {**SLIC_DEFAULTS, **slic_options}
    images = to_channels_last(images, _checks.standardize_data_format(data_format))

    def segment(batch):
        from skimage.segmentation import slic

        out = np.empty(batch.shape[:3], np.int32)
        for index, image in enumerate(batch):
            labels = slic(image.astype(np.float64), channel_axis=-1, start_label=0, **options)
            out[index] = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
        return out

    segments = tf.numpy_function(segment, [tf.cast(images, tf.float32)], tf.int32, stateful=False)
    return tf.reshape(segments, tf.shape(images)[:3])


def check_grid_size(grid_size, name="grid_size"):
    """An int or a pair of positive ints as `(rows, cols)`."""
    if isinstance(grid_size, (tuple, list)) and len(grid_size) == 2:
        return tuple(_checks.check_positive_int(v, name) for v in grid_size)
    return (_checks.check_positive_int(grid_size, name),) * 2


class Superpixels:
    """How an explainer cuts images into superpixels, and hides them.

    Args:
        segments: `"grid"` (`grid_size` cells), `"slic"` (SLIC with
            `slic_options`), or a callable `fn(images) -> int32 (N, H, W)`
            superpixel ids 0..K-1 per image.
        grid_size: int or (rows, cols): the grid's cells.
        slic_options: dict of `skimage.segmentation.slic` arguments.
    """

    def __init__(self, segments="grid", grid_size=8, slic_options=None):
        if not (callable(segments) or segments in ("grid", "slic")):
            raise ValueError(
                "`segments` must be 'grid', 'slic' or a callable `fn(images) -> (N, H, W)` ids. "
                f"Received: segments={segments!r}")
        self.segments = segments
        self.grid_size = check_grid_size(grid_size)
        self.slic_options = dict(slic_options or {})

    def segment(self, images):
        """Superpixel ids (N, H, W) int32 of channels_last `images`, 0..K-1."""
        num_images = tf.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        if self.segments == "grid":
            if self.grid_size[0] > height or self.grid_size[1] > width:
                raise ValueError(
                    "`grid_size` must not exceed the image size. Received: "
                    f"grid_size={self.grid_size} for images of size {(height, width)}")
            return grid_segments(num_images, height, width, self.grid_size)
        if self.segments == "slic":
            return slic_segments(images, "channels_last", **self.slic_options)
        segments = tf.convert_to_tensor(self.segments(images))
        if segments.shape.rank != 3 or not segments.dtype.is_integer:
            raise ValueError(
                "A `segments` function must return integer ids (N, H, W). "
                f"Received: shape={segments.shape}, dtype={segments.dtype.name}")
        return tf.cast(segments, tf.int32)

    def static_num_features(self):
        """The number of superpixels when it is known before the images (the grid), else None."""
        return self.grid_size[0] * self.grid_size[1] if self.segments == "grid" else None

    def visible_pixels(self, samples, segments, image_index):
        """1.0 on the pixels of the "on" superpixels: (c, H, W) for samples (c, F) of images `image_index`."""
        height, width = segments.shape[1], segments.shape[2]
        rows, cols = self.grid_size
        if self.segments == "grid" and height is not None and width is not None and (
                height % rows == 0 and width % cols == 0):
            # Equal cells: each sample's on/off grid repeated over the cells' pixels, no per-pixel gather.
            cells = tf.reshape(samples, (-1, rows, 1, cols, 1))
            shape = tf.stack([tf.shape(samples)[0], rows, height // rows, cols, width // cols])
            return tf.reshape(tf.broadcast_to(cells, shape), (-1, height, width))
        return tf.gather(samples, tf.gather(segments, image_index), batch_dims=1)

    def get_config(self):
        return {
            "segments": self.segments if isinstance(self.segments, str) else "callable",
            "grid_size": self.grid_size,
            "slic_options": self.slic_options,
        }


def coalition_scores(explainer, superpixels, images, segments, samples, num_samples, weights, fill_fn):
    """The explained score of every image with only its "on" superpixels visible.

    All `N * S` perturbed images go through the model in chunks of the
    explainer's `batch_size`; the hidden superpixels are replaced with
    `fill_fn`.

    Args:
        explainer: the `Explainer` (its `scores`, `batch_size`, `data_format`).
        superpixels: the `Superpixels` that made `segments`.
        images: the images in the explainer's layout (N, ...).
        segments: int32 superpixel ids (N, H, W).
        samples: float32 on/off vectors (N, S, F).
        num_samples: S, a Python int.
        weights: the explained class weights (N, C).
        fill_fn: a fill function.

    Returns:
        float32 scores (N, S).
    """
    num_images = tf.shape(samples)[0]
    num_features = tf.shape(samples)[2]
    flat_samples = tf.reshape(samples, (-1, num_features))
    hidden_axis = 1 if explainer.data_format == "channels_first" else -1

    def body(start, stop, scores_so_far):
        item = tf.range(start, stop)
        image_index = item // num_samples
        on = superpixels.visible_pixels(tf.gather(flat_samples, item), segments, image_index)
        perturbed = fills.fill_masked(
            tf.gather(images, image_index), tf.expand_dims(1.0 - on, hidden_axis), fill_fn)
        scores, _ = explainer.scores(perturbed)
        score = explained_score(tf.gather(weights, image_index), scores)
        return tf.tensor_scatter_nd_update(scores_so_far, item[:, None], score)

    scores = chunked_loop(body, explainer._static_count(images, num_samples), explainer.batch_size,
                          tf.zeros((num_images * num_samples,)))
    return tf.reshape(scores, (num_images, num_samples))
