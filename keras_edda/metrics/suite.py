"""Several explainers scored by several metrics: what the callback and the
`keras-edda compare` command compute."""

import weakref

from keras_edda import explainers as explainers_lib
from keras_edda.metrics.base import AlignmentMetric
from keras_edda.metrics.registry import get as get_metric

DEFAULT_METRICS = ("average_drop", "increase_in_confidence", "deletion_auc", "insertion_auc")


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


class AlignmentSuite:
    """Explains images with each explainer and scores the maps with each metric.

    Explainers given by name are built for the model the suite is called
    with and reused while it is called with that model, so calling the suite
    every epoch costs no new tracing; a new model replaces them, so a suite
    that scores many models in turn keeps at most the last one alive.

    Args:
        explainers: explainer names (see `keras_edda.explainers.get`) or
            `Explainer` instances (of the model the suite is called with).
        metrics: metric names (see `keras_edda.metrics.get`) or metric
            instances.
        explainer_kwargs: optional `{name: kwargs}` for explainers by name.

    Example:

    ```python
    suite = AlignmentSuite(("grad_cam", "saliency"), ("deletion_auc",))
    scores = suite.evaluate(model, images)
    scores["grad_cam"]["deletion_auc"]   # (N,) float32
    ```
    """

    def __init__(self, explainers=("grad_cam",), metrics=DEFAULT_METRICS,
                 explainer_kwargs=None):
        self.explainers = _as_tuple(explainers)
        if not self.explainers:
            raise ValueError(f"`explainers` must name at least one explainer. Received: explainers={explainers!r}")
        self.explainer_names = [explainers_lib.name_of(e) for e in self.explainers]
        if len(set(self.explainer_names)) != len(self.explainer_names):
            raise ValueError(f"`explainers` must be distinct. Received: {self.explainer_names}")
        self.metrics = [get_metric(m) for m in _as_tuple(metrics)]
        if not self.metrics:
            raise ValueError(f"`metrics` must name at least one metric. Received: metrics={metrics!r}")
        for metric in self.metrics:
            if not isinstance(metric, AlignmentMetric) or metric.kind not in ("fill", "fill_free"):
                raise ValueError(
                    f"`metrics` must score a model's maps of images; {metric.name!r} judges maps against "
                    f"object masks (call it on maps and masks). Received: metrics={metrics!r}")
        self.metric_names = [m.name for m in self.metrics]
        if len(set(self.metric_names)) != len(self.metric_names):
            raise ValueError(f"`metrics` must be distinct. Received: {self.metric_names}")
        self.explainer_kwargs = dict(explainer_kwargs or {})
        unknown = set(self.explainer_kwargs) - set(self.explainer_names)
        if unknown:
            raise ValueError(
                "`explainer_kwargs` keys must be among the explainers "
                f"{self.explainer_names}. Received: {sorted(unknown)}")
        self._built = None

    def explainers_for(self, model):
        """`{name: Explainer}` of `model`, built on first use."""
        if self._built is None or self._built[0]() is not model:
            # The explainers hold their model: keeping only the last model's bounds what stays alive.
            self._built = (weakref.ref(model), {
                name: explainers_lib.get(given, model, **self.explainer_kwargs.get(name, {}))
                for name, given in zip(self.explainer_names, self.explainers)
            })
        return self._built[1]

    def explain(self, model, images):
        """`{explainer name: maps}` of the model's predictions."""
        return {name: explainer(images) for name, explainer in self.explainers_for(model).items()}

    def evaluate(self, model, images, maps=None):
        """`{explainer name: {metric name: scores (N,)}}`.

        Args:
            model: the model.
            images: float images.
            maps: optional output of `explain`, to reuse maps.
        """
        maps = maps or self.explain(model, images)
        return {
            name: {metric.name: metric(model, images, maps[name]) for metric in self.metrics}
            for name in self.explainer_names
        }
