"""ExCon: explanation-driven supervised contrastive learning (Zhang, Jang,
Trabelsi, Li, Sanner, Jeong, Shim; arXiv 2111.14271), as a Keras model.

`ExCon` is a `keras.Model` with its own `train_step`: `fit`, callbacks,
`tf.distribute` and `.keras` save/load work as for any model, and calling it
(or `predict`, `evaluate`, an explainer, a metric) runs the linear classifier
on the encoder's features. `build` makes the three methods that are compared
(`"ce"`, `"supcon"`, `"excon"`) from one encoder.
"""

import math
import numbers

import keras
import tensorflow as tf

from keras_edda import _checks, _serialization
from keras_edda import explainers as explainers_lib
from keras_edda.losses import _check_temperature, supcon_loss
from keras_edda.methods.base import check_sample_weight
from keras_edda.ops import fills
from keras_edda.ops.layout import from_channels_last, to_channels_last
from keras_edda.ops.masks import threshold_mask

CLASSIFIER_TRAINING = ("joint", "alternating")


def _check_range(value, name, low=0.0, high=None, open_low=False):
    try:
        first, second = (float(v) for v in value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be a pair of floats. Received: {name}={value!r}") from error
    too_low = first <= low if open_low else first < low
    if too_low or first > second or (high is not None and second > high):
        raise ValueError(
            f"`{name}` must be a pair (low, high) with {low} {'<' if open_low else '<='} low <= high"
            f"{f' <= {high}' if high is not None else ''}. Received: {name}={value!r}")
    return first, second


def _interpolation_matrices(start, size, length):
    """Bilinear resampling matrices (N, length, length) of a crop of one axis.

    Output pixel i reads the source at `(start + (i + 0.5) / length * size) *
    length - 0.5` (pixel centres, `start` and `size` as fractions of the
    axis); the weight of source pixel j is the tent `max(0, 1 - |src - j|)`.
    """
    centres = (tf.range(length, dtype=tf.float32) + 0.5) / length
    source = (start[:, None] + centres[None, :] * size[:, None]) * length - 0.5
    source = tf.clip_by_value(source, 0.0, length - 1.0)
    pixels = tf.range(length, dtype=tf.float32)
    return tf.nn.relu(1.0 - tf.abs(source[:, :, None] - pixels[None, None, :]))


@keras.saving.register_keras_serializable(package="keras_edda")
class RandomResizedCrop(keras.layers.Layer):
    """Crops a random region of each image and resizes it back, in-graph.

    As torchvision's `RandomResizedCrop`: per image an area fraction in
    `scale` and an aspect ratio (log-uniform) in `ratio`; the crop's sides
    are clipped to the image (torchvision retries instead) and its position
    is uniform. The resampling is bilinear, written as two matrix products,
    so it also compiles with XLA (where `tf.image.crop_and_resize` and
    Keras' affine-transform layers do not). Only active with `training=True`.

    Args:
        scale: range of the crop's area as a fraction of the image.
        ratio: range of the crop's width / height.
        seed: seed of the layer's random generator.
        data_format: layout of the images; defaults to Keras' setting.
        **kwargs: usual layer arguments.

    Example:

    ```python
    crops = RandomResizedCrop(scale=(0.2, 1.0))(images, training=True)
    ```
    """

    def __init__(self, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.scale = _check_range(scale, "scale", 0.0, 1.0, open_low=True)
        self.ratio = _check_range(ratio, "ratio", 0.0, open_low=True)
        self.seed = seed
        self.data_format = _checks.standardize_data_format(data_format)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        x = to_channels_last(images, self.data_format)
        dtype = x.dtype
        x = tf.cast(x, tf.float32)
        num_images = tf.shape(x)[0]
        height, width = x.shape[1], x.shape[2]
        area = keras.random.uniform([num_images], *self.scale, seed=self.seed_generator)
        log_ratio = keras.random.uniform(
            [num_images], math.log(self.ratio[0]), math.log(self.ratio[1]), seed=self.seed_generator)
        ratio = tf.exp(log_ratio)
        crop_width = tf.minimum(tf.sqrt(area * ratio), 1.0)
        crop_height = tf.minimum(tf.sqrt(area / ratio), 1.0)
        left = keras.random.uniform([num_images], seed=self.seed_generator) * (1.0 - crop_width)
        top = keras.random.uniform([num_images], seed=self.seed_generator) * (1.0 - crop_height)
        rows = _interpolation_matrices(top, crop_height, height)
        columns = _interpolation_matrices(left, crop_width, width)
        crops = tf.einsum("nih,nhwc,njw->nijc", rows, x, columns)
        return from_channels_last(tf.cast(crops, dtype), self.data_format)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "ratio": self.ratio, "seed": self.seed,
                "data_format": self.data_format}


def _check_probability(value, name):
    return _checks.check_fraction(value, name, low_open=False, high_open=False)


@keras.saving.register_keras_serializable(package="keras_edda")
class ExCon(keras.Model):
    """Explanation-driven supervised contrastive learning (ExCon).

    Encoder + projection head (MLP d -> d -> `projection_dim`, L2-normalised
    in the loss) + linear classifier (softmax). Each training step, all in
    the compiled graph:

    1. two random views of the batch (random resized crop, horizontal flip,
       colour jitter with probability `jitter_probability`, grayscale with
       probability `grayscale_probability`);
    2. after the warm-up, the explanation-masked view: the explainer's map of
       the classifier∘encoder for the true label on the plain image, min-max
       normalised; pixels with map <= `threshold` are set to `fill` (the
       salient region is kept). Where the model still predicts the label on
       it, it replaces the first random view; elsewhere the random view stays
       and, with `negative_pair`, the masked image joins the batch as a
       background sample, a negative only (see `keras_edda.losses`);
    3. the SupCon loss on encoder + head, and the compiled loss
       (cross-entropy) of the classifier on the stopped-gradient features of
       the two views: in the same step (`classifier_training="joint"`, our
       choice) or, as the authors do, alternating epoch by epoch
       (`"alternating"`: even epochs train the encoder, odd epochs the
       classifier; both losses are still computed, the other one with weight
       0, so an optimizer with momentum keeps moving the resting part).

    With `explanations=False` it is plain SupCon (Khosla et al., 2020) with
    the same encoder, head and classifier. Cost of a step after the warm-up:
    one explanation of the batch (Grad-CAM: one forward and backward pass),
    one forward pass of the masked images (the check), and the SupCon
    forward and backward on 2N views, plus N background candidates with
    `negative_pair` (kept at a static shape; those not used are left out of
    the loss).

    Compile it with the classifier's loss:
    `model.compile(optimizer, loss="sparse_categorical_crossentropy",
    metrics=["accuracy"])`. Labels are int class ids (N,).

    Args:
        encoder: a `keras.Model` from images to features (N, d), with a
            known output size d.
        num_classes: number of classes of the classifier.
        projection_dim: output size of the projection head (128).
        explanations: `False` gives plain SupCon.
        explainer: explainer of the family by name (`"grad_cam"`, default;
            a class registered with `keras_edda.explainers.register` too),
            or a function `fn(images, targets) -> maps` (registered with
            `keras.saving.register_keras_serializable` to be saved); see
            `keras_edda.explainers.get`. Saved as the method layers save
            theirs.
        explainer_kwargs: settings of the explainer.
        threshold: tau in (0, 1); pixels with normalised map <= tau are filled.
        fill: what replaces them: a number (0.0, the authors'), a fill name
            (a registered one too) or a callable (`keras_edda.ops.fills.get`;
            registered with `keras.saving.register_keras_serializable` to be
            saved).
        negative_pair: masked images the model misclassifies become
            background negatives (the authors' option, here on by default).
        warmup_epochs: epochs of plain SupCon before the explanations (needs
            `steps_per_epoch`); or give `warmup_steps`.
        warmup_steps: the warm-up in training steps.
        steps_per_epoch: steps of one epoch, for `warmup_epochs` and
            `classifier_training="alternating"`.
        classifier_training: `"joint"` or `"alternating"` (see above).
        temperature, base_temperature: of the SupCon loss (0.1, 0.07).
        crop_scale: area range of the random resized crop ((0.2, 1.0)).
        flip: random horizontal flip.
        jitter: colour jitter strengths (brightness, contrast, saturation,
            hue), (0.4, 0.4, 0.4, 0.1); on one-channel images only the first
            two are used; `None`: no jitter.
        jitter_probability: probability of the jitter per image (0.8).
        grayscale_probability: probability of grayscale per image (0.2;
            nothing to do on one channel).
        value_range: range of the pixel values, for the jitter ((0, 1)).
        seed: seed of the random views.
        classifier_optimizer: the optimizer of the linear classifier, apart
            from the model's: `None` (default) is SGD with learning rate
            0.5 and momentum 0.9 (the authors' learning rate; their
            classifier trains in phases of its own), or a
            `keras.optimizers.Optimizer`, or a name or config for
            `keras.optimizers.get`; `"shared"` trains it with the model's
            optimizer. A linear layer on fixed features needs far larger
            steps than the encoder: with Adam at 3e-3 for a few hundred
            steps its logits stay small, and it is under-confident and
            inaccurate although the features separate the classes (see
            docs/excon.md).
        **kwargs: usual `keras.Model` arguments (`name`).

    Example:

    ```python
    encoder = keras_edda.excon.small_encoder((32, 32, 1))
    model = keras_edda.excon.ExCon(encoder, num_classes=10, warmup_steps=100)
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=10)
    model.evaluate(x_test, y_test)
    ```
    """

    def __init__(self, encoder, num_classes, projection_dim=128, explanations=True, explainer="grad_cam",
                 explainer_kwargs=None, threshold=0.5, fill=0.0, negative_pair=True, warmup_epochs=0,
                 warmup_steps=0, steps_per_epoch=None, classifier_training="joint", temperature=0.1,
                 base_temperature=0.07, crop_scale=(0.2, 1.0), flip=True, jitter=(0.4, 0.4, 0.4, 0.1),
                 jitter_probability=0.8, grayscale_probability=0.2, value_range=(0.0, 1.0), seed=None,
                 classifier_optimizer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        self.encoder = _checks.check_model(encoder, "encoder")
        try:
            feature_dim = int(encoder.output_shape[-1])
        except (AttributeError, ValueError, TypeError) as error:
            raise ValueError(
                "`encoder` must be a built model with a known output size (N, d). "
                f"Received: encoder '{encoder.name}'") from error
        if len(encoder.output_shape) != 2:
            raise ValueError(
                "`encoder` must output features (N, d); add a pooling layer. "
                f"Received: encoder.output_shape={encoder.output_shape}")
        self.num_classes = _checks.check_positive_int(num_classes, "num_classes")
        self.projection_dim = _checks.check_positive_int(projection_dim, "projection_dim")
        if not isinstance(explanations, bool) or not isinstance(negative_pair, bool):
            raise TypeError(
                "`explanations` and `negative_pair` must be bools. "
                f"Received: explanations={explanations!r}, negative_pair={negative_pair!r}")
        self.explanations = explanations
        self.negative_pair = negative_pair
        explainer = _serialization.deserialize_callable(explainer)
        if isinstance(explainer, explainers_lib.Explainer) and not isinstance(
                explainer, explainers_lib.FunctionExplainer):
            raise ValueError(
                "ExCon explains itself (the classifier on the encoder), which does not exist before it is "
                "built: pass the explainer's registered name (with `explainer_kwargs`) or a function "
                f"`fn(images, targets) -> maps`, not an instance. Received: explainer={explainer!r}")
        self.explainer_name = explainers_lib.name_of(explainer)
        self._explainer_given = explainer
        self.explainer_kwargs = dict(explainer_kwargs or {})
        # The config is written when the model is made, so that an explainer or fill that cannot be saved
        # is refused now rather than at `model.save`.
        _serialization.explainer_config(explainer, self.explainer_kwargs)
        self.threshold = _checks.check_fraction(threshold, "threshold")
        fill = _serialization.deserialize_callable(fill)
        self.fill = fill
        self._fill_fn = fills.get(fill)
        self.steps_per_epoch = _checks.check_positive_int(steps_per_epoch, "steps_per_epoch", allow_none=True)
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, numbers.Integral) or warmup_epochs < 0:
            raise ValueError(f"`warmup_epochs` must be an int >= 0. Received: warmup_epochs={warmup_epochs!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) or warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be an int >= 0. Received: warmup_steps={warmup_steps!r}")
        if warmup_epochs and self.steps_per_epoch is None:
            raise ValueError(
                "`warmup_epochs` needs `steps_per_epoch`. "
                f"Received: warmup_epochs={warmup_epochs!r}, steps_per_epoch=None")
        self.warmup_epochs, self.warmup_steps = int(warmup_epochs), int(warmup_steps)
        self.classifier_training = _checks.check_choice(
            classifier_training, "classifier_training", CLASSIFIER_TRAINING)
        if classifier_training == "alternating" and self.steps_per_epoch is None:
            raise ValueError(
                "`classifier_training='alternating'` needs `steps_per_epoch`. Received: steps_per_epoch=None")
        self.temperature = _check_temperature(temperature, "temperature")
        self.base_temperature = _check_temperature(base_temperature, "base_temperature")
        self.crop_scale = _check_range(crop_scale, "crop_scale", 0.0, 1.0, open_low=True)
        if not isinstance(flip, bool):
            raise TypeError(f"`flip` must be a bool. Received: flip={flip!r}")
        self.flip = flip
        if jitter is not None:
            jitter = tuple(float(v) for v in jitter)
            if len(jitter) != 4 or min(jitter) < 0:
                raise ValueError(
                    "`jitter` must be four strengths >= 0 (brightness, contrast, saturation, hue) or "
                    f"None. Received: jitter={jitter!r}")
        self.jitter = jitter
        self.jitter_probability = _check_probability(jitter_probability, "jitter_probability")
        self.grayscale_probability = _check_probability(grayscale_probability, "grayscale_probability")
        self.value_range = _check_range(value_range, "value_range", -math.inf)
        self.seed = seed

        self.head = keras.Sequential(
            [keras.layers.Dense(feature_dim, activation="relu"), keras.layers.Dense(self.projection_dim)],
            name="projection_head")
        self.classifier = keras.layers.Dense(self.num_classes, activation="softmax", name="classifier")
        self._build_augmentation(encoder.input_shape)
        self.steps = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False,
                                     name="steps", aggregation="only_first_replica")
        self.classifier_optimizer = self._check_classifier_optimizer(classifier_optimizer)
        # The training loss (contrast + classifier) under Keras' name "loss"; `metrics` lists it in place
        # of the compiled model's own tracker, which `train_step` does not update.
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.supcon_tracker = keras.metrics.Mean(name="supcon_loss")
        self.kept_tracker = keras.metrics.Mean(name="masked_kept")
        self._explainer = None
        self.build(encoder.input_shape)
        if self.classifier_optimizer is not None:
            self.classifier_optimizer.build(self.classifier.trainable_variables)
        if self.explanations:
            self.explainer.inspect(tf.zeros((1,) + tuple(encoder.input_shape[1:])))

    @staticmethod
    def _check_classifier_optimizer(value):
        if value is None:
            return keras.optimizers.SGD(learning_rate=0.5, momentum=0.9)
        if isinstance(value, str) and value == "shared":
            return None
        if isinstance(value, keras.optimizers.Optimizer):
            return value
        if isinstance(value, (str, dict)):
            try:
                return keras.optimizers.get(value)
            except (ValueError, TypeError) as error:
                raise ValueError(
                    "`classifier_optimizer` must be None, 'shared', a Keras optimizer, or its name or "
                    f"config. Received: classifier_optimizer={value!r}") from error
        raise TypeError(
            "`classifier_optimizer` must be None, 'shared', a Keras optimizer, or its name or config. "
            f"Received: classifier_optimizer={value!r}")

    def _build_augmentation(self, input_shape):
        data_format = keras.config.image_data_format()
        channels = input_shape[1] if data_format == "channels_first" else input_shape[-1]
        seed = self.seed

        def layer_seed(offset):
            return None if seed is None else seed + offset

        self.crop = RandomResizedCrop(self.crop_scale, seed=layer_seed(0), name="random_resized_crop")
        self.flipper = keras.layers.RandomFlip("horizontal", seed=layer_seed(1)) if self.flip else None
        self.jitterer, self.grayscaler = None, None
        if self.jitter is not None:
            brightness, contrast, saturation, hue = self.jitter
            colour = channels == 3
            self.jitterer = keras.layers.RandomColorJitter(
                value_range=self.value_range, brightness_factor=brightness or None,
                contrast_factor=contrast or None, saturation_factor=(saturation or None) if colour else None,
                hue_factor=(hue or None) if colour else None, seed=layer_seed(2))
        if channels == 3 and self.grayscale_probability > 0:
            self.grayscaler = keras.layers.RandomGrayscale(self.grayscale_probability, seed=layer_seed(3))
        self.view_seed = keras.random.SeedGenerator(layer_seed(4))

    def build(self, input_shape):
        features = self.encoder.compute_output_shape(input_shape)
        self.head.build(features)
        self.classifier.build(features)
        self.built = True

    def call(self, inputs, training=False):
        return self.classifier(self.encoder(inputs, training=training), training=training)

    def random_view(self, images):
        """One random view of each image (the training augmentation)."""
        views = self.crop(images, training=True)
        if self.flipper is not None:
            views = self.flipper(views, training=True)
        if self.jitterer is not None:
            jittered = self.jitterer(views, training=True)
            chosen = keras.random.uniform([tf.shape(views)[0], 1, 1, 1], seed=self.view_seed)
            views = tf.where(chosen < self.jitter_probability, tf.cast(jittered, views.dtype), views)
        if self.grayscaler is not None:
            views = self.grayscaler(views, training=True)
        return views

    @property
    def explainer(self):
        """The explainer of this model (classifier∘encoder), made on first use."""
        if self._explainer is None:
            self._explainer = explainers_lib.get(self._explainer_given, self, **self.explainer_kwargs)
        return self._explainer

    def masked_views(self, images, labels):
        """The explanation-masked images and whether the model keeps the label.

        Args:
            images: float images (N, H, W, C) (the plain view).
            labels: int class ids (N,).

        Returns:
            `(masked, kept)`: the images with the pixels whose min-max
            normalised map is <= `threshold` set to `fill`, and a bool (N,),
            True where the model predicts the label on the masked image.
        """
        labels = tf.cast(labels, tf.int32)
        maps = tf.stop_gradient(self.explainer(tf.cast(images, tf.float32), labels))
        salient = threshold_mask(maps, self.threshold)
        masked = fills.fill_masked(images, 1.0 - salient, self._fill_fn)
        predicted = tf.argmax(self(masked, training=False), axis=-1, output_type=tf.int32)
        return masked, tf.equal(predicted, labels)

    def contrastive_views(self, images, labels, active=True):
        """The views of one step: view A, view B, background candidates.

        Args:
            images: the plain images (N, H, W, C).
            labels: int class ids (N,).
            active: bool scalar (tensor): the explanations are used (after
                the warm-up). Without explanations it is ignored.

        Returns:
            `(view_a, view_b, masked, kept, background)`: view A is the
            masked image where `kept`, else a random view; `background`
            (bool (N,)) marks the masked images that join as negatives.
            Without explanations `masked` is `None` and the masks are False.
        """
        view_a, view_b = self.random_view(images), self.random_view(images)
        none = tf.zeros(tf.shape(images)[:1], tf.bool)
        if not self.explanations:
            return view_a, view_b, None, none, none

        def explain():
            return self.masked_views(images, labels)

        masked, kept = tf.cond(tf.convert_to_tensor(active), explain, lambda: (images, none))
        view_a = tf.where(kept[:, None, None, None], masked, view_a)
        background = tf.logical_and(tf.logical_not(kept), active) if self.negative_pair else none
        return view_a, view_b, masked, kept, background

    def _warmup_total(self):
        return self.warmup_steps + self.warmup_epochs * (self.steps_per_epoch or 0)

    def _loss_weights(self, step):
        if self.classifier_training == "joint":
            return 1.0, 1.0
        encoder_epoch = tf.cast(tf.equal((step // self.steps_per_epoch) % 2, 0), tf.float32)
        return encoder_epoch, 1.0 - encoder_epoch

    @property
    def metrics(self):
        """The trackers of this model (`loss`, `supcon_loss`, `masked_kept`), then the compiled metrics."""
        own = [self.loss_tracker, self.supcon_tracker, self.kept_tracker]
        return own + [metric for metric in super().metrics
                      if all(metric is not m for m in own) and metric.name != "loss"]

    def test_step(self, data):
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        predictions = self(images, training=False)
        loss = self.compute_loss(x=images, y=labels, y_pred=predictions, sample_weight=sample_weight,
                                 training=False)
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(predictions)[0])
        return self.compute_metrics(images, labels, predictions, sample_weight=sample_weight)

    def train_step(self, data):
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        # NaN images would train the whole model to NaN: refused (an InvalidArgumentError in the step).
        images = _checks.assert_all_finite(images, "images")
        if sample_weight is not None:
            sample_weight = check_sample_weight(tf.reshape(tf.cast(sample_weight, tf.float32), [-1]))
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        # `Variable.value` is the variable itself: read it before the increment.
        step = tf.identity(self.steps.value)
        self.steps.assign(step + 1)
        active = step >= self._warmup_total()
        view_a, view_b, masked, kept, background = self.contrastive_views(images, labels, active)
        num_images = tf.shape(labels)[0]
        batch = [view_a, view_b]
        with_background = self.explanations and self.negative_pair
        if with_background:
            batch.append(masked)
        contrast_weight, classifier_weight = self._loss_weights(step)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape(persistent=self.classifier_optimizer is not None) as tape:
            features = self.encoder(tf.concat(batch, axis=0), training=True)
            projections = tf.cast(self.head(features, training=True), tf.float32)
            parts = tf.split(projections, len(batch), axis=0)
            pairs = tf.stack(parts[:2], axis=1)
            contrast_labels, is_background, valid = labels, None, None
            if with_background:
                pairs = tf.concat([pairs, tf.stack([parts[2], parts[2]], axis=1)], axis=0)
                contrast_labels = tf.concat([labels, labels], axis=0)
                is_background = tf.concat([tf.zeros_like(background), tf.ones_like(background)], axis=0)
                valid = tf.concat([tf.ones_like(background), background], axis=0)
            contrast = supcon_loss(contrast_labels, pairs, self.temperature, self.base_temperature,
                                   is_background, valid)
            view_features = tf.stop_gradient(features[: 2 * num_images])
            predictions = self.classifier(view_features, training=True)
            two_labels = tf.concat([labels, labels], axis=0)
            weights = None if sample_weight is None else tf.concat([sample_weight, sample_weight], axis=0)
            classifier_loss = self.compute_loss(
                x=None, y=two_labels, y_pred=predictions, sample_weight=weights, training=True)
            loss = contrast_weight * contrast / tf.cast(replicas, contrast.dtype) + classifier_weight * tf.cast(
                classifier_loss, contrast.dtype)
            scaled = self.optimizer.scale_loss(loss)
            if self.classifier_optimizer is not None:
                classifier_scaled = self.classifier_optimizer.scale_loss(
                    classifier_weight * tf.cast(classifier_loss, tf.float32))
        if self.classifier_optimizer is None:
            self._apply(self.optimizer, tape.gradient(scaled, self.trainable_variables), self.trainable_variables)
        else:
            classifier_variables = self.classifier.trainable_variables
            others = [v for v in self.trainable_variables if all(v is not c for c in classifier_variables)]
            # The classifier reads stopped-gradient features: `scaled` reaches the others only.
            self._apply(self.optimizer, tape.gradient(scaled, others), others)
            self._apply(self.classifier_optimizer, tape.gradient(classifier_scaled, classifier_variables),
                        classifier_variables)
        self.supcon_tracker.update_state(contrast)
        if self.explanations:
            self.kept_tracker.update_state(tf.reduce_mean(tf.cast(kept, tf.float32)),
                                           sample_weight=tf.cast(active, tf.float32))
        self.loss_tracker.update_state(loss * tf.cast(replicas, loss.dtype), sample_weight=num_images)
        return self.compute_metrics(None, two_labels, predictions, sample_weight=weights)

    @staticmethod
    def _apply(optimizer, gradients, variables):
        optimizer.apply_gradients(
            [(gradient, variable) for gradient, variable in zip(gradients, variables) if gradient is not None])

    def get_config(self):
        return {
            **super().get_config(),
            "classifier_optimizer": ("shared" if self.classifier_optimizer is None
                                     else keras.optimizers.serialize(self.classifier_optimizer)),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "projection_dim": self.projection_dim,
            "explanations": self.explanations,
            **dict(zip(("explainer", "explainer_kwargs"),
                       _serialization.explainer_config(self._explainer_given, self.explainer_kwargs))),
            "threshold": self.threshold,
            "fill": _serialization.fill_config(self.fill),
            "negative_pair": self.negative_pair,
            "warmup_epochs": self.warmup_epochs,
            "warmup_steps": self.warmup_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "classifier_training": self.classifier_training,
            "temperature": self.temperature,
            "base_temperature": self.base_temperature,
            "crop_scale": self.crop_scale,
            "flip": self.flip,
            "jitter": self.jitter,
            "jitter_probability": self.jitter_probability,
            "grayscale_probability": self.grayscale_probability,
            "value_range": self.value_range,
            "seed": self.seed,
        }


def small_encoder(input_shape, width=16, name="encoder"):
    """The encoder of `keras_edda.models.small_cnn`: its layers up to the pooling.

    Args:
        input_shape: shape of one image.
        width: filters of the first block.
        name: the encoder's name.

    Returns:
        A Functional `keras.Model` from images to features (N, 2 * width).
    """
    from keras_edda.models import small_cnn

    network = small_cnn(input_shape, 2, width=width)
    return keras.Model(network.inputs, network.layers[-2].output, name=name)


METHODS = ("ce", "supcon", "excon")


def build(method, encoder_builder, input_shape, num_classes, optimizer=None, jit_compile="auto", **settings):
    """A compiled model of one of the compared methods, from one encoder.

    Args:
        method: `"ce"` (the encoder and a softmax layer trained with
            cross-entropy on the images as they are, the `none` run of
            `keras-edda compare`), `"supcon"` (`ExCon` with
            `explanations=False`) or `"excon"`.
        encoder_builder: `fn(input_shape) -> keras.Model` from images to
            features (N, d), e.g. `small_encoder`.
        input_shape: shape of one image.
        num_classes: number of classes.
        optimizer: a Keras optimizer (a new `Adam(1e-3)` by default).
        jit_compile: passed to `compile`.
        **settings: `ExCon` settings (ignored by `"ce"`).

    Returns:
        A compiled `keras.Model` whose output is class probabilities; fit it
        with int labels.

    Example:

    ```python
    model = keras_edda.excon.build("excon", keras_edda.excon.small_encoder, (32, 32, 1), 10,
                                   warmup_epochs=2, steps_per_epoch=40)
    model.fit(x_train, y_train, batch_size=32, epochs=10)
    ```
    """
    _checks.check_choice(method, "method", METHODS)
    encoder = encoder_builder(tuple(input_shape))
    if method == "ce":
        model = keras.Sequential(
            [keras.Input(tuple(input_shape)), encoder,
             keras.layers.Dense(num_classes, activation="softmax", name="classifier")],
            name="ce")
    else:
        model = ExCon(encoder, num_classes, explanations=method == "excon", name=method, **settings)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)
    return model
