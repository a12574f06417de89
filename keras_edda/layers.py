"""Deprecated: the method layers' old home. Use `keras_edda.methods`.

`keras_edda.layers.EDDA` (and the other names here) still work and are the
same classes as `keras_edda.methods.EDDA`, ...; reading one warns with a
`DeprecationWarning`. The one documented import path is `keras_edda.methods`.
"""

import warnings

_MOVED = {"EDDA", "Cutout", "MethodLayer", "RandomOcclusion", "SaliencyGuided", "RightForRightReasons"}

__all__ = []


def __getattr__(name):
    if name in _MOVED:
        warnings.warn(
            f"`keras_edda.layers.{name}` is deprecated; import it from `keras_edda.methods` "
            f"(`keras_edda.methods.{name}`, the same class).", DeprecationWarning, stacklevel=2)
        from keras_edda import methods

        return getattr(methods, name)
    raise AttributeError(f"module 'keras_edda.layers' has no attribute {name!r}")
