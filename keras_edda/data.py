"""`tf.data` surface of EDDA: a map function for batched datasets."""

import keras
import tensorflow as tf

from keras_edda import explainers as explainers_lib
from keras_edda.augment import EDDASettings, edda_transform


class EDDAMapFunction:
    """What `edda_map_fn` returns: call it on `(x, y)` or `(x, y, w)` batches.

    Holds the explainer (built once), a batch counter for the warm-up and a
    seed generator for `rate < 1`.
    """

    def __init__(self, model, explainer="grad_cam", explainer_kwargs=None, **settings):
        self.model = model
        self.settings = EDDASettings(**settings)
        self.explainer = explainers_lib.get(explainer, model, **(explainer_kwargs or {}))
        self.area_explainer = None
        if self.settings.area_from is not None:
            self.area_explainer = explainers_lib.get(self.settings.area_from, model)
        self.batches = tf.Variable(0, dtype=tf.int64, trainable=False, name="edda_batches")
        self.seed_generator = keras.random.SeedGenerator(self.settings.seed)

    def __call__(self, x, y, sample_weight=None):
        step = self.batches.assign_add(1) - 1
        active = step >= self.settings.warmup_steps
        selection = None
        if self.settings.rate < 1.0:
            selection = keras.random.uniform(tf.shape(x)[:1], seed=self.seed_generator)
        return edda_transform(
            x, y, self.model, self.explainer, self.settings,
            sample_weight=sample_weight, active=active, selection=selection,
            area_explainer=self.area_explainer)


def edda_map_fn(model, explainer="grad_cam", explainer_kwargs=None, **settings):
    """Returns a map function that adds EDDA's occluded copies to batches.

    Use it on a batched dataset of `(x, y)` or `(x, y, sample_weight)`; it
    returns `(x', y', sample_weight')` with soft targets, ready for
    `model.fit` with `keras.losses.CategoricalCrossentropy()`:

    ```python
    ds = ds.batch(64).map(keras_edda.data.edda_map_fn(model, threshold=0.5))
    model.fit(ds, ...)
    ```

    **Note:** `tf.data` runs the function on the host CPU, with the model's
    current weights, which are a few steps stale when the pipeline
    prefetches. That suits a frozen teacher model or a small model; to
    explain with the live weights on the GPU, put `keras_edda.layers.EDDA`
    in the model instead. With `num_parallel_calls` > 1 and `rate < 1`, use
    `deterministic=True` for reproducible choices.

    Args:
        model: the classifier being trained.
        explainer: an explainer name (see `keras_edda.explainers.get`) or an
            `Explainer` of `model`.
        explainer_kwargs: settings of the explainer when given by name.
        **settings: the EDDA settings, see `keras_edda.augment.EDDASettings`
            (`threshold`, `fraction`, `fill`, `fill_value`, `salient_target`,
            `keep_if_correct`, `explain_target`, `rate`, `seed`,
            `warmup_steps` (in batches), `area_from`).

    Returns:
        An `EDDAMapFunction`, callable as `fn(x, y)` or `fn(x, y, w)`.
    """
    return EDDAMapFunction(model, explainer, explainer_kwargs, **settings)
