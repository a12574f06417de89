"""Saliency-guided training (Ismail, Corrada Bravo, Feizi, NeurIPS 2021)."""

import keras
import tensorflow as tf

from keras_edda import _checks, _serialization
from keras_edda.methods.base import MethodLayer, check_weight
from keras_edda.methods.registry import register
from keras_edda.ops import masks as masks_lib


@register("sgt")
@keras.saving.register_keras_serializable(package="keras_edda")
class SaliencyGuided(MethodLayer):
    """Saliency-guided training: the model must not care about what it calls unimportant.

    Each step, the input-gradient saliency of the current model for the label
    ranks the pixels; the `fraction` lowest-saliency pixels are replaced by
    uniform random values in each image's own [min, max] (the authors'
    `RandomMasking`), and `weight * KL(f(x) || f(x_masked))` joins the loss.
    The reference f(x) is the model's distribution on the original, read
    from the saliency pass without a gradient through it (the authors' code
    also passes one through it). In `tf.data` the masked copy carries f(x)
    as its soft target: cross-entropy to it has the KL's gradient.

    Cost per step, for a batch of N: one saliency of the batch (a forward
    and a backward; the forward also gives f(x)) and the forward and
    backward of the N masked copies.

    Args:
        model: the classifier.
        explainer: the saliency (`"saliency"`: max over channels of the
            absolute input gradient), any registered name, `Explainer` of
            `model` or function.
        explainer_kwargs: settings of an explainer given by name.
        fraction: share of the pixels masked, in (0, 1) (0.5).
        weight: weight of the KL term (1.0); `copies_weight=` sets it too,
            as in the other method layers.
        fill: what replaces masked pixels (`"noise"`: uniform in each image's
            range); `fill_value` for `"constant"`.
        rate, seed, warmup_steps, warmup_epochs, steps_per_epoch: see
            `MethodLayer`.

    Example:

    ```python
    model = keras.Sequential([keras_edda.methods.SaliencyGuided(classifier, fraction=0.5), classifier])
    ```
    """

    def __init__(self, model, explainer="saliency", explainer_kwargs=None, fraction=0.5, weight=None,
                 fill="noise", fill_value=0.0, **kwargs):
        # `copies_weight`, the other layers' name for this weight, is the same setting here.
        copies_weight = kwargs.pop("copies_weight", None)
        if weight is not None and copies_weight is not None and copies_weight != weight:
            raise ValueError("SaliencyGuided weighs its copies by `weight`; `copies_weight` names the same "
                             f"setting. Received: weight={weight!r}, copies_weight={copies_weight!r}")
        weight = check_weight(next((w for w in (weight, copies_weight) if w is not None), 1.0), "weight")
        super().__init__(model, ("masked",), fill=fill, fill_value=fill_value, copies_weight=weight, **kwargs)
        self.weight = weight
        self.fraction = _checks.check_fraction(fraction, "fraction")
        explainer = _serialization.deserialize_callable(explainer)
        self.explainer = self.build_explainer(explainer, explainer_kwargs, self.get_classifier())
        self._explainer_given = (explainer, explainer_kwargs)

    def make_transformation(self, images, targets, chosen, seed=None):
        head = self.head()
        explained = None if targets is None else tf.argmax(targets, axis=-1, output_type=tf.int32)
        maps, scores = self.explainer.explain_with_scores(images, explained)
        maps = tf.stop_gradient(maps)
        original = tf.stop_gradient(head.probabilities(scores, from_logits=self.explainer.scores_are_logits))
        if targets is None:
            targets = tf.one_hot(tf.argmax(original, axis=-1), head.num_classes)
        masks = masks_lib.top_fraction_mask(-maps, self.fraction)[None]
        return {
            "targets": targets,
            "maps": maps,
            "copy_masks": masks,
            "fill_values": self.fill_values(images, masks),
            "copy_targets": original[None],
            "copy_weights": (chosen * self.copies_weight)[None],
        }

    def get_config(self):
        explainer, explainer_kwargs = _serialization.explainer_config(*self._explainer_given)
        config = super().get_config()
        config.pop("copies_weight")
        return {**config, "explainer": explainer, "explainer_kwargs": explainer_kwargs,
                "fraction": self.fraction, "weight": self.weight}
