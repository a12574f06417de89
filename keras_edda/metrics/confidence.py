"""Metrics that compare the model's confidence on an image and on one
occluded copy of it: Average Drop, Increase in Confidence, and EDDA's two
principles, Salient Occlusion Drop and Non-Salient Agreement."""

import tensorflow as tf

from keras_edda import _checks
from keras_edda.metrics.base import AlignmentMetric, class_probability
from keras_edda.ops import fills
from keras_edda.ops import masks as masks_lib


class OccludedCopyMetric(AlignmentMetric):
    """A metric of the probabilities on the images and on one occluded copy.

    Subclasses say which pixels to fill (`fill_mask`) and how to score
    (`compare`). One model evaluation of the image and one of the copy per
    image.

    Args:
        fill: what replaces the filled pixels: a number (default 0.0, in
            the model's input space), a fill name of `keras_edda.ops.fills`
            or a callable `fill(images, mask) -> images`.
        batch_size: most model evaluations per forward call.
        data_format: layout of images and maps.
    """

    kind = "fill"

    def __init__(self, fill=0.0, batch_size=None, data_format=None):
        super().__init__(batch_size, data_format)
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=self.data_format)

    def fill_mask(self, maps):
        """The (N, H, W, 1) mask of the pixels to fill. To implement."""
        raise NotImplementedError

    def compare(self, original, occluded, classes):
        """Scores (N,) from probabilities (N, C) before and after. To implement."""
        raise NotImplementedError

    def score_batch(self, reader, images, maps, classes, original):
        occluded_images = fills.fill_masked(images, self.fill_mask(maps), self._fill_fn)
        return self.compare(original, reader(occluded_images), classes)

    def get_config(self):
        return {"fill": fills.config_name(self.fill), **super().get_config()}


class _TopFractionKept(OccludedCopyMetric):
    def __init__(self, fraction=0.15, fill=0.0, batch_size=None, data_format=None):
        super().__init__(fill, batch_size, data_format)
        self.fraction = _checks.check_fraction(fraction, "fraction")

    def fill_mask(self, maps):
        return 1.0 - masks_lib.top_fraction_mask(maps, self.fraction)

    def get_config(self):
        return {"fraction": self.fraction, **super().get_config()}


class AverageDrop(_TopFractionKept):
    """Average Drop (Chattopadhay et al., 2018), per image; lower is better.

    Protocol (as the EDDA authors' code computes it): the class is the
    model's top-1 on the original image (or `targets`); the `fraction` (15 %)
    most salient pixels are kept, all channels together, and the rest is set
    to `fill` (0.0); p and p' are the softmax probabilities of the class on
    the original and on the masked image. Score = max(0, p - p') / p. The
    paper's "Average Drop %" is 100 times the mean over images.

    Example:

    ```python
    maps = keras_edda.explainers.GradCAM(model)(images)
    drop = keras_edda.metrics.AverageDrop()(model, images, maps)  # (N,)
    ```
    """

    name = "average_drop"
    score_direction = "lower"

    def compare(self, original, occluded, classes):
        p = class_probability(original, classes)
        p_masked = class_probability(occluded, classes)
        return tf.maximum(p - p_masked, 0.0) / tf.maximum(p, 1e-12)


class IncreaseInConfidence(_TopFractionKept):
    """Increase in Confidence (Chattopadhay et al., 2018); higher is better.

    Same masked image as `AverageDrop` (top 15 % kept, rest set to 0.0);
    score = 1.0 where the class probability rises, p' > p, else 0.0. The
    paper's "Increase in Confidence %" is 100 times the mean over images.

    Example:

    ```python
    rise = keras_edda.metrics.IncreaseInConfidence()(model, images, maps)
    ```
    """

    name = "increase_in_confidence"
    score_direction = "higher"

    def compare(self, original, occluded, classes):
        p = class_probability(original, classes)
        return tf.cast(class_probability(occluded, classes) > p, tf.float32)


class _SalientMask(OccludedCopyMetric):
    def __init__(self, threshold=None, fraction=None, fill=0.0, batch_size=None,
                 data_format=None):
        super().__init__(fill, batch_size, data_format)
        if threshold is None and fraction is None:
            threshold = 0.5
        self.threshold, self.fraction = masks_lib.check_mask_settings(threshold, fraction)

    def salient(self, maps):
        return masks_lib.salient_mask(maps, self.threshold, self.fraction)

    def get_config(self):
        return {"threshold": self.threshold, "fraction": self.fraction, **super().get_config()}


class SalientOcclusionDrop(_SalientMask):
    """How much the class probability falls when the salient region is filled.

    EDDA's first principle: occluding what the explainer calls important
    must lower the model's confidence. The salient mask is EDDA's (min-max
    normalised map above `threshold` = 0.5, or the top `fraction` of pixels);
    the salient pixels are set to `fill` (0.0). Score = p - p' with the
    softmax probabilities of the class (top-1 on the original, or
    `targets`); higher is better, negative when the occlusion raises it.

    Example:

    ```python
    drop = keras_edda.metrics.SalientOcclusionDrop()(model, images, maps)
    ```
    """

    name = "salient_occlusion_drop"
    score_direction = "higher"

    def fill_mask(self, maps):
        return self.salient(maps)

    def compare(self, original, occluded, classes):
        return class_probability(original, classes) - class_probability(occluded, classes)


class NonSalientAgreement(_SalientMask):
    """Whether the prediction survives filling the non-salient region.

    EDDA's second principle: occluding what the explainer calls unimportant
    must not change the prediction. Same salient mask as
    `SalientOcclusionDrop`; everything outside it is set to `fill` (0.0).
    Score = 1.0 where the top-1 class of the masked image equals the top-1
    class of the original, else 0.0 (the mean is the share of unchanged
    predictions); higher is better. `targets` are not used.

    Example:

    ```python
    agree = keras_edda.metrics.NonSalientAgreement()(model, images, maps)
    ```
    """

    name = "non_salient_agreement"
    score_direction = "higher"

    def fill_mask(self, maps):
        return 1.0 - self.salient(maps)

    def compare(self, original, occluded, classes):
        return tf.cast(tf.equal(tf.argmax(original, axis=-1), tf.argmax(occluded, axis=-1)),
                       tf.float32)
