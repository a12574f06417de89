"""The EDDA transform: one pure function of tensors.

For each image it adds two occluded copies derived from the model's own
explanation (Li, Zhang et al., 2021):

- the non-salient-occluded copy (salient region kept, the rest filled) keeps
  the label: occluding what the explainer calls unimportant must not change
  the prediction;
- the salient-occluded copy (salient region filled) gets a target with less
  confidence (uniform by default): occluding what the explainer calls
  important must lower the model's confidence.

The layer (`keras_edda.layers.EDDA`) and the map function
(`keras_edda.data.edda_map_fn`) are thin adapters around `edda_transform`.
"""

import numbers

import keras
import tensorflow as tf

from keras_edda import _checks
from keras_edda import explainers as explainers_lib
from keras_edda.ops import fills
from keras_edda.ops import masks as masks_lib


class EDDASettings:
    """The settings of the EDDA augmentation, checked once.

    Args:
        threshold: salient = min-max normalised map > `threshold` (the
            authors' setting, 0.5). Exactly one of `threshold`/`fraction`.
        fraction: salient = the `fraction` most salient pixels, in (0, 1).
        fill: what replaces occluded pixels: `"constant"` (default, with
            `fill_value`), `"mean"`, `"blur"`, `"noise"`, `"inpaint"`, a
            number, or a callable `fill(images, mask) -> images`.
        fill_value: the value of the constant fill, in the model's input
            space (0.0 as the authors: the mean colour after normalisation).
        salient_target: target of the salient-occluded copies: `"uniform"`
            (default), a float alpha in (0, 1] that smooths the label toward
            uniform by alpha, or `"none"` to leave these copies out.
        keep_if_correct: give sample weight 0 to non-salient-occluded copies
            that the current model no longer classifies correctly (default,
            as the authors). Shapes never change.
        explain_target: explain the `"label"` (default) or the model's
            `"prediction"`.
        rate: share of the images that get copies, in (0, 1].
        seed: seed of the choice of images when `rate < 1`.
        warmup_steps: number of calls (training steps or batches) before
            any copy is made; before that the copies have weight 0.
        warmup_epochs: the warm-up in epochs instead, with
            `steps_per_epoch` (the number of batches of one epoch);
            `warmup_steps` becomes `warmup_epochs * steps_per_epoch`.
        steps_per_epoch: see `warmup_epochs`.
        area_from: an explainer name; when set (with `threshold`), the
            salient area of each image is the one this explainer's mask would
            have, and the explainer only ranks the pixels. With
            `explainer="random"` this is random occlusion of the same area as
            EDDA's, the paper's fair baseline.
    """

    def __init__(self, threshold=None, fraction=None, fill="constant",
                 fill_value=0.0, salient_target="uniform", keep_if_correct=True,
                 explain_target="label", rate=1.0, seed=None, warmup_steps=0,
                 area_from=None, warmup_epochs=None, steps_per_epoch=None):
        if threshold is None and fraction is None:
            threshold = 0.5
        self.threshold, self.fraction = masks_lib.check_mask_settings(threshold, fraction)
        fills.get(fill, fill_value)  # fails early on an unknown fill
        self.fill = fill
        self.fill_value = float(fill_value)
        if salient_target not in ("uniform", "none"):
            if isinstance(salient_target, bool) or not isinstance(salient_target, numbers.Real):
                raise ValueError(
                    "`salient_target` must be 'uniform', 'none' or a float in "
                    f"(0, 1]. Received: salient_target={salient_target!r}")
            _checks.check_fraction(salient_target, "salient_target", True, False)
            salient_target = float(salient_target)
        self.salient_target = salient_target
        if not isinstance(keep_if_correct, bool):
            raise TypeError(f"`keep_if_correct` must be a bool. Received: keep_if_correct={keep_if_correct!r}")
        self.keep_if_correct = keep_if_correct
        self.explain_target = _checks.check_choice(
            explain_target, "explain_target", ("label", "prediction"))
        self.rate = _checks.check_fraction(rate, "rate", True, False)
        self.seed = seed
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) or warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be an int >= 0. Received: warmup_steps={warmup_steps!r}")
        self.warmup_steps = int(warmup_steps)
        if warmup_epochs is not None or steps_per_epoch is not None:
            if self.warmup_steps:
                raise ValueError(
                    "Set the warm-up with `warmup_steps` or with `warmup_epochs` "
                    f"and `steps_per_epoch`, not both. Received: warmup_steps={warmup_steps}, "
                    f"warmup_epochs={warmup_epochs!r}, steps_per_epoch={steps_per_epoch!r}")
            epochs = _checks.check_positive_int(warmup_epochs, "warmup_epochs")
            steps = _checks.check_positive_int(steps_per_epoch, "steps_per_epoch")
            self.warmup_steps = epochs * steps
        if area_from is not None and area_from not in explainers_lib.EXPLAINERS:
            raise ValueError(
                f"`area_from` must be None or one of {list(explainers_lib.EXPLAINERS)}. "
                f"Received: area_from={area_from!r}")
        self.area_from = area_from

    @property
    def copies(self):
        """Copies per image: 2, or 1 when salient copies are left out."""
        return 1 if self.salient_target == "none" else 2

    def fill_fn(self, data_format=None):
        """The fill function of these settings."""
        return fills.get(self.fill, self.fill_value, data_format)

    def get_config(self):
        fill = self.fill
        if callable(fill):
            fill = keras.saving.serialize_keras_object(fill) if hasattr(fill, "get_config") else None
        return {
            "threshold": self.threshold, "fraction": self.fraction,
            "fill": fill, "fill_value": self.fill_value,
            "salient_target": self.salient_target,
            "keep_if_correct": self.keep_if_correct,
            "explain_target": self.explain_target, "rate": self.rate,
            "seed": self.seed, "warmup_steps": self.warmup_steps,
            "area_from": self.area_from,
        }


