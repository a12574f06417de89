"""Judges with a ground truth the model itself defines: a planted decoy.

On a decoy dataset (`keras_edda.decoy_data`, Decoy-MNIST's recipe: a
corner patch whose shade encodes the class in training), `DecoyReliance`
measures how much the model uses the shortcut (accuracy with the
class's shade minus accuracy with a random or another class's shade), and
`DecoyAttribution` / `ObjectAttribution` measure where a map puts its mass
(the energy pointing game on the decoy and on the object mask). Read
together: for a model that relies on the decoy, a faithful explainer puts
mass on it.
"""

import tensorflow as tf

from keras_edda import _checks
from keras_edda.metrics.base import ProbabilityReader
from keras_edda.metrics.localization import EnergyPointingGame

_NO_DECOY = ("the data has no planted decoy: load 'digits-decoy', 'cifar10-decoy' or any 'NAME-decoy' "
             "(keras_edda.decoy_data)")


class DecoyAttribution(EnergyPointingGame):
    """Share of the map's mass on the decoy patch (the energy pointing game on the decoy mask).

    Maps are clipped at 0; score = sum(map+ * decoy) / sum(map+), in
    [0, 1]; a map with no positive value scores 0, a constant map the
    patch's area share, a map equal to the decoy mask 1.0. Whether high is
    good depends on the model: for a model that relies on the decoy
    (`DecoyReliance` well above 0) a faithful map puts mass there; for one
    that ignores it, little. `score_direction` is `"higher"` as a
    localisation score; read it with the reliance.

    Call arguments:
        maps: saliency maps (N, H, W, 1) (or (N, 1, H, W)).
        decoy_masks: the decoy masks of the same images (a decoy dataset's
            `decoy_masks_test`), the maps' shape or (N, H, W).

    Returns:
        float32 scores (N,).

    Example:

    ```python
    data = keras_edda.datasets.load("digits-decoy")
    maps = keras_edda.explainers.Saliency(model)(data.x_test[:64])
    on_decoy = keras_edda.metrics.DecoyAttribution()(maps, data.decoy_masks_test[:64])
    ```
    """

    name = "decoy_attribution"
    kind = "decoy"
    mask_name, mask_word = "decoy_masks", "decoy"

    def __call__(self, maps, decoy_masks):
        if decoy_masks is None:
            raise ValueError(f"`{self.name}` needs `decoy_masks`: {_NO_DECOY}. Received: decoy_masks=None")
        return super().__call__(maps, decoy_masks)


class ObjectAttribution(EnergyPointingGame):
    """Share of the map's mass on the object (the energy pointing game on the object mask).

    `EnergyPointingGame` under the name the decoy report reads next to
    `DecoyAttribution`; on a decoy dataset the object mask has the patch cut
    out, so the two shares add up to at most 1.

    Example:

    ```python
    on_object = keras_edda.metrics.ObjectAttribution()(maps, data.object_masks_test[:64])
    ```
    """

    name = "object_attribution"
    kind = "decoy"


class DecoyReliance:
    """How much a model relies on a planted decoy: accuracy with the class's shade minus without.

    Per image, score = [model right on the decoy-consistent view] - [model
    right on the other view] (1, 0 or -1); the mean is the accuracy
    difference, in [-1, 1]. About 0: the model ignores the decoy; near the
    clean accuracy: it reads the class off the patch alone. Lower is
    better (less shortcut).

    Args:
        batch_size: most images per forward call (`None`: all at once).

    Call arguments:
        model: the `keras.Model`.
        consistent_images: test images whose patch shows the true class's
            shade (a decoy dataset's `x_test_consistent`).
        other_images: the same images with another shade: the random-shade
            test split (`x_test`, for `"decoy_reliance"`) or the swapped view
            (`x_test_swapped`, for `"decoy_reliance_swapped"`).
        labels: int class labels (N,).

    Returns:
        float32 scores (N,).

    Raises:
        ValueError: for views of different shapes, labels that are not one
            int per image, or a view that is `None` (data without a decoy).

    Example:

    ```python
    data = keras_edda.datasets.load("digits-decoy")
    reliance = keras_edda.metrics.DecoyReliance()(model, data.x_test_consistent, data.x_test, data.y_test)
    float(tf.reduce_mean(reliance))  # accuracy difference
    ```
    """

    name = "decoy_reliance"
    kind = "decoy_model"
    score_direction = "lower"
    # The view `other_images` is in `keras-edda compare` and the docs.
    view = "random"

    def __init__(self, batch_size=None):
        self.batch_size = _checks.check_positive_int(batch_size, "batch_size", allow_none=True)

    def __call__(self, model, consistent_images, other_images, labels):
        model = _checks.check_model(model)
        for name, value in (("consistent_images", consistent_images), ("other_images", other_images)):
            if value is None:
                raise ValueError(f"`{self.name}` needs `{name}`: {_NO_DECOY}. Received: {name}=None")
        consistent = _checks.assert_all_finite(
            tf.cast(_checks.check_images(consistent_images, "consistent_images"), tf.float32), "consistent_images")
        other = _checks.assert_all_finite(
            tf.cast(_checks.check_images(other_images, "other_images"), tf.float32), "other_images")
        if consistent.shape != other.shape:
            raise ValueError("`consistent_images` and `other_images` must be two views of the same images (one "
                             f"shape). Received: consistent_images.shape={consistent.shape}, "
                             f"other_images.shape={other.shape}")
        labels = _checks.check_class_ids(labels, consistent, "consistent_images", per="image")
        reader = ProbabilityReader(model, consistent, self.batch_size)
        labels = tf.cast(labels, tf.int32)
        if tf.executing_eagerly() and bool(tf.reduce_any((labels < 0) | (labels >= reader.num_classes))):
            raise ValueError(f"`labels` must be class ids in [0, {reader.num_classes}). "
                             f"Received: labels={labels.numpy().tolist()}")
        return self._score(reader, consistent, other, labels)

    @staticmethod
    def _score(reader, consistent, other, labels):
        def right(images):
            return tf.cast(tf.equal(tf.argmax(reader(images), axis=-1, output_type=tf.int32), labels), tf.float32)

        return right(consistent) - right(other)

    def get_config(self):
        return {"batch_size": self.batch_size}

    def __repr__(self):
        return f"{type(self).__name__}(batch_size={self.batch_size!r})"


class DecoyRelianceSwapped(DecoyReliance):
    """`DecoyReliance` against the swapped view: every patch shows another class's shade.

    The stronger test: with the shade of a wrong class (never the right
    one, unlike the random view), a model that reads the patch is misled
    on every image, so the difference is larger.
    """

    name = "decoy_reliance_swapped"
    view = "swapped"
