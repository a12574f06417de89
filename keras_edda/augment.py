"""Deprecated: where EDDA's pieces lived before the method family. Use `keras_edda.methods`.

`keras_edda.augment.EDDA`, `decreased_targets` and `salient_masks` still
work and are the same objects as in `keras_edda.methods.edda`; reading one
warns with a `DeprecationWarning`.
"""

import warnings

_MOVED = {
    "EDDA": "keras_edda.methods.EDDA",
    "decreased_targets": "keras_edda.methods.edda.decreased_targets",
    "salient_masks": "keras_edda.methods.edda.salient_masks",
}

__all__ = []


def __getattr__(name):
    if name in _MOVED:
        warnings.warn(f"`keras_edda.augment.{name}` is deprecated; use `{_MOVED[name]}` (the same object).",
                      DeprecationWarning, stacklevel=2)
        from keras_edda.methods import edda

        return getattr(edda, name)
    raise AttributeError(f"module 'keras_edda.augment' has no attribute {name!r}")
