"""Explanation-driven training methods, one family on one two-phase layer.

`EDDA`, `RandomOcclusion` (its non-explanation baseline), `SaliencyGuided`,
`Cutout` and `RightForRightReasons` (an input-gradient penalty inside
annotation masks that ride in the batch) share `MethodLayer`: use one inside a model in front of the
classifier it trains, or in `tf.data` on dict batches, or through
`keras_edda.data.method_map_fn`. `METHODS` maps the names
`keras-edda compare --methods` knows to the classes.
"""

from keras_edda.methods.base import MethodLayer, check_model, check_tensorflow_backend, clone_model
from keras_edda.methods.cutout import Cutout
from keras_edda.methods.edda import EDDA
from keras_edda.methods.random_occlusion import RandomOcclusion
from keras_edda.methods.registry import METHODS, get, register
from keras_edda.methods.rrr import RightForRightReasons, RightForRightReasonsModel
from keras_edda.methods.saliency_guided import SaliencyGuided

__all__ = [
    "EDDA", "METHODS", "Cutout", "MethodLayer", "RandomOcclusion", "RightForRightReasons",
    "RightForRightReasonsModel", "SaliencyGuided",
    "check_model", "check_tensorflow_backend", "clone_model", "get", "register",
]
