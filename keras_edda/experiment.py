"""The EDDA experiment: the same architecture trained without augmentation,
with random occlusion of matched area, and with EDDA, over several seeds,
then scored on held-out data. What `keras-edda compare` runs."""

import csv
import io
import json
import math
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_edda import callbacks as callbacks_lib
from keras_edda import metrics as metrics_lib
from keras_edda import models
from keras_edda.data import edda_map_fn
from keras_edda.ops import overlay

METHODS = ("none", "random", "edda")
ALL_METRICS = tuple(metrics_lib.METRICS)


class ModelFactory:
    """Fresh, re-initialised models of one architecture, one per run.

    Args:
        spec: `"cnn"` (the built-in small CNN), `"resnet"` (a small ResNet)
            or the path of a `.keras` file whose architecture is used with
            fresh weights (its saved weights are not).
        input_shape: shape of one image.
        num_classes: number of classes.
    """

    def __init__(self, spec, input_shape, num_classes):
        self.spec = spec
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.template = None
        if spec not in ("cnn", "resnet"):
            self.template = self._load(spec)

    def _load(self, path):
        if not os.path.exists(path):
            raise ValueError(f"Model file not found. Received: model={path!r}")
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:  # Keras raises many kinds for a bad file
            raise ValueError(
                f"Cannot load model {path!r}: {str(error).strip().splitlines()[0]}") from None
        inputs = getattr(model, "inputs", None)
        if not inputs or len(inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(f"The model must have one image input and one output. Received: model={path!r}")
        if tuple(inputs[0].shape[1:]) != self.input_shape:
            raise ValueError(
                f"The model's input shape {tuple(inputs[0].shape[1:])} does not match the data "
                f"{self.input_shape}; use --image-size / --channels. Received: model={path!r}")
        if len(model.outputs[0].shape) != 2:
            raise ValueError(
                "The model must output class scores (batch, classes); an output of shape "
                f"{tuple(model.outputs[0].shape)} (e.g. a segmentation map) is not a classifier. "
                f"Received: model={path!r}")
        outputs = model.outputs[0].shape[-1]
        if outputs != self.num_classes:
            raise ValueError(
                f"The model has {outputs} outputs but the data has {self.num_classes} classes. "
                f"Received: model={path!r}")
        return model

    def build(self):
        """A new model with fresh weights (seed it with `keras.utils.set_random_seed`)."""
        if self.spec == "cnn":
            return models.small_cnn(self.input_shape, self.num_classes)
        if self.spec == "resnet":
            return models.small_resnet(self.input_shape, self.num_classes)
        return keras.models.clone_model(self.template)


class Settings:
    """Settings of one `compare` experiment (see `keras-edda compare -h`)."""

    def __init__(self, seeds=3, epochs=10, batch_size=64, learning_rate=3e-3,
                 explainers=("grad_cam",), eval_samples=256, monitor_samples=32,
                 num_images=6, edda=None):
        self.seeds = seeds
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.explainers = tuple(explainers)
        self.eval_samples = eval_samples
        self.monitor_samples = monitor_samples
        self.num_images = num_images
        self.edda = dict(edda or {})

    def to_dict(self):
        """The settings as a JSON-ready dict."""
        return dict(vars(self), explainers=list(self.explainers))


def _augmentation(method, model, settings, steps_per_epoch):
    edda = dict(settings.edda)
    warmup_epochs = edda.pop("warmup_epochs", 0)
    if warmup_epochs:
        edda.update(warmup_epochs=warmup_epochs, steps_per_epoch=steps_per_epoch)
    if method == "edda":
        return edda_map_fn(model, settings.explainers[0], **edda)
    # Random occlusion with the same mask areas as EDDA's.
    if edda.get("fraction") is None:
        edda["area_from"] = settings.explainers[0]
    return edda_map_fn(model, "random", **edda)


def train_and_evaluate(method, seed, data, factory, settings, log_dir=None, verbose=2, callbacks=()):
    """Trains one model with `method` and scores it on the test data.

    `callbacks` are added to `fit`'s.

    Returns:
        `(model, scores)`: scores `{"accuracy": float, explainer: {metric:
        float}}` (means over the first `eval_samples` test images).
    """
    keras.utils.set_random_seed(seed)
    model = factory.build()
    model.compile(keras.optimizers.Adam(settings.learning_rate),
                  keras.losses.CategoricalCrossentropy(), weighted_metrics=["accuracy"])
    num_classes = data.num_classes
    steps_per_epoch = math.ceil(len(data.x_train) / settings.batch_size)
    train = tf.data.Dataset.from_tensor_slices(
        (data.x_train, tf.one_hot(data.y_train, num_classes)))
    train = train.shuffle(len(data.x_train), seed=seed).batch(settings.batch_size)
    if method != "none":
        train = train.map(_augmentation(method, model, settings, steps_per_epoch))
    train = train.prefetch(1)
    test = (data.x_test, keras.utils.to_categorical(data.y_test, num_classes))
    fit_callbacks = []
    if log_dir is not None:
        fit_callbacks = [
            callbacks_lib.AlignmentCallback(
                data.x_test, explainers=settings.explainers,
                metrics=("average_drop", "deletion_auc", "insertion_auc"),
                log_dir=log_dir, max_samples=settings.monitor_samples, num_images=4),
            keras.callbacks.TensorBoard(log_dir),
        ]
    model.fit(train, epochs=settings.epochs, validation_data=test, callbacks=fit_callbacks + list(callbacks),
              verbose=verbose, shuffle=False)
    _, accuracy = model.evaluate(*test, verbose=0)
    images = data.x_test[: settings.eval_samples]
    suite = metrics_lib.AlignmentSuite(settings.explainers, ALL_METRICS)
    scores = {"accuracy": float(accuracy)}
    for explainer, by_metric in suite.evaluate(model, images).items():
        scores[explainer] = {m: float(tf.reduce_mean(v)) for m, v in by_metric.items()}
    return model, scores


def summarize(runs, explainer):
    """`{method: {metric: {"mean", "std", "values"}}}` for one explainer."""
    summary = {}
    for method in METHODS:
        done = [r for r in runs if r["method"] == method]
        if not done:
            continue
        summary[method] = {}
        for metric in ("accuracy",) + ALL_METRICS:
            values = [r["scores"]["accuracy"] if metric == "accuracy"
                      else r["scores"][explainer][metric] for r in done]
            summary[method][metric] = {"mean": float(np.mean(values)),
                                       "std": float(np.std(values)),
                                       "values": values}
    return summary


def direction(metric):
    return "higher" if metric == "accuracy" else metrics_lib.METRICS[metric].score_direction


def verdicts(summary):
    """Per metric: does EDDA beat both baselines, and by how much?"""
    lines = {}
    if not all(m in summary for m in METHODS):
        return lines
    for metric in summary["edda"]:
        sign = 1.0 if direction(metric) == "higher" else -1.0
        edda = summary["edda"][metric]["mean"]
        margins = {b: sign * (edda - summary[b][metric]["mean"]) for b in ("none", "random")}
        worst = min(margins.values())
        if worst > 0:
            lines[metric] = f"EDDA beats both baselines (by at least {worst:.3f})"
        else:
            behind = [b for b, m in margins.items() if m <= 0]
            lines[metric] = f"EDDA does not beat {' and '.join(behind)} ({worst:+.3f})"
    return lines


def format_table(summary):
    """A text table: metric, better direction, mean +- std per method, verdict."""
    methods = [m for m in METHODS if m in summary]
    if not methods:
        return "(no finished runs)"
    verdict = verdicts(summary)
    header = f"{'metric':<24}{'better':<8}" + "".join(f"{m:>18}" for m in methods)
    lines = [header, "-" * len(header)]
    for metric in summary[methods[0]]:
        cells = "".join(f"{summary[m][metric]['mean']:>11.3f} ± {summary[m][metric]['std']:.3f}"
                        for m in methods)
        lines.append(f"{metric:<24}{direction(metric):<8}{cells}   {verdict.get(metric, '')}")
    return "\n".join(lines)


def write_atomically(path, text):
    """Writes `text` to `path` through a temporary file in the same folder and
    `os.replace`, so that a reader (or a kill) never sees a partial file."""
    folder, name = os.path.split(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_results(out, config, runs, explainers):
    """results.json and results.csv from the finished runs, each written
    atomically (see `write_atomically`)."""
    summaries = {e: summarize(runs, e) for e in explainers}
    results = {"config": config, "results": summaries[explainers[0]],
               "results_by_explainer": summaries,
               "runs": runs}
    write_atomically(os.path.join(out, "results.json"), json.dumps(results, indent=2))
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["explainer", "method", "metric", "better", "mean", "std", "values"])
    for explainer, summary in summaries.items():
        for method, by_metric in summary.items():
            for metric, stats in by_metric.items():
                writer.writerow([explainer, method, metric, direction(metric),
                                 f"{stats['mean']:.6f}", f"{stats['std']:.6f}",
                                 " ".join(f"{v:.6f}" for v in stats["values"])])
    write_atomically(os.path.join(out, "results.csv"), table.getvalue())
    return summaries


def read_results(out):
    """The contents of `out/results.json`, or `None` when there is none.

    Raises:
        ValueError: when the file is not a compare run's results.
    """
    path = os.path.join(out, "results.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            results = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read {path}: {error}") from None
    if not isinstance(results, dict) or not {"config", "runs"} <= set(results):
        raise ValueError(f"{path} is not the results of a compare run. Received keys: "
                         f"{sorted(results) if isinstance(results, dict) else type(results).__name__}")
    return results


def config_difference(stored, current):
    """`""` when two configs agree, else the first difference as text."""
    current = json.loads(json.dumps(current))
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            return f"{key}: {stored.get(key)!r} stored, {current.get(key)!r} now"
    return ""


def plot_summary(summary, path, title):
    """A bar chart per metric, mean with std error bars, per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if m in summary]
    metric_names = list(summary[methods[0]])
    columns = 4
    rows = math.ceil(len(metric_names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    colours = {"none": "#9e9e9e", "random": "#64b5f6", "edda": "#ef6c00"}
    for axis, metric in zip(axes.flat, metric_names):
        means = [summary[m][metric]["mean"] for m in methods]
        stds = [summary[m][metric]["std"] for m in methods]
        axis.bar(methods, means, yerr=stds, capsize=4, color=[colours[m] for m in methods])
        axis.set_title(f"{metric} ({direction(metric)} is better)", fontsize=9)
        axis.tick_params(labelsize=8)
    for axis in list(axes.flat)[len(metric_names):]:
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def explanation_rows(model, images, explainer):
    """Overlays of `explainer`'s maps of `model` on `images` (one grid row)."""
    from keras_edda import explainers as explainers_lib

    maps = explainers_lib.get(explainer, model)(images)
    return overlay.overlay(images, maps)


def input_row(images):
    return overlay.overlay(images, tf.zeros_like(images[..., :1]), alpha=0.0)
