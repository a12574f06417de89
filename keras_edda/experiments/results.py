"""The files of a compare output folder: results.json / results.csv, the manifest, fingerprints.

Every file is written atomically (`keras_edda._files`); nothing is written
or deleted through a symbolic link, and `--overwrite` deletes only what the
manifest of an earlier compare run in the folder lists.
"""

import csv
import hashlib
import io
import json
import os
import shutil

from keras_edda._files import write_atomically

MANIFEST = ".keras-edda-manifest.json"
# What `compare` writes into its output folder (the manifest lists those a run wrote).
OUTPUTS = ("results.json", "results.csv", "explanations.png", "explanations", "tensorboard", "report.md",
           "report.png", "runs")


def write_results(out, config, runs, command=None):
    """results.json and results.csv, each written atomically.

    results.json holds the config, the runs (per-seed scores), and per
    report table the summaries over the seeds every method finished (mean,
    std with ddof 1, values) and the paired comparisons of EDDA (or ExCon,
    `report.reference_of`) with each other method (difference, bootstrap
    interval, test, Holm-adjusted p, verdict), and the command that made
    them; results.csv one row per value.

    Example:

    ```python
    write_results("runs/demo", config, runs, command="keras-edda compare ...")
    ```
    """
    from keras_edda import statistics
    from keras_edda.experiments import report

    check_unique_runs(runs, os.path.join(out, "results.json"))
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


def check_unique_runs(runs, where):
    """Raises `ValueError` when two runs share a (method, seed): one would silently shadow the other."""
    seen = set()
    for run in runs:
        key = (run.get("method"), run.get("seed"))
        if key in seen:
            raise ValueError(f"{where} holds two runs of method {key[0]!r}, seed {key[1]}; "
                             "remove one by hand (which one is right cannot be told from the file)")
        seen.add(key)


def read_results(out):
    """The contents of `out/results.json`, or `None` when there is none.

    Raises:
        ValueError: when the file is not a compare run's results, or holds
            the same (method, seed) twice.
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
    check_unique_runs(results["runs"], path)
    return results


def config_difference(stored, current):
    """`""` when two configs agree, else the first difference as text."""
    current = json.loads(json.dumps(current))
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            if key.endswith("_fingerprint"):
                what = key[:-len("_fingerprint")]
                return (f"the {what} changed since the run was started ({what} fingerprint "
                        f"{str(stored.get(key))[:12]} stored, {str(current.get(key))[:12]} now)")
            return f"{key}: {stored.get(key)!r} stored, {current.get(key)!r} now"
    return ""


def data_fingerprint(data):
    """A SHA-256 of a dataset's splits: every image's bytes and every label, in order.

    Two loads of the same files give the same value; a swapped class folder,
    a changed image or another split seed give another.
    """
    digest = hashlib.sha256()
    for part in ("train", "val", "test"):
        for array in (getattr(data, f"x_{part}"), getattr(data, f"y_{part}")):
            digest.update(str(array.shape).encode())
            digest.update(memoryview(array).cast("B") if array.flags.c_contiguous else array.tobytes())
    return digest.hexdigest()


def file_fingerprint(path):
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_links_in(out):
    """Raises `ValueError` when anything under `out` that compare writes or deletes is a symbolic link."""
    for name in OUTPUTS + (MANIFEST,):
        path = os.path.join(out, name)
        if os.path.islink(path):
            raise ValueError(f"{path} is a symbolic link (to {os.path.realpath(path)}); compare writes and "
                             "deletes only inside --out and refuses links there")
        if os.path.isdir(path):
            for folder, names, files in os.walk(path):
                for entry in names + files:
                    inner = os.path.join(folder, entry)
                    if os.path.islink(inner):
                        raise ValueError(f"{inner} is a symbolic link (to {os.path.realpath(inner)}); compare "
                                         "writes and deletes only inside --out and refuses links there")


def read_manifest(out):
    """The outputs an earlier compare run recorded as its own in `out`, or `None` without a manifest."""
    path = os.path.join(out, MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
        return [name for name in manifest["outputs"] if name in OUTPUTS]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not a keras-edda manifest; remove the folder's contents by hand") from None


def write_manifest(out):
    """Records compare's outputs in `out` (what a later `--overwrite` may delete)."""
    write_atomically(os.path.join(out, MANIFEST),
                     json.dumps({"written_by": "keras-edda compare", "outputs": list(OUTPUTS)}, indent=2))


def remove_outputs(out):
    """Deletes what the manifest of `out` lists (never through a link), then the manifest.

    Raises:
        ValueError: when `out` holds files but no manifest: they are not
            compare's to delete.
    """
    listed = read_manifest(out)
    if listed is None:
        raise ValueError(f"--overwrite: {out} holds files that no keras-edda compare run recorded as its own "
                         "(no manifest); refusing to delete them. Choose another --out or empty it by hand")
    refuse_links_in(out)
    for name in listed:
        path = os.path.join(out, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    os.remove(os.path.join(out, MANIFEST))


def format_table(table, title):
    """A text table of one report table: mean ± std (ddof 1) per method.

    Args:
        table: `{method: {metric: [value per seed]}}` (see
            `keras_edda.experiments.report.tables`).
        title: printed above it.

    Returns:
        The table as text.
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
