"""Metrics by name."""

import functools

from keras_edda.metrics.base import AlignmentMetric
from keras_edda.metrics.causal import DeletionAUC, InsertionAUC
from keras_edda.metrics.confidence import AverageDrop, IncreaseInConfidence, NonSalientAgreement, SalientOcclusionDrop
from keras_edda.metrics.localization import EnergyPointingGame, LocalizationMetric, PointingGame
from keras_edda.metrics.mu_fidelity import MuFidelity
from keras_edda.metrics.road import ROAD
from keras_edda.metrics.saliency_metric import SaliencyMetric


def _variant(metric_class, name, score_direction=None, **defaults):
    """A registered name for `metric_class` with other defaults; it carries
    `name` and `score_direction` like the classes do."""
    factory = functools.partial(metric_class, **defaults)
    factory.name = name
    factory.score_direction = score_direction or metric_class.score_direction
    return factory


METRICS = {
    metric.name: metric
    for metric in (AverageDrop, IncreaseInConfidence, DeletionAUC, InsertionAUC,
                   SalientOcclusionDrop, NonSalientAgreement,
                   _variant(DeletionAUC, "deletion_auc_normalized", normalize="start"),
                   _variant(InsertionAUC, "insertion_auc_normalized", normalize="start"),
                   ROAD, _variant(ROAD, "road_lerf", "higher", order="lerf"), SaliencyMetric, MuFidelity)
}

# Judges against ground-truth object masks, called as `metric(maps, object_masks)`.
LOCALIZATION_METRICS = {metric.name: metric for metric in (PointingGame, EnergyPointingGame)}


def get(name, **kwargs):
    """Returns a metric by name, or `name` itself if it is a metric instance.

    Args:
        name: a name of `METRICS`, the alignment metrics called as
            `metric(model, images, maps, targets=None)` (`"average_drop"`,
            `"increase_in_confidence"`, `"deletion_auc"`, `"insertion_auc"`,
            `"deletion_auc_normalized"`, `"insertion_auc_normalized"`,
            `"road_morf"`, `"road_lerf"`, `"saliency_metric"`,
            `"salient_occlusion_drop"`, `"non_salient_agreement"`, ...); a
            name of `LOCALIZATION_METRICS`, called as
            `metric(maps, object_masks)` (`"pointing_game"`,
            `"energy_pointing_game"`); or a metric instance.
        **kwargs: passed to the metric's constructor.

    Returns:
        An `AlignmentMetric` or a `LocalizationMetric`.

    Example:

    ```python
    metric = keras_edda.metrics.get("deletion_auc", steps=16)
    ```
    """
    if isinstance(name, (AlignmentMetric, LocalizationMetric)):
        return name
    known = {**METRICS, **LOCALIZATION_METRICS}
    if not isinstance(name, str) or name not in known:
        raise ValueError(
            f"Unknown metric. Expected one of {list(known)} or a "
            f"metric instance. Received: metric={name!r}")
    return known[name](**kwargs)
