"""The base of the explanation-driven training methods: a two-phase layer.

Every method adds occluded copies of the batch's images with their own
targets and weights. Following Keras' preprocessing layers (`RandomErasing`),
the work is split in two phases:

- `get_random_transformation(data, training=True, seed=None)` makes every
  decision and draws every random number of a batch: the explanation, the
  masks of the copies, what fills them, their targets and weights. It
  returns a dict of batched tensors.
- `transform_images`, `transform_labels` and `transform_sample_weights` apply
  a transformation: the batch grows from N to N * (1 + K) rows, originals
  first, then the K copies.

The three surfaces call these same functions: the layer on dict batches
(`ds.map(layer)`), the map function (`keras_edda.data.method_map_fn`) and the
layer inside a model, which trains the copies through an added loss.
"""

import inspect
import numbers

import keras
import tensorflow as tf

from keras_edda import _checks, _serialization
from keras_edda import explainers as explainers_lib
from keras_edda.explainers import heads as heads_lib
from keras_edda.explainers import targets as targets_lib
from keras_edda.ops import fills


def check_tensorflow_backend(backend=None):
    """Raises unless Keras runs on the TensorFlow backend.

    Args:
        backend: the backend's name; `None` asks `keras.backend.backend()`.
    """
    backend = keras.backend.backend() if backend is None else backend
    if backend != "tensorflow":
        raise RuntimeError(
            "keras_edda runs on the TensorFlow backend only. Set KERAS_BACKEND=tensorflow. "
            f"Received: backend={backend!r}")


