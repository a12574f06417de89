"""Batched tensor operations shared by explainers, augmentation and metrics."""

from keras_edda.ops import fills
from keras_edda.ops.masks import pixel_ranks, salient_mask, threshold_mask, top_fraction_mask
from keras_edda.ops.normalize import minmax_normalize

__all__ = [
    "fills",
    "minmax_normalize",
    "pixel_ranks",
    "salient_mask",
    "threshold_mask",
    "top_fraction_mask",
]
