"""keras_edda: explanation-driven data augmentation for Keras 3."""

try:
    import tensorflow  # noqa: F401
except ImportError as error:  # pragma: no cover
    raise ImportError(
        "keras_edda runs on TensorFlow. Install it with "
        "`pip install keras_edda[cpu]` (tensorflow-cpu) or "
        "`pip install keras_edda[gpu]` (tensorflow[and-cuda])."
    ) from error

from keras_edda import (
    augment,
    callbacks,
    cifar10,
    crop_flip,
    data,
    datasets,
    excon,
    explainers,
    layers,
    losses,
    methods,
    metrics,
    models,
    ops,
    recipes,
    statistics,
)
from keras_edda.version import __version__

__all__ = [
    "__version__", "augment", "callbacks", "cifar10", "crop_flip", "data", "datasets", "excon", "explainers",
    "layers", "losses", "methods", "metrics", "models", "ops", "recipes", "statistics",
]
