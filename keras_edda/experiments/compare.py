"""`keras-edda compare` as a library: one job, its runs on an executor, resume, and the report.

A comparison is a set of independent (method, seed) runs. `Job` says what
to run (data, model, settings, output folder); `prepare` checks everything
that can be checked before any training and opens the output folder (fresh,
`resume` or `overwrite`); an executor (`keras_edda.experiments.executors`)
runs the pending runs where it likes and hands each result back; `record`
writes that run's own file (`runs/<method>_seed<seed>.json`) and merges it
into results.json atomically; `finish` writes the report. The CLI and the
benchmarks call these; nothing here parses a command line.
"""

import json
import os
import time

from keras_edda._errors import UserError, user_errors
from keras_edda._files import write_atomically
from keras_edda.experiments import protocol, results
from keras_edda.experiments.job import DataSpec, Job, Prepared, RunResult, input_row, run_one

__all__ = ["DataSpec", "Job", "Prepared", "RunResult", "finish", "pending_runs", "prepare", "record", "run",
           "run_one", "summary_lines"]


def pending_runs(methods, seeds, finished=()):
    """The (method, seed) runs still to do, seed by seed: the one loop over seeds and methods.

    Example:

    ```python
    pending_runs(("none", "edda"), 2, finished={("none", 0)})
    # [("edda", 0), ("none", 1), ("edda", 1)]
    ```
    """
    finished = set(finished)
    return [(method, seed) for seed in range(seeds) for method in methods if (method, seed) not in finished]


