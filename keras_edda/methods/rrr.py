"""Right for the Right Reasons (Ross, Hughes & Doshi-Velez, IJCAI 2017)."""

import keras
import tensorflow as tf

from keras_edda import _checks
from keras_edda.methods.base import MethodLayer, check_weight
from keras_edda.methods.registry import register
from keras_edda.ops.layout import to_channels_last


@register("rrr")
@keras.saving.register_keras_serializable(package="keras_edda")
class RightForRightReasons(MethodLayer):
    """Right for the Right Reasons: no input gradient where an annotation says "irrelevant".

    Each training step adds `weight` times the input-gradient penalty of
    Ross et al. (2017), eq. 1:

        weight * (1 / N) * sum_n sum_d (A_nd * d/dx_nd sum_k log p_k(x_n))^2

    where `A` is the annotation mask (1 on the pixels the model must not
    use) and p the model's class probabilities (the sum runs over all
    classes, as in the paper, so no label is needed). The 1/N makes it a
    batch mean, as Keras' losses are (the paper sums over the batch in every
    term). Training through it differentiates twice (double backprop).

    It makes no copies: the masks ride in the batch and the layer sits in the
    model, which takes a dict `{"images", "masks"}`:

    - in a model: `layer.wrap()` returns a `RightForRightReasonsModel`
      `{"images", "masks"} -> outputs` whose training pass gives both the
      loss's outputs and the penalty's input gradient (one forward). Or, in a
      functional model of one's own, `classifier(RightForRightReasons(
      classifier)({"images": images, "masks": masks}))`: the layer returns
      the images and adds the penalty from a pass of its own. Feed either
      `model.fit({"images": x, "masks": m}, y)` or a `tf.data` dataset of
      `({"images": x, "masks": m}, y)`; labels stay class ids.
    - on dict batches `{"images", "labels", "masks"}` in `tf.data`, the layer
      checks the masks and returns the dict.
    - the map function (`keras_edda.data.method_map_fn(layer)`) takes
      `(x, y, masks)` or `(x, y, masks, w)` batches and returns
      `({"images": x, "masks": masks}, y[, w])`, the model's input.

    Masks are (N, H, W, 1), (N, H, W) or the images' own shape (N, H, W, C)
    (channels first: (N, 1, H, W) or (N, C, H, W)), finite, usually 0/1.
    Inside `tf.data` or a compiled step a bad mask is an
    `InvalidArgumentError`; eagerly a `ValueError`.

    Cost per step, for a batch of N, over a plain step: the backward to the
    input and the backward through it (the `wrap()` model); in front of the
    classifier, also one more forward pass of the batch (in training mode,
    batch-norm moving averages left as they were).

    Args:
        model: the classifier.
        weight: lambda, the weight of the penalty (1.0); the paper sets it so
            that the penalty and the cross-entropy are of one order.
        warmup_steps, warmup_epochs, steps_per_epoch: steps before the
            penalty counts (see `MethodLayer`).
        data_format: layout of the images and masks.
        **kwargs: the usual layer arguments.

    Example:

    ```python
    rrr = keras_edda.methods.RightForRightReasons(classifier, weight=10.0)
    model = rrr.wrap()          # inputs {"images", "masks"}, outputs the classifier's
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit({"images": x, "masks": masks}, y, epochs=5)
    ```
    """

    uses_annotations = True

    def __init__(self, model, weight=1.0, warmup_steps=0, warmup_epochs=None, steps_per_epoch=None,
                 data_format=None, **kwargs):
        for name in ("fill", "fill_value", "rate", "copies_weight", "seed"):
            if kwargs.get(name) is not None:
                raise ValueError(f"RightForRightReasons makes no copies and draws nothing; it takes no "
                                 f"`{name}`. Received: {name}={kwargs[name]!r}")
            kwargs.pop(name, None)
        super().__init__(model, (), warmup_steps=warmup_steps, warmup_epochs=warmup_epochs,
                         steps_per_epoch=steps_per_epoch, data_format=data_format, **kwargs)
        self.weight = check_weight(weight, "weight")

    # Checks ---------------------------------------------------------------------------------------------

    def check_masks(self, images, masks):
        """Masks as float32 (N, H, W, 1 or C) channels-last, checked against `images` (channels-last).

        Raises:
            ValueError: a shape that is not the images' (with one channel or
                theirs), or NaN / Inf values (eagerly; in a graph an
                `InvalidArgumentError` with the same message).
        """
        masks = tf.cast(tf.convert_to_tensor(masks), tf.float32)
        if masks.shape.rank == 3:
            masks = masks[..., None] if self.data_format == "channels_last" else masks[:, None]
        if masks.shape.rank == 4:
            masks = to_channels_last(masks, self.data_format)
        shape, expected = masks.shape, images.shape
        if shape.rank != 4 or any(
                a is not None and b is not None and a != b for a, b in zip(shape[:3], expected[:3])) or \
                shape[3] not in (1, expected[3], None):
            raise ValueError(
                "`masks` must be one annotation per image, (N, H, W), (N, H, W, 1) or the images' shape, "
                f"in the layer's layout ({self.data_format}). Received: masks.shape="
                f"{tf.convert_to_tensor(masks).shape} for images of shape {tuple(expected)} (channels last)")
        if not tf.executing_eagerly():
            checks = [tf.debugging.assert_equal(tf.shape(masks)[:3], tf.shape(images)[:3],
                                                message="`masks` must have the images' batch and spatial size.")]
            with tf.control_dependencies(checks):
                masks = tf.identity(masks)
        return _checks.assert_all_finite(masks, "masks")

    def check_compiled_loss(self, model=None):
        """Nothing to check: the labels stay class ids (the model's own loss takes them)."""

    # The penalty ----------------------------------------------------------------------------------------

    def penalty_and_outputs(self, images, masks, classifier_pass=None):
        """`(penalty, outputs)`: the penalty and the classifier's outputs of the pass it differentiates.

        `weight * mean_n sum_d (mask * d/dx sum_k log p_k)^2` (float32
        scalar, before the warm-up's factor), differentiable (double
        backprop). `classifier_pass(images) -> outputs` runs the classifier
        (default: `training_pass`, a pass of its own that leaves the
        batch-norm moving averages as they were); the model `wrap` builds
        passes the model's own training pass, so the penalty and the loss
        share one forward.
        """
        images = _checks.check_images(images, "images")
        images = _checks.assert_all_finite(tf.cast(images, tf.float32), "images")
        masks = self.check_masks(to_channels_last(images, self.data_format), masks)
        classifier_pass = classifier_pass or self.training_pass
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = classifier_pass(images)
            log_probabilities = tf.reduce_sum(self.head(images).log_probabilities(outputs))
        gradients = to_channels_last(tape.gradient(log_probabilities, images), self.data_format)
        per_image = tf.reduce_sum(tf.square(masks * gradients), axis=[1, 2, 3])
        return self.weight * tf.reduce_mean(per_image), outputs

    def penalty(self, images, masks):
        """`weight * mean_n sum_d (mask * input gradient)^2` (float32 scalar), before the warm-up's factor."""
        return self.penalty_and_outputs(images, masks)[0]

    def active_penalty(self, images, masks, classifier_pass=None):
        """The penalty times 1.0 after the warm-up, 0.0 before; counts the step and the mean `added_loss`."""
        step = tf.identity(self.steps.value)
        penalty, outputs = self.penalty_and_outputs(images, masks, classifier_pass)
        penalty = tf.cast(step >= self.warmup_steps, tf.float32) * penalty
        self.steps.assign_add(1)
        self.added_loss.update_state(penalty)
        return penalty, outputs

    # Surfaces -------------------------------------------------------------------------------------------

    def get_random_transformation(self, data, training=True, seed=None):
        """The checked masks of a batch (`{"masks": (N, H, W, 1 or C)}` channels last), or `None`."""
        del seed
        if training is False:
            return None
        images, masks = self._images_and_masks(data)
        images = to_channels_last(tf.cast(_checks.check_images(images, "images"), tf.float32), self.data_format)
        return {"masks": self.check_masks(images, masks)}

    @staticmethod
    def _images_and_masks(data):
        if not isinstance(data, dict) or "images" not in data or "masks" not in data:
            received = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(
                "RightForRightReasons takes a dict with 'images' and 'masks' (the annotation of the pixels the "
                f"model must not use). Received: {received}")
        return data["images"], data["masks"]

    def call(self, inputs, training=None):
        images, masks = self._images_and_masks(inputs)
        if "labels" in inputs:   # a dict batch in tf.data: checked, passed on as it is
            if training is not False:
                self.get_random_transformation(inputs)
            return inputs
        if not training:
            return images
        self.add_loss(self.active_penalty(images, masks)[0])
        return images

    def map_batch(self, x, y, masks, sample_weight=None):
        """`(x, y, masks[, w])` -> `({"images": x, "masks": masks}, y[, w])`, the masks checked."""
        self.get_random_transformation({"images": x, "masks": masks})
        inputs = {"images": x, "masks": masks}
        return (inputs, y) if sample_weight is None else (inputs, y, sample_weight)

    def compute_output_shape(self, input_shape):
        return input_shape["images"] if isinstance(input_shape, dict) else input_shape

    def compute_output_spec(self, inputs, training=None):
        if isinstance(inputs, dict) and "labels" not in inputs:
            return keras.KerasTensor(inputs["images"].shape, dtype=inputs["images"].dtype)
        return inputs

    def wrap(self, name=None):
        """A model `{"images", "masks"} -> classifier outputs` that trains the classifier with the penalty.

        The penalty differentiates the model's own training pass (one
        forward for the loss and the penalty; the layer in front of a
        classifier needs a pass of its own). Its masks input has one channel
        ((N, H, W, 1), or (N, 1, H, W)); at inference the masks are unused.

        Returns:
            A `RightForRightReasonsModel` (saved and loaded as any model).
        """
        return RightForRightReasonsModel(self.get_classifier(), weight=self.weight, warmup_steps=self.warmup_steps,
                                         data_format=self.data_format, method=self, name=name)

    def statistics(self):
        """`{"penalty": the mean penalty added since the last reset}` (empty before any training step)."""
        if not float(self.added_loss.count.numpy()):
            return {}
        return {"penalty": float(self.added_loss.result().numpy())}

    def reset_statistics(self):
        self.added_loss.reset_state()

    def get_config(self):
        config = super().get_config()
        for name in ("fill", "fill_value", "rate", "seed", "copies_weight"):
            config.pop(name)
        return {**config, "weight": self.weight}


