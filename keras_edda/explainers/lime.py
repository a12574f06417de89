"""LIME for images (Ribeiro, Singh & Guestrin, KDD 2016), batched in-graph."""

import numbers

import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.explainers.superpixels import (  # noqa: F401  (grid_segments, slic_segments: public here too)
    SLIC_DEFAULTS,
    Superpixels,
    coalition_scores,
    grid_segments,
    slic_segments,
)
from keras_edda.ops import fills
from keras_edda.ops.layout import to_channels_last


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
        self.superpixels = Superpixels(segments, grid_size, slic_options)
        self.segments, self.grid_size = segments, self.superpixels.grid_size
        self.slic_options = self.superpixels.slic_options
        for name, value in (("kernel_width", kernel_width), ("alpha", alpha)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
        self.kernel_width, self.alpha = float(kernel_width), float(alpha)
        self.seed = _checks.check_seed(seed)
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=data_format, seed=seed)
        super().__init__(model, batch_size, use_logits, data_format)

    def segment(self, images):
        """Superpixel ids (N, H, W) int32 of channels_last `images`, 0..K-1."""
        return self.superpixels.segment(images)

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
        original_scores = self.predict_scores(images)
        weights = self.target_weights(targets, original_scores)
        scores = coalition_scores(self, self.superpixels, images, segments, samples, self.num_samples,
                                  weights, self._fill_fn)
        similarity = tf.reduce_sum(samples * present[:, None, :], axis=-1) / tf.maximum(
            tf.norm(samples, axis=-1) * tf.norm(present, axis=-1, keepdims=True), 1e-12)
        distance = 1.0 - similarity
        kernel = tf.sqrt(tf.exp(-tf.square(distance) / self.kernel_width ** 2))
        coefficients = weighted_ridge(samples, scores, kernel, self.alpha)
        maps = tf.gather(coefficients, segments, batch_dims=1)
        return maps[..., None]

    def get_config(self):
        return {
            "num_samples": self.num_samples,
            **self.superpixels.get_config(),
            "fill": fills.config_name(self.fill, self._fill_fn),
            "kernel_width": self.kernel_width,
            "alpha": self.alpha,
            "seed": self.seed,
            **super().get_config(),
        }