def check_method_settings(settings, image_shape, num_classes):
    """Builds every method once on a tiny model of the data's shape: bad settings fail before training."""
    import keras

    probe = keras.Sequential([keras.Input(tuple(image_shape)), keras.layers.Conv2D(2, 3, name="conv"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(num_classes)])
    for method in settings.methods:
        try:
            if method in protocol.MODEL_METHODS:
                protocol.model_method(method, settings, tuple(image_shape), num_classes, 1)
            else:
                layer = protocol.method_layer(method, probe, settings, 1)
                if layer is None:
                    continue
                made_for = getattr(getattr(layer, "fill_fn", None), "image_shape", None)  # a learned inpainter
                shape = tuple(image_shape) if layer.data_format == "channels_last" else \
                    tuple(image_shape[1:]) + tuple(image_shape[:1])
                if made_for is not None and tuple(made_for) != shape:
                    raise ValueError(f"its fill was made for images of shape {tuple(made_for)} (channels last), "
                                     f"the data's are {shape}; train an inpainter at the data's size")
        except (ValueError, TypeError) as error:
            raise ValueError(f"--methods {method}: {_unknown_setting_hint(method, settings, error)}") from None


def _unknown_setting_hint(method, settings, error):
    """The error's first line; for an unknown setting, the method the user wrote and the closest valid one."""
    import difflib
    import inspect

    text = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    if "Unrecognized keyword arguments" not in text and "unexpected keyword" not in text:
        return text
    from keras_edda import methods as methods_lib

    cls = methods_lib.get(method)
    valid = [name for klass in cls.__mro__ if klass.__module__.startswith("keras_edda")
             for name in inspect.signature(klass.__init__).parameters if name not in ("self", "model", "kwargs")]
    given = protocol.settings_of(method, settings.method_settings)
    unknown = [name for name in given if name not in valid]
    if not unknown:
        return text
    close = difflib.get_close_matches(unknown[0], valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid settings: {', '.join(sorted(set(valid)))}"
    return f"unknown setting {unknown[0]!r} of method {method!r}{hint}"


def check_warmup(settings):
    """Refuses a warm-up as long as training: the method would never train on a copy."""
    epochs = settings.recipe.epochs
    for method in settings.methods:
        warmup = protocol.settings_of(method, settings.method_settings).get("warmup_epochs", 0)
        if isinstance(warmup, (int, float)) and warmup >= epochs:
            raise ValueError(f"{method}: warmup_epochs={warmup} must be below --epochs {epochs}, "
                             "else the method never trains on a copy")


def prepare(job, resume=False, overwrite=False):
    """Checks the job and opens its output folder, before any training.

    Loads the data (and fingerprints it), builds the model factory (and
    fingerprints a `.keras` file), checks every method's settings on the
    data's shape, and opens `job.out`: an empty or new folder starts fresh;
    `resume` continues the run in it (same settings, same data, same model
    file); `overwrite` deletes what an earlier compare run recorded as its
    own (the manifest) and nothing else. Links inside the folder are refused.

    Returns:
        A `Prepared`.

    Raises:
        UserError: for anything the user can fix, in one line.
    """
    from keras_edda import _checks
    from keras_edda import methods as methods_lib
    from keras_edda.experiments.factory import ModelFactory

    if resume and overwrite:
        raise UserError("set --resume or --overwrite, not both")
    user_errors(_checks.check_writable_folder, job.out, "--out")
    user_errors(results.refuse_links_in, job.out)
    settings = job.settings
    user_errors(check_warmup, settings)
    data = user_errors(job.data.load)
    if not len(data.x_val):
        raise UserError("the validation split is empty; use --validation-fraction > 0")
    if len(data.x_train) < data.num_classes or len(set(data.y_train.tolist())) < 2:
        raise UserError(f"the training split has {len(data.x_train)} images of "
                        f"{len(set(data.y_train.tolist()))} classes; use a smaller --validation-fraction "
                        "or more --max-train")
    factory = user_errors(ModelFactory, job.model, data.image_shape, data.num_classes)
    if factory.spec != "cnn" and set(settings.methods) & set(protocol.MODEL_METHODS):
        raise UserError(f"--methods supcon / excon train the built-in cnn's encoder; --model is {job.model!r}")
    user_errors(check_method_settings, settings, data.image_shape, data.num_classes)
    for method in settings.methods:
        if method not in (protocol.NONE,) + protocol.MODEL_METHODS and \
                methods_lib.get(method).uses_annotations:
            user_errors(protocol.annotation_masks, data, method)
    config = {"dataset": data.name, "model": job.model, "image_shape": list(data.image_shape),
              "num_classes": data.num_classes, "split": data.split_info(),
              "optimizer_steps": protocol.steps_budget(settings, len(data.x_train)), **settings.to_dict(),
              "data_fingerprint": results.data_fingerprint(data)}
    if factory.is_file:
        config["model_fingerprint"] = results.file_fingerprint(job.model)
    runs = _open_output(job, config, resume, overwrite)
    return Prepared(data, factory, config, runs)


def _open_output(job, config, resume, overwrite):
    out = job.out
    if os.listdir(out):
        stored = user_errors(results.read_results, out)
        if resume:
            if stored is None:
                raise UserError(f"--resume: {out} holds no results.json of a compare run")
            difference = results.config_difference(stored["config"], config)
            if difference.startswith("the "):  # the data or the model file changed
                raise UserError(f"--resume: {difference}; use the same data and model, or another --out")
            if difference:
                raise UserError(f"--resume: the settings differ from the run in {out} ({difference}); "
                                "use the same settings, --overwrite or another --out")
            runs = stored["runs"] + _unmerged_runs(out, stored["runs"], config)
            results.write_manifest(out)
            results.write_results(out, config, runs, stored.get("command"))
            return runs
        if not overwrite:
            raise UserError(f"--out {out} is not empty; use --resume to continue the run in it, "
                            "--overwrite to replace it, or another folder")
        user_errors(results.remove_outputs, out)
    results.write_manifest(out)
    results.write_results(out, config, [], job.command)
    return []


def run_path(out, method, seed):
    """The file a finished run's record is written to before it is merged into results.json."""
    return os.path.join(out, "runs", f"{method}_seed{seed}.json")


def _unmerged_runs(out, runs, config):
    """Runs whose own file was written (by any executor) but that results.json does not hold yet."""
    folder = os.path.join(out, "runs")
    if not os.path.isdir(folder):
        return []
    done = {(run["method"], run["seed"]) for run in runs}
    found = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name)) as f:
                stored = json.load(f)
            record, fingerprint = stored["record"], stored["config_fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a partial or foreign file: that run is simply done again
        if fingerprint == config_fingerprint(config) and (record["method"], record["seed"]) not in done:
            found.append(record)
            done.add((record["method"], record["seed"]))
    return found


def config_fingerprint(config):
    """A short hash of a config: a run's own file is merged only into the run that made it."""
    import hashlib

    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def record(job, prepared, result):
    """Writes a finished run's own file and PNG, then merges it into results.json (each atomically)."""
    out, run = job.out, result.record
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    write_atomically(run_path(out, run["method"], run["seed"]),
                     json.dumps({"config_fingerprint": config_fingerprint(prepared.config), "record": run}))
    if result.explanations_png is not None:
        os.makedirs(os.path.join(out, "explanations"), exist_ok=True)
        write_atomically(os.path.join(out, "explanations", f"{run['method']}.png"), result.explanations_png)
    prepared.runs.append(run)
    results.write_results(out, prepared.config, prepared.runs, job.command)


def finish(job, prepared):
    """Writes report.md / report.png and the explanations grid; returns the report's path."""
    import tensorflow as tf

    from keras_edda.experiments import report
    from keras_edda.ops import overlay

    out = job.out
    results.write_results(out, prepared.config, prepared.runs, job.command)
    path = report.write(out)
    rows_dir = os.path.join(out, "explanations")
    names = ("input",) + job.settings.methods
    grid = [_read_png(p) for p in (os.path.join(rows_dir, f"{name}.png") for name in names) if os.path.exists(p)]
    if grid:
        overlay.write_png(os.path.join(out, "explanations.png"), tf.concat(grid, axis=0), scale=3)
    return path


def _read_png(path):
    import tensorflow as tf

    return tf.cast(tf.io.decode_png(tf.io.read_file(path), channels=3), tf.float32) / 255.0


def run(job, resume=False, overwrite=False, executor=None, progress=True):
    """Runs a whole comparison: prepare, every pending run on `executor`, the report.

    Args:
        job: the `Job`.
        resume, overwrite: how to open an output folder that holds files.
        executor: a `keras_edda.experiments.executors` executor (default:
            in-process, one run after another).
        progress: show a progress bar.

    Returns:
        `(prepared, failures, report_path)`; `failures` lists
        `(method, seed, message)` of runs that failed (resumable).

    Example:

    ```python
    job = Job("runs/demo", DataSpec("digits"), "cnn", protocol.Settings(seeds=3))
    prepared, failures, path = run(job)
    ```
    """
    from tqdm import tqdm

    from keras_edda.experiments import executors, report
    from keras_edda.ops import overlay

    executor = executor or executors.LocalExecutor()
    prepared = prepare(job, resume, overwrite)
    data, settings, out = prepared.data, job.settings, job.out
    print(f"Data {data.name}: {len(data.x_train)} train / {len(data.x_val)} validation / {len(data.x_test)} test "
          f"images {data.image_shape}, {data.num_classes} classes. Methods {', '.join(settings.methods)} "
          f"({settings.surface} surface), {prepared.config['optimizer_steps']} optimiser steps each, "
          f"{executor.describe()}. Output: {out}")
    if prepared.runs:
        print(f"Resuming: {len(prepared.runs)} finished runs in {out} are kept")
    for line in report.warnings_of(prepared.config, [{"seed": s} for s in range(settings.seeds)]):
        print(f"warning: {line}")
    os.makedirs(os.path.join(out, "explanations"), exist_ok=True)
    overlay.write_png(os.path.join(out, "explanations", "input.png"),
                      overlay.image_grid([input_row(data.x_test[:settings.num_images])]))
    finished = {(run["method"], run["seed"]) for run in prepared.runs}
    tasks = pending_runs(settings.methods, settings.seeds, finished)
    bar = tqdm(total=len(settings.methods) * settings.seeds, initial=len(finished), desc="compare", unit="run",
               disable=not progress)
    started = time.perf_counter()

    def on_result(result):
        record(job, prepared, result)
        bar.update(1)

    try:
        failures = executor.run(job, prepared, tasks, on_result)
    except KeyboardInterrupt:
        bar.close()
        print(f"Interrupted: the {len(prepared.runs)} finished runs are in {out}/results.json "
              "(--resume continues)", flush=True)
        raise
    bar.close()
    path = finish(job, prepared)
    if failures:
        print(f"{len(failures)} run(s) failed after {time.perf_counter() - started:.0f} s; the others are kept "
              f"and `--resume` reruns only these:")
        for method, seed, message in failures:
            print(f"  {method}, seed {seed}: {message}")
    return prepared, failures, path


def summary_lines(job, prepared):
    """What the command prints after a comparison: the targets, the main tables, where the files are."""
    from keras_edda.experiments import report

    out, settings = job.out, job.settings
    lines = [""]
    for line in report.warnings_of(prepared.config, prepared.runs):
        lines.append(f"warning: {line}")
    seeds, result_tables = report.tables(prepared.runs, settings.methods)
    for check, met, evidence in report.targets(result_tables, prepared.config):
        lines.append(f"{'yes' if met else ('no ' if met is False else 'n/a')}  {check}: {evidence}")
    if "model" in result_tables:
        lines += ["", results.format_table(result_tables["model"], "model")]
    first = f"{settings.explainers[0]} / {protocol.FILL_FREE}"
    if first in result_tables:
        lines += ["", results.format_table(result_tables[first], first)]
    lines += ["", f"Report: {out}/report.md (every table, per-seed values, intervals, Holm-adjusted verdicts), "
              f"{out}/report.png",
              f"Results: {out}/results.json, {out}/results.csv",
              f"Explanations: {out}/explanations.png (rows: input, {', '.join(settings.methods)}; seed 0)",
              f"TensorBoard: tensorboard --logdir {out}/tensorboard"]
    return lines
