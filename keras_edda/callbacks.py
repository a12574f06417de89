"""`AlignmentCallback`: explanation alignment during `model.fit`, in `logs`
and in TensorBoard."""

import numbers
import os

import keras
import numpy as np
import tensorflow as tf

from keras_edda import _checks
from keras_edda.metrics import DEFAULT_METRICS, AlignmentSuite
from keras_edda.ops.overlay import overlay


def _images_of_dataset(dataset, max_samples):
    spec = dataset.element_spec
    if isinstance(spec, dict):
        if "images" not in spec:
            raise ValueError(
                "A dataset of dicts needs an 'images' key. "
                f"Received: keys={sorted(spec)}")
        dataset = dataset.map(lambda element: element["images"])
    elif isinstance(spec, (tuple, list)):
        dataset = dataset.map(lambda *element: element[0])
    image_spec = dataset.element_spec
    if not isinstance(image_spec, tf.TensorSpec) or image_spec.shape.rank not in (3, 4):
        raise ValueError(
            "`data` must yield images (H, W, C) or batches (N, H, W, C), alone or "
            f"first in a tuple. Received: element_spec={spec}")
    if image_spec.shape.rank == 4:
        dataset = dataset.unbatch()
    batches = list(dataset.take(max_samples).batch(max_samples))
    if not batches:
        raise ValueError("`data` is an empty dataset. Received: data with no elements")
    return batches[0]


def take_images(data, max_samples):
    """The first `max_samples` images of arrays, an `(x, y)` tuple or a dataset."""
    if isinstance(data, tf.data.Dataset):
        images = _images_of_dataset(data, max_samples)
    elif isinstance(data, (tuple, list)) and data and not isinstance(data[0], numbers.Number):
        images = data[0][:max_samples]
    elif isinstance(data, (np.ndarray, tf.Tensor)):
        images = data[:max_samples]
    else:
        raise TypeError(
            "`data` must be an image array, an `(x, y)` tuple or a tf.data.Dataset. "
            f"Received: data of type {type(data).__name__}")
    images = _checks.check_images(images, "data")
    if images.shape[0] == 0:
        raise ValueError(f"`data` has no images. Received: shape={images.shape}")
    return _checks.assert_all_finite(tf.cast(images, tf.float32), "data")


