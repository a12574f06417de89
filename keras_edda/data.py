"""`tf.data` surface of the training methods: map functions for batched datasets."""

from keras_edda.methods import EDDA, MethodLayer


class MethodMapFunction:
    """What `method_map_fn` returns: call it on `(x, y)` or `(x, y, w)` batches.

    (`(x, y, masks)` or `(x, y, masks, w)` for `RightForRightReasons`, whose
    map function returns `({"images": x, "masks": masks}, y[, w])`: the input
    of a model that holds the layer.)

    It runs the layer's two phases (`get_random_transformation`, then
    `transform_images` / `transform_labels` / `transform_sample_weights`),
    the very functions the layer runs on dict batches and inside a model,
    and `record` (the warm-up's step count and the per-copy statistics).

    The labels it returns are soft, (N, C): compile the model with
    `keras.losses.CategoricalCrossentropy()`, not a sparse loss (which takes
    class ids (N,)); a model compiled with a sparse categorical
    cross-entropy is refused with a `ValueError` saying so.

    Attributes:
        layer: the method layer.
    """

    def __init__(self, layer):
        if not isinstance(layer, MethodLayer):
            raise TypeError(
                "`layer` must be a method layer of keras_edda.methods (EDDA, SaliencyGuided, ...). "
                f"Received: layer={layer!r}")
        self.layer = layer
        layer.check_compiled_loss()

    def __call__(self, x, y, *rest):
        return self.layer.map_batch(x, y, *rest)


def method_map_fn(layer):
    """Returns a map function that adds a method's copies to `(x, y[, w])` batches.

    It returns `(x', y', sample_weight')` with soft targets, ready for
    `model.fit` with `keras.losses.CategoricalCrossentropy()` (or
    `BinaryCrossentropy()` for a single sigmoid output):

    ```python
    layer = keras_edda.methods.SaliencyGuided(model)
    ds = ds.batch(64).map(keras_edda.data.method_map_fn(layer))
    ```

    **Note:** `tf.data` runs the function on the host CPU, with the model's
    current weights, which are a few steps stale when the pipeline
    prefetches. That suits a frozen teacher or a small model; to use the live
    weights on the GPU, put the layer in the model instead. With
    `num_parallel_calls` > 1 and `rate < 1`, use `deterministic=True` for
    reproducible choices.

    Args:
        layer: a method layer (`keras_edda.methods.EDDA`, ...).

    Returns:
        A `MethodMapFunction`, callable as `fn(x, y)` or `fn(x, y, w)`.
    """
    return MethodMapFunction(layer)


def edda_map_fn(model, explainer="grad_cam", explainer_kwargs=None, **settings):
    """Returns a map function that adds EDDA's occluded copies to batches.

    The same as `method_map_fn(keras_edda.methods.EDDA(model, explainer,
    explainer_kwargs, **settings))`:

    ```python
    ds = ds.batch(64).map(keras_edda.data.edda_map_fn(model, threshold=0.5))
    model.fit(ds, ...)
    ```

    Args:
        model: the classifier being trained.
        explainer: an explainer name, an `Explainer` of `model`, or a
            function `fn(images, targets) -> maps`.
        explainer_kwargs: settings of the explainer when given by name.
        **settings: the settings of `keras_edda.methods.EDDA` (`threshold`,
            `fraction`, `fill`, `salient_target`, `warmup_steps` (in
            batches), ...).

    Returns:
        A `MethodMapFunction`.
    """
    return method_map_fn(EDDA(model, explainer, explainer_kwargs, **settings))
