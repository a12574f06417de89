"""keras_edda: explanation-driven data augmentation for Keras 3.

`import keras_edda` imports the library and registers its Keras objects
(layers, explainers, fills), so that `keras.saving.load_model` finds them.
The `keras-edda` command imports the library only once a command runs, so
that `keras-edda --help` answers without importing TensorFlow.
"""

import importlib
import os
import sys

from keras_edda.version import __version__

_SUBMODULES = ("augment", "callbacks", "cifar10", "crop_flip", "data", "datasets", "decoy_data", "excon",
               "explainers", "inpainting", "layers", "losses", "methods", "metrics", "models", "ops", "recipes",
               "statistics")
__all__ = ["__version__", "import_all", *_SUBMODULES]


def import_all():
    """Imports every module of the library (registering its Keras objects); `import keras_edda` does this."""
    try:
        import tensorflow  # noqa: F401
    except ImportError as error:  # pragma: no cover
        raise ImportError(
            "keras_edda runs on TensorFlow. Install it with "
            "`pip install keras_edda[cpu]` (tensorflow-cpu) or "
            "`pip install keras_edda[gpu]` (tensorflow[and-cuda])."
        ) from error
    for name in _SUBMODULES:
        globals()[name] = importlib.import_module(f"keras_edda.{name}")


def _started_as_the_command():
    """Whether this import is the `keras-edda` command's (or `python -m keras_edda`'s) own."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return program in ("keras-edda", "keras-edda.exe") or program == "-m" and "keras_edda" in sys.orig_argv


if _started_as_the_command():
    def __getattr__(name):
        if name in _SUBMODULES:
            return importlib.import_module(f"keras_edda.{name}")
        raise AttributeError(f"module 'keras_edda' has no attribute {name!r}")
else:
    import_all()
