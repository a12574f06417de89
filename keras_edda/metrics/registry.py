"""Metrics by name."""

from keras_edda.metrics.base import AlignmentMetric
from keras_edda.metrics.causal import DeletionAUC, InsertionAUC
from keras_edda.metrics.confidence import AverageDrop, IncreaseInConfidence, NonSalientAgreement, SalientOcclusionDrop

METRICS = {
    metric.name: metric
    for metric in (AverageDrop, IncreaseInConfidence, DeletionAUC, InsertionAUC,
                   SalientOcclusionDrop, NonSalientAgreement)
}


def get(name, **kwargs):
    """Returns a metric by name, or `name` itself if it is an AlignmentMetric.

    Args:
        name: one of `"average_drop"`, `"increase_in_confidence"`,
            `"deletion_auc"`, `"insertion_auc"`, `"salient_occlusion_drop"`,
            `"non_salient_agreement"`, or an `AlignmentMetric` instance.
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
