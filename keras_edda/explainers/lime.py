"""LIME for images (Ribeiro, Singh & Guestrin, KDD 2016), batched in-graph."""

import numbers

import numpy as np
import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
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


def weighted_ridge(features, targets, weights, alpha):
    """Ridge regression with an unpenalised intercept, per image, in one solve.

    Minimises sum_s w_s (y_s - b - x_s . beta)^2 + alpha |beta|^2 as
    scikit-learn's `Ridge(alpha).fit(x, y, sample_weight=w)` does: centre x
    and y by their weighted means, then solve the normal equations.

    Args:
        features: (N, S, F) samples.
        targets: (N, S).
        weights: (N, S) sample weights.
        alpha: the ridge penalty.

    Returns:
        float32 coefficients (N, F).
    """
    x, y, w = (tf.cast(t, tf.float64) for t in (features, targets, weights))
    total = tf.reduce_sum(w, axis=1, keepdims=True)
    x_mean = tf.reduce_sum(w[..., None] * x, axis=1, keepdims=True) / total[..., None]
    y_mean = tf.reduce_sum(w * y, axis=1, keepdims=True) / total
    xc, yc = x - x_mean, y - y_mean
    weighted = xc * w[..., None]
    gram = tf.matmul(weighted, xc, transpose_a=True)
    gram += alpha * tf.eye(tf.shape(gram)[-1], dtype=tf.float64)
    moment = tf.matmul(weighted, yc[..., None], transpose_a=True)
    return tf.cast(tf.linalg.solve(gram, moment)[..., 0], tf.float32)


