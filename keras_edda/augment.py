"""Where EDDA's pieces lived before the method family; kept for imports.

`keras_edda.methods.EDDA` holds the settings and the transform now.
"""

from keras_edda.methods.edda import EDDA, decreased_targets, salient_masks

__all__ = ["EDDA", "decreased_targets", "salient_masks"]

