"""Alignment metrics: do the maps agree with the model they explain?

`scores = metric(model, images, maps, targets=None)` returns one float32
score per image; `metric.score_direction` says whether higher or lower is
better. Protocols: see each class and `docs/metrics.md`.
"""

from keras_edda.metrics.base import AlignmentMetric, ProbabilityReader
from keras_edda.metrics.calibration import expected_calibration_error, mean_confidence
from keras_edda.metrics.causal import CausalMetric, DeletionAUC, InsertionAUC, trapezoid_auc
from keras_edda.metrics.confidence import (
                                           AverageDrop,
                                           IncreaseInConfidence,
                                           NonSalientAgreement,
                                           OccludedCopyMetric,
                                           SalientOcclusionDrop,
)
from keras_edda.metrics.decoy import DecoyAttribution, DecoyReliance, DecoyRelianceSwapped, ObjectAttribution
from keras_edda.metrics.localization import EnergyPointingGame, LocalizationMetric, PointingGame
from keras_edda.metrics.mu_fidelity import MuFidelity
from keras_edda.metrics.randomisation import (
                                           ModelParameterRandomisation,
                                           RandomLogit,
                                           SanityMetric,
                                           randomised_models,
                                           spearman_correlation,
)
from keras_edda.metrics.registry import (
                                           DECOY_METRICS,
                                           KINDS,
                                           LOCALIZATION_METRICS,
                                           METRICS,
                                           SANITY_METRICS,
                                           get,
                                           names,
                                           register,
)
from keras_edda.metrics.road import ROAD
from keras_edda.metrics.robustness import fgsm_accuracy, fgsm_images
from keras_edda.metrics.saliency_metric import SaliencyMetric
from keras_edda.metrics.suite import DEFAULT_METRICS, AlignmentSuite

__all__ = [
    "AlignmentMetric", "AlignmentSuite", "AverageDrop", "CausalMetric", "DECOY_METRICS", "DEFAULT_METRICS",
    "DecoyAttribution", "DecoyReliance", "DecoyRelianceSwapped", "DeletionAUC", "EnergyPointingGame",
    "IncreaseInConfidence", "InsertionAUC", "LOCALIZATION_METRICS", "LocalizationMetric", "METRICS",
    "ModelParameterRandomisation", "MuFidelity", "NonSalientAgreement", "ObjectAttribution", "OccludedCopyMetric",
    "PointingGame",
    "ProbabilityReader", "ROAD", "RandomLogit", "SANITY_METRICS", "SaliencyMetric", "SalientOcclusionDrop",
    "SanityMetric", "expected_calibration_error", "fgsm_accuracy", "fgsm_images", "get", "mean_confidence",
    "randomised_models", "spearman_correlation", "trapezoid_auc", "KINDS", "names", "register",
]