@register("lime")
class Lime(Explainer):
    """LIME: a weighted linear surrogate of the model over superpixels.

    Each image is cut into superpixels; `num_samples` random on/off vectors
    (the first one all on) hide the "off" superpixels with the fill; the
    model scores every perturbed copy (in chunks of `batch_size`, all images
    of the batch together); a ridge regression (penalty `alpha`, unpenalised
    intercept) weighted by the kernel sqrt(exp(-d^2 / width^2)) of the cosine
    distance d to the all-on vector fits the target's score from the vectors,
    for all images in one batched solve. The map gives every pixel its
    superpixel's coefficient. With `fill=Inpainter(...)` this is LIME-G
    (Agarwal & Nguyen). Cost: `num_samples` + 1 forward passes per image.

    Where the segmentation runs: the grid (default) is TensorFlow ops in the
    graph; `"slic"` runs scikit-image on the host through `tf.numpy_function`,
    once per image per call, before the sampling (not in the hot loop).

    Args:
        model: the `keras.Model` to explain.
        num_samples: perturbed copies per image (LIME's default: 1000;
            Agarwal & Nguyen: 500).
        segments: `"grid"` (`grid_size` cells), `"slic"` (SLIC with
            `slic_options`), or a callable `fn(images) -> int32 (N, H, W)`
            superpixel ids 0..K-1 per image (e.g. a precomputed segmentation
            in a closure).
        grid_size: int or (rows, cols): the grid's cells.
        slic_options: dict of `skimage.segmentation.slic` arguments; defaults
            `n_segments=50, compactness=30, sigma=3`.
        fill: what hides a superpixel: a number, a fill name or a callable
            `fill(images, mask)` (see `keras_edda.ops.fills`); default 0.0,
            grey for mean/std-normalised inputs (pass 0.5 for [0, 1] images).
        kernel_width: width of the distance kernel (0.25).
        alpha: ridge penalty (1.0, as the `lime` package).
        seed: seed of the on/off vectors: an int gives the same vectors on
            every call; `None` draws new ones.
        batch_size: most perturbed images per forward call.
        use_logits: explain the pre-softmax logit (default); `False`
            explains the probabilities, as the `lime` package does.
        data_format: layout of the images.

    Example:

    ```python
    maps = Lime(model, num_samples=500, segments="slic", fill=0.5)(images)
    ```
    """

    signed_maps = True

    def __init__(self, model, num_samples=500, segments="grid", grid_size=8, slic_options=None,
                 fill=0.0, kernel_width=0.25, alpha=1.0, seed=0, batch_size=512,
                 use_logits=True, data_format=None):
        self.num_samples = _checks.check_positive_int(num_samples, "num_samples")
        if not (callable(segments) or segments in ("grid", "slic")):
            raise ValueError(
                "`segments` must be 'grid', 'slic' or a callable `fn(images) -> (N, H, W)` ids. "
                f"Received: segments={segments!r}")
        self.segments = segments
        if isinstance(grid_size, (tuple, list)) and len(grid_size) == 2:
            self.grid_size = tuple(_checks.check_positive_int(v, "grid_size") for v in grid_size)
        else:
            self.grid_size = (_checks.check_positive_int(grid_size, "grid_size"),) * 2
        self.slic_options = dict(slic_options or {})
        for name, value in (("kernel_width", kernel_width), ("alpha", alpha)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
        self.kernel_width, self.alpha = float(kernel_width), float(alpha)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.seed = seed
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=data_format, seed=seed)
        super().__init__(model, batch_size, use_logits, data_format)

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

    def _samples(self, num_images, num_features):
        shape = tf.stack([num_images, self.num_samples, num_features])
        if self.seed is None:
            draws = tf.random.uniform(shape)
        else:
            draws = tf.random.stateless_uniform(shape, seed=[self.seed, 0])
        on = tf.cast(draws < 0.5, tf.float32)
        return tf.concat([tf.ones_like(on[:, :1]), on[:, 1:]], axis=1)

    def explain_batch(self, images, targets):
        channels_last = to_channels_last(images, self.data_format)
        segments = self.segment(channels_last)
        num_images = tf.shape(images)[0]
        num_features = tf.reduce_max(segments) + 1
        present = tf.reduce_max(tf.one_hot(segments, num_features), axis=(1, 2))
        samples = self._samples(num_images, num_features) * present[:, None, :]
        flat_samples = tf.reshape(samples, (-1, num_features))
        if self.data_format == "channels_first":
            hidden_axis = 1
        else:
            hidden_axis = -1

        original_scores = self.predict_scores(images)
        weights = self.target_weights(targets, original_scores)
        num_samples = self.num_samples

        def body(start, stop, scores_so_far):
            item = tf.range(start, stop)
            image_index = item // num_samples
            on = self._visible_pixels(tf.gather(flat_samples, item), segments, image_index)
            perturbed = fills.fill_masked(
                tf.gather(images, image_index), tf.expand_dims(1.0 - on, hidden_axis), self._fill_fn)
            scores, _ = self.scores(perturbed)
            score = explained_score(tf.gather(weights, image_index), scores)
            return tf.tensor_scatter_nd_update(scores_so_far, item[:, None], score)

        scores = chunked_loop(body, self._static_count(images, num_samples), self.batch_size,
                              tf.zeros((num_images * num_samples,)))
        scores = tf.reshape(scores, (num_images, num_samples))
        similarity = tf.reduce_sum(samples * present[:, None, :], axis=-1) / tf.maximum(
            tf.norm(samples, axis=-1) * tf.norm(present, axis=-1, keepdims=True), 1e-12)
        distance = 1.0 - similarity
        kernel = tf.sqrt(tf.exp(-tf.square(distance) / self.kernel_width ** 2))
        coefficients = weighted_ridge(samples, scores, kernel, self.alpha)
        maps = tf.gather(coefficients, segments, batch_dims=1)
        return maps[..., None]

    def _visible_pixels(self, samples, segments, image_index):
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
            "num_samples": self.num_samples,
            "segments": self.segments if isinstance(self.segments, str) else "callable",
            "grid_size": self.grid_size,
            "slic_options": self.slic_options,
            "fill": fills.config_name(self.fill, self._fill_fn),
            "kernel_width": self.kernel_width,
            "alpha": self.alpha,
            "seed": self.seed,
            **super().get_config(),
        }
