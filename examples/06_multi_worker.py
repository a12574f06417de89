"""The EDDA layer on several machines: MultiWorkerMirroredStrategy and a custom training loop.

    python examples/06_multi_worker.py

starts two worker processes on this machine (a cluster on 127.0.0.1), trains
the same model in one process with the same global batch, and checks that
both give the same weights. On a real cluster, start one process per machine
with its `TF_CONFIG` set (the cluster's addresses and the machine's index):

    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
        python examples/06_multi_worker.py --worker

Keras 3's `fit` does not run under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585), so the training step is written out: each worker
runs the model (the EDDA layer inside it adds its copies' loss) on its share
of the global batch in `strategy.run`, the losses are scaled to the global
batch, and the optimizer sums the gradients over the workers. The classifier
has no batch normalisation: its statistics would be per worker (use
`keras.layers.BatchNormalization(synchronized=True)` where that matters).
See docs/scaling.md.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

QUICK = os.environ.get("KERAS_EDDA_QUICK") == "1"  # the test suite's short run
GLOBAL_BATCH = 16
STEPS = 3 if QUICK else 20
TIMEOUT = 300  # seconds the launcher waits for its workers


def worker_images(steps, worker, num_workers):
    """The images and labels of one worker: its slice of every global batch."""
    import keras_edda

    (x, y), _ = keras_edda.datasets.load_digits(image_size=16)
    per_worker = GLOBAL_BATCH // num_workers
    x = x[: steps * GLOBAL_BATCH].reshape(steps, GLOBAL_BATCH, *x.shape[1:])
    y = y[: steps * GLOBAL_BATCH].reshape(steps, GLOBAL_BATCH)
    part = slice(worker * per_worker, (worker + 1) * per_worker)
    return x[:, part].reshape(-1, *x.shape[2:]), y[:, part].reshape(-1), per_worker


def train(strategy, steps=STEPS):
    """Trains the model with the EDDA layer for `steps` global batches.

    Returns:
        `(classifier weights, losses per step)` as NumPy arrays.
    """
    import keras
    import tensorflow as tf

    import keras_edda

    keras.utils.set_random_seed(0)
    with strategy.scope():
        classifier = keras_edda.models.small_cnn((16, 16, 1), 10, width=8, normalization=False)
        model = keras.Sequential([
            keras.Input((16, 16, 1)),
            keras_edda.methods.EDDA(classifier, rate=1.0, seed=0),
            classifier,
        ])
        optimizer = keras.optimizers.SGD(0.05)

    def dataset(context):
        x, y, per_worker = worker_images(steps, context.input_pipeline_id, context.num_input_pipelines)
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(per_worker)

    iterator = iter(strategy.distribute_datasets_from_function(dataset))

    def step(images, labels):
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)  # the EDDA layer adds its loss
            per_image = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            loss = tf.nn.compute_average_loss(per_image, global_batch_size=GLOBAL_BATCH)
            # The layer's loss is a mean over this worker's images: scaled to the global batch.
            loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    @tf.function
    def train_step(iterator):
        losses = strategy.run(step, args=next(iterator))
        return strategy.reduce("SUM", losses, axis=None)

    losses = [float(train_step(iterator)) for _ in range(steps)]
    return [np.asarray(w) for w in classifier.get_weights()], np.asarray(losses)


def run_worker(out):
    """One worker of the cluster in `TF_CONFIG`; worker 0 writes `out`."""
    import tensorflow as tf

    # Made first: the strategy sets up the cluster before any other TF work.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    weights, losses = train(strategy)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    if out:
        np.savez(os.path.join(out, f"worker{index}.npz"), losses, *weights)
    print(f"worker {index}: losses {np.round(losses, 4).tolist()}")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(out, num_workers=2):
    """Starts `num_workers` processes of this script as a local cluster."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(num_workers)]}
    processes = []
    for index in range(num_workers):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "CUDA_VISIBLE_DEVICES": ""}
        processes.append(subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "--out", out],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    return processes


def stop_workers(processes, timeout):
    """Waits up to `timeout` seconds for the workers; kills those still running.

    Returns:
        Their outputs; raises `RuntimeError` when one failed or timed out.
    """
    outputs, failed = [], []
    try:
        for index, process in enumerate(processes):
            try:
                output, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                failed.append(f"worker {index} timed out after {timeout} s")
                break
            outputs.append(output)
            if process.returncode != 0:
                failed.append(f"worker {index} exited with {process.returncode}:\n{output[-3000:]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    if failed:
        raise RuntimeError("\n".join(failed))
    return outputs


def read_worker(out, index):
    with np.load(os.path.join(out, f"worker{index}.npz")) as saved:
        arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    return arrays[1:], arrays[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help="run as one worker of TF_CONFIG's cluster")
    parser.add_argument("--out", help="folder for the workers' weights")
    args = parser.parse_args()
    if args.worker:
        run_worker(args.out)
        return
    with tempfile.TemporaryDirectory() as out:
        processes = start_workers(out)
        import tensorflow as tf

        weights, losses = train(tf.distribute.get_strategy())  # one process, same global batch
        stop_workers(processes, TIMEOUT)
        distributed, distributed_losses = read_worker(out, 0)
    print(f"one process:  losses {np.round(losses, 4).tolist()}")
    print(f"two workers:  losses {np.round(distributed_losses, 4).tolist()}")
    np.testing.assert_allclose(distributed_losses, losses, rtol=1e-4, atol=1e-6)
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(distributed, weights))
    print(f"largest weight difference after {STEPS} steps: {difference:.2e}")
    for a, b in zip(distributed, weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    print("two workers and one process trained the same weights")


if __name__ == "__main__":
    main()
