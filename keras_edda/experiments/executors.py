"""Where the (method, seed) runs of a comparison run: in this process, in processes, or on Ray.

Every executor takes the pending runs and calls `on_result(RunResult)` in
this (the parent) process as each one finishes, so results.json is merged
here, atomically, one run at a time. A run that fails (an exception, a
killed worker) is reported and loses only itself; `--resume` reruns it.

- `LocalExecutor`: one run after another in this process (the default).
- `ProcessExecutor(workers)`: one fresh process per run, `workers` at a
  time; with GPUs, each worker sees one (`CUDA_VISIBLE_DEVICES`).
- `RayExecutor(address, workers)`: each run a Ray task, on Ray's local
  cluster (started here, stopped after) or the cluster at `address`.
"""

import multiprocessing
import multiprocessing.connection
import os
import traceback

from keras_edda.experiments import interrupts
from keras_edda.experiments import job as job_lib

EXECUTORS = ("local", "processes", "ray")


def _failure_message(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


class LocalExecutor:
    """Runs one run after another in this process; checks for an interrupt after every batch.

    Example:

    ```python
    compare.run(job, executor=LocalExecutor())
    ```
    """

    def describe(self):
        return "in this process"

    def run(self, job, prepared, tasks, on_result):
        """Runs `tasks`; returns the failures as `(method, seed, message)` (none: a failure stops it)."""
        import keras

        check = keras.callbacks.LambdaCallback(on_train_batch_end=interrupts.check)
        for method, seed in tasks:
            result = job_lib.run_one(job, method, seed, prepared, callbacks=[check])
            on_result(result)
            interrupts.check()
        return []


def _visible_gpus():
    """The GPUs TensorFlow sees here (names), hidden from this process afterwards so workers get them."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # already initialised: the parent keeps what it has
            pass
    return [gpu.name.rsplit(":", 1)[-1] for gpu in gpus]


def _child(connection, job, method, seed, data_fingerprint):
    try:
        result = job_lib.run_one(job, method, seed, data_fingerprint=data_fingerprint)
        connection.send(("ok", result))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which goes on
        connection.send(("error", _failure_message(error), traceback.format_exc()))
    finally:
        connection.close()


class ProcessExecutor:
    """One fresh Python process per run, at most `workers` at a time (spawned: no state shared).

    Args:
        workers: runs at the same time.
        gpus: GPU indices to spread the workers over (default: every GPU
            TensorFlow sees; one per worker, round robin). `[]` for none.

    Example:

    ```python
    compare.run(job, executor=ProcessExecutor(workers=2))
    ```
    """

    def __init__(self, workers=2, gpus=None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"`workers` must be a positive int. Received: workers={workers!r}")
        self.workers = workers
        self.gpus = gpus

    def describe(self):
        return f"{self.workers} worker processes"

    def run(self, job, prepared, tasks, on_result):
        gpus = _visible_gpus() if self.gpus is None else list(self.gpus)
        context = multiprocessing.get_context("spawn")
        fingerprint = prepared.config["data_fingerprint"]
        queue = list(tasks)
        running = {}  # sentinel -> (process, connection, method, seed, slot)
        free_slots = list(range(self.workers))
        failures = []
        try:
            while queue or running:
                while queue and free_slots:
                    method, seed = queue.pop(0)
                    slot = free_slots.pop(0)
                    receiver, sender = context.Pipe(duplex=False)
                    process = context.Process(target=_child, args=(sender, job, method, seed, fingerprint),
                                              name=f"keras-edda {method} seed {seed}")
                    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
                    if gpus:
                        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus[slot % len(gpus)])
                    try:
                        process.start()
                    finally:
                        if gpus:
                            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                            if saved is not None:
                                os.environ["CUDA_VISIBLE_DEVICES"] = saved
                    sender.close()
                    running[process.sentinel] = (process, receiver, method, seed, slot)
                ready = multiprocessing.connection.wait(list(running), timeout=1.0)
                interrupts.check()
                for sentinel in ready:
                    process, receiver, method, seed, slot = running.pop(sentinel)
                    message = None
                    if receiver.poll():
                        try:
                            message = receiver.recv()
                        except (EOFError, OSError):
                            message = None
                    process.join()
                    receiver.close()
                    free_slots.append(slot)
                    if message is not None and message[0] == "ok":
                        on_result(message[1])
                    elif message is not None:
                        failures.append((method, seed, message[1]))
                    else:
                        failures.append((method, seed, f"the worker process died (exit code {process.exitcode})"))
        finally:
            for process, receiver, *_ in running.values():
                process.terminate()
                process.join(10)
                receiver.close()
        return failures


def _ray_task(job, method, seed, data_fingerprint):
    return job_lib.run_one(job, method, seed, data_fingerprint=data_fingerprint)


class RayExecutor:
    """Each run a Ray task: on the cluster at `address`, or on Ray's local cluster started here.

    Ray is an optional extra (`pip install keras_edda[ray]`). Every node
    needs keras_edda and the data where `--dataset` / `--data-dir` name it
    (the worker loads the data itself and refuses data that differ from the
    parent's). With GPUs in the cluster each task asks for one.

    Args:
        address: a Ray cluster's address (`"ray://host:10001"`, `"auto"`);
            `None` starts a local cluster on this machine and stops it after.
        workers: runs in flight at once (default: as many as the cluster
            takes; 2 CPUs for the local cluster unless set).

    Example:

    ```python
    compare.run(job, executor=RayExecutor(workers=2))
    ```
    """

    def __init__(self, address=None, workers=None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("--executor ray needs Ray: pip install 'keras_edda[ray]' (or pip install ray)") from None
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"`workers` must be a positive int or None. Received: workers={workers!r}")
        self.address = address
        self.workers = workers

    def describe(self):
        where = f"Ray cluster {self.address}" if self.address else "Ray's local cluster"
        return f"{where}{f', {self.workers} at a time' if self.workers else ''}"

    def run(self, job, prepared, tasks, on_result):
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            if self.address:
                ray.init(address=self.address, log_to_driver=True)
            else:
                ray.init(num_cpus=self.workers or os.cpu_count(), include_dashboard=False, log_to_driver=True,
                         runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL",
                                                                                           "2")}})
        failures = []
        pending = {}
        try:
            gpus = ray.cluster_resources().get("GPU", 0)
            task = ray.remote(_ray_task).options(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=0)
            fingerprint = prepared.config["data_fingerprint"]
            queue = list(tasks)
            limit = self.workers or len(queue) or 1
            while queue or pending:
                while queue and len(pending) < limit:
                    method, seed = queue.pop(0)
                    pending[task.remote(job, method, seed, fingerprint)] = (method, seed)
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                interrupts.check()
                for ref in done:
                    method, seed = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as error:  # noqa: BLE001 - a task's failure is its own
                        cause = getattr(error, "cause", None) or error
                        failures.append((method, seed, _failure_message(cause)))
                        continue
                    on_result(result)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()
        return failures


def get(name, workers=None, ray_address=None):
    """The executor `keras-edda compare --executor NAME` runs on.

    Args:
        name: `"local"`, `"processes"` or `"ray"`.
        workers: runs at a time (processes: default 2; ray: default the
            cluster's).
        ray_address: the Ray cluster (`None`: a local one).

    Returns:
        An executor.
    """
    if name == "local":
        if workers not in (None, 1):
            raise ValueError(f"--workers needs --executor processes or ray. Received: workers={workers!r}")
        if ray_address:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor()
    if name == "processes":
        if ray_address:
            raise ValueError("--ray-address needs --executor ray")
        return ProcessExecutor(workers or 2)
    if name == "ray":
        return RayExecutor(ray_address, workers)
    raise ValueError(f"Unknown executor. Expected one of {list(EXECUTORS)}. Received: executor={name!r}")
