"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci, Kasneci, ICML
2022): remove pixels in order of relevance, impute them by noisy linear
imputation, and follow the model's probability and accuracy."""

import math
import numbers

import tensorflow as tf

from keras_edda import _checks
from keras_edda.metrics.causal import CausalMetric
from keras_edda.ops import fills
from keras_edda.ops.masks import pixel_ranks

DEFAULT_PERCENTAGES = (10, 20, 30, 40, 50, 60, 70, 80, 90)


def _check_percentages(percentages):
    values = percentages if isinstance(percentages, (list, tuple)) else None
    if (
        not values
        or any(isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 < p < 100 for p in values)
        or any(b <= a for a, b in zip(values, values[1:]))
    ):
        raise ValueError(
            "`percentages` must be a non-empty, increasing list of numbers in (0, 100). "
            f"Received: percentages={percentages!r}")
    return tuple(float(p) for p in values)


def area_over_percentages(curves, percentages):
    """Mean height of curves (N, P) sampled at `percentages`, by the
    trapezoid rule over the span of the percentages; a single point is its
    own value. With evenly spaced percentages this is `trapezoid_auc`."""
    if len(percentages) == 1:
        return curves[:, 0]
    x = tf.constant(percentages, tf.float32) / 100.0
    widths = x[1:] - x[:-1]
    area = tf.reduce_sum(widths * 0.5 * (curves[:, 1:] + curves[:, :-1]), axis=-1)
    return area / (x[-1] - x[0])


class ROAD(CausalMetric):
    """ROAD (Rong et al., ICML 2022): remove and impute, with no retraining.

    Protocol: the class is the model's top-1 on the original (or
    `targets`). For each percentage p, the `int(H * W * p / 100)` most
    relevant pixels (`order="morf"`) or least relevant ones
    (`order="lerf"`) are removed, all channels together, and imputed by
    noisy linear imputation (`keras_edda.ops.fills.noisy_linear_fill`:
    the weighted mean of the 8 neighbours, solved jointly, plus N(0,
    noise^2)), which leaks much less of the mask's shape to the model than
    a constant fill. The curve is the class probability per percentage
    (`curve`), next to the accuracy, whether the top-1 class is still the
    explained class (`accuracy_curve`; its mean over images is ROAD's
    accuracy as Rong et al. and Quantus report it). Score = the area under
    the probability curve over the percentages, divided by their span
    (the curve's mean height): lower is better for MoRF (name
    `"road_morf"`), higher for LeRF (`"road_lerf"`). Each image costs
    `len(percentages) + 1` model evaluations and `len(percentages)` imputations,
    all in chunks of `batch_size`.

    Args:
        order: `"morf"` (most relevant first) or `"lerf"` (least relevant
            first).
        percentages: increasing percentages of pixels to remove, each in
            (0, 100).
        noise: standard deviation of the imputation noise, in the images'
            units (default 0.01, as in the paper for [0, 1] images); finite.
        fill: `"noisy_linear"` (default), or any other fill (a number, a
            fill name or a callable `fill(images, mask) -> images`); then
            `noise` is not used.
        seed: op seed of the noise: one instance draws new noise at every
            call (repeated calls differ by it); two instances made with the
            same seed and `batch_size` repeat each other's scores call for
            call. `noise=0` makes the scores deterministic.
        batch_size: most model evaluations (and imputations) per call.
        data_format: layout of images and maps.

    Example:

    ```python
    road = keras_edda.metrics.ROAD(order="morf", percentages=[10, 30, 50, 70, 90])
    scores = road(model, images, maps)                      # (N,), lower is better
    accuracy = road.accuracy_curve(model, images, maps)     # (N, 5) of 1.0 / 0.0
    ```
    """

    name = "road_morf"
    score_direction = "lower"
    kind = "fill_free"

    def __init__(self, order="morf", percentages=DEFAULT_PERCENTAGES, noise=0.01, fill="noisy_linear",
                 seed=None, batch_size=512, data_format=None):
        data_format = _checks.standardize_data_format(data_format)
        order = _checks.check_choice(order, "order", ("morf", "lerf"))
        percentages = _check_percentages(percentages)
        if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= noise < math.inf:
            # Infinite noise imputes infinities: every score was NaN.
            raise ValueError(f"`noise` must be a finite number >= 0. Received: noise={noise!r}")
        if isinstance(fill, str) and fill == "noisy_linear":
            fill_fn = fills.noisy_linear_fill(noise=float(noise), seed=seed, data_format=data_format)
        else:
            fill_fn = fills.get(fill, data_format=data_format, seed=seed)
        super().__init__(None, fill_fn, None, batch_size, data_format)
        self.order = order
        self.percentages = percentages
        self.noise = float(noise)
        self.fill = fill
        self.seed = seed
        self.name = f"road_{order}"
        self.score_direction = "lower" if order == "morf" else "higher"

    def accuracy_curve(self, model, images, maps, targets=None):
        """1.0 where the top-1 class is still the explained one: (N, P) float32."""
        return self._run("accuracy", model, images, maps, targets)

    def _compiled_methods(self):
        return {**super()._compiled_methods(), "accuracy": self._accuracy_batch}

    def _accuracy_batch(self, reader, images, maps, classes, original):
        return self.curves_batch(reader, images, maps, classes, original)[1]

    def ranks(self, maps):
        return pixel_ranks(maps if self.order == "morf" else -maps)

    def counts(self, num_pixels, height):
        return [int(num_pixels * p / 100) for p in self.percentages]

    def fill_mask(self, changed):
        return changed

    def score_batch(self, reader, images, maps, classes, original):
        return area_over_percentages(self.curve_batch(reader, images, maps, classes, original), self.percentages)

    def get_config(self):
        config = {"order": self.order, "percentages": list(self.percentages), "noise": self.noise,
                  "fill": fills.config_name(self.fill, self._fill_fn), "seed": self.seed, **super().get_config()}
        del config["steps"], config["normalize"]
        return config
