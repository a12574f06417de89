"""DANCE: decoy-enhanced saliency maps (Lu, Guo, Xing, Noble, ICML 2021)."""

import numbers

import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers import capture as capture_lib
from keras_edda.explainers import registry
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.grad_cam import last_spatial_layer
from keras_edda.explainers.occlusion import _pair, patch_masks
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import spatial_size
from keras_edda.ops.normalize import minmax_normalize

AGGREGATIONS = ("range", "mean")
POSTPROCESSING = ("abs", "winsorize", "minmax")


def _check_positive_float(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a float. Received: {name}={value!r}")
    if not value > 0:
        raise ValueError(f"`{name}` must be > 0. Received: {name}={value!r}")
    return float(value)


def winsorize(maps, percentile=95.0):
    """Clips each map of the batch at its `percentile`-th value from below.

    The percentile is the "lower" one of NumPy: the sorted value at index
    floor(percentile / 100 * (n - 1)) of the n values of a map.

    Args:
        maps: float tensor (N, ...).
        percentile: in [0, 100].

    Returns:
        float32 tensor of the same shape.
    """
    maps = tf.cast(maps, tf.float32)
    flat = tf.reshape(maps, (tf.shape(maps)[0], -1))
    count = tf.shape(flat)[1]
    index = tf.cast(tf.floor(percentile / 100.0 * tf.cast(count - 1, tf.float32)), tf.int32)
    ceiling = tf.sort(flat, axis=1)[:, index]
    return tf.reshape(tf.minimum(flat, ceiling[:, None]), tf.shape(maps))


@registry.register("dance")
class Decoys(Explainer):
    """DANCE: the range of a base saliency over decoys of the image.

    For each patch of the image and each sign s in (+1, -1), a decoy x~
    changes the image only inside the patch, as far as it can in direction
    s, while a layer's representation stays put:

        maximise sum((s * (x~ - x))+)  subject to
        |F(x~) - F(x)|_inf <= epsilon,  x~ = x outside the patch,
        x~ within `value_range`.

    It is solved by `steps` steps of signed-gradient ascent on the
    Lagrangian sum((s * delta)+) - lambda * sum((|F(x + delta) - F(x)| -
    epsilon)+), projected onto the patch and the value range. Each decoy
    adapts its own step and multiplier: after an iterate that keeps the
    constraint the step grows by 1.25 and lambda halves; after one that
    breaks it the next step starts again from the best feasible iterate,
    half as long, with lambda doubled. The decoy is the feasible iterate
    that moved furthest (the image itself when none did), so the constraint
    holds as measured by a forward pass. The base
    explainer explains every decoy for the class of the original image, and
    the map is the per-pixel range max_k E(x~_k) - min_k E(x~_k) over all
    decoys (`aggregation="mean"`: their mean, the paper's ablation).

    All decoys of all images (N x patches x 2) are optimised and explained
    in chunks of `batch_size`: memory does not grow with the number of
    patches. Cost per image: 2 x patches x (`steps` + 1 forward and `steps`
    backward passes, the backward ones to the layer only, plus the base
    explainer on one image).

    The base maps are already reduced over the channels (`"saliency"` and
    `"smoothgrad"` take the largest absolute value, Integrated Gradients the
    sum), so the paper's "max over channels" is part of them.

    Args:
        model: the `keras.Model` to explain.
        base: the base explainer: `"saliency"` (default), `"smoothgrad"`,
            `"integrated_gradients"`, any registered name, or an `Explainer`
            instance of the same model.
        layer: the layer whose output the decoys keep within `epsilon`.
            `None` takes Grad-CAM's layer (the last layer with a 4-D output
            of spatial size above 1 after a convolution); else a layer, its
            name or a nested path like `"backbone/conv"`.
        patch_size: int or (height, width) of the patches.
        stride: int or (rows, cols) between patches; defaults to
            `patch_size` (the patches tile the image).
        epsilon: largest absolute change allowed at the layer, > 0.
        steps: optimisation steps per decoy, at least 1.
        step_size: first step in pixel values (later steps adapt); defaults
            to (high - low) / 4.
        value_range: `(low, high)` of valid pixel values.
        aggregation: `"range"` (default) or `"mean"`.
        postprocess: `None` (raw maps, default) or a sequence of steps
            applied in order, among `"abs"`, `"winsorize"` (clip each map at
            its 95th percentile) and `"minmax"` (scale each map to [0, 1]);
            the paper evaluates `("abs", "winsorize", "minmax")`.
        base_kwargs: keyword arguments of a base explainer given by name
            (e.g. `{"samples": 8}` for SmoothGrad).
        batch_size: most decoys per forward/backward call (the base
            explainer built by name gets the same `batch_size`).
        use_logits: explain the pre-softmax logit (default).
        data_format: layout of the images.

    Example:

    ```python
    explainer = Decoys(model, base="saliency", patch_size=3, epsilon=0.1)
    maps = explainer(images, targets=labels)        # (N, H, W, 1)
    decoys = explainer.decoys(images)               # (N, P, 2, H, W, C)
    ```
    """

    def __init__(self, model, base="saliency", layer=None, patch_size=3, stride=None,
                 epsilon=0.1, steps=16, step_size=None, value_range=(0.0, 1.0),
                 aggregation="range", postprocess=None, base_kwargs=None,
                 batch_size=256, use_logits=True, data_format=None):
        self.patch_size = _pair(patch_size, "patch_size")
        self.stride = self.patch_size if stride is None else _pair(stride, "stride")
        self.epsilon = _check_positive_float(epsilon, "epsilon")
        self.steps = _checks.check_positive_int(steps, "steps")
        if not (isinstance(value_range, (tuple, list)) and len(value_range) == 2
                and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value_range)
                and value_range[0] < value_range[1]):
            raise ValueError(
                "`value_range` must be a pair of numbers (low, high) with low < high. "
                f"Received: value_range={value_range!r}")
        self.value_range = (float(value_range[0]), float(value_range[1]))
        width = self.value_range[1] - self.value_range[0]
        self.step_size = (width / 4.0 if step_size is None
                          else _check_positive_float(step_size, "step_size"))
        self.aggregation = _checks.check_choice(aggregation, "aggregation", AGGREGATIONS)
        if postprocess is None:
            postprocess = ()
        if isinstance(postprocess, str) or not all(p in POSTPROCESSING for p in postprocess):
            raise ValueError(
                f"`postprocess` must be None or a sequence of steps among {list(POSTPROCESSING)}. "
                f"Received: postprocess={postprocess!r}")
        self.postprocess = tuple(postprocess)
        self.layer_path, self.layer = None, None
        if layer is not None:
            self.layer_path, self.layer = capture_lib.find_layer(model, layer)
        if isinstance(base, Explainer):
            if base.model is not model:
                raise ValueError(
                    "`base` must explain the same model as the decoys. Received: "
                    f"base={base!r} for model '{model.name}'")
            if base_kwargs:
                raise ValueError(
                    "`base_kwargs` only applies to a base explainer given by name. "
                    f"Received: base={base!r}, base_kwargs={base_kwargs!r}")
        elif isinstance(base, str):
            registry.name_of(base)  # ValueError for an unknown name
            if base == "dance":
                raise ValueError("`base` cannot be 'dance' itself. Received: base='dance'")
        else:
            raise TypeError(
                "`base` must be a registered explainer name or an Explainer instance. "
                f"Received: base={base!r}")
        self.base_kwargs = dict(base_kwargs or {})
        if isinstance(base, str):
            base = registry.get(base, model, **{
                "batch_size": batch_size, "use_logits": use_logits,
                "data_format": data_format, **self.base_kwargs})
        self.base = base
        super().__init__(model, batch_size, use_logits, data_format)

    def inspect(self, images):
        self.base.inspect(images)
        return super().inspect(images)

    def _on_inspected(self, inspection):
        # Any named layer will do; the default is Grad-CAM's, found by its
        # own rule (which sets `layer_path` and `layer`).
        if self.layer is None:
            self.layer_path, self.layer = last_spatial_layer(inspection, self.data_format, self.model.name)

    def patch_masks(self, height, width):
        """The patches as masks (P, H, W), 1.0 inside, in row-major order."""
        return patch_masks(height, width, self.patch_size, self.stride)

    def decoys(self, images):
        """The decoys of `images`, for inspection and tests.

        Args:
            images: float images (N, H, W, C) (or (N, C, H, W)).

        Returns:
            float32 decoys (N, P, 2, H, W, C) (or (N, P, 2, C, H, W)): for
            image n, patch p (as in `patch_masks`) and sign index 0 (s = +1)
            or 1 (s = -1). They hold N x P x 2 images: meant for small
            inputs; `__call__` never keeps them all.
        """
        images, _ = self._standardize(images, None)
        return self._compiled_for(self._decoys, images)(images)

    def _prepare(self, images):
        height, width = spatial_size(images, self.data_format)
        if self.patch_size[0] > height or self.patch_size[1] > width:
            raise ValueError(
                "`patch_size` must not be larger than the image. Received: "
                f"patch_size={self.patch_size} for images of size {(height, width)}")
        masks = self.patch_masks(height, width)
        mask_axis = 1 if self.data_format == "channels_first" else -1
        return tf.expand_dims(masks, mask_axis), masks.shape[0]

    def _optimize(self, images, item, channel_masks, num_patches):
        """Decoys of the items (image, patch, sign) = divmod chains of `item`.

        Returns the decoys and the model's scores on their images.
        """
        tap = capture_lib.Tap(self.layer)
        x = tf.gather(images, item // (2 * num_patches))
        mask = tf.gather(channel_masks, (item // 2) % num_patches)
        sign = tf.reshape(1.0 - 2.0 * tf.cast(item % 2, tf.float32), (-1, 1, 1, 1))
        low, high = self.value_range
        lower = tf.minimum(low - x, 0.0) * mask
        upper = tf.maximum(high - x, 0.0) * mask
        rows = tf.shape(x)[0]

        def layer_values(delta):
            scores, capture = self.scores(x + delta, taps=[tap])
            return scores, tf.reshape(tf.cast(capture[tap], tf.float32), (rows, -1))

        scores, reference = layer_values(tf.zeros_like(x))
        reference = tf.stop_gradient(reference)

        def objective(delta):
            return tf.reduce_sum(tf.nn.relu(sign * delta), axis=(1, 2, 3))

        def per_row(values):
            return tf.reshape(values, (-1, 1, 1, 1))

        # The image itself is feasible with a zero penalty gradient: the first
        # step goes in direction s.
        size = tf.fill((rows,), self.step_size)
        delta = tf.clip_by_value(per_row(size) * sign * mask + tf.zeros_like(x), lower, upper)

        def body(step, delta, size, multiplier, best, best_objective):
            with tf.GradientTape() as tape:
                tape.watch(delta)
                _, values = layer_values(delta)
            difference = values - reference
            magnitude = tf.abs(difference)
            feasible = tf.reduce_max(magnitude, axis=1) <= self.epsilon
            # The penalty's gradient at the layer, written out: fewer passes
            # over the (large) activations than differentiating the penalty.
            at_layer = tf.where(magnitude > self.epsilon, multiplier[:, None] * tf.sign(difference), 0.0)
            value = objective(delta)
            improved = feasible & (value > best_objective)
            best = tf.where(per_row(tf.cast(improved, tf.float32)) > 0, delta, best)
            best_objective = tf.where(improved, value, best_objective)
            ascent = sign * mask - tape.gradient(values, delta, output_gradients=at_layer)
            size = tf.where(feasible, size * 1.25, size * 0.5)
            multiplier = tf.clip_by_value(
                tf.where(feasible, multiplier * 0.5, multiplier * 2.0), 1.0, 1e8)
            start = tf.where(per_row(tf.cast(feasible, tf.float32)) > 0, delta, best)
            delta = tf.clip_by_value(start + per_row(size) * tf.sign(ascent) * mask, lower, upper)
            return step + 1, delta, size, multiplier, best, best_objective

        _, _, _, _, best, _ = tf.while_loop(
            lambda step, *_: step <= self.steps,
            body,
            (tf.constant(1), delta, size, tf.ones((rows,)), tf.zeros_like(x), tf.zeros((rows,))),
            parallel_iterations=1,
        )
        return x + best, scores

    def _decoys(self, images):
        channel_masks, num_patches = self._prepare(images)
        total = self._static_count(images, 2 * num_patches)

        def body(start, stop, decoys):
            item = tf.range(start, stop)
            made, _ = self._optimize(images, item, channel_masks, num_patches)
            return tf.tensor_scatter_nd_update(decoys, item[:, None], made)

        decoys = chunked_loop(
            body, total, self.batch_size,
            tf.zeros(tf.concat([[total], tf.shape(images)[1:]], axis=0)))
        return tf.reshape(decoys, tf.concat([[-1, num_patches, 2], tf.shape(images)[1:]], axis=0))

    def explain_batch(self, images, targets):
        channel_masks, num_patches = self._prepare(images)
        height, width = spatial_size(images, self.data_format)
        num_images = tf.shape(images)[0]
        shape = tf.stack([num_images, height, width, 1])
        state = (tf.fill(shape, float("-inf")), tf.fill(shape, float("inf")), tf.zeros(shape))

        def body(start, stop, state):
            highest, lowest, total = state
            item = tf.range(start, stop)
            image_index = item // (2 * num_patches)
            decoys, scores = self._optimize(images, item, channel_masks, num_patches)
            weights = self.target_weights(
                None if targets is None else tf.gather(targets, image_index), scores)
            maps = tf.cast(self.base.explain_batch(decoys, weights), tf.float32)
            index = image_index[:, None]
            return (tf.tensor_scatter_nd_max(highest, index, maps),
                    tf.tensor_scatter_nd_min(lowest, index, maps),
                    tf.tensor_scatter_nd_add(total, index, maps))

        highest, lowest, total = chunked_loop(
            body, self._static_count(images, 2 * num_patches), self.batch_size, state)
        if self.aggregation == "range":
            maps = highest - lowest
        else:
            maps = total / (2.0 * num_patches)
        for step in self.postprocess:
            if step == "abs":
                maps = tf.abs(maps)
            elif step == "winsorize":
                maps = winsorize(maps)
            else:
                maps = minmax_normalize(maps)
        return maps

    def get_config(self):
        return {
            "base": registry.name_of(self.base),
            "layer": self.layer_path,
            "patch_size": self.patch_size,
            "stride": self.stride,
            "epsilon": self.epsilon,
            "steps": self.steps,
            "step_size": self.step_size,
            "value_range": self.value_range,
            "aggregation": self.aggregation,
            "postprocess": self.postprocess,
            **super().get_config(),
        }
