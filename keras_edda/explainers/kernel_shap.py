"""Kernel SHAP over superpixels (Lundberg & Lee, NeurIPS 2017), batched in-graph."""

import itertools
import math

import numpy as np
import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.explainers.superpixels import Superpixels, coalition_scores
from keras_edda.ops import fills
from keras_edda.ops.layout import to_channels_last

# Exact enumeration of all 2^F - 2 coalitions is used up to this many superpixels.
MAX_ENUMERATED_FEATURES = 16


def shapley_kernel(num_features, sizes):
    """The Shapley kernel (F - 1) / (C(F, |z|) |z| (F - |z|)) of coalitions of `sizes` (0 < |z| < F)."""
    sizes = np.asarray(sizes)
    binomials = np.array([math.comb(num_features, int(s)) for s in sizes.ravel()], np.float64).reshape(sizes.shape)
    return (num_features - 1) / (binomials * sizes * (num_features - sizes))


def constrained_least_squares(coalitions, values, weights, total, present):
    """Kernel SHAP's weighted least squares with the efficiency constraint, per image, in one solve.

    Minimises sum_s w_s (v_s - z_s . phi)^2 subject to sum_k phi_k = total, through the
    Karush-Kuhn-Tucker system [[Z^T W Z, 1], [1^T, 0]] [phi; lambda] = [Z^T W v; total], in float64.
    Features absent from an image (`present` 0) get phi = 0.

    Args:
        coalitions: (N, S, F) 0/1 coalitions.
        values: (N, S) scores of the coalitions minus the score of the empty one.
        weights: (N, S) sample weights.
        total: (N,) the score of the full coalition minus the empty one's.
        present: (N, F) 1.0 for the superpixels an image has.

    Returns:
        float32 attributions (N, F).
    """
    z, v, w, t, c = (tf.cast(x, tf.float64) for x in (coalitions, values, weights, total, present))
    weighted = z * w[..., None]
    gram = tf.matmul(weighted, z, transpose_a=True)
    scale = tf.reduce_mean(tf.linalg.diag_part(gram), axis=-1)[:, None, None]
    # Absent features: a unit row and column, so that their attribution solves to 0; a relative 1e-12 ridge.
    gram += tf.linalg.diag(1.0 - c) * scale + 1e-12 * scale * tf.eye(tf.shape(gram)[-1], dtype=tf.float64)
    moment = tf.matmul(weighted, v[..., None], transpose_a=True)[..., 0] * c
    top = tf.concat([gram, c[..., None]], axis=-1)
    bottom = tf.concat([c, tf.zeros_like(c[:, :1])], axis=-1)[:, None, :]
    system = tf.concat([top, bottom], axis=1)
    right = tf.concat([moment, t[:, None]], axis=-1)[..., None]
    return tf.cast(tf.linalg.solve(system, right)[:, :-1, 0], tf.float32)