SETTING_NAMES = tuple(EDDASettings().get_config()) + ("warmup_epochs", "steps_per_epoch")


def standardize_labels(labels, num_images, num_classes):
    """Returns soft targets (N, C) float32 from int labels (N,) or (N, C).

    Label values and sizes are checked eagerly when they are known, and at
    run time inside graphs.
    """
    targets, checks = explainers_lib.targets.standardize_targets(
        labels, num_images, num_classes)
    if targets is None:
        raise ValueError("`labels` are required. Received: labels=None")
    with tf.control_dependencies(checks):
        if targets.dtype.is_integer:
            return tf.one_hot(targets, num_classes, dtype=tf.float32)
        return tf.identity(targets)


def salient_masks(maps, settings, area_maps=None):
    """Salient masks; with `area_maps`, of the area their masks would have."""
    if area_maps is None:
        return masks_lib.salient_mask(maps, settings.threshold, settings.fraction)
    reference = masks_lib.salient_mask(area_maps, settings.threshold, settings.fraction)
    counts = tf.reduce_sum(reference, axis=tf.range(1, tf.rank(reference)), keepdims=True)
    return tf.cast(masks_lib.pixel_ranks(maps) < tf.cast(counts, tf.int32), tf.float32)


def occluded_copies(images, masks, fill):
    """(non-salient-occluded, salient-occluded) copies of `images`."""
    return (fills.fill_masked(images, 1.0 - masks, fill),
            fills.fill_masked(images, masks, fill))


def salient_targets(targets, settings):
    """Targets of the salient-occluded copies: uniform, or smoothed by alpha."""
    num_classes = targets.shape[-1]
    uniform = tf.fill(tf.shape(targets), 1.0 / num_classes)
    if settings.salient_target == "uniform":
        return uniform
    alpha = settings.salient_target
    return (1.0 - alpha) * targets + alpha * uniform


def edda_transform(images, labels, model, explainer, settings, sample_weight=None,
                   active=True, selection=None, area_explainer=None):
    """Adds EDDA's occluded copies to a batch.

    Args:
        images: float images (N, H, W, C) (or (N, C, H, W)).
        labels: int labels (N,) or one-hot / soft targets (N, C).
        model: the classifier being trained (its current weights are used).
        explainer: an `Explainer` of `model`.
        settings: an `EDDASettings`.
        sample_weight: optional (N,) weights of the originals; copies inherit
            them.
        active: bool scalar; `False` (warm-up) gives the copies weight 0.
        selection: optional (N,) uniform draws in [0, 1); an image gets
            copies when its draw is below `settings.rate`.
        area_explainer: explainer whose masks fix the salient area
            (`settings.area_from`).

    Returns:
        `(images, targets, weights)`: images (M, ...), soft targets (M, C)
        float32 and sample weights (M,) float32, with M = N * (1 + copies);
        originals first, then non-salient-occluded, then salient-occluded.
    """
    images = tf.cast(_checks.check_images(images, "images"), tf.float32)
    images = _checks.assert_all_finite(images, "images")
    num_images = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
    explainer.inspect(images)
    num_classes = explainer.num_classes
    targets = standardize_labels(labels, num_images, num_classes)
    if sample_weight is None:
        sample_weight = tf.ones(tf.shape(images)[:1])
    sample_weight = tf.reshape(tf.cast(sample_weight, tf.float32), [-1])

    explained = targets if settings.explain_target == "label" else None
    maps = tf.stop_gradient(explainer(images, explained))
    area_maps = None
    if area_explainer is not None:
        area_maps = tf.stop_gradient(area_explainer(images, explained))
    masks = salient_masks(maps, settings, area_maps)
    kept, hidden = occluded_copies(images, masks, settings.fill_fn(explainer.data_format))

    chosen = tf.ones_like(sample_weight)
    if selection is not None and settings.rate < 1.0:
        chosen = tf.cast(selection < settings.rate, tf.float32)
    chosen *= tf.cast(active, tf.float32)
    kept_weight = sample_weight * chosen
    if settings.keep_if_correct:
        predicted = tf.argmax(model(kept, training=False), axis=-1, output_type=tf.int32)
        correct = tf.equal(predicted, tf.argmax(targets, axis=-1, output_type=tf.int32))
        kept_weight *= tf.cast(correct, tf.float32)

    out_images = [images, kept]
    out_targets = [targets, targets]
    out_weights = [sample_weight, kept_weight]
    if settings.salient_target != "none":
        out_images.append(hidden)
        out_targets.append(salient_targets(targets, settings))
        out_weights.append(sample_weight * chosen)
    return (tf.concat(out_images, 0), tf.concat(out_targets, 0),
            tf.concat(out_weights, 0))