@keras.saving.register_keras_serializable(package="keras_edda")
class RightForRightReasonsModel(keras.Model):
    """A classifier trained with Right for the Right Reasons, on `{"images", "masks"}` inputs.

    What `RightForRightReasons.wrap()` returns. In training, the classifier's
    pass on the images is differentiated to the input for the penalty and
    gives the outputs the compiled loss reads: one forward for both. At
    inference it is the classifier (the masks are unused).

    Args:
        classifier: the classifier (`keras.Model`).
        weight, warmup_steps, data_format: see `RightForRightReasons`.
        method: the `RightForRightReasons` layer of `classifier` to use
            (`wrap()` passes itself; its settings win); `None` makes one.
        **kwargs: the usual model arguments (`name`).

    Example:

    ```python
    model = keras_edda.methods.RightForRightReasons(classifier, weight=10.0).wrap()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit({"images": x, "masks": masks}, y)
    ```
    """

    def __init__(self, classifier, weight=1.0, warmup_steps=0, data_format=None, method=None, **kwargs):
        if kwargs.get("name") is None:
            kwargs.pop("name", None)
        super().__init__(**kwargs)
        if isinstance(classifier, dict):
            classifier = keras.saving.deserialize_keras_object(classifier)
        self.classifier = _checks.check_model(classifier, "classifier")
        if method is None:
            method = RightForRightReasons(classifier, weight=weight, warmup_steps=warmup_steps,
                                          data_format=data_format, name="rrr")
        elif not isinstance(method, RightForRightReasons) or method.get_classifier() is not classifier:
            raise ValueError("`method` must be a RightForRightReasons layer of `classifier`. "
                             f"Received: method={method!r}")
        # The layer whose settings, step count and `statistics()` the model uses (`wrap()` passes itself).
        self.method = method

    def build(self, input_shape):
        # The classifier is built; the method layer's state (its step count) is made with it.
        self.method.built = True
        self.built = True

    def call(self, inputs, training=None):
        images, masks = self.method._images_and_masks(inputs)
        if not training:
            return self.classifier(images, training=False)
        penalty, outputs = self.method.active_penalty(
            images, masks, lambda x: self.classifier(x, training=True))
        self.add_loss(penalty)
        return outputs

    def get_config(self):
        return {**super().get_config(), "classifier": keras.saving.serialize_keras_object(self.classifier),
                "weight": self.method.weight, "warmup_steps": self.method.warmup_steps,
                "data_format": self.method.data_format}
