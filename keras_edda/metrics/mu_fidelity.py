"""MuFidelity (Bhatt, Weller & Moura, IJCAI 2020): do the attributions of
random subsets predict the drop of the score when the subsets are removed?"""


import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.superpixels import check_grid_size, grid_segments
from keras_edda.metrics.base import AlignmentMetric, class_probability
from keras_edda.ops import fills
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import from_channels_last, spatial_size, to_channels_last


def pearson(a, b):
    """Pearson correlation of the rows of `a` and `b` (N, S) -> (N,); 0 where a row is constant."""
    a = a - tf.reduce_mean(a, axis=-1, keepdims=True)
    b = b - tf.reduce_mean(b, axis=-1, keepdims=True)
    denominator = tf.sqrt(tf.reduce_sum(tf.square(a), -1) * tf.reduce_sum(tf.square(b), -1))
    return tf.math.divide_no_nan(tf.reduce_sum(a * b, -1), denominator)


class MuFidelity(AlignmentMetric):
    """MuFidelity (Bhatt et al., 2020), per image; higher is better.

    Protocol (as xplique's `MuFidelity` and Quantus' `FaithfulnessCorrelation`):
    the class is the model's top-1 on the original image (or `targets`);
    `num_subsets` random subsets of the image are removed in turn, each a
    set of cells of a `grid_size` grid, every cell in the subset with
    probability `subset_fraction`, filled with `fill` (0.0); for each subset
    S, the sum of the map over S and the drop p(x) - p(x with S removed) of
    the class's softmax probability are taken; the score is their Pearson
    correlation over the subsets (0 when either is constant, e.g. for a
    constant map over equal subsets). The same subsets serve every image;
    with an int `seed` they are the same on every call. All
    N * `num_subsets` filled images go through the model in chunks of at
    most `batch_size`. Cost: `num_subsets` + 1 forward passes per image.

    Args:
        num_subsets: random subsets per image (xplique: 200; default 128).
        grid_size: int or (rows, cols) of the cells (xplique: 9); `None`
            makes every pixel a cell (the paper's pixel subsets), as does a
            grid finer than the image along that axis (9 on 8 x 8 images:
            8 x 8 cells).
        subset_fraction: probability that a cell is removed, in (0, 1)
            (xplique: 0.2).
        fill: what replaces the removed cells: a number (default 0.0), a fill
            name or a callable `fill(images, mask) -> images`.
        seed: int seed of the subsets, or `None` for new subsets on every
            call.
        batch_size: most model evaluations per forward call.
        data_format: layout of images and maps.

    Example:

    ```python
    maps = keras_edda.explainers.GradCAM(model)(images)
    scores = keras_edda.metrics.MuFidelity(num_subsets=128)(model, images, maps)  # (N,)
    ```
    """

    name = "mu_fidelity"
    kind = "fill"
    score_direction = "higher"

    def __init__(self, num_subsets=128, grid_size=9, subset_fraction=0.2, fill=0.0, seed=0, batch_size=512,
                 data_format=None):
        super().__init__(batch_size, data_format)
        self.num_subsets = _checks.check_positive_int(num_subsets, "num_subsets")
        self.grid_size = None if grid_size is None else check_grid_size(grid_size)
        self.subset_fraction = _checks.check_fraction(subset_fraction, "subset_fraction")
        self.seed = _checks.check_seed(seed)
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=self.data_format, seed=seed)

    def _grid(self, height, width):
        """The grid's (rows, cols) on images of `height` x `width`: at most one cell per pixel."""
        grid = self.grid_size or (height, width)
        return min(grid[0], height), min(grid[1], width)

    def removed_cells(self, height, width):
        """1.0 on the removed cells: (num_subsets, rows * cols) float32."""
        rows, cols = self._grid(height, width)
        if self.seed is None:
            seed = tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32)
        else:
            seed = tf.constant([self.seed, 5], tf.int32)
        draws = tf.random.stateless_uniform([self.num_subsets, rows * cols], seed)
        return tf.cast(draws < self.subset_fraction, tf.float32)

    def subset_masks(self, cells, subset_index, image_index, height, width):
        """Channels_last masks (c, H, W, 1) of the removed pixels of subsets `subset_index`.

        `image_index` is unused here; a subclass may give per-image (c, H, W, channels) masks.
        """
        segments = grid_segments(1, height, width, self._grid(height, width))[0]
        return tf.gather(tf.gather(cells, subset_index), segments, axis=1)[..., None]

    def score_batch(self, reader, images, maps, classes, original):
        height, width = spatial_size(images, self.data_format)
        cells = self.removed_cells(height, width)
        maps = to_channels_last(maps, self.data_format)
        num_subsets = self.num_subsets
        start_probability = class_probability(original, classes)
        num_images = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]

        def body(start, stop, rows):
            item = tf.range(start, stop)
            image_index = item // num_subsets
            removed = self.subset_masks(cells, item % num_subsets, image_index, height, width)
            attribution = tf.reduce_sum(tf.gather(maps, image_index) * removed, axis=(1, 2, 3))
            filled = fills.fill_masked(tf.gather(images, image_index),
                                       from_channels_last(removed, self.data_format), self._fill_fn)
            probability = class_probability(reader.evaluate(filled), tf.gather(classes, image_index))
            drop = tf.gather(start_probability, image_index) - probability
            return tf.tensor_scatter_nd_update(rows, item[:, None], tf.stack([attribution, drop], axis=-1))

        rows = chunked_loop(body, num_images * num_subsets, self.batch_size, tf.zeros([num_images * num_subsets, 2]))
        rows = tf.reshape(rows, (-1, num_subsets, 2))
        return pearson(rows[..., 0], rows[..., 1])

    def get_config(self):
        return {
            "num_subsets": self.num_subsets,
            "grid_size": self.grid_size,
            "subset_fraction": self.subset_fraction,
            "fill": fills.config_name(self.fill, self._fill_fn),
            "seed": self.seed,
            **super().get_config(),
        }
