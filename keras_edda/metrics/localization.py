"""Localisation judges: does the map point at the object? The pointing game
(Zhang et al., 2018) and the energy-based pointing game (Wang et al.,
Score-CAM, 2020). They need ground-truth object masks, no model and no fill.
"""

import tensorflow as tf

from keras_edda import _checks


class LocalizationMetric:
    """Base class of the metrics that compare maps with object masks.

    Called as `metric(maps, object_masks)`, one float32 score per image.
    Subclasses implement `score_batch(maps, object_masks)` with TensorFlow
    ops on the whole batch; it runs inside `tf.function`.

    Attributes:
        name: the metric's name, as in `keras_edda.metrics.get`.
        score_direction: `"higher"`: which scores are better.

    Args:
        data_format: layout of maps and masks; defaults to Keras' setting.

    Call arguments:
        maps: saliency maps (N, H, W, 1) (or (N, 1, H, W)).
        object_masks: ground-truth object masks of the same shape (or
            (N, H, W)), nonzero inside the object; each needs at least one
            object pixel.

    Returns:
        float32 scores (N,).
    """

    name = None
    score_direction = "higher"
    kind = "localization"
    # The masks' argument name in error messages.
    mask_name, mask_word = "object_masks", "object"

    def __init__(self, data_format=None):
        self.data_format = _checks.standardize_data_format(data_format)
        self._compiled = tf.function(self.score_batch, reduce_retracing=True)

    def __call__(self, maps, object_masks):
        maps, object_masks = self._check(maps, object_masks)
        return self._compiled(maps, object_masks)

    def _check(self, maps, object_masks):
        maps = _checks.check_images(maps, "maps")
        maps = _checks.assert_all_finite(tf.cast(maps, tf.float32), "maps")
        name = self.mask_name
        if object_masks is None:
            raise ValueError(f"`{self.name}` needs `{name}`: the data has none. Received: {name}=None")
        if not tf.is_tensor(object_masks):
            object_masks = tf.convert_to_tensor(object_masks)
        if object_masks.shape.rank == 3:
            object_masks = tf.expand_dims(object_masks, 1 if self.data_format == "channels_first" else -1)
        if object_masks.shape.rank != 4 or not object_masks.shape.is_compatible_with(maps.shape):
            raise ValueError(
                f"`{name}` must have the shape of `maps` (one channel) or (N, H, W). "
                f"Received: {name}.shape={object_masks.shape}, maps.shape={maps.shape}")
        channel = 1 if self.data_format == "channels_first" else 3
        if maps.shape[channel] not in (1, None):
            raise ValueError(f"`maps` must have one channel. Received: maps.shape={maps.shape}")
        if object_masks.dtype != tf.bool:
            if object_masks.dtype.is_floating:
                # NaN != 0 would count as an object pixel.
                object_masks = _checks.assert_all_finite(object_masks, name)
            object_masks = tf.not_equal(object_masks, tf.zeros((), object_masks.dtype))
        object_masks = tf.cast(object_masks, tf.float32)
        object_pixels = tf.reduce_sum(object_masks, axis=(1, 2, 3))
        message = f"Each of `{name}` must contain at least one {self.mask_word} pixel."
        if tf.executing_eagerly():
            empty = tf.where(object_pixels == 0)[:, 0].numpy().tolist()
            if empty:
                raise ValueError(f"{message} Received: {name} with no {self.mask_word} pixel at images {empty}")
        else:
            with tf.control_dependencies([tf.debugging.assert_positive(object_pixels, message)]):
                object_masks = tf.identity(object_masks)
        return maps, object_masks

    def score_batch(self, maps, object_masks):
        """Scores (N,) from float32 maps and 0/1 object masks. To implement."""
        raise NotImplementedError

    def get_config(self):
        return {"data_format": self.data_format}

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({settings})"


class PointingGame(LocalizationMetric):
    """Pointing game (Zhang et al., 2018): is the map's maximum on the object?

    Score = 1.0 when a pixel where the map reaches its maximum lies inside
    the object mask, else 0.0 (with ties, any maximal pixel counts, as in
    Quantus' `PointingGame`); the mean is the hit rate. Higher is better.

    Example:

    ```python
    maps = keras_edda.explainers.GradCAM(model)(images)
    hits = keras_edda.metrics.PointingGame()(maps, object_masks)   # (N,) of 1.0 / 0.0
    ```
    """

    name = "pointing_game"

    def score_batch(self, maps, object_masks):
        peak = tf.reduce_max(maps, axis=(1, 2, 3), keepdims=True)
        on_peak = tf.cast(tf.equal(maps, peak), tf.float32)
        return tf.reduce_max(on_peak * object_masks, axis=(1, 2, 3))


class EnergyPointingGame(LocalizationMetric):
    """Energy-based pointing game (Wang et al., Score-CAM, 2020).

    Maps are clipped at 0; score = the share of the map's mass that lies
    inside the object, sum(map+ * mask) / sum(map+), in [0, 1]; a map with
    no positive value scores 0. A constant map scores the object's area
    share. Higher is better.

    Example:

    ```python
    energy = keras_edda.metrics.EnergyPointingGame()(maps, object_masks)  # (N,)
    ```
    """

    name = "energy_pointing_game"

    def score_batch(self, maps, object_masks):
        positive = tf.nn.relu(maps)
        inside = tf.reduce_sum(positive * object_masks, axis=(1, 2, 3))
        return tf.math.divide_no_nan(inside, tf.reduce_sum(positive, axis=(1, 2, 3)))