@keras.saving.register_keras_serializable(package="keras_edda")
class AlignmentCallback(keras.callbacks.Callback):
    """Tracks explanation alignment during `fit`, in `logs` and TensorBoard.

    Every `freq` epochs it explains a fixed subset of `data` (the same
    `max_samples` images every time, so the curves are comparable) with each
    explainer, scores the maps with each metric (mean over the images) and

    - adds `val_alignment_<explainer>_<metric>` to the epoch's `logs`, e.g.
      `val_alignment_grad_cam_deletion_auc`, so that `History`,
      `EarlyStopping(monitor=...)`, `ModelCheckpoint` and `CSVLogger` placed
      after it see them;
    - with `log_dir`, writes the scalars `alignment/<explainer>/<metric>` and
      `num_images` heatmaps over their images, `alignment/<explainer>/overlay`,
      into `log_dir/validation`: the layout of `keras.callbacks.TensorBoard`,
      so with the same `log_dir` the alignment section sits next to
      `epoch_loss`. Writers are made at the first write.

    The explained class is the model's prediction (the protocols of
    `keras_edda.metrics`). Cost per evaluation, for N = `max_samples`: each
    explainer's cost on N images (Grad-CAM: one forward and one backward
    each), plus per metric and explainer 2N forward passes (Average Drop,
    Increase in Confidence, Salient Occlusion Drop, Non-Salient Agreement) or
    N * (steps + 2) (Deletion, Insertion; steps = image height by default).
    To keep it small: lower `max_samples`, raise `freq`, or pass metric
    instances with fewer steps, e.g. `keras_edda.metrics.DeletionAUC(steps=8)`.

    Args:
        data: images (array or tensor), an `(x, y)` / `(x, y, w)` tuple, or a
            `tf.data.Dataset` (batched or not) of images, tuples or dicts with
            `"images"`. Labels are not used.
        explainers: explainer names or instances (default `("grad_cam",)`).
        metrics: metric names or instances (default Average Drop, Increase in
            Confidence, Deletion AUC, Insertion AUC).
        log_dir: TensorBoard log directory, or `None` for `logs` only.
        freq: evaluate every `freq` epochs (epochs 0-based: after epoch
            `freq - 1`, `2 * freq - 1`, ...).
        max_samples: number of images used, taken once from the start of
            `data`.
        num_images: number of overlay pictures per explainer (0: none).
        explainer_kwargs: optional `{explainer name: kwargs}`.

    Example:

    ```python
    callbacks = [
        keras_edda.callbacks.AlignmentCallback((x_val, y_val), log_dir="logs"),
        keras.callbacks.TensorBoard("logs"),
        keras.callbacks.EarlyStopping(
            monitor="val_alignment_grad_cam_deletion_auc", mode="min", patience=3),
    ]
    model.fit(x, y, validation_data=(x_val, y_val), epochs=20, callbacks=callbacks)
    ```
    """

    def __init__(self, data, explainers=("grad_cam",), metrics=DEFAULT_METRICS,
                 log_dir=None, freq=1, max_samples=64, num_images=4,
                 explainer_kwargs=None):
        super().__init__()
        self.freq = _checks.check_positive_int(freq, "freq")
        self.max_samples = _checks.check_positive_int(max_samples, "max_samples")
        if isinstance(num_images, bool) or not isinstance(num_images, numbers.Integral) \
                or num_images < 0:
            raise ValueError(f"`num_images` must be an int >= 0. Received: num_images={num_images!r}")
        self.num_images = int(num_images)
        self.suite = AlignmentSuite(explainers, metrics, explainer_kwargs)
        self.images = take_images(data, self.max_samples)
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.explainer_kwargs = explainer_kwargs
        self._writer = None
        self.results = {}

    @staticmethod
    def log_key(explainer, metric):
        """The `logs` key of a metric, e.g. `val_alignment_grad_cam_deletion_auc`."""
        return f"val_alignment_{explainer}_{metric}"

    def evaluate(self, model=None):
        """Mean scores `{log key: float}` and the maps of the subset, now."""
        model = model or self.model
        maps = self.suite.explain(model, self.images)
        scores = self.suite.evaluate(model, self.images, maps)
        means = {
            self.log_key(explainer, metric): float(tf.reduce_mean(values))
            for explainer, by_metric in scores.items()
            for metric, values in by_metric.items()
        }
        return means, maps

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.freq:
            return
        means, maps = self.evaluate()
        self.results = means
        if logs is not None:
            logs.update(means)
        if self.log_dir is not None:
            self._write(epoch, maps)

    def _write(self, epoch, maps):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "validation"))
        data_format = next(iter(self.suite.explainers_for(self.model).values())).data_format
        with self._writer.as_default(step=epoch):
            for explainer in self.suite.explainer_names:
                for metric in self.suite.metric_names:
                    tf.summary.scalar(f"alignment/{explainer}/{metric}",
                                      self.results[self.log_key(explainer, metric)])
                if self.num_images:
                    shown = self.images[:self.num_images]
                    tf.summary.image(
                        f"alignment/{explainer}/overlay",
                        overlay(shown, maps[explainer][:self.num_images], data_format=data_format),
                        max_outputs=self.num_images)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self):
        """Settings of the callback; `data` is not part of it: pass it again
        to `from_config` (`{**config, "data": x}`)."""
        return {
            "explainers": list(self.suite.explainer_names),
            "metrics": list(self.suite.metric_names),
            "log_dir": self.log_dir, "freq": self.freq,
            "max_samples": self.max_samples, "num_images": self.num_images,
            "explainer_kwargs": self.explainer_kwargs,
        }

    @classmethod
    def from_config(cls, config):
        if "data" not in config:
            raise ValueError(
                "AlignmentCallback.from_config needs the data: "
                f"from_config({{**config, 'data': x}}). Received keys: {sorted(config)}")
        return cls(**config)
