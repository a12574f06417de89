"""One (method, seed) run of a comparison as a task any executor can run: the job and its result.

`Job` and `DataSpec` hold plain settings (they travel to worker processes
and Ray tasks); `run_one` trains and scores one run, loading the data itself
in a worker; `RunResult` is what comes back to the parent.
"""

import dataclasses
import os
import shutil

from keras_edda.experiments import protocol, results


@dataclasses.dataclass
class DataSpec:
    """Where the data of a comparison comes from: the arguments of `keras_edda.datasets.load`.

    `max_train` keeps a class-stratified subset of the training split;
    `decoy` holds the settings of a `"NAME-decoy"` dataset
    (`keras_edda.decoy_data.add_decoys`: `patch_size`, `informative_fraction`).
    """

    dataset: str = "digits"
    data_dir: str = None
    download: bool = False
    image_size: int = None
    channels: int = None
    max_examples: int = None
    max_train: int = None
    validation_fraction: float = 0.15
    split_seed: int = 0
    decoy: dict = None

    def load(self):
        """The `keras_edda.datasets.Dataset` this spec names (the same arrays on every call)."""
        from keras_edda import datasets

        data = datasets.load(self.dataset, data_dir=self.data_dir, download=self.download,
                             image_size=self.image_size, channels=self.channels, max_examples=self.max_examples,
                             validation_fraction=self.validation_fraction, split_seed=self.split_seed,
                             decoy=self.decoy)
        return datasets.subset_train(data, self.max_train, self.split_seed)


@dataclasses.dataclass
class Job:
    """One comparison: what `compare` trains and scores, and where it writes.

    Args:
        out: the output folder.
        data: a `DataSpec`.
        model: `"cnn"`, `"resnet"` or a `.keras` file (`ModelFactory`).
        settings: the `protocol.Settings`.
        verbose: Keras' `fit` verbosity.
        command: the command line, recorded in results.json.
    """

    out: str
    data: DataSpec
    model: str
    settings: protocol.Settings
    verbose: int = 2
    command: str = None


@dataclasses.dataclass
class Prepared:
    """What `prepare` found: the data, the model factory, the config and the runs already finished."""

    data: object
    factory: object
    config: dict
    runs: list


@dataclasses.dataclass
class RunResult:
    """What one (method, seed) run hands back: its record, and seed 0's explanation row as PNG bytes."""

    record: dict
    explanations_png: bytes = None


def run_one(job, method, seed, prepared=None, data_fingerprint=None, callbacks=()):
    """Trains and scores one (method, seed) run of `job`; any executor calls this.

    Args:
        job: the `Job`.
        method, seed: the run.
        prepared: the parent's `Prepared` (an in-process run); `None` in a
            worker, which loads the data again.
        data_fingerprint: in a worker, the parent's data fingerprint; data
            that load differently there (another file, another machine's
            copy) are refused.
        callbacks: added to `fit`'s.

    Returns:
        A `RunResult`.
    """
    import keras
    import tensorflow as tf

    from keras_edda.experiments.factory import ModelFactory
    from keras_edda.ops import overlay

    if prepared is None:
        data = job.data.load()
        fingerprint = results.data_fingerprint(data)
        if data_fingerprint is not None and fingerprint != data_fingerprint:
            raise ValueError(f"the data this worker loaded differ from the parent's (fingerprint "
                             f"{fingerprint[:12]}, expected {data_fingerprint[:12]})")
        factory = ModelFactory(job.model, data.image_shape, data.num_classes)
    else:
        data, factory = prepared.data, prepared.factory
    log_dir = os.path.join(job.out, "tensorboard", f"{method}_seed{seed}")
    if os.path.isdir(log_dir):  # events of an interrupted run
        results.refuse_links_in(job.out)
        shutil.rmtree(log_dir)
    model, record = protocol.run(method, seed, data, factory, job.settings, log_dir, verbose=job.verbose,
                                 callbacks=list(callbacks))
    png = None
    if seed == 0:
        images = data.x_test[:job.settings.num_images]
        grid = overlay.image_grid([explanation_rows(model, images, job.settings.explainers[0])])
        png = tf.io.encode_png(tf.cast(tf.clip_by_value(grid, 0.0, 1.0) * 255.0, tf.uint8)).numpy()
    keras.backend.clear_session()
    return RunResult(record, png)


def explanation_rows(model, images, explainer):
    """Overlays of `explainer`'s maps of `model` on `images` (one grid row)."""
    from keras_edda import explainers as explainers_lib
    from keras_edda.ops import overlay

    maps = explainers_lib.get(explainer, model)(images)
    return overlay.overlay(images, maps)


def input_row(images):
    """The images themselves as a grid row (no heatmap)."""
    import tensorflow as tf

    from keras_edda.ops import overlay

    return overlay.overlay(images, tf.zeros_like(images[..., :1]), alpha=0.0)
