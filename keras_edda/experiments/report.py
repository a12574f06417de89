"""The report of a comparison, generated from its results.json: no hand-typed numbers.

Tables: one for the model (accuracy, calibration), one per explainer and
evaluation fill (each alignment metric and its gain over random maps), one
per explainer for the fill-free judges. Each row: mean ± std (ddof 1) per
method over seeds, the per-seed values, and for the reference method (EDDA,
or ExCon where EDDA did not run; `reference_of`) against each other method
the paired difference with its bootstrap interval, the paired test and the
Holm-adjusted p-value across the table's metrics, and a verdict that says
"better" / "worse" only when that p-value is below 0.05.
"""

import json
import math
import os

from keras_edda import statistics
from keras_edda._files import replaced_atomically, write_atomically
from keras_edda.experiments import protocol

# The method the others are compared with: EDDA where it ran, else ExCon.
REFERENCES = ("edda", "excon")
# Validation accuracy within this many points of chance marks a run as broken.
CHANCE_MARGIN = 0.05


def reference_of(methods):
    """The reference method of a comparison among `methods` (`None` if neither runs)."""
    return next((method for method in REFERENCES if method in methods), None)


def load(out):
    """The results.json of a compare output folder.

    Raises:
        ValueError: when the folder has none, or it is not a compare's.
    """
    path = os.path.join(out, "results.json")
    if not os.path.isfile(path):
        raise ValueError(f"No results.json in {out!r}: run `keras-edda compare --out {out}` first.")
    with open(path) as f:
        results = json.load(f)
    if not isinstance(results, dict) or "runs" not in results or "config" not in results:
        raise ValueError(f"{path} is not the results of `keras-edda compare`.")
    return results


def tables(runs, methods=None):
    """Per-seed values arranged by table.

    Only seeds that every method finished are used, so comparisons stay
    paired.

    Args:
        runs: the `runs` of results.json.
        methods: the methods in display order (default: as they appear).

    Returns:
        `(seeds, {table_name: {method: {metric: [value per seed]}}})` with
        table names `"model"`, `"<explainer> / <fill>"` and
        `"<explainer> / fill-free"`.
    """
    methods = list(methods or dict.fromkeys(run["method"] for run in runs))
    by_key = {(run["method"], run["seed"]): run["scores"] for run in runs}
    seeds = sorted({run["seed"] for run in runs if all((m, run["seed"]) in by_key for m in methods)})
    result = {}

    def add(table, method, metric, value):
        # Tables and rows appear only with a value: `--metric` can leave a kind of table empty.
        result.setdefault(table, {}).setdefault(method, {}).setdefault(metric, []).append(value)

    for method in methods:
        for seed in seeds:
            scores = by_key[(method, seed)]
            for metric, value in scores.items():  # accuracy, calibration, FGSM, decoy reliance: numbers
                if not isinstance(value, dict):
                    add("model", method, metric, value)
            for explainer, by_fill in scores.items():
                if not isinstance(by_fill, dict):
                    continue
                for fill, by_metric in by_fill.items():
                    for metric, value in by_metric.items():
                        if not metric.endswith("_random"):
                            add(f"{explainer} / {fill}", method, metric, value)
    return seeds, result


def comparisons(table, reference=None):
    """Paired statistics of `reference` against each other method of one table.

    `reference=None` picks it with `reference_of`.

    Returns:
        `statistics.compare_methods`' result, or `{}` with fewer than two
        seeds or without the reference method.
    """
    reference = reference or reference_of(table)
    if reference not in table or len(table) < 2:
        return {}
    first = next(iter(table[reference].values()), [])
    if len(first) < 2:
        return {}
    return statistics.compare_methods(table, reference, protocol.direction)


def _cell(values):
    stats = statistics.summary(values)
    if stats["std"] is None:
        return f"{stats['mean']:.3f}"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _comparison_cell(comparison):
    if not comparison:
        return ""
    p = comparison.get("p_holm")
    p_text = "–" if p is None else f"{p:.3f}"
    low, high = comparison["ci_low"], comparison["ci_high"]
    interval = "" if low is None else f" [{low:+.3f}, {high:+.3f}]"
    return f"{comparison['difference_mean']:+.3f}{interval}, p={p_text}: {comparison['verdict']}"


