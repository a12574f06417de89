"""EDDA, explanation-driven data augmentation (Li, Zhang et al., 2021)."""

import numbers

import keras
import tensorflow as tf

from keras_edda import _checks, _serialization
from keras_edda import explainers as explainers_lib
from keras_edda.methods.base import MethodLayer, check_weight
from keras_edda.methods.registry import register
from keras_edda.ops import masks as masks_lib

SALIENT_TARGETS = ("uniform", "decrease", "none")
NON_SALIENT_TARGETS = ("label", "consistency")


def salient_masks(maps, threshold=None, fraction=None, area_maps=None):
    """Salient masks of `maps`; with `area_maps`, of the area their masks would have.

    With `area_maps`, each image's salient area is the one `area_maps`' mask
    has, and `maps` only rank the pixels (the matched-area random baseline).
    """
    if area_maps is None:
        return masks_lib.salient_mask(maps, threshold, fraction)
    reference = masks_lib.salient_mask(area_maps, threshold, fraction)
    counts = tf.reduce_sum(reference, axis=tf.range(1, tf.rank(reference)), keepdims=True)
    return tf.cast(masks_lib.pixel_ranks(maps) < tf.cast(counts, tf.int32), tf.float32)


def decreased_targets(copy_probabilities, original_probabilities, labels, margin):
    """Targets that ask the class probability to fall by `margin`, and no further.

    The class entry becomes `max(p_original - margin, 0)`; the other classes
    share the rest in the proportions the model gives them on the copy.
    The second value is 1.0 where the copy's class probability is still
    above that level (the hinge is active), else 0.0.

    Args:
        copy_probabilities: (N, C) on the salient-occluded copies.
        original_probabilities: (N, C) on the originals.
        labels: one-hot (N, C) of the class.
        margin: in (0, 1).

    Returns:
        `(targets (N, C), active (N,))`.
    """
    p_copy = tf.reduce_sum(copy_probabilities * labels, axis=-1)
    goal = tf.maximum(tf.reduce_sum(original_probabilities * labels, axis=-1) - margin, 0.0)
    others = copy_probabilities * (1.0 - labels)
    others_sum = tf.reduce_sum(others, axis=-1, keepdims=True)
    num_others = tf.cast(tf.shape(labels)[-1], tf.float32) - 1.0
    spread = tf.where(others_sum > 1e-12, others / tf.maximum(others_sum, 1e-12),
                      (1.0 - labels) / tf.maximum(num_others, 1.0))
    targets = labels * goal[:, None] + spread * (1.0 - goal)[:, None]
    return targets, tf.cast(p_copy > goal, tf.float32)


