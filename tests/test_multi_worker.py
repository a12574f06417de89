"""Scale-out past one machine: two worker processes on this machine under
MultiWorkerMirroredStrategy (examples/06_multi_worker.py's custom loop, the
EDDA layer in the model) train the same weights as one process with the same
global batch."""

import importlib.util
import os

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_example():
    spec = importlib.util.spec_from_file_location(
        "multi_worker_example", os.path.join(ROOT, "examples", "06_multi_worker.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_workers_match_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_EDDA_QUICK", "1")  # 3 steps in the workers
    example = load_example()
    processes = example.start_workers(str(tmp_path), num_workers=2)
    try:
        weights, losses = example.train(tf.distribute.get_strategy(), steps=3)
    finally:
        # Hard bound: workers still running after it are killed.
        outputs = example.stop_workers(processes, timeout=240)
    assert all(process.poll() is not None for process in processes)
    assert ["worker 0" in outputs[0], "worker 1" in outputs[1]] == [True, True]
    first, first_losses = example.read_worker(str(tmp_path), 0)
    second, second_losses = example.read_worker(str(tmp_path), 1)
    assert len(first_losses) == 3 and np.all(np.isfinite(first_losses))
    np.testing.assert_allclose(first_losses, losses, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(first_losses, second_losses)
    for a, b, c in zip(first, second, weights):
        np.testing.assert_array_equal(a, b)  # the workers stay in sync
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-6)


def test_each_worker_trains_on_its_half_of_every_global_batch():
    example = load_example()
    x0, y0, per_worker = example.worker_images(2, 0, 2)
    x1, y1, _ = example.worker_images(2, 1, 2)
    whole, labels, _ = example.worker_images(2, 0, 1)
    assert per_worker == example.GLOBAL_BATCH // 2
    batch = example.GLOBAL_BATCH
    for step in range(2):
        got = np.concatenate([x0[step * per_worker:(step + 1) * per_worker],
                              x1[step * per_worker:(step + 1) * per_worker]])
        np.testing.assert_array_equal(got, whole[step * batch:(step + 1) * batch])
        np.testing.assert_array_equal(
            np.concatenate([y0[step * per_worker:(step + 1) * per_worker],
                            y1[step * per_worker:(step + 1) * per_worker]]),
            labels[step * batch:(step + 1) * batch])
