"""RISE (Petsiuk, Das & Saenko, BMVC 2018), batched over images and masks."""

import math

import numpy as np
import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.explainers.superpixels import check_grid_size
from keras_edda.explainers.targets import explained_score
from keras_edda.ops import fills
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import spatial_size


def interpolation_matrix(in_size, out_size):
    """Linear interpolation from `in_size` to `out_size` points as a matrix (out, in) float32.

    Half-pixel centres and mirrored borders: scikit-image's `resize(order=1, mode="reflect")`, the RISE
    authors' upsampling of the masks.
    """
    position = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
    low = np.floor(position).astype(int)
    fraction = position - low
    period = max(2 * in_size - 2, 1)

    def mirror(index):
        index = np.abs(index) % period
        return np.where(index >= in_size, period - index, index)

    matrix = np.zeros((out_size, in_size), np.float32)
    np.add.at(matrix, (np.arange(out_size), mirror(low)), 1.0 - fraction)
    np.add.at(matrix, (np.arange(out_size), mirror(low + 1)), fraction)
    return matrix


@register("rise")
class Rise(Explainer):
    """RISE: the mean of random masks weighted by the score of the image they keep.

    Mask i starts as a `grid_size` grid of cells, each kept (1) with
    probability `p`; it is upsampled bilinearly to (rows + 1) * ceil(H / rows)
    by (cols + 1) * ceil(W / cols) pixels and cropped to H x W at a random
    shift in [0, ceil(H / rows)) x [0, ceil(W / cols)), as in the authors'
    code. The map is

        S(x) = 1 / (num_masks * p) * sum_i f(x * M_i) M_i

    with f the explained score and x * M_i the image where the mask keeps it,
    `fill` elsewhere (0.0 by default: the paper's element-wise product).
    The same masks serve every image of a call; with an int `seed` they are
    the same on every call. All N * num_masks masked images go through the
    model in chunks of at most `batch_size`, each chunk making its own masks
    from the low-resolution grids, so memory stays bounded by `batch_size`
    images. Cost: `num_masks` forward passes per image.

    Args:
        model: the `keras.Model` to explain.
        num_masks: number of random masks (the paper: 4000 for ResNet-50 at
            224 x 224; default 1000).
        grid_size: int or (rows, cols) of the low-resolution grid (7 in the
            paper); not larger than the image.
        p: probability that a cell is kept, in (0, 1) (0.5 in the paper).
        fill: what replaces the masked-out part: a number (default 0.0), a
            fill name or a callable `fill(images, mask)`.
        seed: int seed of the masks (the same masks on every call), or
            `None` for new masks on every call.
        batch_size: most model evaluations per forward call (default 512).
        use_logits: explain the pre-softmax logit (default) or, with `False`,
            the model's output (the paper's class probability).
        data_format: layout of the images.

    Example:

    ```python
    maps = Rise(model, num_masks=2000, grid_size=7, p=0.5)(images)
    ```
    """

    def __init__(self, model, num_masks=1000, grid_size=7, p=0.5, fill=0.0, seed=0, batch_size=512,
                 use_logits=True, data_format=None):
        self.num_masks = _checks.check_positive_int(num_masks, "num_masks")
        self.grid_size = check_grid_size(grid_size)
        self.p = _checks.check_fraction(p, "p")
        self.seed = _checks.check_seed(seed)
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=data_format, seed=seed)
        super().__init__(model, batch_size, use_logits, data_format)

    def _check_size(self, height, width):
        if self.grid_size[0] > height or self.grid_size[1] > width:
            raise ValueError(
                "`grid_size` must not exceed the image size. Received: "
                f"grid_size={self.grid_size} for images of size {(height, width)}")

    def mask_parameters(self):
        """The masks' random draws: kept cells (num_masks, rows, cols) float32 and shifts (num_masks, 2) int32.

        Overridden in tests to share masks with a reference.
        """
        rows, cols = self.grid_size
        if self.seed is None:
            seeds = tf.random.uniform([2, 2], maxval=2 ** 31 - 1, dtype=tf.int32)
        else:
            seeds = tf.constant([[self.seed, 1], [self.seed, 2]], tf.int32)
        cells = tf.cast(tf.random.stateless_uniform([self.num_masks, rows, cols], seeds[0]) < self.p, tf.float32)
        draws = tf.random.stateless_uniform([self.num_masks, 2], seeds[1])
        return cells, draws

    def masks(self, cells, draws, height, width):
        """Masks (c, H, W) float32 from kept cells (c, rows, cols) and uniform draws (c, 2) of the shifts."""
        rows, cols = self.grid_size
        cell_height, cell_width = math.ceil(height / rows), math.ceil(width / cols)
        row_weights = tf.constant(interpolation_matrix(rows, (rows + 1) * cell_height))
        col_weights = tf.constant(interpolation_matrix(cols, (cols + 1) * cell_width))
        shift = tf.cast(tf.floor(draws * [cell_height, cell_width]), tf.int32)
        # The rows and columns of the upsampled grid that the shifted crop keeps, for each mask.
        row_weights = tf.gather(row_weights, shift[:, :1] + tf.range(height)[None, :])  # (c, H, rows)
        col_weights = tf.gather(col_weights, shift[:, 1:] + tf.range(width)[None, :])  # (c, W, cols)
        return tf.matmul(tf.matmul(row_weights, cells), col_weights, transpose_b=True)

    def explain_batch(self, images, targets):
        height, width = spatial_size(images, self.data_format)
        self._check_size(height, width)
        cells, draws = self.mask_parameters()
        weights = self.target_weights(targets, self.predict_scores(images) if targets is None else None)
        num_images = tf.shape(images)[0]
        num_masks = self.num_masks
        mask_axis = 1 if self.data_format == "channels_first" else -1

        def body(start, stop, saliency):
            item = tf.range(start, stop)
            image_index = item // num_masks
            mask_index = item % num_masks
            masks = self.masks(tf.gather(cells, mask_index), tf.gather(draws, mask_index), height, width)
            masked = fills.fill_masked(tf.gather(images, image_index),
                                       tf.expand_dims(1.0 - masks, mask_axis), self._fill_fn)
            scores, _ = self.scores(masked)
            score = explained_score(tf.gather(weights, image_index), scores)
            return tf.tensor_scatter_nd_add(saliency, image_index[:, None], score[:, None, None] * masks)

        saliency = chunked_loop(body, self._static_count(images, num_masks), self.batch_size,
                                tf.zeros(tf.stack([num_images, height, width])))
        maps = saliency / (num_masks * self.p)
        return maps[..., None]

    def get_config(self):
        return {
            "num_masks": self.num_masks,
            "grid_size": self.grid_size,
            "p": self.p,
            "fill": fills.config_name(self.fill, self._fill_fn),
            "seed": self.seed,
            **super().get_config(),
        }
