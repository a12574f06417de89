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


def _image_dataset(dataset):
    """The images of a dataset, one by one; only its element_spec is read."""
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
    return dataset


def _image_array(data):
    """The images of arrays or an `(x, y)` tuple, not copied."""
    if isinstance(data, (tuple, list)) and data and not isinstance(data[0], numbers.Number):
        data = data[0]
    if not isinstance(data, (np.ndarray, tf.Tensor)):
        raise TypeError(
            "`data` must be an image array, an `(x, y)` tuple or a tf.data.Dataset. "
            f"Received: data of type {type(data).__name__}")
    if len(data.shape) != 4:
        raise ValueError(
            f"`data` must be a batch of images of rank 4, (N, H, W, C) or (N, C, H, W). "
            f"Received: data.shape={tuple(data.shape)}")
    if data.shape[0] == 0:
        raise ValueError(f"`data` has no images. Received: shape={tuple(data.shape)}")
    return data


def check_data(data):
    """Checks the kind and shape of `data` without reading a dataset."""
    if isinstance(data, tf.data.Dataset):
        return _image_dataset(data)
    return _image_array(data)


def take_images(data, max_samples):
    """The first `max_samples` images of arrays, an `(x, y)` tuple or a dataset."""
    images = check_data(data)
    if isinstance(images, tf.data.Dataset):
        batches = list(images.take(max_samples).batch(max_samples))
        if not batches:
            raise ValueError("`data` is an empty dataset. Received: data with no elements")
        images = batches[0]
    images = _checks.check_images(images[:max_samples], "data")
    return _checks.assert_all_finite(tf.cast(images, tf.float32), "data")


@keras.saving.register_keras_serializable(package="keras_edda")
class AlignmentCallback(keras.callbacks.Callback):
    """Tracks explanation alignment during `fit`, in `logs` and TensorBoard.

    Every `freq` epochs it explains a fixed subset of `data` (the same
    `max_samples` images every time, so the curves are comparable) with each
    explainer, scores the maps with each metric (mean over the images) and

    - adds `val_alignment_<explainer>_<metric>` to the epoch's `logs`, e.g.
      `val_alignment_grad_cam_deletion_auc`, so that `History`,
      `EarlyStopping(monitor=...)`, `ModelCheckpoint`, `CSVLogger` and
      `keras.callbacks.TensorBoard` placed after it see them;
    - with `log_dir`, writes `num_images` heatmaps over their images,
      `alignment/<explainer>/overlay`, into `log_dir/validation`: the layout
      of `keras.callbacks.TensorBoard`, so with the same `log_dir` the
      overlays sit next to its scalars. The scalars reach TensorBoard through
      `keras.callbacks.TensorBoard`, which writes every `logs` key (here as
      `epoch_alignment_<explainer>_<metric>`), so each appears once. Without
      a TensorBoard callback in the same `fit`, pass `write_scalars=True`:
      this callback then writes them itself, under the same tags.

    `data` is read at the start of training (`on_train_begin`), where the
    images are also checked against the model's input size; `log_dir` is
    checked there too, so that a wrong size or an unwritable folder fails
    before the first epoch, not after it.

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
        write_scalars: also write the scalars into `log_dir` (for a `fit`
            without `keras.callbacks.TensorBoard`; with it they would appear
            twice).
        freq: evaluate every `freq` epochs (epochs 0-based: after epoch
            `freq - 1`, `2 * freq - 1`, ...).
        max_samples: number of images used, taken once from the start of
            `data`.
        num_images: number of overlay pictures per explainer (0: none).
        explainer_kwargs: optional `{explainer name: kwargs}`.
        model: the classifier to explain (default: the model `fit` trains).
            Give it when the trained model wraps the classifier and takes
            other inputs, e.g. `RightForRightReasons(classifier).wrap()`,
            whose batches also carry masks.

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
                 explainer_kwargs=None, write_scalars=False, model=None):
        super().__init__()
        self.explained_model = model
        self.freq = _checks.check_positive_int(freq, "freq")
        self.max_samples = _checks.check_positive_int(max_samples, "max_samples")
        if isinstance(num_images, bool) or not isinstance(num_images, numbers.Integral) \
                or num_images < 0:
            raise ValueError(f"`num_images` must be an int >= 0. Received: num_images={num_images!r}")
        self.num_images = int(num_images)
        if not isinstance(write_scalars, bool):
            raise TypeError(f"`write_scalars` must be a bool. Received: write_scalars={write_scalars!r}")
        if write_scalars and log_dir is None:
            raise ValueError("`write_scalars=True` needs a `log_dir`. Received: log_dir=None")
        self.write_scalars = write_scalars
        self.suite = AlignmentSuite(explainers, metrics, explainer_kwargs)
        check_data(data)
        self.data = data
        self.images = None
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.explainer_kwargs = explainer_kwargs
        self._writer = None
        self.results = {}

    def load_images(self, model=None):
        """Reads the `max_samples` images from `data` and checks them
        against `model`'s input (done by `on_train_begin`)."""
        self.images = take_images(self.data, self.max_samples)
        model = model if model is not None else self._model_to_explain()
        if model is not None:
            _checks.check_image_shape(self.images, model, "data")
        return self.images

    def _model_to_explain(self):
        return self.explained_model if self.explained_model is not None else self.model

    def on_train_begin(self, logs=None):
        self.load_images()
        if self.log_dir is not None:
            _checks.check_writable_folder(self.log_dir, "log_dir")

    @staticmethod
    def log_key(explainer, metric):
        """The `logs` key of a metric, e.g. `val_alignment_grad_cam_deletion_auc`."""
        return f"val_alignment_{explainer}_{metric}"

    def evaluate(self, model=None):
        """Mean scores `{log key: float}` and the maps of the subset, now."""
        model = model if model is not None else self._model_to_explain()
        if self.images is None:
            self.load_images(model)
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
        data_format = next(iter(self.suite.explainers_for(self._model_to_explain()).values())).data_format
        with self._writer.as_default(step=epoch):
            for explainer in self.suite.explainer_names:
                if self.write_scalars:
                    for metric in self.suite.metric_names:
                        # The tag keras.callbacks.TensorBoard gives a `val_` key.
                        key = self.log_key(explainer, metric)
                        tf.summary.scalar(f"epoch_{key[len('val_'):]}", self.results[key])
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
            "write_scalars": self.write_scalars,
        }

    @classmethod
    def from_config(cls, config):
        if "data" not in config:
            raise ValueError(
                "AlignmentCallback.from_config needs the data: "
                f"from_config({{**config, 'data': x}}). Received keys: {sorted(config)}")
        return cls(**config)
