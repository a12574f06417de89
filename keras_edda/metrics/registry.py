"""Metrics by name."""

import functools

from keras_edda.metrics.base import AlignmentMetric
from keras_edda.metrics.causal import DeletionAUC, InsertionAUC
from keras_edda.metrics.confidence import AverageDrop, IncreaseInConfidence, NonSalientAgreement, SalientOcclusionDrop
from keras_edda.metrics.decoy import DecoyAttribution, DecoyReliance, DecoyRelianceSwapped, ObjectAttribution
from keras_edda.metrics.localization import EnergyPointingGame, LocalizationMetric, PointingGame
from keras_edda.metrics.randomisation import ModelParameterRandomisation, RandomLogit, SanityMetric
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
                   ROAD, _variant(ROAD, "road_lerf", "higher", order="lerf"), SaliencyMetric)
}

# Judges against ground-truth object masks, called as `metric(maps, object_masks)`.
LOCALIZATION_METRICS = {metric.name: metric for metric in (PointingGame, EnergyPointingGame)}

# Judges on a decoy dataset (`keras_edda.decoy_data`): `decoy_attribution(maps, decoy_masks)`,
# `object_attribution(maps, object_masks)` (the energy pointing game on each mask) and the model metrics
# `decoy_reliance(model, x_test_consistent, x_test, y_test)` / `decoy_reliance_swapped(model,
# x_test_consistent, x_test_swapped, y_test)` (accuracy differences).
DECOY_METRICS = {metric.name: metric for metric in (DecoyAttribution, ObjectAttribution, DecoyReliance,
                                                    DecoyRelianceSwapped)}

# Sanity checks of an explainer, called as `metric(model, images, maps=None, targets=None)`; they build
# the explainer (`explainer=` name) on copies of the model.
SANITY_METRICS = {metric.name: metric for metric in (ModelParameterRandomisation, RandomLogit)}


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
            `"energy_pointing_game"`); a name of `DECOY_METRICS`
            (`"decoy_attribution"`, `"object_attribution"`,
            `"decoy_reliance"`, `"decoy_reliance_swapped"`); a name of
            `SANITY_METRICS` (`"model_parameter_randomisation"`,
            `"random_logit"`); or a metric instance.
        **kwargs: passed to the metric's constructor.

    Returns:
        An `AlignmentMetric`, a `LocalizationMetric`, a decoy metric or a
        `SanityMetric`.

    Example:

    ```python
    metric = keras_edda.metrics.get("deletion_auc", steps=16)
    ```
    """
    if isinstance(name, (AlignmentMetric, LocalizationMetric, DecoyReliance, SanityMetric)):
        return name
    known = {**METRICS, **LOCALIZATION_METRICS, **DECOY_METRICS, **SANITY_METRICS}
    if not isinstance(name, str) or name not in known:
        raise ValueError(
            f"Unknown metric. Expected one of {list(known)} or a "
            f"metric instance. Received: metric={name!r}")
    return known[name](**kwargs)
