"""Meaningful perturbation (Fong & Vedaldi, ICCV 2017), batched in-graph."""

import numbers
import warnings

import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.explainers.targets import explained_score
from keras_edda.ops import fills
from keras_edda.ops.layout import from_channels_last, spatial_size

MASK_FREE_FILLS = ("constant", "mean", "blur")
# The default mask has at least this many cells a side (or the image's side, if smaller): image side / 8 gave
# a 2x2 mask at 16 px and a 4x4 one at 32 px, and constant maps.
MIN_MASK_SIDE = 8
# The default area weight: deleting the whole image costs this much probability whatever the mask's resolution
# (0.01 per cell of an 8x8 mask). A fixed 1e-4 per cell made deleting everything nearly free on small masks.
AREA_COST = 0.64


def total_variation(masks, beta=3.0):
    """TV_beta of masks (N, h, w, 1): sum of |neighbour differences|^beta, per mask."""
    rows = tf.abs(masks[:, 1:, :, :] - masks[:, :-1, :, :]) ** beta
    cols = tf.abs(masks[:, :, 1:, :] - masks[:, :, :-1, :]) ** beta
    return tf.reduce_sum(rows, axis=(1, 2, 3)) + tf.reduce_sum(cols, axis=(1, 2, 3))


@register("meaningful_perturbation")
class MeaningfulPerturbation(Explainer):
    """Meaningful perturbation: the smallest deletion that kills the class.

    A low-resolution mask m per image (1 = keep) is optimised for the whole
    batch at once, in the graph, with Adam (`learning_rate`, `steps`
    iterations; m starts at 1 and is clamped to [0, 1] after each step) on

        l1 * sum|1 - m| + tv * TV_beta(m) + p(class | x * M + fill(x) * (1 - M))

    where M is m upsampled bilinearly to the image. The map is 1 - M: where
    deleting matters. The blur fill is Fong & Vedaldi's; with
    `fill=Inpainter(...)` this is MP-G (Agarwal & Nguyen). p is the class
    probability: the softmax (sigmoid for one output) of the scores when the
    model's output is not already a probability. Cost: `steps` forward and
    backward passes per image. `"blur"`, `"mean"`, `"constant"` and numbers
    are applied once. A fill that reads the mask (an inpainter, `"inpaint"`,
    a callable) is applied at every step to the binarised hole 1 - M > 0.5
    (an inpainter was trained on binary holes), with no gradient through it;
    outside that hole a deleted pixel takes the fill's content with its own
    cell of a checkerboard (a quarter of the side) hidden, computed once, so
    that the optimisation has a gradient before anything is deleted. The mask jitter of the
    original is left out.

    Args:
        model: the `keras.Model` to explain.
        steps: Adam iterations (300).
        mask_size: int or (rows, cols) of the optimised mask; default: the
            image side / 8 (28 for 224 px, Agarwal & Nguyen), at least
            `MIN_MASK_SIDE` = 8 (or the image side when smaller): 8 x 8 at
            16 to 64 px.
        learning_rate: Adam's step (0.1).
        l1: weight of the deleted area, per mask cell (the term is the sum
            over cells); `None` (default): `AREA_COST / cells` = 0.64 / cells,
            so deleting the whole image costs 0.64 of probability at every
            mask resolution (0.01 per cell of an 8x8 mask, 8.2e-4 of a
            28x28 one). The former fixed 1e-4 made deletion nearly free on
            small masks: the map was 1 everywhere at 16 px.
        tv: weight of the total variation (1e-2).
        beta: exponent of the total variation (3).
        fill: what a deleted pixel becomes: a fill name, number or callable
            `fill(images, mask)`; default `"blur"`.
        batch_size: most images optimised together (each step runs the
            model on that many images).
        use_logits: read the pre-softmax logit and apply softmax to it
            (default); the objective is a probability either way.
        data_format: layout of the images.

    Example:

    ```python
    maps = MeaningfulPerturbation(model, steps=300, batch_size=64)(images)
    ```

    A mask that never moves (all-zero maps: the class probability is
    saturated, so it has no gradient, or the fill deletes nothing) gets a
    warning when the explainer is called eagerly.
    """

    def __init__(self, model, steps=300, mask_size=None, learning_rate=0.1, l1=None, tv=1e-2,
                 beta=3.0, fill="blur", batch_size=64, use_logits=True, data_format=None):
        self.steps = _checks.check_positive_int(steps, "steps")
        if mask_size is None:
            self.mask_size = None
        elif isinstance(mask_size, (tuple, list)) and len(mask_size) == 2:
            self.mask_size = tuple(_checks.check_positive_int(v, "mask_size") for v in mask_size)
        else:
            self.mask_size = (_checks.check_positive_int(mask_size, "mask_size"),) * 2
        for name, value, low in (("learning_rate", learning_rate, 0), ("l1", 0.0 if l1 is None else l1, None),
                                 ("tv", tv, None), ("beta", beta, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    value > 0 if low is not None else value >= 0) or value == float("inf"):
                kind = "positive" if low is not None else "non-negative"
                shown = l1 if name == "l1" else value
                raise ValueError(f"`{name}` must be a finite {kind} number. Received: {name}={shown!r}")
        self.learning_rate, self.tv, self.beta = map(float, (learning_rate, tv, beta))
        self.l1 = None if l1 is None else float(l1)
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=data_format)
        # These fills ignore the mask: computed once per image instead of once per step.
        self._fill_once = (isinstance(fill, numbers.Real) and not isinstance(fill, bool)) or fill in MASK_FREE_FILLS
        super().__init__(model, batch_size, use_logits, data_format)

    def _mask_shape(self, height, width):
        if self.mask_size is None:
            return tuple(max(round(side / 8), min(side, MIN_MASK_SIDE)) for side in (height, width))
        if self.mask_size[0] > height or self.mask_size[1] > width:
            raise ValueError(
                "`mask_size` must not be larger than the image. Received: "
                f"mask_size={self.mask_size} for images of size {(height, width)}")
        return self.mask_size

    def _probabilities(self, scores):
        if not self.scores_are_logits:  # heads' answer: the model's own probabilities
            return scores
        if scores.shape[-1] == 1:
            return tf.sigmoid(scores)
        return tf.nn.softmax(scores, axis=-1)

    def _class_probability(self, weights, scores):
        if scores.shape[-1] == 1:
            # weights are +1 / -1: p(class 1) or p(class 0) = 1 - p(class 1).
            probability = self._probabilities(scores)[:, 0]
            return tf.where(weights[:, 0] > 0, probability, 1.0 - probability)
        return explained_score(weights, self._probabilities(scores))

    def __call__(self, images, targets=None):
        maps = super().__call__(images, targets)
        self._warn_if_unmoved(maps)
        return maps

    explain = __call__

    def explain_with_scores(self, images, targets=None):
        maps, scores = super().explain_with_scores(images, targets)
        self._warn_if_unmoved(maps)
        return maps, scores

    def _warn_if_unmoved(self, maps):
        """Warns (eagerly) when some images' masks never moved: their maps are all 0."""
        if not tf.executing_eagerly():
            return
        unmoved = int(tf.reduce_sum(tf.cast(tf.reduce_all(tf.equal(maps, 0.0), axis=(1, 2, 3)), tf.int32)))
        if unmoved:
            warnings.warn(
                f"MeaningfulPerturbation: the mask never moved for {unmoved} of {maps.shape[0]} images (their "
                "maps are all 0). Either the explained class probability is saturated (p = 1 in float32: no "
                "gradient) or deleting under this fill changes nothing (e.g. a blur of a large, smooth "
                "object). Explain another target, use a fill that removes more (0.0), or a less confident "
                "model.", stacklevel=2)

    def _area_weight(self, mask_shape):
        if self.l1 is not None:
            return self.l1
        return AREA_COST / float(mask_shape[0] * mask_shape[1])

    def explain_batch(self, images, targets):
        height, width = spatial_size(images, self.data_format)
        mask_shape = self._mask_shape(height, width)
        weights = self.target_weights(targets, self.predict_scores(images) if targets is None else None)
        return self.map_images(
            lambda chunk, chunk_weights: self._optimise(chunk, chunk_weights, mask_shape, (height, width)),
            images, weights, [height, width, 1])

    def _reference(self, images, image_size):
        """What a deleted pixel becomes before the fill sees the current hole.

        A mask-free fill is applied once. A fill that reads the mask would give
        back the image where nothing is deleted yet (no gradient to start
        from), so every pixel gets the fill's content with its own cell of a
        checkerboard hidden (cells of a quarter of the image side, two fill
        calls).
        """
        if self._fill_once:
            return tf.cast(self._fill_fn(images, tf.ones_like(images)), images.dtype)
        cell = (max(1, image_size[0] // 4), max(1, image_size[1] // 4))
        rows = tf.range(image_size[0]) // cell[0]
        cols = tf.range(image_size[1]) // cell[1]
        checker = tf.cast((rows[:, None] + cols[None, :]) % 2, images.dtype)
        reference = tf.zeros_like(images)
        for hidden in (checker, 1 - checker):
            hole = from_channels_last(tf.broadcast_to(hidden[None, :, :, None],
                                                      tf.stack([tf.shape(images)[0], image_size[0],
                                                                image_size[1], 1])), self.data_format)
            reference += hole * tf.cast(self._fill_fn(images, hole), images.dtype)
        return reference

    def _optimise(self, images, weights, mask_shape, image_size):
        num_images = tf.shape(images)[0]
        reference = tf.stop_gradient(self._reference(images, image_size))
        masks = tf.ones(tf.stack([num_images, mask_shape[0], mask_shape[1], 1]))
        l1 = self._area_weight(mask_shape)
        beta1, beta2, epsilon = 0.9, 0.999, 1e-8

        def loss_fn(masks):
            upsampled = tf.image.resize(masks, image_size, "bilinear")
            keep = tf.cast(from_channels_last(upsampled, self.data_format), images.dtype)
            filled = reference
            if not self._fill_once:
                hole = tf.cast(keep < 0.5, images.dtype)
                inpainted = tf.cast(self._fill_fn(images, hole), images.dtype)
                filled = tf.stop_gradient(hole * inpainted + (1 - hole) * reference)
            scores, _ = self.scores(images * keep + filled * (1 - keep))
            probability = self._class_probability(weights, scores)
            area = tf.reduce_sum(tf.abs(1.0 - masks), axis=(1, 2, 3))
            return tf.reduce_sum(l1 * area + self.tv * total_variation(masks, self.beta) + probability)

        def step(i, masks, first, second):
            with tf.GradientTape() as tape:
                tape.watch(masks)
                loss = loss_fn(masks)
            gradient = tape.gradient(loss, masks)
            first = beta1 * first + (1 - beta1) * gradient
            second = beta2 * second + (1 - beta2) * tf.square(gradient)
            t = tf.cast(i + 1, tf.float32)
            update = (first / (1 - beta1 ** t)) / (tf.sqrt(second / (1 - beta2 ** t)) + epsilon)
            masks = tf.clip_by_value(masks - self.learning_rate * update, 0.0, 1.0)
            return i + 1, masks, first, second

        _, masks, _, _ = tf.while_loop(
            lambda i, *_: i < self.steps, step,
            (tf.constant(0), masks, tf.zeros_like(masks), tf.zeros_like(masks)))
        return 1.0 - tf.image.resize(masks, image_size, "bilinear")

    def get_config(self):
        return {
            "steps": self.steps,
            "mask_size": self.mask_size,
            "learning_rate": self.learning_rate,
            "l1": self.l1,
            "tv": self.tv,
            "beta": self.beta,
            "fill": fills.config_name(self.fill, self._fill_fn),
            **super().get_config(),
        }