def check_weight(value, name):
    """A finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0 or value == float("inf"):
        raise ValueError(f"`{name}` must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)


def warmup_steps_of(warmup_steps, warmup_epochs, steps_per_epoch):
    """The warm-up in steps, from steps or from epochs and steps per epoch."""
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) or warmup_steps < 0:
        raise ValueError(f"`warmup_steps` must be an int >= 0. Received: warmup_steps={warmup_steps!r}")
    if warmup_epochs is None and steps_per_epoch is None:
        return int(warmup_steps)
    if warmup_steps:
        raise ValueError(
            "Set the warm-up with `warmup_steps` or with `warmup_epochs` and `steps_per_epoch`, not both. "
            f"Received: warmup_steps={warmup_steps}, warmup_epochs={warmup_epochs!r}, "
            f"steps_per_epoch={steps_per_epoch!r}")
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, numbers.Integral) or warmup_epochs < 0:
        raise ValueError(f"`warmup_epochs` must be an int >= 0. Received: warmup_epochs={warmup_epochs!r}")
    return int(warmup_epochs) * _checks.check_positive_int(steps_per_epoch, "steps_per_epoch")


def check_sample_weight(sample_weight):
    """Sample weights that are finite and >= 0, as (N,) float32.

    A NaN weight would reach every copy of its image and the loss; a negative
    one would turn the copy's loss around. Eagerly a `ValueError`; inside a
    graph (a model's step, `tf.data`) an `InvalidArgumentError` with the same
    message.
    """
    message = "`sample_weight` must be finite and >= 0."
    valid = tf.reduce_all(tf.math.is_finite(sample_weight) & (sample_weight >= 0.0))
    if tf.executing_eagerly():
        if not bool(valid):
            raise ValueError(f"{message} Received: sample_weight={sample_weight.numpy().tolist()}")
        return sample_weight
    with tf.control_dependencies([tf.debugging.Assert(valid, [message, sample_weight], summarize=8)]):
        return tf.identity(sample_weight)


class _Reference:
    """Holds the classifier without making it a tracked sublayer.

    The model that holds a method layer holds the classifier too and owns
    (and saves) its weights; the layer only points at it.
    """

    def __init__(self, model):
        self.model = model


class MethodLayer(keras.layers.Layer):
    """Base class of the training methods (EDDA, saliency-guided training, ...).

    Saving and loading: `import keras_edda` before `keras.saving.load_model`
    of a model that holds a method layer (the import registers the layers,
    explainers and fills; without it Keras cannot find the class).

    A subclass passes `copy_names` (one name per copy of an image, e.g.
    `("non_salient", "salient")`) and implements `make_transformation(images, targets, chosen)`; this class
    does the rest: input checks, the warm-up and `rate` draws, the two
    phases, the three surfaces, serialisation and per-copy statistics.

    Args:
        model: the classifier being trained (`keras.Model`). The layer reads
            its current weights; it never owns them.
        fill: what replaces the occluded pixels: a registered fill name
            (`keras_edda.ops.fills.FILLS`), a number, or a callable
            `fill(images, mask) -> images` (registered with
            `keras.saving.register_keras_serializable` to be saved).
        fill_value: the value of the `"constant"` fill, in the model's input
            space.
        rate: share of the images that get copies, in (0, 1].
        seed: seed of the `rate` draws.
        warmup_steps: calls (training steps or batches) before any copy
            counts; until then copies have weight 0.
        warmup_epochs: the warm-up in epochs instead, with
            `steps_per_epoch`.
        steps_per_epoch: batches per epoch, for `warmup_epochs`.
        copies_weight: weight of every copy's loss relative to an
            original's (1.0).
        data_format: layout of the images (`None`: Keras' setting when the
            layer is made); saved with the layer, so a model loaded under
            another global setting keeps its layout.
        **kwargs: the usual layer arguments (`name`, ...).

    Call arguments:
        inputs: a dict `{"images", "labels"[, "sample_weight"]}` (returns the
            dict with the grown batch), or an image tensor inside a model
            (returns the images unchanged and, in training, adds the copies'
            loss with `add_loss`). There the copies go through the
            classifier in a pass of their own, in training mode: batch
            normalisation normalises them with their own batch statistics
            (as AdvProp's auxiliary batch norm, Xie et al. 2020, with the
            scale and offset shared) and its moving averages are put back
            to the real images' afterwards. Measured on the digits: letting
            the copies' statistics into the moving averages (which the
            real images are normalised with at inference) left
            saliency-guided training at chance accuracy; passing the copies
            in inference mode (normalised with the real images' moving
            averages) made training collapse for EDDA too.
        training: the dict path augments unless `training=False`; inside a
            model only `training=True` augments.
    """

    # The argument that names the explainer driving the method, if any:
    # `keras-edda compare` puts its first --explainer there.
    driven_by = None
    # Whether the method trains on annotation masks riding in the batch (RRR): compare gives it the
    # decoy masks of a decoy dataset and trains its `wrap()` model.
    uses_annotations = False

    def __init__(self, model, copy_names, fill="constant", fill_value=0.0, rate=1.0, seed=None,
                 warmup_steps=0, warmup_epochs=None, steps_per_epoch=None, copies_weight=1.0,
                 data_format=None, **kwargs):
        check_tensorflow_backend()
        super().__init__(**kwargs)
        self._data_format = _checks.standardize_data_format(data_format)
        self.copy_names = tuple(copy_names)
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        model = _checks.check_model(model)
        self._classifier = _Reference(model)
        fill = _serialization.deserialize_callable(fill)
        if isinstance(fill_value, bool) or not isinstance(fill_value, numbers.Real) or \
                fill_value != fill_value or abs(fill_value) == float("inf"):
            raise ValueError(f"`fill_value` must be a finite number. Received: fill_value={fill_value!r}")
        self.fill = fill
        self.fill_value = float(fill_value)
        self.fill_fn = fills.get(fill, self.fill_value, self.data_format, seed=seed)
        self.rate = _checks.check_fraction(rate, "rate", True, False)
        self.seed = seed
        self.warmup_steps = warmup_steps_of(warmup_steps, warmup_epochs, steps_per_epoch)
        self.copies_weight = check_weight(copies_weight, "copies_weight")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.steps = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False,
                                     name="steps", aggregation="only_first_replica")
        num_copies = len(self.copy_names)
        self.copy_area_sum = self.add_weight(shape=(num_copies,), initializer="zeros", trainable=False,
                                             name="copy_area_sum", aggregation="only_first_replica")
        self.copy_weight_sum = self.add_weight(shape=(num_copies,), initializer="zeros", trainable=False,
                                               name="copy_weight_sum", aggregation="only_first_replica")
        self.images_seen = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           name="images_seen", aggregation="only_first_replica")
        # Inside a model, the training `loss` Keras logs includes the copies' loss; this mean keeps it
        # apart (`statistics()["copies_loss"]`), so that `loss - copies_loss` compares with `val_loss`.
        # It is held out of Keras' tracking: as a metric of the model it would also join `evaluate`'s
        # return values (and break `loss, accuracy = model.evaluate(...)`) and the saved weights.
        self._loss_mean = _Reference(keras.metrics.Mean(name="copies_loss"))
        self._head = None

    # The classifier and its head ---------------------------------------------

    @property
    def data_format(self):
        """The image layout (`data_format`, or Keras' setting when the layer was made)."""
        return self._data_format

    def get_classifier(self):
        """The classifier this layer trains (and explains)."""
        return self._classifier.model

    def head(self, images=None):
        """The classifier's `OutputHead` (probabilities or logits, binary or not)."""
        if self._head is None:
            self._head = heads_lib.describe(self.get_classifier(), images)
        return self._head

    def build_explainer(self, explainer, explainer_kwargs, model):
        """An explainer of `model` from a name, an instance or a function.

        An `Explainer` instance must explain `model` itself: one built for
        another model would silently explain the wrong weights.
        """
        kwargs = dict(explainer_kwargs or {})
        if isinstance(explainer, str):
            kwargs.setdefault("data_format", self.data_format)
        built = explainers_lib.get(explainer, model, **kwargs)
        if built.model is not model:
            raise ValueError(
                f"The explainer explains model '{built.model.name}', not the classifier "
                f"'{model.name}' this layer trains. Received: explainer={explainer!r}")
        return built

    @staticmethod
    def explainer_config(explainer, explainer_kwargs):
        """`(explainer, explainer_kwargs)` as they go into a config (see `_serialization.explainer_config`)."""
        return _serialization.explainer_config(explainer, explainer_kwargs)

    # Phase 1 ------------------------------------------------------------------

    def get_random_transformation(self, data, training=True, seed=None):
        """Makes the decisions of one batch: the copies, their targets and weights.

        As in Keras' preprocessing layers, this phase has no side effects
        besides the draw from the layer's `SeedGenerator` (when `seed` is
        `None`): it reads the step count (for the warm-up) but does not
        advance it, and records no statistics. The surfaces (the layer's
        `call`, `keras_edda.data.method_map_fn`) call `record` after it.

        Args:
            data: a dict with `"images"` (N, H, W, C) (or (N, C, H, W)) and
                optionally `"labels"` (int (N,) or soft (N, C)); or an image
                tensor (the model's predictions are then the labels).
            training: `False` returns `None` (no augmentation).
            seed: what the method's own draws (the `rate` draws, Cutout's
                boxes) are drawn from: an int or a (2,) int tensor (stateless:
                the same seed gives the same transformation) or a
                `keras.random.SeedGenerator`; `None` draws from the layer's
                generator (seeded by the layer's `seed`). Fills and explainers
                that draw random numbers (`"noise"`, the random maps of
                `RandomOcclusion`) draw from their own generators, seeded by
                the layer's `seed`.

        Returns:
            `None`, or a dict of batched tensors:
            `"targets"` (N, K') soft targets of the originals (K' = the
            number of classes, 2 for a binary head), `"copy_masks"`
            (K, N, H, W, 1) with 1 on the pixels a copy replaces,
            `"fill_values"` (K, N, H, W, C) what replaces them,
            `"copy_targets"` (K, N, K') and `"copy_weights"` (K, N), plus
            whatever the method adds (e.g. `"maps"`).
        """
        if training is False:
            return None
        return self._transformation(data, seed, complete=True)

    def _transformation(self, data, seed, complete):
        """Phase 1; with `complete=False`, without the decisions that need the copies' predictions."""
        images, labels = self._unpack(data)
        images = self._checked_images(images)
        head = self.head(images)
        num_images = tf.shape(images)[0]
        targets = None
        if labels is not None:
            targets = self.standardize_labels(labels, images.shape[0] or num_images, head)
        seed = self.seed_generator if seed is None else seed
        step = tf.identity(self.steps.value)
        chosen = tf.fill([num_images], tf.cast(step >= self.warmup_steps, tf.float32))
        if self.rate < 1.0:
            draws = keras.random.uniform([num_images], seed=seed)
            chosen *= tf.cast(draws < self.rate, tf.float32)
        transformation = self.draft_transformation(images, targets, chosen, seed)
        if complete and self.needs_copy_predictions:
            copy_outputs = self.get_classifier()(self.copies(images, transformation), training=False)
            transformation = self.complete_transformation(transformation, copy_outputs)
        return transformation

    # The hooks a method implements. `make_transformation` makes every decision; a method whose copies'
    # targets or weights depend on the model's predictions on the copies (EDDA's keep-if-correct and
    # "decrease") sets `needs_copy_predictions` and splits it in two: `draft_transformation` without those
    # decisions, `complete_transformation` with them, from the copies' outputs. Inside a model, those
    # outputs are the training pass's own (under stop_gradient): the copies go through the classifier once.
    needs_copy_predictions = False

    def draft_transformation(self, images, targets, chosen, seed=None):
        """The transformation before the decisions that need the copies' predictions.

        Defaults to `make_transformation` (complete already). A subclass
        written before `seed` was passed on (`make_transformation(images,
        targets, chosen)`) still works; its draws use the layer's generator.
        """
        if "seed" in inspect.signature(self.make_transformation).parameters:
            return self.make_transformation(images, targets, chosen, seed=seed)
        return self.make_transformation(images, targets, chosen)

    def complete_transformation(self, transformation, copy_outputs):
        """Adds the decisions that read the classifier's outputs (K * N, C) on the copies.

        Defaults to returning `transformation` unchanged.
        """
        del copy_outputs
        return transformation

    def record(self, transformation):
        """The side effects of one augmented batch: counts the step and the per-copy statistics.

        The surfaces call it after `get_random_transformation` (which has
        none): the warm-up counts these calls.

        Args:
            transformation: what `get_random_transformation` returned
                (`None`: nothing is recorded).
        """
        if transformation is None:
            return
        self.steps.assign_add(1)
        self._record(transformation)

    def make_transformation(self, images, targets, chosen, seed=None):
        """The method's decisions for a batch. To implement.

        Args:
            images: float32 images.
            targets: soft targets (N, K') of the labels, or `None` (inside a
                model: use the classifier's prediction).
            chosen: float (N,) 1.0 for the images that get copies (warm-up
                and `rate` applied).
            seed: what the method's own random draws use (a seed or a
                `SeedGenerator`, see `get_random_transformation`).

        Returns:
            The transformation dict (see `get_random_transformation`).
        """
        raise NotImplementedError

    # Phase 2 ------------------------------------------------------------------

    def copies(self, images, transformation):
        """The K copies (K * N, ...) of `images` under `transformation`."""
        images = tf.cast(images, tf.float32)
        masks = tf.cast(transformation["copy_masks"], tf.float32)
        filled = tf.cast(transformation["fill_values"], tf.float32)
        copies = images[None] * (1.0 - masks) + filled * masks
        return tf.reshape(copies, tf.concat([[-1], tf.shape(images)[1:]], axis=0))

    def transform_images(self, images, transformation, training=True):
        """Originals then copies: (N * (1 + K), ...) in the images' dtype."""
        if transformation is None or training is False:
            return images
        images = tf.convert_to_tensor(images)
        out = tf.concat([tf.cast(images, tf.float32), self.copies(images, transformation)], axis=0)
        return tf.cast(out, images.dtype)

    def transform_labels(self, labels, transformation, training=True):
        """Soft targets of originals then copies, in the layout of the model's loss.

        (N * (1 + K), C) float32, or (N * (1 + K), 1) for a binary head.
        """
        if transformation is None or training is False:
            return labels
        targets = transformation["targets"] if labels is None else self.standardize_labels(
            labels, tf.shape(transformation["targets"])[0], self.head())
        copy_targets = tf.reshape(transformation["copy_targets"], (-1, targets.shape[-1]))
        return self.head().labels_for_model(tf.concat([targets, copy_targets], axis=0))

    def transform_sample_weights(self, sample_weight, transformation, training=True):
        """Weights of originals then copies, (N * (1 + K),) float32.

        A copy inherits its original's weight times its own.
        """
        if transformation is None or training is False:
            return sample_weight
        copy_weights = tf.cast(transformation["copy_weights"], tf.float32)
        if sample_weight is None:
            sample_weight = tf.ones(tf.shape(copy_weights)[1:])
        sample_weight = tf.convert_to_tensor(sample_weight)
        num_images = copy_weights.shape[1]
        if sample_weight.shape.rank not in (1, 2) or sample_weight.shape.rank == 2 and sample_weight.shape[1] != 1 \
                or None not in (num_images, sample_weight.shape[0]) and sample_weight.shape[0] != num_images:
            raise ValueError(f"`sample_weight` must hold one weight per image, (N,) or (N, 1), N = {num_images}. "
                             f"Received: sample_weight.shape={sample_weight.shape}")
        sample_weight = check_sample_weight(tf.reshape(tf.cast(sample_weight, tf.float32), [-1]))
        return tf.concat([sample_weight, tf.reshape(copy_weights * sample_weight[None], [-1])], axis=0)

    def copy_loss(self, copy_outputs, transformation):
        """The copies' loss as the in-model path adds it.

        sum over copies of weight * KL(target || model output), divided by
        the number of originals N. KL and cross-entropy differ by the
        targets' entropy only, so the gradient is the one
        `CategoricalCrossentropy` gives the same copies in the dict path;
        the whole objective is that of the dict path times (1 + K).

        Args:
            copy_outputs: the classifier's outputs (K * N, C) on `copies`.
            transformation: the transformation of the batch.

        Returns:
            A float32 scalar.
        """
        head = self.head()
        targets = tf.reshape(transformation["copy_targets"], (-1, head.num_classes))
        weights = tf.reshape(tf.cast(transformation["copy_weights"], tf.float32), [-1])
        log_q = head.log_probabilities(copy_outputs)
        log_t = tf.math.log(tf.maximum(targets, 1e-12))
        kl = tf.reduce_sum(targets * (log_t - log_q), axis=-1)
        num_images = tf.cast(tf.shape(transformation["targets"])[0], tf.float32)
        return tf.reduce_sum(weights * kl) / tf.maximum(num_images, 1.0)

    # Surfaces -----------------------------------------------------------------

    def call(self, inputs, training=None):
        if isinstance(inputs, dict):
            return self._call_on_dict(inputs, training)
        if not training:
            return inputs
        images = tf.convert_to_tensor(inputs)
        transformation = self._transformation(images, None, complete=False)
        outputs = self.training_pass(tf.stop_gradient(self.copies(images, transformation)))
        if self.needs_copy_predictions:
            # The decisions read the training pass's own outputs: no second pass over the copies.
            transformation = self.complete_transformation(transformation, tf.stop_gradient(outputs))
        self.record(transformation)
        loss = self.copy_loss(outputs, transformation)
        self.added_loss.update_state(loss)
        self.add_loss(loss)
        return inputs

    def training_pass(self, images):
        """The classifier on `images` in training mode, its batch-norm moving averages left as they were.

        The pass normalises `images` with their own batch statistics; the
        moving averages stay the real images' (the model normalises real
        images with them at inference).
        """
        statistics = self._moving_statistics()
        saved = [tf.identity(variable.value) for variable in statistics]
        outputs = self.get_classifier()(images, training=True)
        for variable, value in zip(statistics, saved):
            variable.assign(value)
        return outputs

    def map_batch(self, x, y, sample_weight=None):
        """The map-function surface (`keras_edda.data.method_map_fn`): `(x', y', sample_weight')`."""
        self.check_compiled_loss()
        transformation = self.get_random_transformation({"images": x, "labels": y}, training=True)
        self.record(transformation)
        return (self.transform_images(x, transformation), self.transform_labels(y, transformation),
                self.transform_sample_weights(sample_weight, transformation))

    @property
    def added_loss(self):
        """The mean (a `keras.metrics.Mean`) of the loss this layer added inside a model since the last reset.

        The training `loss` Keras logs is the model's loss plus this one, so
        `loss - added_loss` is what compares with `val_loss`; it is in
        `statistics()` as `"copies_loss"` (`"penalty"` for
        `RightForRightReasons`). It is kept out of the model's metrics on
        purpose: as a metric it would also change what `evaluate` returns.
        """
        return self._loss_mean.model

    def _moving_statistics(self):
        """The moving mean and variance of the classifier's batch normalisation layers."""
        from keras_edda.explainers.capture import leaf_layers

        return [variable for _, layer in leaf_layers(self.get_classifier())
                if isinstance(layer, keras.layers.BatchNormalization)
                for variable in (layer.moving_mean, layer.moving_variance)]

    def check_compiled_loss(self, model=None):
        """Refuses a sparse loss where the batches carry soft labels.

        The dict surface and the map function return soft targets (N, C) (the
        copies' targets are distributions); a model compiled with
        `"sparse_categorical_crossentropy"` expects class ids (N,) and fails
        with a shape error that does not say why. This check says it, before
        training when the model is compiled first.

        Args:
            model: the model that will be trained (`None`: the classifier).

        Raises:
            ValueError: when the model is compiled with a sparse categorical
                cross-entropy.
        """
        model = self.get_classifier() if model is None else model
        loss = getattr(model, "loss", None)
        name = loss if isinstance(loss, str) else getattr(loss, "name", getattr(loss, "__name__", ""))
        if isinstance(loss, keras.losses.SparseCategoricalCrossentropy) or name in (
                "sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"):
            raise ValueError(
                f"{type(self).__name__} on dict batches and `keras_edda.data.method_map_fn` give soft labels "
                "(N, C) (the copies' targets are distributions), but the model is compiled with a sparse "
                "categorical cross-entropy, which takes class ids (N,). Compile it with "
                "`keras.losses.CategoricalCrossentropy()` (or put the layer inside the model, where the labels "
                f"stay class ids). Received: loss={loss!r}")

    def _call_on_dict(self, data, training):
        if "images" not in data or "labels" not in data:
            raise ValueError(
                f"{type(self).__name__} on a dict needs keys 'images' and 'labels'. Received: keys={sorted(data)}")
        if training is False:
            return data
        self.check_compiled_loss()
        transformation = self.get_random_transformation(data, training=True)
        self.record(transformation)
        return {
            **data,
            "images": self.transform_images(data["images"], transformation),
            "labels": self.transform_labels(data["labels"], transformation),
            "sample_weight": self.transform_sample_weights(data.get("sample_weight"), transformation),
        }

    def compute_output_shape(self, input_shape):
        return input_shape

    # Helpers ------------------------------------------------------------------

    @staticmethod
    def _unpack(data):
        if isinstance(data, dict):
            if "images" not in data:
                raise ValueError(f"The dict needs an 'images' key. Received: keys={sorted(data)}")
            return data["images"], data.get("labels")
        return data, None

    def _checked_images(self, images):
        images = tf.cast(_checks.check_images(images, "images"), tf.float32)
        return _checks.assert_all_finite(images, "images")

    @staticmethod
    def standardize_labels(labels, num_images, head):
        """Soft targets (N, K') from int labels (N,) or soft / one-hot (N, C).

        Label values and sizes are checked eagerly when known, at run time in
        graphs. A binary head takes 0/1 labels, or p(class 1) as (N, 1) or
        as floats (N,) (as Keras' binary losses take them).
        """
        if head.num_outputs == 1 and labels is not None and not isinstance(labels, (int, bool)):
            given = tf.convert_to_tensor(labels)
            if given.shape.rank == 1 and given.dtype.is_floating:
                labels = given[:, None]
        targets, checks = targets_lib.standardize_targets(labels, num_images, head.num_outputs)
        if targets is None:
            raise ValueError("`labels` are required. Received: labels=None")
        with tf.control_dependencies(checks):
            return tf.identity(head.targets_from_labels(targets))

    @staticmethod
    def copy_is_informative(masks):
        """1.0 where a copy's mask replaces some pixels but not all of them.

        A copy whose mask is empty is the unchanged image, one whose mask is
        full has nothing of it left: neither says anything about the
        explanation, so they get weight 0.
        """
        axes = tf.range(1, tf.rank(masks))
        area = tf.reduce_mean(tf.cast(masks, tf.float32), axis=axes)
        return tf.cast((area > 0.0) & (area < 1.0), tf.float32)

    def fill_values(self, images, masks):
        """What the fill puts in place of each mask's pixels (K, N, ...)."""
        return tf.stack([tf.cast(self.fill_fn(images, mask), tf.float32) for mask in tf.unstack(masks)])

    def predicted_targets(self, scores, from_logits):
        """One-hot targets (N, K') of the classes `scores` predict."""
        probabilities = self.head().probabilities(scores, from_logits=from_logits)
        return tf.one_hot(tf.argmax(probabilities, axis=-1), self.head().num_classes)

    def _record(self, transformation):
        masks = tf.cast(transformation["copy_masks"], tf.float32)
        areas = tf.reduce_mean(masks, axis=tf.range(2, tf.rank(masks)))
        weights = tf.cast(transformation["copy_weights"], tf.float32)
        self.copy_area_sum.assign_add(tf.reduce_sum(areas, axis=1))
        self.copy_weight_sum.assign_add(tf.reduce_sum(tf.cast(weights > 0, tf.float32), axis=1))
        self.images_seen.assign_add(tf.cast(tf.shape(masks)[1], tf.float32))

    def statistics(self):
        """Per copy kind since the last reset: mean area replaced, share of copies used.

        Returns:
            `{"<copy>_area": float, "<copy>_used": float}`, e.g.
            `{"salient_area": 0.21, "salient_used": 0.93, ...}`, and, after
            steps inside a model, `"copies_loss"` (the mean loss the layer
            added, see `added_loss`); empty before any batch.
        """
        seen = float(self.images_seen.numpy())
        if not seen:
            return {}
        area = self.copy_area_sum.numpy() / seen
        used = self.copy_weight_sum.numpy() / seen
        stats = {}
        if float(self.added_loss.count.numpy()):
            stats["copies_loss"] = float(self.added_loss.result().numpy())
        for index, name in enumerate(self.copy_names):
            stats[f"{name}_area"] = float(area[index])
            stats[f"{name}_used"] = float(used[index])
        return stats

    def reset_statistics(self):
        """Starts the per-copy statistics afresh (e.g. every epoch)."""
        for variable in (self.copy_area_sum, self.copy_weight_sum, self.images_seen):
            variable.assign(tf.zeros_like(variable))
        self.added_loss.reset_state()

    @classmethod
    def from_config(cls, config):
        """Rebuilds the layer when `keras.saving.load_model` loads a model; refuses otherwise.

        `keras.saving.load_model` shares the classifier between the model and
        the layer (its config carries Keras' shared-object id). Anywhere else
        the rebuilt layer would explain a classifier that is not the one the
        model trains: `Sequential.from_config(model.get_config())` gives it a
        detached copy, `keras.models.clone_model` the original while the clone
        trains a new one. Both are refused with a clear error; copy a model
        that holds a method layer with `keras_edda.methods.clone_model`.
        """
        model = config.get("model")
        if not (isinstance(model, dict) and "shared_object_id" in model):
            received = model.get("class_name") if isinstance(model, dict) else getattr(model, "name", model)
            raise ValueError(
                f"{cls.__name__}.from_config outside `keras.saving.load_model` would give the layer a classifier "
                "that is not the one the model trains (a detached copy from a plain config, or the original "
                "classifier while `keras.models.clone_model` clones it). Copy a model that holds a method layer "
                "with `keras_edda.methods.clone_model(model)`, save and load it with `model.save` / "
                f"`keras.saving.load_model`, or build the layer with `{cls.__name__}(**config)`. "
                f"Received: model={received!r}")
        return cls(**config)

    def get_config(self):
        return {
            **super().get_config(),
            "model": self.get_classifier(),
            "fill": _serialization.fill_config(self.fill),
            "fill_value": self.fill_value,
            "rate": self.rate,
            "seed": self.seed,
            "warmup_steps": self.warmup_steps,
            "copies_weight": self.copies_weight,
            "data_format": self.data_format,
        }


def check_model(model):
    """Refuses a model whose method layers train a classifier it does not hold.

    A method layer knows its classifier from its `model` argument: the
    classifier is saved in the layer's config as a shared object, so
    `keras.saving.load_model` gives the layer the very classifier the loaded
    model holds, and `keras_edda.methods.clone_model` rebuilds each layer on
    the cloned classifier; in a nested model the classifier may sit at any
    depth. Keras gives a layer no link to the model that holds it, so
    `keras.Sequential([EDDA(classifier_a), classifier_b])` (which would train
    classifier_b while the layer explains and trains classifier_a) is found
    here, from the model's side: call it on a model before `fit`
    (`keras-edda compare` and `clone_model` do).

    Args:
        model: a `keras.Model`.

    Returns:
        `model`.

    Raises:
        ValueError: naming the layer, its classifier and the model.
    """
    for layer in _method_layers(model):
        classifier = layer.get_classifier()
        if not contains_layer(model, classifier):
            raise ValueError(
                f"{type(layer).__name__} '{layer.name}' explains and trains classifier '{classifier.name}', "
                f"which is not part of model '{model.name}' that holds the layer: the model would train another "
                f"classifier. Build the model as `keras.Sequential([{type(layer).__name__}(classifier), "
                "classifier])`.")
    return model


def _method_layers(model):
    for child in getattr(model, "layers", ()):
        if isinstance(child, MethodLayer):
            yield child
        elif isinstance(child, keras.Model):
            yield from _method_layers(child)


def contains_layer(model, layer):
    """Whether `layer` is `model` or one of its layers, nested models opened."""
    if model is layer:
        return True
    return any(contains_layer(child, layer) if isinstance(child, keras.Model) else child is layer
               for child in getattr(model, "layers", ()))


def clone_model(model):
    """`keras.models.clone_model` for models that hold method layers.

    Plain `keras.models.clone_model` rebuilds each method layer on the
    original classifier while the clone gets a new classifier, so the clone's
    layer would explain a model that the clone does not train. This clone
    builds each method layer on the cloned classifier it sits in front of.
    Weights are fresh, as with `keras.models.clone_model`.

    Args:
        model: a `keras.Model`.

    Returns:
        The clone.

    Example:

    ```python
    twin = keras_edda.methods.clone_model(model)
    twin.layers[0].get_classifier() is twin.layers[1]   # True
    ```
    """
    clones = {}

    def clone_of(layer):
        if id(layer) not in clones:
            if isinstance(layer, MethodLayer):
                config = layer.get_config()
                config["model"] = clone_of(layer.get_classifier())
                clones[id(layer)] = type(layer)(**config)
            else:
                clones[id(layer)] = type(layer).from_config(layer.get_config())
        return clones[id(layer)]

    return check_model(keras.models.clone_model(model, clone_function=clone_of))
