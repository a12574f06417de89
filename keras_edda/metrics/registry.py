"""Metrics by name, each with its kind: what `compare`, the callback and the report read.

A new metric is one file plus a registration:

```python
@keras_edda.metrics.register()
class MyMetric(keras_edda.metrics.AlignmentMetric):
    name = "my_metric"
    kind = "fill"              # see KINDS
    score_direction = "higher"
    def score_batch(self, reader, images, maps, classes, original): ...
```

It then appears in `keras-edda compare --metric` choices, is scored in
the tables its kind belongs to, and gets its direction in the report.
"""

import functools

# What a metric needs, which decides where compare scores it and how it is called.
KINDS = {
    "fill": "replaces pixels with a fill; scored under every evaluation fill; "
            "metric(model, images, maps, targets=None)",
    "fill_free": "removes pixels its own way (ROAD's imputation, the saliency metric's crop); scored once; "
                 "metric(model, images, maps, targets=None)",
    "localization": "judges maps against object masks; scored where the data has them; metric(maps, masks)",
    "decoy": "judges maps against a decoy dataset's masks (`keras_edda.decoy_data`; the metric's `mask_name`: "
             "the decoy's or the object's); scored on decoy datasets; metric(maps, masks)",
    "decoy_model": "how much the model relies on a planted decoy (no maps); scored on decoy datasets; "
                   "metric(model, consistent_images, other_images, labels)",
    "sanity": "a sanity check of the explainer (Adebayo et al.): explains copies of the model again; scored once "
              "per explainer; metric(model, images, maps=None, targets=None), built with explainer=NAME",
}

METRICS = {}
# Views of METRICS by kind (kept for earlier code): object masks; decoy masks and reliance; sanity checks.
LOCALIZATION_METRICS = {}
DECOY_METRICS = {}
SANITY_METRICS = {}
_VIEWS = {"localization": LOCALIZATION_METRICS, "decoy": DECOY_METRICS, "decoy_model": DECOY_METRICS,
          "sanity": SANITY_METRICS}
# Names compare scores when `--metric` is not given (a registration may opt out).
_IN_DEFAULTS = {}


def register(factory=None, *, name=None, kind=None, score_direction=None, default=True, **defaults):
    """Registers a metric under its name; usable as a class decorator or a call.

    Args:
        factory: the metric class (or a callable returning a metric).
        name, kind, score_direction: default to the class's attributes;
            `kind` is one of `KINDS`, `score_direction` `"higher"` or `"lower"`.
        default: whether `compare` scores it when `--metric` is not given.
        **defaults: constructor arguments of a named variant (e.g.
            `order="lerf"`).

    Returns:
        The class (as a decorator), or the registered factory.

    Example:

    ```python
    keras_edda.metrics.register(keras_edda.metrics.DeletionAUC, name="deletion_auc_fine", steps=64)
    ```
    """
    if factory is None:
        return functools.partial(register, name=name, kind=kind, score_direction=score_direction,
                                 default=default, **defaults)
    entry = factory
    if defaults or name not in (None, getattr(factory, "name", None)):
        entry = functools.partial(factory, **defaults)
    entry_name = name or getattr(factory, "name", None)
    entry_kind = kind or getattr(factory, "kind", None)
    direction = score_direction or getattr(factory, "score_direction", None)
    if not isinstance(entry_name, str) or not entry_name:
        raise ValueError(f"A metric needs a `name`. Received: name={entry_name!r}")
    if entry_kind not in KINDS:
        raise ValueError(f"`kind` must be one of {list(KINDS)}. Received: kind={entry_kind!r} ({entry_name})")
    if direction not in ("higher", "lower"):
        raise ValueError(f"`score_direction` must be 'higher' or 'lower'. Received: score_direction={direction!r} "
                         f"({entry_name})")
    if entry is not factory:
        entry.name, entry.kind, entry.score_direction = entry_name, entry_kind, direction
    METRICS[entry_name] = entry
    _IN_DEFAULTS[entry_name] = bool(default)
    if entry_kind in _VIEWS:
        _VIEWS[entry_kind][entry_name] = entry
    return factory


def names(kind=None, defaults_only=False):
    """The registered metric names, optionally of one kind and only those compare scores by default."""
    return tuple(name for name, entry in METRICS.items()
                 if (kind is None or entry.kind == kind) and (not defaults_only or _IN_DEFAULTS[name]))


def kind_of(name):
    """The kind (`KINDS`) of a registered metric."""
    return _entry(name).kind


def direction_of(name):
    """`"higher"` or `"lower"`: which scores of a registered metric are better."""
    return _entry(name).score_direction


def _entry(name):
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"Unknown metric. Expected one of {list(METRICS)}. Received: metric={name!r}")
    return METRICS[name]


def get(name, **kwargs):
    """Returns a metric by name, or `name` itself if it is a metric instance.

    Args:
        name: a registered name (`names()`; e.g. `"deletion_auc"`,
            `"road_morf"`, `"pointing_game"`), or a metric instance.
        **kwargs: passed to the metric's constructor.

    Returns:
        A metric: an `AlignmentMetric` (kinds `"fill"`, `"fill_free"`), a
        `LocalizationMetric` (kinds `"localization"`, `"decoy"`), a
        `DecoyReliance` (`"decoy_model"`) or a `SanityMetric` (`"sanity"`).

    Example:

    ```python
    metric = keras_edda.metrics.get("deletion_auc", steps=16)
    ```
    """
    if not isinstance(name, str) and getattr(type(name), "kind", None) in KINDS:
        return name
    return _entry(name)(**kwargs)


def _register_built_ins():
    from keras_edda.metrics.causal import DeletionAUC, InsertionAUC
    from keras_edda.metrics.confidence import (
        AverageDrop,
        IncreaseInConfidence,
        NonSalientAgreement,
        SalientOcclusionDrop,
    )
    from keras_edda.metrics.decoy import DecoyAttribution, DecoyReliance, DecoyRelianceSwapped, ObjectAttribution
    from keras_edda.metrics.localization import EnergyPointingGame, PointingGame
    from keras_edda.metrics.mu_fidelity import MuFidelity
    from keras_edda.metrics.randomisation import ModelParameterRandomisation, RandomLogit
    from keras_edda.metrics.road import ROAD
    from keras_edda.metrics.saliency_metric import SaliencyMetric

    for metric in (DeletionAUC, InsertionAUC, AverageDrop, SalientOcclusionDrop, NonSalientAgreement):
        register(metric)
    register(DeletionAUC, name="deletion_auc_normalized", normalize="start")
    register(InsertionAUC, name="insertion_auc_normalized", normalize="start")
    register(IncreaseInConfidence, default=False)  # ExCon's companion of Average Drop: when asked for
    register(MuFidelity, default=False)  # 128 subsets per image: scored when --metric names it
    register(ROAD)
    register(ROAD, name="road_lerf", score_direction="higher", order="lerf")
    register(SaliencyMetric)
    register(PointingGame)
    register(EnergyPointingGame)
    register(ObjectAttribution)
    register(DecoyAttribution)
    register(DecoyReliance)
    register(DecoyRelianceSwapped)
    register(ModelParameterRandomisation)
    register(RandomLogit)


_register_built_ins()
