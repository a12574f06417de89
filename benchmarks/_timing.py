"""Timing helpers shared by the benchmark scripts."""

import statistics
import time

import tensorflow as tf


def median_seconds(fn, repeats=5, warmup=1):
    """Median wall time of `fn()` over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        _block(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_times(functions, repeats):
    """Seconds of each function per turn, {name: [seconds, ...]}: the functions are
    timed in turns so that a change of load hits all of them alike; one untimed
    warm-up call each."""
    for fn in functions.values():
        _block(fn())
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            _block(fn())
            times[name].append(time.perf_counter() - start)
    return times


def interleaved_medians(functions, repeats):
    """Median seconds of each function, timed in turns (`interleaved_times`)."""
    return {name: statistics.median(values) for name, values in interleaved_times(functions, repeats).items()}


def _block(result):
    for value in tf.nest.flatten(result):
        if hasattr(value, "numpy"):
            value.numpy()


def device_name():
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    import os
    return f"CPU: {os.cpu_count()} cores"
