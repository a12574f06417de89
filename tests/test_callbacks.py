"""AlignmentCallback in real `fit` runs: logs, TensorBoard event files, a
real TensorBoard server, EarlyStopping, bad input."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn
from tensorboard.backend.event_processing import event_accumulator

from keras_edda import explainers, metrics
from keras_edda.callbacks import AlignmentCallback

FAST_METRICS = ("average_drop", metrics.DeletionAUC(steps=4))


def training_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return random_images(n, (16, 16, 3), seed=seed), rng.integers(0, 5, n)


def compiled_cnn():
    model = small_cnn((16, 16, 3), 5)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def read_scalars(log_dir):
    accumulator = event_accumulator.EventAccumulator(
        os.path.join(log_dir, "validation"), size_guidance={event_accumulator.TENSORS: 0,
                                                            event_accumulator.IMAGES: 0})
    accumulator.Reload()
    scalars = {}
    for tag in accumulator.Tags()["tensors"]:
        values = [(e.step, tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)]
        if all(value.ndim == 0 for _, value in values):
            scalars[tag] = [(step, float(value)) for step, value in values]
    return scalars, accumulator


def test_logs_event_files_and_values_equal_direct_metrics(tmp_path):
    x, y = training_data()
    model = compiled_cnn()
    callback = AlignmentCallback((x, y), explainers=("grad_cam", "saliency"),
                                 metrics=FAST_METRICS, log_dir=tmp_path, max_samples=12,
                                 num_images=3)
    assert not os.listdir(tmp_path)  # nothing written at construction
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0,
                        validation_data=(x[:8], y[:8]), callbacks=[callback, keras.callbacks.TensorBoard(tmp_path)])
    keys = {f"val_alignment_{e}_{m}" for e in ("grad_cam", "saliency")
            for m in ("average_drop", "deletion_auc")}
    assert keys <= set(history.history)
    assert all(len(history.history[k]) == 2 for k in keys)

    # The last logged values equal the metrics computed directly on the subset.
    subset = x[:12]
    for name, explainer in [("grad_cam", explainers.GradCAM(model)),
                            ("saliency", explainers.Saliency(model))]:
        maps = explainer(subset)
        expected = {"average_drop": metrics.AverageDrop()(model, subset, maps),
                    "deletion_auc": metrics.DeletionAUC(steps=4)(model, subset, maps)}
        for metric, values in expected.items():
            np.testing.assert_allclose(history.history[f"val_alignment_{name}_{metric}"][-1],
                                       float(np.mean(values)), rtol=1e-5)

    scalars, accumulator = read_scalars(tmp_path)
    for name in ("grad_cam", "saliency"):
        for metric in ("average_drop", "deletion_auc"):
            # Once, through keras.callbacks.TensorBoard (issue 9: it was also
            # written as alignment/<explainer>/<metric>).
            assert [tag for tag in scalars if f"{name}_{metric}" in tag or f"{name}/{metric}" in tag] \
                == [f"epoch_alignment_{name}_{metric}"]
            logged = scalars[f"epoch_alignment_{name}_{metric}"]
            assert [step for step, _ in logged] == [0, 1]
            np.testing.assert_allclose([v for _, v in logged],
                                       history.history[f"val_alignment_{name}_{metric}"], rtol=1e-6)
        overlays = accumulator.Tensors(f"alignment/{name}/overlay")
        assert len(overlays) == 2
        # An image summary holds width, height, then one PNG per image.
        assert len(tf.make_ndarray(overlays[-1].tensor_proto)) == 2 + 3
    # keras.callbacks.TensorBoard wrote its validation loss in the same run.
    assert "epoch_loss" in scalars


def test_freq_and_dataset_input(tmp_path):
    x, y = training_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(5)
    callback = AlignmentCallback(dataset, metrics=FAST_METRICS, freq=2, max_samples=7,
                                 log_dir=tmp_path, num_images=0, write_scalars=True)
    history = compiled_cnn().fit(x, y, epochs=4, verbose=0, callbacks=[callback])
    assert callback.images.shape == (7, 16, 16, 3)
    np.testing.assert_allclose(callback.images, x[:7])
    assert len(history.history["val_alignment_grad_cam_deletion_auc"]) == 2
    scalars, _ = read_scalars(tmp_path)
    assert [s for s, _ in scalars["epoch_alignment_grad_cam_deletion_auc"]] == [1, 3]
    unbatched = AlignmentCallback(tf.data.Dataset.from_tensor_slices(x), max_samples=40)
    assert unbatched.load_images().shape[0] == 32
    as_dict = AlignmentCallback(tf.data.Dataset.from_tensor_slices({"images": x, "labels": y}))
    np.testing.assert_allclose(as_dict.load_images(), x)


def test_data_is_read_when_training_begins():
    x, y = training_data()
    reads = []

    def images():
        reads.append(1)
        yield from x

    dataset = tf.data.Dataset.from_generator(
        images, output_signature=tf.TensorSpec((16, 16, 3), tf.float32))
    callback = AlignmentCallback(dataset, metrics=("average_drop",), max_samples=4)
    assert not reads and callback.images is None
    compiled_cnn().fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert reads and callback.images.shape == (4, 16, 16, 3)


def test_wrong_size_and_unwritable_log_dir_fail_before_the_first_epoch(tmp_path):
    x, y = training_data()
    small = random_images(8, (8, 8, 3))
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for callback, message in [
        (AlignmentCallback(small), r"`data` must fit the input of model 'small_cnn'.*\(8, 8, 8, 3\)"),
        (AlignmentCallback(x, log_dir=a_file / "logs"), "Cannot write to `log_dir`"),
    ]:
        model = compiled_cnn()
        with pytest.raises(ValueError, match=message):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
        assert int(model.optimizer.iterations) == 0


def test_early_stopping_on_an_alignment_key():
    x, y = training_data()
    # "higher is better" on a metric that cannot improve by min_delta=1.0.
    callbacks = [
        AlignmentCallback(x, metrics=("average_drop",), max_samples=8),
        keras.callbacks.EarlyStopping(monitor="val_alignment_grad_cam_average_drop",
                                      mode="max", patience=1, min_delta=1.0),
    ]
    history = compiled_cnn().fit(x, y, epochs=10, verbose=0, callbacks=callbacks)
    assert len(history.history["loss"]) == 2
    assert callbacks[1].stopped_epoch == 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_real_tensorboard_server_serves_the_scalars(tmp_path):
    x, y = training_data()
    callback = AlignmentCallback(x, metrics=FAST_METRICS, log_dir=tmp_path, max_samples=8,
                                 write_scalars=True)
    history = compiled_cnn().fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tag = "epoch_alignment_grad_cam_deletion_auc"
    url = (f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run=validation&tag="
           + urllib.parse.quote(tag, safe=""))
    try:
        deadline, rows = time.time() + 90, None
        while time.time() < deadline:
            try:
                rows = get_json(url)
                if len(rows) == 2:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert rows is not None and len(rows) == 2, rows
        # Rows are [wall_time, step, value].
        assert [row[1] for row in rows] == [0, 1]
        np.testing.assert_allclose([row[2] for row in rows],
                                   history.history["val_alignment_grad_cam_deletion_auc"], rtol=1e-6)
        tags = get_json(f"http://127.0.0.1:{port}/data/plugin/images/tags")
        assert "alignment/grad_cam/overlay" in tags["validation"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_bad_input():
    x, _ = training_data(4)
    with pytest.raises(TypeError, match="Received: data of type str"):
        AlignmentCallback("images/")
    with pytest.raises(ValueError, match="Received: metric='iou'"):
        AlignmentCallback(x, metrics=("iou",))
    with pytest.raises(ValueError, match="Received: explainer='no_such_explainer'"):
        AlignmentCallback(x, explainers=("no_such_explainer",))
    with pytest.raises(ValueError, match="Received: freq=0"):
        AlignmentCallback(x, freq=0)
    with pytest.raises(ValueError, match="Received: max_samples=-1"):
        AlignmentCallback(x, max_samples=-1)
    with pytest.raises(ValueError, match="rank 4"):
        AlignmentCallback(x[0])
    with pytest.raises(ValueError, match="no images"):
        AlignmentCallback(x[:0])
    with pytest.raises(ValueError, match="empty dataset"):
        AlignmentCallback(tf.data.Dataset.from_tensor_slices(x).take(0)).load_images()
    with pytest.raises(ValueError, match="needs a `log_dir`"):
        AlignmentCallback(x, write_scalars=True)
    with pytest.raises(ValueError, match="needs an 'images' key"):
        AlignmentCallback(tf.data.Dataset.from_tensor_slices({"x": x}))


def test_config_round_trip():
    x, _ = training_data(4)
    callback = AlignmentCallback(x, explainers=("saliency",), metrics=("insertion_auc",), freq=3)
    config = callback.get_config()
    assert json.dumps(config)
    again = AlignmentCallback.from_config({**config, "data": x})
    assert again.get_config() == config
    with pytest.raises(ValueError, match="needs the data"):
        AlignmentCallback.from_config(config)