@register("edda")
@keras.saving.register_keras_serializable(package="keras_edda")
class EDDA(MethodLayer):
    """Explanation-driven data augmentation (Li, Zhang et al., 2021).

    For each chosen image, the classifier's own explanation (Grad-CAM by
    default) of its label splits the pixels into salient and non-salient
    (min-max normalised map above `threshold`, or the top `fraction`), and
    two copies join the batch:

    - the non-salient-occluded copy (salient region kept, the rest filled):
      occluding what the explainer calls unimportant must not change the
      prediction, so it keeps the label (`non_salient_target="label"`, the
      authors'), or is pulled toward the model's own prediction on the
      original (`"consistency"`, a KL term as in saliency-guided training;
      this project's option). With `keep_if_correct` (the authors'), a copy
      the current model misclassifies gets weight 0.
    - the salient-occluded copy (salient region filled): occluding what the
      explainer calls important must lower the confidence. Its target is
      `salient_target`: `"uniform"` (the natural reading of the principle),
      a float alpha in (0, 1] (the label smoothed toward uniform by alpha),
      `"decrease"` (this project's: the class probability is asked to fall
      `margin` below its value on the original, and nothing more once it
      has), or `"none"` (no salient copy).

    With `skip_uninformative` (default), copies whose mask is empty or covers
    the whole image (a constant map) get weight 0: they are the unchanged
    image, or nothing of it.

    Cost per training step, for a batch of N: one explanation of the batch
    (Grad-CAM: one forward and one backward to its layer, which also gives
    the prediction) and the forward and backward of the 2N copies in the
    training step. Inside a model, `keep_if_correct` and `"decrease"` read
    the training pass's own predictions on the copies (under
    `stop_gradient`): no pass of their own. On dict batches and in the map
    function, one forward pass of the 2N copies gives them.

    Args:
        model: the classifier (see `MethodLayer`).
        explainer: a registered explainer name (`"grad_cam"`), an `Explainer`
            of `model`, or a function `fn(images, targets) -> maps`.
        explainer_kwargs: settings of an explainer given by name.
        threshold: salient = normalised map above it (0.5, the authors').
        fraction: salient = this share of the most salient pixels instead.
        fill, fill_value: what replaces occluded pixels (constant 0.0, the
            authors': the mean colour after mean/std normalisation).
        salient_target: see above (`"decrease"`, chosen on the validation
            split by `benchmarks/edda_search.py`; `"uniform"` was the default
            before).
        non_salient_target: `"label"` or `"consistency"`.
        keep_if_correct: weight 0 for misclassified non-salient copies.
        explain_target: explain the `"label"` (default) or the model's
            `"prediction"`. Inside a model there are no labels: the
            prediction is explained and used as the label.
        margin: the fall `"decrease"` asks for, in (0, 1) (0.1).
        salient_weight: extra weight of the salient copies (1.0).
        skip_uninformative: weight 0 for empty and full masks (True).
        area_from: an explainer name; each image's salient area is the one
            this explainer's mask would have, and `explainer` only ranks the
            pixels (the matched-area random baseline, see `RandomOcclusion`).
            One more explanation per step; when it reads the prediction from
            its own forward pass (Grad-CAM, Saliency) and `explainer` does
            not, the prediction is taken from it.
        area_from_kwargs: settings of the `area_from` explainer (e.g.
            `{"steps": 8}` for Integrated Gradients).
        rate, seed, warmup_steps, warmup_epochs, steps_per_epoch,
            copies_weight: see `MethodLayer`.

    Example:

    ```python
    classifier = keras_edda.models.small_cnn((32, 32, 1), 10)
    model = keras.Sequential([keras_edda.methods.EDDA(classifier), classifier])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5)
    # or in tf.data, with soft targets and weights (the layer is made once, outside the map):
    edda = keras_edda.methods.EDDA(classifier)
    ds = ds.batch(64).map(lambda x, y: edda({"images": x, "labels": y}))
    ```
    """

    driven_by = "explainer"

    def __init__(self, model, explainer="grad_cam", explainer_kwargs=None, threshold=None, fraction=None,
                 fill="constant", fill_value=0.0, salient_target="decrease", non_salient_target="label",
                 keep_if_correct=True, explain_target="label", margin=0.1, salient_weight=1.0,
                 skip_uninformative=True, area_from=None, area_from_kwargs=None, **kwargs):
        salient_target = self._check_salient_target(salient_target)
        copy_names = ("non_salient",) if salient_target == "none" else ("non_salient", "salient")
        super().__init__(model, copy_names, fill=fill, fill_value=fill_value, **kwargs)
        if threshold is None and fraction is None:
            threshold = 0.5
        self.threshold, self.fraction = masks_lib.check_mask_settings(threshold, fraction)
        self.salient_target = salient_target
        self.non_salient_target = _checks.check_choice(
            non_salient_target, "non_salient_target", NON_SALIENT_TARGETS)
        for name, value in (("keep_if_correct", keep_if_correct), ("skip_uninformative", skip_uninformative)):
            if not isinstance(value, bool):
                raise TypeError(f"`{name}` must be a bool. Received: {name}={value!r}")
        self.keep_if_correct = keep_if_correct
        self.skip_uninformative = skip_uninformative
        self.explain_target = _checks.check_choice(explain_target, "explain_target", ("label", "prediction"))
        self.margin = _checks.check_fraction(margin, "margin")
        self.salient_weight = check_weight(salient_weight, "salient_weight")
        explainer = _serialization.deserialize_callable(explainer)
        self.explainer = self.build_explainer(explainer, explainer_kwargs, self.get_classifier())
        self._explainer_given = (explainer, explainer_kwargs)
        if area_from is not None:
            explainers_lib.name_of(area_from)
        self.area_from = area_from
        self.area_from_kwargs = None if area_from_kwargs is None else dict(area_from_kwargs)
        self.area_explainer = None
        if area_from is not None and self.threshold is not None:
            self.area_explainer = self.build_explainer(area_from, area_from_kwargs, self.get_classifier())

    @staticmethod
    def _check_salient_target(value):
        if isinstance(value, str):
            return _checks.check_choice(value, "salient_target", SALIENT_TARGETS)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(
                f"`salient_target` must be one of {list(SALIENT_TARGETS)} or a float in (0, 1]. "
                f"Received: salient_target={value!r}")
        return _checks.check_fraction(value, "salient_target", True, False)

    def _explanations(self, images, explained):
        """`(maps, area_maps or None, scores, scores_are_logits)` of a batch.

        The prediction comes from whichever explanation reads it from its own forward pass: with
        random maps (or Integrated Gradients) matched to Grad-CAM's area, from Grad-CAM's.
        """
        area = self.area_explainer
        if area is not None and area.scores_come_free and not self.explainer.scores_come_free:
            area_maps, scores = area.explain_with_scores(images, explained)
            return self.explainer(images, explained), area_maps, scores, area.scores_are_logits
        maps, scores = self.explainer.explain_with_scores(images, explained)
        area_maps = None if area is None else area(images, explained)
        return maps, area_maps, scores, self.explainer.scores_are_logits

    @property
    def needs_copy_predictions(self):
        """Keep-if-correct and `"decrease"` read the model's predictions on the copies."""
        return self.keep_if_correct or self.salient_target == "decrease"

    def draft_transformation(self, images, targets, chosen, seed=None):
        """The explanation, the masks and fills; the targets and weights that need no prediction on the copies."""
        head = self.head()
        explained = None
        if targets is not None and self.explain_target == "label":
            explained = tf.argmax(targets, axis=-1, output_type=tf.int32)
        maps, area_maps, scores, from_logits = self._explanations(images, explained)
        maps = tf.stop_gradient(maps)
        original = tf.stop_gradient(head.probabilities(scores, from_logits=from_logits))
        if targets is None:
            targets = tf.one_hot(tf.argmax(original, axis=-1), head.num_classes)
        if area_maps is not None:
            area_maps = tf.stop_gradient(area_maps)
        salient = salient_masks(maps, self.threshold, self.fraction, area_maps)
        weight = chosen * self.copies_weight
        if self.skip_uninformative:
            weight *= self.copy_is_informative(salient)
        masks = [1.0 - salient]
        if self.salient_target != "none":
            masks.append(salient)
        masks = tf.stack(masks)
        kept_target = targets if self.non_salient_target == "label" else original
        copy_targets, copy_weights = [kept_target], [weight]
        if self.salient_target != "none":
            hidden_target = targets  # "decrease": set by `complete_transformation`
            if self.salient_target == "uniform":
                hidden_target = tf.fill(tf.shape(targets), 1.0 / head.num_classes)
            elif self.salient_target != "decrease":
                alpha = self.salient_target
                hidden_target = (1.0 - alpha) * targets + alpha / head.num_classes
            copy_targets.append(hidden_target)
            copy_weights.append(weight * self.salient_weight)
        return {
            "targets": targets,
            "original_probabilities": original,
            "maps": maps,
            "copy_masks": masks,
            "fill_values": self.fill_values(images, masks),
            "copy_targets": tf.stack(copy_targets),
            "copy_weights": tf.stack(copy_weights),
        }

    def complete_transformation(self, transformation, copy_outputs):
        """Keep-if-correct's weights and `"decrease"`'s targets, from the outputs (K * N, C) on the copies."""
        if not self.needs_copy_predictions:
            return transformation
        head = self.head()
        targets = transformation["targets"]
        num_copies = len(self.copy_names)
        predicted = tf.stop_gradient(tf.cast(head.probabilities(copy_outputs), tf.float32))
        predicted = tf.reshape(predicted, (num_copies, -1, head.num_classes))
        copy_targets = tf.unstack(transformation["copy_targets"], num=num_copies)
        copy_weights = tf.unstack(tf.cast(transformation["copy_weights"], tf.float32), num=num_copies)
        if self.keep_if_correct:
            correct = tf.equal(tf.argmax(predicted[0], axis=-1), tf.argmax(targets, axis=-1))
            copy_weights[0] = copy_weights[0] * tf.cast(correct, tf.float32)
        if self.salient_target == "decrease":
            copy_targets[1], active = decreased_targets(
                predicted[1], transformation["original_probabilities"], targets, self.margin)
            copy_weights[1] = copy_weights[1] * active
        return {**transformation, "copy_targets": tf.stack(copy_targets), "copy_weights": tf.stack(copy_weights)}

    def get_config(self):
        explainer, explainer_kwargs = _serialization.explainer_config(*self._explainer_given)
        return {
            **super().get_config(),
            "explainer": explainer,
            "explainer_kwargs": explainer_kwargs,
            "threshold": self.threshold,
            "fraction": self.fraction,
            "salient_target": self.salient_target,
            "non_salient_target": self.non_salient_target,
            "keep_if_correct": self.keep_if_correct,
            "explain_target": self.explain_target,
            "margin": self.margin,
            "salient_weight": self.salient_weight,
            "skip_uninformative": self.skip_uninformative,
            "area_from": self.area_from,
            "area_from_kwargs": self.area_from_kwargs,
        }
