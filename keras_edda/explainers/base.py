"""The explainer interface every part of keras_edda relies on."""

import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers import capture as capture_lib
from keras_edda.explainers import heads as heads_lib
from keras_edda.explainers import targets as targets_lib
from keras_edda.explainers.inspection import ModelInspection
from keras_edda.ops.batching import map_rows
from keras_edda.ops.layout import from_channels_last, spatial_axes


class Explainer:
    """Base class of the explainers: model first, batched, graph-compiled.

    A subclass implements `explain_batch(images, targets)` with TensorFlow ops
    on the whole batch; this class checks the inputs, turns `targets` into a
    standard form, compiles the work once with `tf.function` and returns maps
    in the layout of the images.

    Args:
        model: the `keras.Model` to explain (Sequential, Functional,
            subclassed, or with nested models).
        batch_size: most model evaluations in one forward call; `None` puts
            all of a call's work through the model at once.
        use_logits: explain the pre-activation logit when the model ends in
            softmax or sigmoid (default). The user's layers are not changed:
            the logit is read as it enters the activation. `False` explains
            the model's output as it is (probabilities).
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.

    Call arguments:
        images: float images (N, H, W, C), or (N, C, H, W) for channels_first.
        targets: `None` (the model's prediction), an int, an int vector (N,),
            or one-hot / soft targets (N, C).

    Returns:
        float32 maps (N, H, W, 1), or (N, 1, H, W) for channels_first, at the
        input resolution, not normalised.

    Raises:
        ValueError: for images that do not fit the sizes the model's input
            fixes, for an empty batch (N = 0): there are no empty maps, and
            for images holding NaN or Inf (inside a graph: an
            `InvalidArgumentError` with the same message), which would
            otherwise give finite but meaningless maps. The check is one
            `reduce_all(is_finite)` per call, here for every explainer.

    Every image size gets compiled functions of its own, so a model of
    dynamic input size can be explained at several sizes with one explainer
    (a function retraced for a second size would see the size as unknown).
    """

    # Whether the maps carry a sign (evidence for and against the class: Integrated Gradients, LIME,
    # Occlusion's score drops); draw them with `keras_edda.ops.overlay.overlay(..., signed=True)`.
    signed_maps = False

    def __init__(self, model, batch_size=None, use_logits=True, data_format=None):
        self.model = _checks.check_model(model)
        self.batch_size = _checks.check_positive_int(
            batch_size, "batch_size", allow_none=True
        )
        if not isinstance(use_logits, bool):
            raise TypeError(
                f"`use_logits` must be a bool. Received: use_logits={use_logits!r}"
            )
        self.use_logits = use_logits
        self.data_format = _checks.standardize_data_format(data_format)
        self._inspection = None
        self.head = None
        self._logits_tap = None
        # (method name, image size) -> its tf.function; see `_compiled_for`.
        self._functions = {}
        if self._known_input_shape() is not None:
            self.inspect(tf.zeros(self._known_input_shape()))

    def _known_input_shape(self):
        shape = _checks.model_image_shape(self.model)
        return (1,) + shape if shape is not None and None not in shape else None

    def inspect(self, images):
        """Looks at one model call once and keeps what it learnt.

        Called at construction when the model's input shape is known, else
        on the first call with the first image of the batch.
        """
        if self._inspection is None:
            inspection = ModelInspection(self.model, images)
            self.head = heads_lib.describe_inspection(self.model, inspection)
            self._logits_tap = self.head.logits_tap() if self.use_logits else None
            self._inspection = inspection
            self._on_inspected(inspection)
        return self._inspection

    def _on_inspected(self, inspection):
        """Hook for subclasses that need to know the model's layers."""

    @property
    def scores_are_logits(self):
        """Whether `scores` (and `explain_with_scores`) return logits.

        True when the model outputs logits, or when it ends in softmax/sigmoid
        and `use_logits` reads the logits entering it.
        """
        return not self.head.outputs_probabilities or self._logits_tap is not None

    @property
    def scores_come_free(self):
        """Whether `explain_with_scores` reads the scores from the explanation's own forward pass.

        True for explainers that override `explain_batch_with_scores` (Grad-CAM, Saliency); the
        others run one more forward pass for the scores.
        """
        return type(self).explain_batch_with_scores is not Explainer.explain_batch_with_scores

    @property
    def num_classes(self):
        return self._inspection.num_classes if self._inspection else None

    def __call__(self, images, targets=None):
        """Maps of `images` for `targets` (see the class docstring)."""
        images, targets = self._standardize(images, targets)
        return self._compiled_for(self._explain, images)(images, targets)

    explain = __call__

    def explain_with_scores(self, images, targets=None):
        """Maps and the scores (N, C) of the model on the images.

        The scores are the ones `targets=None` explains (logits when
        `use_logits`); Grad-CAM and Saliency read them from the forward pass
        they run anyway, the other explainers add one forward pass. Used by
        EDDA to know the prediction without evaluating the model again.

        Returns:
            `(maps, scores)`: maps as from `__call__`, float32 scores (N, C).
        """
        images, targets = self._standardize(images, targets)
        return self._compiled_for(self._explain_with_scores, images)(images, targets)

    def _standardize(self, images, targets):
        images = _checks.check_images(images, "images")
        _checks.check_image_shape(images, self.model, "images")
        if images.dtype != tf.float32:
            images = tf.cast(images, tf.float32)
        # NaN or Inf pixels give finite, meaningless maps (Grad-CAM, Occlusion, LIME ...) or all-zero ones
        # (SmoothGrad, DANCE): refused once here for every explainer.
        images = _checks.assert_all_finite(images, "images")
        self.inspect(images)
        num_images = images.shape[0]
        if num_images is None:
            num_images = tf.shape(images)[0]
        targets, checks = targets_lib.standardize_targets(
            targets, num_images, self._inspection.num_classes
        )
        if checks:
            with tf.control_dependencies(checks):
                images = tf.identity(images)
        return images, targets

    def _compiled_for(self, method, images):
        """The compiled `method` for the spatial size of `images` (made on first use).

        One function per image size, as the metrics do
        (`keras_edda.metrics.base.Metric._compiled_for`): a function retraced
        for a second size would see the size as unknown (`None`), and the
        explainers size masks, grids, noise and segments from it. Each
        function is traced once per input signature (None / int ids /
        weights targets, batch size relaxed).
        """
        size = tuple(images.shape[axis] for axis in spatial_axes(self.data_format))
        key = (method.__name__, size)
        if key not in self._functions:
            self._functions[key] = self._compile(method)
        return self._functions[key]

    def tracing_count(self):
        """How many times the explainer's compiled functions were traced, all sizes together."""
        return sum(function.experimental_get_tracing_count() for function in self._functions.values())

    def _compile(self, method):
        def explain(*args):
            return method(*args)

        explain.__name__ = f"{type(self).__name__}{method.__name__}"
        return tf.function(explain, reduce_retracing=True)

    def _explain(self, images, targets):
        maps = self.explain_batch(images, targets)
        return from_channels_last(tf.cast(maps, tf.float32), self.data_format)

    def _explain_with_scores(self, images, targets):
        maps, scores = self.explain_batch_with_scores(images, targets)
        return from_channels_last(tf.cast(maps, tf.float32), self.data_format), scores

    def explain_batch(self, images, targets):
        """Returns channels_last float32 maps (N, H, W, 1). To implement."""
        raise NotImplementedError

    def explain_batch_with_scores(self, images, targets):
        """Maps and scores (N, C); override when the scores come for free."""
        return self.explain_batch(images, targets), self.predict_scores(images)

    # Helpers for subclasses -------------------------------------------------

    @property
    def binary_threshold(self):
        """Decision threshold of a single-output head: 0.5 on probabilities."""
        return 0.5 if self.head.outputs_probabilities and self._logits_tap is None else 0.0

    def scores(self, images, taps=()):
        """Runs the model and returns float32 scores (N, C) and a capture.

        The scores are the logits when `use_logits` and the model ends in
        softmax/sigmoid, the model's output otherwise.
        """
        taps = list(taps)
        if self._logits_tap is not None:
            taps.append(self._logits_tap)
        with capture_lib.Capture(taps) as capture:
            outputs = self.model(images, training=False)
        if self._logits_tap is not None:
            outputs = capture[self._logits_tap]
        return tf.cast(outputs, tf.float32), capture

    def map_images(self, fn, images, targets, output_shape):
        """`keras_edda.ops.batching.map_rows` in chunks of `batch_size` images.

        Used by Grad-CAM, Saliency and `predict_scores`.
        """
        return map_rows(fn, images, targets, output_shape, self.batch_size)

    def predict_scores(self, images):
        """Scores (N, C) of whole batches, in chunks of `batch_size`."""
        return self.map_images(
            lambda chunk, _: self.scores(chunk)[0], images, None,
            [self._inspection.num_classes])

    @staticmethod
    def _static_count(images, factor=1):
        """N * factor as a Python int when N is static, else a tensor."""
        if images.shape[0] is not None:
            return images.shape[0] * factor
        return tf.shape(images)[0] * factor

    def target_weights(self, targets, scores=None):
        """Weights (N, C) of the explained score; `scores` needed for None."""
        return targets_lib.target_weights(
            targets, scores, self._inspection.num_classes, self.binary_threshold
        )

    def get_config(self):
        """The explainer's settings (no model): `from_config(config, model)` rebuilds it."""
        return {
            "batch_size": self.batch_size,
            "use_logits": self.use_logits,
            "data_format": self.data_format,
        }

    @classmethod
    def from_config(cls, config, model):
        """Rebuilds an explainer from `get_config()` for `model` (a config holds no model).

        Example:

        ```python
        twin = type(explainer).from_config(explainer.get_config(), other_model)
        ```
        """
        return cls(model, **config)

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}(model={self.model.name!r}, {settings})"
