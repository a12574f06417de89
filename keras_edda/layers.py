"""The method layers under their historical home: `keras_edda.layers.EDDA`.

The family lives in `keras_edda.methods`; these are the same classes.
"""

from keras_edda.methods import EDDA, Cutout, MethodLayer, RandomOcclusion, SaliencyGuided

__all__ = ["EDDA", "Cutout", "MethodLayer", "RandomOcclusion", "SaliencyGuided"]
