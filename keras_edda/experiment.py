"""The pieces of `keras-edda compare` around the protocol: fresh models of one
architecture, atomic results files, text tables and explanation rows.

The runs themselves are `keras_edda.experiments.protocol`; the report is
`keras_edda.experiments.report`.
"""

import csv
import io
import json
import os

import keras
import tensorflow as tf

from keras_edda import models
from keras_edda._files import replaced_atomically
from keras_edda.ops import overlay


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


def format_table(table, title):
    """A text table of one report table: mean ± std (ddof 1) per method.

    Args:
        table: `{method: {metric: [value per seed]}}` (see
            `keras_edda.experiments.report.tables`).
        title: printed above it.
    """
    from keras_edda import statistics
    from keras_edda.experiments.protocol import direction

    methods = list(table)
    header = f"{title:<34}{'better':<8}" + "".join(f"{m:>18}" for m in methods)
    lines = [header, "-" * len(header)]
    for metric in table[methods[0]]:
        if metric.endswith("_random") or not all(metric in table[m] for m in methods):
            continue
        cells = ""
        for method in methods:
            stats = statistics.summary(table[method][metric])
            spread = f" ± {stats['std']:.3f}" if stats["std"] is not None else "        "
            cells += f"{stats['mean']:>10.3f}{spread}"
        lines.append(f"{metric:<34}{direction(metric):<8}{cells}")
    return "\n".join(lines)


def write_atomically(path, text):
    """Writes `text` to `path` through a temporary file in the same folder and
    `os.replace`, so that a reader (or a kill) never sees a partial file."""
    with replaced_atomically(path) as temporary:
        with open(temporary, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_results(out, config, runs, command=None):
    """results.json and results.csv, each written atomically.

    results.json holds the config, the runs (per-seed scores), and per
    report table the summaries over the seeds every method finished (mean,
    std with ddof 1, values) and the paired comparisons of EDDA (or ExCon,
    `report.reference_of`) with each other method (difference, bootstrap interval, test, Holm-adjusted p,
    verdict), and the command that made them; results.csv one row per value.
    """
    from keras_edda import statistics
    from keras_edda.experiments import report

    seeds, tables = report.tables(runs, config.get("methods"))
    summaries = {name: {method: {metric: statistics.summary(values) for metric, values in by_metric.items()}
                        for method, by_metric in table.items()} for name, table in tables.items()}
    comparisons = {name: report.comparisons(table) for name, table in tables.items()}
    results = {"config": config, "command": command, "seeds": seeds, "summaries": summaries,
               "comparisons": comparisons, "runs": runs}
    write_atomically(os.path.join(out, "results.json"), json.dumps(results, indent=2))
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["method", "seed", "explainer", "fill", "metric", "value"])
    for run in runs:
        for key, value in run["scores"].items():
            if not isinstance(value, dict):
                writer.writerow([run["method"], run["seed"], "", "", key, f"{value:.6f}"])
                continue
            for fill, by_metric in value.items():
                for metric, number in by_metric.items():
                    writer.writerow([run["method"], run["seed"], key, fill, metric, f"{number:.6f}"])
    write_atomically(os.path.join(out, "results.csv"), table.getvalue())


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


def explanation_rows(model, images, explainer):
    """Overlays of `explainer`'s maps of `model` on `images` (one grid row)."""
    from keras_edda import explainers as explainers_lib

    maps = explainers_lib.get(explainer, model)(images)
    return overlay.overlay(images, maps)


def input_row(images):
    return overlay.overlay(images, tf.zeros_like(images[..., :1]), alpha=0.0)