@register("kernel_shap")
class KernelShap(Explainer):
    """Kernel SHAP: Shapley values of superpixels from a weighted linear fit.

    Each image is cut into superpixels (the grid or SLIC segments, as
    `Lime`); a coalition z in {0, 1}^F shows the superpixels with z = 1 and
    hides the others with the fill. The model scores the full coalition, the
    empty one (the baseline: everything filled) and `num_samples`
    coalitions, all images of the batch together in chunks of `batch_size`.
    The attributions phi solve the weighted least squares
    sum_z pi(z) (f(z) - f(empty) - z . phi)^2 under the efficiency
    constraint sum_k phi_k = f(x) - f(empty), with the Shapley kernel
    pi(z) = (F - 1) / (C(F, |z|) |z| (F - |z|)), for all images in one
    batched solve. When the grid has few cells (2^F - 2 <= `num_samples`,
    F <= 16), every coalition is enumerated with its kernel weight and the
    result is the exact Shapley values of the superpixels; otherwise the
    coalitions are sampled from the kernel (a size |z| with probability
    proportional to the kernel's total weight at that size, then a uniform
    subset of that size, each followed by its complement) and weighted
    equally, as the `shap` package does past its enumerated sizes. The map
    gives every pixel its superpixel's attribution. Cost: `num_samples` + 2
    forward passes per image (2^F when enumerated), plus one for
    `targets=None`.

    Args:
        model: the `keras.Model` to explain.
        num_samples: sampled coalitions per image (default 500).
        segments: `"grid"` (`grid_size` cells), `"slic"` (SLIC with
            `slic_options`), or a callable `fn(images) -> int32 (N, H, W)`
            superpixel ids 0..K-1 per image.
        grid_size: int or (rows, cols): the grid's cells (default 8).
        slic_options: dict of `skimage.segmentation.slic` arguments.
        fill: what hides a superpixel: a number (default 0.0), a fill name or
            a callable `fill(images, mask)`.
        seed: seed of the sampled coalitions: an int gives the same
            coalitions on every call; `None` draws new ones.
        batch_size: most perturbed images per forward call (default 512).
        use_logits: explain the pre-softmax logit (default) or, with `False`,
            the model's output.
        data_format: layout of the images.

    Example:

    ```python
    maps = KernelShap(model, num_samples=1000, segments="slic", fill=0.5)(images)
    ```
    """

    signed_maps = True

    def __init__(self, model, num_samples=500, segments="grid", grid_size=8, slic_options=None, fill=0.0,
                 seed=0, batch_size=512, use_logits=True, data_format=None):
        self.num_samples = _checks.check_positive_int(num_samples, "num_samples")
        self.superpixels = Superpixels(segments, grid_size, slic_options)
        self.seed = _checks.check_seed(seed)
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=data_format, seed=seed)
        super().__init__(model, batch_size, use_logits, data_format)

    @property
    def enumerates(self):
        """Whether every coalition is enumerated (exact Shapley values of the superpixels)."""
        features = self.superpixels.static_num_features()
        return features is not None and features <= MAX_ENUMERATED_FEATURES and (
            2 ** features - 2 <= self.num_samples)

    def coalitions(self, num_images, num_features, present):
        """Coalitions (N, S, F) float32 and their weights (N, S), and S as a Python int."""
        if self.enumerates:
            features = self.superpixels.static_num_features()
            rows = np.array(list(itertools.product([0.0, 1.0], repeat=features))[1:-1], np.float32)
            weights = shapley_kernel(features, rows.sum(axis=1)).astype(np.float32)
            shape = tf.stack([num_images, rows.shape[0], features])
            return (tf.broadcast_to(rows, shape), tf.broadcast_to(weights, shape[:2]), rows.shape[0])
        return self._sampled_coalitions(num_images, num_features, present) + (self.num_samples,)

    def _sampled_coalitions(self, num_images, num_features, present):
        pairs = (self.num_samples + 1) // 2
        if self.seed is None:
            seeds = tf.random.uniform([2, 2], maxval=2 ** 31 - 1, dtype=tf.int32)
        else:
            seeds = tf.constant([[self.seed, 3], [self.seed, 4]], tf.int32)
        counts = tf.reduce_sum(present, axis=-1, keepdims=True)  # (N, 1)
        sizes = tf.cast(tf.range(1, num_features), tf.float32)[None, :]  # (1, F - 1)
        size_weights = tf.where(sizes < counts, tf.math.divide_no_nan(1.0, sizes * (counts - sizes)), 0.0)
        cdf = tf.math.cumsum(tf.math.divide_no_nan(size_weights, tf.reduce_sum(size_weights, -1, keepdims=True)),
                             axis=-1)
        # The same draws for every image (each uses them with its own superpixels): an image's coalitions do
        # not depend on the rest of the batch.
        draws = tf.random.stateless_uniform([1, pairs, 1], seeds[0])
        size = 1.0 + tf.reduce_sum(tf.cast(cdf[:, None, :-1] < draws, tf.float32), axis=-1)  # (N, P)
        noise = tf.random.stateless_uniform(tf.stack([1, pairs, num_features]), seeds[1])
        noise = tf.where(present[:, None, :] > 0, noise, 2.0)
        ranks = tf.argsort(tf.argsort(noise, axis=-1), axis=-1)
        chosen = tf.cast(tf.cast(ranks, tf.float32) < size[..., None], tf.float32)
        paired = tf.stack([chosen, present[:, None, :] - chosen], axis=2)
        samples = tf.reshape(paired, tf.stack([num_images, 2 * pairs, num_features]))[:, :self.num_samples]
        return samples, tf.ones(tf.stack([num_images, self.num_samples]))

    def explain_batch(self, images, targets):
        segments = self.superpixels.segment(to_channels_last(images, self.data_format))
        num_images = tf.shape(images)[0]
        num_features = self.superpixels.static_num_features() or tf.reduce_max(segments) + 1
        present = tf.reduce_max(tf.one_hot(segments, num_features), axis=(1, 2))
        coalitions, sample_weights, count = self.coalitions(num_images, num_features, present)
        coalitions = coalitions * present[:, None, :]
        rows = tf.concat([present[:, None, :], tf.zeros_like(present)[:, None, :], coalitions], axis=1)
        weights = self.target_weights(targets, self.predict_scores(images) if targets is None else None)
        scores = coalition_scores(self, self.superpixels, images, segments, rows, count + 2, weights,
                                  self._fill_fn)
        full, empty = scores[:, 0], scores[:, 1]
        attributions = constrained_least_squares(
            coalitions, scores[:, 2:] - empty[:, None], sample_weights, full - empty, present)
        return tf.gather(attributions, segments, batch_dims=1)[..., None]

    def get_config(self):
        return {
            "num_samples": self.num_samples,
            **self.superpixels.get_config(),
            "fill": fills.config_name(self.fill, self._fill_fn),
            "seed": self.seed,
            **super().get_config(),
        }
