"""Metrics by name."""

import functools

from keras_edda.metrics.base import AlignmentMetric
from keras_edda.metrics.causal import DeletionAUC, InsertionAUC
from keras_edda.metrics.confidence import AverageDrop, IncreaseInConfidence, NonSalientAgreement, SalientOcclusionDrop
from keras_edda.metrics.road import ROAD


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
                   ROAD, _variant(ROAD, "road_lerf", "higher", order="lerf"))
}


def get(name, **kwargs):
    """Returns a metric by name, or `name` itself if it is an AlignmentMetric.

    Args:
        name: a name of `METRICS` (`"average_drop"`,
            `"increase_in_confidence"`, `"deletion_auc"`, `"insertion_auc"`,
            `"deletion_auc_normalized"`, `"insertion_auc_normalized"`,
            `"road_morf"`, `"road_lerf"`,
            `"salient_occlusion_drop"`, `"non_salient_agreement"`, ...), or
            an `AlignmentMetric` instance.
        **kwargs: passed to the metric's constructor.

    Returns:
        An `AlignmentMetric`.

    Example:

    ```python
    metric = keras_edda.metrics.get("deletion_auc", steps=16)
    ```
    """
    if isinstance(name, AlignmentMetric):
        return name
    if name not in METRICS:
        raise ValueError(
            f"Unknown metric. Expected one of {list(METRICS)} or an "
            f"AlignmentMetric instance. Received: metric={name!r}")
    return METRICS[name](**kwargs)
