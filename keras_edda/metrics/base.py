"""The alignment-metric interface: `metric(model, images, maps, targets)`."""

import weakref

import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers import heads as heads_lib
from keras_edda.explainers import targets as targets_lib
from keras_edda.ops.batching import map_rows
from keras_edda.ops.layout import spatial_axes


class ProbabilityReader:
    """Class probabilities of a model, in chunks, whatever its head.

    The head is read by `keras_edda.explainers.heads` (the one place that
    tells logits from probabilities): a softmax or sigmoid output is used as
    it is, logits get a softmax (several classes) or a sigmoid (one output),
    and a single-output head gives the two probabilities `[1 - p, p]`.
    """

    def __init__(self, model, images, batch_size):
        self.head = heads_lib.describe(model, images[:1])
        # Weakly: the metrics cache a reader per model, and the cache must not keep the model alive.
        self._model = weakref.ref(model)
        self.batch_size = batch_size
        self.num_outputs = self.head.num_outputs
        self.outputs_are_probabilities = self.head.outputs_probabilities
        self.num_classes = self.head.num_classes

    @property
    def model(self):
        return self._model()

    def evaluate(self, images):
        """Probabilities (N, C) of `images` in one forward call."""
        return self.head.probabilities(self.model(images, training=False))

    def __call__(self, images):
        """float32 probabilities (N, C) of `images`."""
        return map_rows(lambda chunk, _: self.evaluate(chunk), images, None,
                        [self.num_classes], self.batch_size)


def class_probability(probabilities, classes):
    """probabilities[n, classes[n]] for each row."""
    return tf.gather(probabilities, classes, axis=1, batch_dims=1)


class AlignmentMetric:
    """Base class of the alignment metrics: batched and graph-compiled.

    A metric scores how well saliency maps agree with the model they
    explain, one score per image. Subclasses implement
    `score_batch(reader, images, maps, classes)` with TensorFlow ops on the
    whole batch; this class checks the inputs, picks the explained class
    (the model's top-1 on the original image when `targets` is `None`) and
    compiles the work once per model with `tf.function` (cached without
    keeping the model alive: one metric can score many models in turn).

    Attributes:
        name: the metric's name, as in `keras_edda.metrics.get`.
        score_direction: `"higher"` or `"lower"`: which scores are better.

    Args:
        batch_size: most model evaluations in one forward call (`None`: all
            of them at once).
        data_format: layout of the images; defaults to Keras' setting.

    Call arguments:
        model: the `keras.Model` whose maps are scored.
        images: float images (N, H, W, C) (or (N, C, H, W)).
        maps: saliency maps (N, H, W, 1) (or (N, 1, H, W)), e.g. from an
            explainer.
        targets: `None` (the model's top-1 class on each image), an int, an
            int vector (N,) or one-hot / soft targets (N, C) (their argmax).

    Returns:
        float32 scores (N,).
    """

    name = None
    score_direction = None
    kind = None

    def __init__(self, batch_size=None, data_format=None):
        self.batch_size = _checks.check_positive_int(batch_size, "batch_size", allow_none=True)
        self.data_format = _checks.standardize_data_format(data_format)
        self._compiled = weakref.WeakKeyDictionary()

    def __call__(self, model, images, maps, targets=None):
        return self._run("score", model, images, maps, targets)

    def _run(self, method, model, images, maps, targets):
        model = _checks.check_model(model)
        images, maps = self._check(images, maps)
        compiled = self._compiled_for(model, images)
        reader = compiled["reader"]
        num_images = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
        if reader.num_outputs == 1 and targets is not None and not isinstance(targets, (int, bool)):
            given = tf.convert_to_tensor(targets)
            if given.shape.rank == 2 and given.shape[-1] == 1 and given.dtype.is_floating:
                # A single-output head's (N, 1) targets, a 0/1 label or the explainers' -1/+1 weight:
                # class 1 above 0.5.
                targets = tf.cast(given[:, 0] > 0.5, tf.int32)
        targets, checks = targets_lib.standardize_targets(targets, num_images, reader.num_classes)
        if targets is not None and not targets.dtype.is_integer:
            targets = tf.argmax(targets, axis=-1, output_type=tf.int32)
        if checks:
            with tf.control_dependencies(checks):
                images = tf.identity(images)
        return compiled[method](images, maps, targets)

    def _check(self, images, maps):
        images = _checks.check_images(images, "images")
        images = _checks.assert_all_finite(tf.cast(images, tf.float32), "images")
        maps = _checks.check_images(maps, "maps")
        maps = _checks.assert_all_finite(tf.cast(maps, tf.float32), "maps")
        channel = 1 if self.data_format == "channels_first" else 3
        spatial = [2, 3] if self.data_format == "channels_first" else [1, 2]
        image_shape, map_shape = images.shape, maps.shape
        if map_shape[channel] not in (1, None) or any(
            None not in (image_shape[a], map_shape[a]) and image_shape[a] != map_shape[a]
            for a in [0] + spatial
        ):
            raise ValueError(
                "`maps` must have one channel and the batch size and spatial size "
                f"of `images`. Received: maps.shape={map_shape}, images.shape={image_shape}")
        return images, maps

    def _compiled_for(self, model, images):
        """The reader and the compiled methods for `model` and the images' spatial size.

        One set of functions per image size: a function retraced for a second size would see the
        size as unknown, and the metrics' pixel counts are Python numbers of the size.
        """
        if model not in self._compiled:
            self._compiled[model] = {"reader": ProbabilityReader(model, images, self.batch_size)}
        entry = self._compiled[model]
        size = tuple(images.shape[axis] for axis in spatial_axes(self.data_format))
        if size not in entry:
            reader = entry["reader"]

            def with_classes(fn):
                def run(images, maps, classes):
                    original = reader(images)
                    if classes is None:
                        classes = tf.argmax(original, axis=-1, output_type=tf.int32)
                    return fn(reader, images, maps, classes, original)
                run.__name__ = f"{type(self).__name__}_{fn.__name__}"
                return tf.function(run, reduce_retracing=True)

            entry[size] = {name: with_classes(fn) for name, fn in self._compiled_methods().items()}
        return {"reader": entry["reader"], **entry[size]}

    def _compiled_methods(self):
        return {"score": self.score_batch}

    def score_batch(self, reader, images, maps, classes, original):
        """Scores (N,) of a batch. To implement.

        Args:
            reader: a `ProbabilityReader` of the model.
            images: float32 images.
            maps: float32 maps.
            classes: int32 explained classes (N,).
            original: probabilities (N, C) of the images.
        """
        raise NotImplementedError

    def get_config(self):
        return {"batch_size": self.batch_size, "data_format": self.data_format}

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({settings})"
