"""The EDDA augmentation as a Keras layer."""

import keras
import tensorflow as tf

from keras_edda import explainers as explainers_lib
from keras_edda.augment import (
    SETTING_NAMES,
    EDDASettings,
    edda_transform,
    occluded_copies,
    salient_masks,
    salient_targets,
)


@keras.saving.register_keras_serializable(package="keras_edda")
class EDDA(keras.layers.Layer):
    """Explanation-driven data augmentation (Li, Zhang et al., 2021).

    Two ways to use it:

    1. On dict batches `{"images": x, "labels": y}` (the convention of
       `keras.layers.CutMix` and `MixUp`), e.g. `ds.batch(64).map(layer)`:
       returns the dict with the batch grown by EDDA's occluded copies,
       soft `"labels"` and a `"sample_weight"` (see
       `keras_edda.augment.edda_transform`).
    2. Inside a model, in front of the classifier it explains:
       `keras.Sequential([EDDA(classifier), classifier])`. During training,
       with no labels at hand, it explains the classifier's prediction with
       the current weights, replaces a `rate` share of the batch in place by
       non-salient-occluded copies (kept only if the prediction does not
       change, with `keep_if_correct`), and adds a loss, weighted by
       `salient_weight`, that pushes the classifier's output on the
       salient-occluded copies toward `salient_target`. At inference it is
       the identity. This runs in `fit`'s compiled train function, on the GPU
       when there is one. Cost per step: one explanation of the batch (which also
       gives the prediction), one forward pass of the non-salient copies
       (with `keep_if_correct`) and one forward+backward of the salient
       copies.

    The layer saves with the model (`.keras`): its config holds the
    classifier, shared with the model by Keras' object sharing, so after
    loading it explains the very classifier it sits in front of. To ship the
    classifier alone, save `classifier` (or `model.layers[-1]`) by itself.

    Args:
        model: the classifier to explain (`keras.Model`).
        explainer: explainer name (default `"grad_cam"`).
        explainer_kwargs: settings of the explainer.
        salient_weight: weight of the added salient-occlusion loss (model use).
        **settings: EDDA settings (`threshold`, `fraction`, `fill`,
            `fill_value`, `salient_target`, `keep_if_correct`,
            `explain_target`, `rate`, `seed`, `warmup_steps`, `area_from`),
            see `keras_edda.augment.EDDASettings`; and the usual layer
            arguments (`name`, ...). `warmup_steps` counts training calls.

    Call arguments:
        inputs: a dict with `"images"` and `"labels"` (and optionally
            `"sample_weight"`), or an image tensor.
        training: inside a model, only `True` augments.

    Example:

    ```python
    classifier = keras_edda.models.small_cnn((32, 32, 1), 10)
    model = keras.Sequential([keras_edda.layers.EDDA(classifier, rate=0.5), classifier])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5)
    ```
    """

    def __init__(self, model, explainer="grad_cam", explainer_kwargs=None,
                 salient_weight=1.0, **kwargs):
        settings = {k: kwargs.pop(k) for k in list(kwargs) if k in SETTING_NAMES}
        super().__init__(**kwargs)
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if isinstance(explainer, explainers_lib.Explainer):
            explainer_kwargs = explainer.get_config()
            explainer = explainers_lib.name_of(explainer)
        self.settings = EDDASettings(**settings)
        self.explainer_name = explainer
        self.explainer_kwargs = dict(explainer_kwargs or {})
        self.salient_weight = float(salient_weight)
        # The classifier is reached through the explainer only, not as an
        # attribute: the model that holds this layer holds the classifier too
        # and owns (and saves) its weights.
        self.explainer = explainers_lib.get(explainer, model, **self.explainer_kwargs)
        self.area_explainer = None
        if self.settings.area_from is not None:
            self.area_explainer = explainers_lib.get(self.settings.area_from, model)
        self.seed_generator = keras.random.SeedGenerator(self.settings.seed)
        self.steps = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                     trainable=False, name="steps")

    def get_classifier(self):
        """The classifier this layer explains."""
        return self.explainer.model

    def _next_step(self):
        step = self.steps.value
        self.steps.assign(step + 1)
        return step >= self.settings.warmup_steps

    def _selection(self, images):
        if self.settings.rate >= 1.0:
            return None
        return keras.random.uniform(tf.shape(images)[:1], seed=self.seed_generator)

    def call(self, inputs, training=None):
        if isinstance(inputs, dict):
            if training is False:
                return inputs
            return self._augment_dict(inputs)
        if not training:
            return inputs
        return self._augment_in_model(inputs)

    def _augment_dict(self, data):
        if "images" not in data or "labels" not in data:
            raise ValueError(
                "EDDA on a dict needs keys 'images' and 'labels'. "
                f"Received: keys={sorted(data)}")
        images, targets, weights = edda_transform(
            data["images"], data["labels"], self.get_classifier(), self.explainer,
            self.settings, sample_weight=data.get("sample_weight"),
            active=self._next_step(), selection=self._selection(data["images"]),
            area_explainer=self.area_explainer)
        return {**data, "images": images, "labels": targets, "sample_weight": weights}

    def _augment_in_model(self, images):
        images = tf.convert_to_tensor(images)
        dtype = images.dtype
        images32 = tf.cast(images, tf.float32)
        active = tf.cast(self._next_step(), tf.float32)
        maps, scores = self.explainer.explain_with_scores(images32, None)
        maps = tf.stop_gradient(maps)
        predicted = tf.argmax(scores, axis=-1, output_type=tf.int32)
        area_maps = None
        if self.area_explainer is not None:
            area_maps = tf.stop_gradient(self.area_explainer(images32, None))
        masks = salient_masks(maps, self.settings, area_maps)
        kept, hidden = occluded_copies(
            images32, masks, self.settings.fill_fn(self.explainer.data_format))
        num_images = tf.shape(images32)[0]
        chosen = tf.ones([num_images]) * active
        selection = self._selection(images32)
        if selection is not None:
            chosen *= tf.cast(selection < self.settings.rate, tf.float32)
        replace = chosen
        if self.settings.keep_if_correct:
            predicted_kept = tf.argmax(
                self.get_classifier()(kept, training=False), axis=-1, output_type=tf.int32)
            replace *= tf.cast(tf.equal(predicted, predicted_kept), tf.float32)
        replace = tf.reshape(replace, [-1] + [1] * (images32.shape.rank - 1))
        outputs = tf.stop_gradient(replace * kept + (1.0 - replace) * images32)
        if self.settings.salient_target != "none" and self.salient_weight > 0:
            one_hot = tf.one_hot(predicted, self.explainer.num_classes)
            target = salient_targets(one_hot, self.settings)
            hidden_outputs = tf.cast(
                self.get_classifier()(tf.stop_gradient(hidden), training=True), tf.float32)
            from_logits = self.explainer._logits_tap is None
            loss = keras.losses.categorical_crossentropy(
                target, hidden_outputs, from_logits=from_logits)
            loss = tf.reduce_sum(loss * chosen) / tf.maximum(
                tf.cast(num_images, tf.float32), 1.0)
            self.add_loss(self.salient_weight * loss)
        return tf.cast(outputs, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "model": self.get_classifier(),
            "explainer": self.explainer_name,
            "explainer_kwargs": self.explainer_kwargs,
            "salient_weight": self.salient_weight,
            **self.settings.get_config(),
        }