def markdown_table(name, table, seeds, reference=None, stats=None):
    """One table as markdown: means, per-seed values, comparisons, verdicts.

    `stats`: the table's `comparisons`, when the caller has them already.
    """
    methods = list(table)
    reference = reference or reference_of(table)
    stats = comparisons(table, reference) if stats is None else stats
    others = [m for m in methods if m != reference] if reference in methods else []
    header = ["metric", "better"] + methods + [f"{reference} − {o}: Δ [95 % CI], Holm p" for o in others]
    lines = [f"#### {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for metric in table[methods[0]]:
        if not all(metric in table[m] for m in methods):
            continue
        row = [f"`{metric}`", protocol.direction(metric)]
        row += [_cell(table[m][metric]) for m in methods]
        row += [_comparison_cell(stats.get(metric, {}).get(o)) for o in others]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "<details><summary>per-seed values (seeds " + ", ".join(map(str, seeds)) + ")</summary>", "",
              "| metric | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for metric in table[methods[0]]:
        if all(metric in table[m] for m in methods):
            lines.append(f"| `{metric}` | " + " | ".join(
                " / ".join(f"{v:.3f}" for v in table[m][metric]) for m in methods) + " |")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def targets(result_tables, config, reference=None, stats=None):
    """The targets of the "EDDA worth using" issue, read from the tables.

    `stats`: `{table name: comparisons}` when the caller has them already.

    Returns:
        A list of `(target, met: bool | None, evidence)`; `None` when the
        results cannot tell (a method or metric was not run).
    """
    checks = []
    model = result_tables.get("model", {})
    reference = reference or reference_of(model)
    if reference in model and "none" in model:
        # Signed as the tables' differences: reference − none, positive where the reference is better.
        mean = lambda m, k: sum(model[m][k]) / len(model[m][k])  # noqa: E731
        accuracy = mean(reference, "accuracy") - mean("none", "accuracy")
        checks.append(("accuracy at most 1 point below none", accuracy >= -0.01,
                       f"{reference} − none = {accuracy:+.4f} (+ is better)"))
        ece = mean("none", "ece") - mean(reference, "ece")
        checks.append(("ECE at most 0.02 worse than none", ece >= -0.02,
                       f"{reference} − none, signed so + is better = {ece:+.4f}"))
    training_fill = protocol.fill_label(protocol.training_fill(config.get("method_settings")))
    wanted = []
    for name in result_tables:
        if name.endswith(f"/ {protocol.FILL_FREE}"):
            wanted += [(name, "road_morf"), (name, "energy_pointing_game")]
        elif name != "model" and not name.endswith(f"/ {training_fill}"):
            wanted.append((name, "deletion_auc"))
    for name, metric in wanted:
        table = result_tables[name]
        if reference not in table or metric not in table[reference]:
            continue
        by_other = (comparisons(table, reference) if stats is None else stats[name]).get(metric, {})
        for other in [m for m in table if m != reference]:
            comparison = by_other.get(other)
            met = None if comparison is None else comparison["verdict"] == "better"
            checks.append((f"{reference} significantly better than {other} on {metric} ({name})", met,
                           _comparison_cell(comparison) or "fewer than two seeds"))
    return checks


def markdown(results, reference=None):
    """The whole report of one results.json as markdown (`reference=None`: see `reference_of`)."""
    config = results["config"]
    seeds, result_tables = tables(results["runs"], config.get("methods"))
    reference = reference or reference_of(config.get("methods") or next(iter(result_tables.values()), {}))
    # Each table's paired statistics once (bootstraps), for the header, the targets and the tables.
    stats = {name: comparisons(table, reference) for name, table in result_tables.items()}
    lines = ["## " + f"{config.get('dataset', '?')}: {', '.join(config.get('methods', []))}", ""]
    if results.get("command"):
        lines += [f"Command: `{results['command']}`", ""]
    recipe = config.get("recipe", {})
    split = config.get("split", {})
    lines.append(
        f"Surface `{config.get('surface')}`; explainers {', '.join(config.get('explainers', []))}; "
        f"seeds {', '.join(map(str, seeds))} ({len(seeds)} finished by every method); "
        f"split {split.get('train')} train / {split.get('validation')} validation / {split.get('test')} test "
        f"(split seed {split.get('split_seed')}); recipe {recipe.get('epochs')} epochs × batch "
        f"{recipe.get('batch_size')}, AdamW lr {recipe.get('learning_rate')} {recipe.get('schedule')}, "
        + (f"base augmentation {recipe['augmentation']}, " if recipe.get("augmentation") else "") +
        f"{config.get('optimizer_steps')} optimiser steps per run; method settings "
        f"`{json.dumps(config.get('method_settings', {}))}`; evaluation fills "
        f"{', '.join(map(str, config.get('eval_fills', [])))}; {_eval_images(config)} test images for the "
        "alignment metrics.")
    if reference is not None:
        lines += ["", f"Paired statistics: every seed trains every method; {reference} − other is signed so "
                  "that positive is better for the metric; 95 % percentile-bootstrap interval; Holm adjustment "
                  "across the k metrics of each table; the Wilcoxon signed-rank test where it can reach "
                  "p < 0.05 after that adjustment (n ≥ 6 seeds and 2·k / 2^n < 0.05), the paired t-test "
                  f"elsewhere (here: {_tests_used(stats)}); a verdict says better/worse only "
                  "when the adjusted p < 0.05 and the test leans the way of the mean difference. `_gain` rows are "
                  "the metric on the explainer's maps minus the metric on random maps (positive: the explainer "
                  "beats random maps).", ""]
    else:
        lines.append("")
    warnings = warnings_of(config, results["runs"])
    if warnings:
        lines += ["### Warnings", ""] + [f"- {line}" for line in warnings] + [""]
    checks = targets(result_tables, config, reference, stats)
    if checks:
        lines += ["### Targets", "", "| target | met | evidence |", "|---|---|---|"]
        for target, met, evidence in checks:
            lines.append(f"| {target} | {'yes' if met else ('no' if met is False else 'n/a')} | {evidence} |")
        lines.append("")
    lines += training_summary(results["runs"], config.get("methods"))
    lines += decoy_summary(result_tables)
    copies = _copy_summary(results["runs"])
    if copies:
        lines += ["### Copies (last epoch, mean over seeds)", "", "| method | statistic | value |", "|---|---|---|"]
        lines += [f"| {m} | {k} | {v:.3f} |" for (m, k), v in copies.items()]
        lines.append("")
    lines.append("### Tables")
    lines.append("")
    for name, table in result_tables.items():
        lines.append(markdown_table(name, table, seeds, reference, stats[name]))
    return "\n".join(lines)


def warnings_of(config, runs):
    """Lines that say when the evidence cannot carry a verdict: too few seeds, a method near chance."""
    lines = []
    seeds = {run["seed"] for run in runs}
    if runs and not statistics.can_decide(len(seeds)):
        lines.append(f"only {len(seeds)} seed(s): {statistics.seeds_note(len(seeds))}")
    chance = 1.0 / max(1, config.get("num_classes", 1))
    by_method = {}
    for run in runs:
        if "validation_accuracy" in run:
            by_method.setdefault(run["method"], []).append(run["validation_accuracy"])
    for method, values in by_method.items():
        mean = sum(values) / len(values)
        if mean <= chance + CHANCE_MARGIN:
            lines.append(f"{method}: validation accuracy {mean:.3f} is within {CHANCE_MARGIN:.2f} of chance "
                         f"({chance:.3f}): the run looks broken (too few steps, a bad learning rate?); "
                         "its scores say little")
    return lines


def training_summary(runs, methods=None):
    """Per method: validation accuracy (mean and per seed) and training seconds per run, from every run."""
    by_method = {}
    for run in sorted(runs, key=lambda run: run["seed"]):
        by_method.setdefault(run["method"], []).append(run)
    order = [m for m in (methods or []) if m in by_method] + [m for m in by_method if m not in (methods or [])]
    rows = []
    for method in order:
        accuracies = [run["validation_accuracy"] for run in by_method[method] if "validation_accuracy" in run]
        seconds = [run["train_seconds"] for run in by_method[method] if "train_seconds" in run]
        accuracy = (f"{sum(accuracies) / len(accuracies):.3f} ({', '.join(f'{a:.3f}' for a in accuracies)})"
                    if accuracies else "-")
        time = f"{sum(seconds) / len(seconds):.0f}" if seconds else "-"
        rows.append(f"| {method} | {len(by_method[method])} | {accuracy} | {time} |")
    if not rows:
        return []
    return ["### Training: what each method reached at this budget", "",
            "Every finished run, by seed; training time is the wall time of `fit` (the machine's, not a benchmark).",
            "", "| method | runs | validation accuracy: mean (per seed) | training seconds per run |",
            "|---|---|---|---|", *rows, ""]


def decoy_summary(result_tables):
    """On a decoy dataset: each method's reliance on the decoy next to where its maps put their mass.

    A faithful explainer of a model that relies on the decoy puts mass on it; the random maps' share
    is the patch's area share, the level of a map that ignores it.
    """
    model = result_tables.get("model", {})
    if not any("decoy_reliance" in by_metric for by_metric in model.values()):
        return []
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    decoy_tables = [name for name in result_tables if name.endswith(f"/ {protocol.DECOY}")]
    header = ["method", "decoy_reliance (lower: less shortcut)", "decoy_reliance_swapped"]
    for name in decoy_tables:
        explainer = name.split(" / ")[0]
        header += [f"{explainer}: mass on decoy (random maps)", f"{explainer}: mass on object (random maps)"]
    lines = ["### Decoy: how much each model uses the shortcut, and where its maps look", "",
             "Reliance is accuracy on the decoy-consistent test view minus on the random (swapped) view; "
             "mass is the share of the map's energy on the decoy patch or the object. Only RRR sees the "
             "decoy masks in training (as its annotations).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, by_metric in model.items():
        row = [method] + [f"{mean(by_metric[k]):.3f}" if k in by_metric else "-"
                          for k in ("decoy_reliance", "decoy_reliance_swapped")]
        for name in decoy_tables:
            table = result_tables[name].get(method, {})
            for metric in ("decoy_attribution", "object_attribution"):
                if metric in table:
                    gain = mean(table[f"{metric}_gain"]) if f"{metric}_gain" in table else 0.0
                    row.append(f"{mean(table[metric]):.3f} ({mean(table[metric]) - gain:.3f})")
                else:
                    row.append("-")
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def _eval_images(config):
    """The test images the alignment metrics scored: `eval_samples`, at most the test split."""
    wanted, test = config.get("eval_samples"), config.get("split", {}).get("test")
    return min(wanted, test) if isinstance(wanted, int) and isinstance(test, int) else wanted


def _tests_used(stats):
    used = sorted({cell["test"] for by_metric in stats.values()
                   for by_other in by_metric.values() for cell in by_other.values()})
    names = {"paired_t": "paired t-test", "wilcoxon": "Wilcoxon", "none": "no test (one seed)"}
    return ", ".join(names[test] for test in used) or "no comparison"


def _copy_summary(runs):
    sums = {}
    for run in runs:
        if run.get("copies"):
            for key, value in run["copies"][-1].items():
                sums.setdefault((run["method"], key), []).append(value)
    return {key: sum(values) / len(values) for key, values in sums.items()}


def plot(results, path, reference=None):
    """Bar charts (mean ± std over seeds) of the model table and each explainer's main metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, result_tables = tables(results["runs"], results["config"].get("methods"))
    # Without a seed finished by every method there is nothing to plot (the figure stays empty).
    model_metrics = next(iter(result_tables.get("model", {}).values()), {})
    panels = [("model", m) for m in protocol.MODEL_METRICS if m in model_metrics]
    for name in result_tables:
        if name == "model":
            continue
        wanted = ("road_morf", "energy_pointing_game") if name.endswith(protocol.FILL_FREE) else (
            "deletion_auc_gain", "insertion_auc_gain")
        panels += [(name, m) for m in wanted if m in next(iter(result_tables[name].values()))]
    columns = 4
    rows = max(1, math.ceil(len(panels) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.9 * rows), squeeze=False)
    colours = ["#9e9e9e", "#64b5f6", "#ef6c00", "#81c784", "#ba68c8", "#ffd54f", "#4db6ac"]
    for axis, (name, metric) in zip(axes.flat, panels):
        table = result_tables[name]
        methods = list(table)
        summaries = [statistics.summary(table[m][metric]) for m in methods]
        axis.bar(methods, [s["mean"] for s in summaries], yerr=[s["std"] or 0.0 for s in summaries], capsize=4,
                 color=[colours[i % len(colours)] for i in range(len(methods))])
        axis.set_title(f"{name}\n{metric} ({protocol.direction(metric)} is better)", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    figure.tight_layout()
    with replaced_atomically(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


def write(out, reference=None):
    """Writes `out/report.md` and `out/report.png` from `out/results.json`.

    Returns:
        The path of the markdown report.
    """
    results = load(out)
    text = "# keras-edda compare report\n\n" + markdown(results, reference) + "\n![metrics](report.png)\n"
    path = os.path.join(out, "report.md")
    write_atomically(path, text)
    plot(results, os.path.join(out, "report.png"), reference)
    return path
