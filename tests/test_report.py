"""The compare report on fabricated results: tables, targets and files (no training)."""

import json
import os
import stat

import numpy as np

from keras_edda.experiments import report
from keras_edda.experiments import results as results_lib


def fake_runs(methods, seeds, fills, fill_free=("road_morf",), shift=None):
    """Runs whose scores have the layout `compare` writes; `shift[method]` is added to every score."""
    rng = np.random.default_rng(0)
    runs = []
    for method in methods:
        for seed in seeds:
            add = (shift or {}).get(method, 0.0)
            by_fill = {fill: {"deletion_auc": float(rng.uniform(0.2, 0.3)) - add} for fill in fills}
            by_fill["fill-free"] = {name: float(rng.uniform(0.2, 0.3)) - add for name in fill_free}
            runs.append({"method": method, "seed": seed, "copies": [],
                         "scores": {"accuracy": 0.9 + add, "ece": 0.05, "grad_cam": by_fill}})
    return runs


def config(methods, fills, training_fill="blur"):
    return {"dataset": "fake", "methods": methods, "explainers": ["grad_cam"], "eval_fills": fills,
            "method_settings": {"edda": {"fill": training_fill}}}


def test_a_kind_of_table_left_empty_by_metric_selection_is_left_out():
    # `compare --metric deletion_auc` scores no fill-free metric: every run has an empty fill-free dict.
    runs = fake_runs(["none", "edda"], [0, 1, 2], ["blur"], fill_free=())
    seeds, tables = report.tables(runs, ["none", "edda"])
    assert seeds == [0, 1, 2]
    assert set(tables) == {"model", "grad_cam / blur"}
    text = report.markdown({"config": config(["none", "edda"], ["blur"]), "runs": runs})
    assert "grad_cam / fill-free" not in text and "grad_cam / blur" in text
    assert report.comparisons({"none": {}, "edda": {}}) == {}


def test_targets_skip_the_training_fill_wherever_it_is_listed():
    # EDDA trained with blur; the evaluation lists blur after an unseen constant fill.
    fills = ["constant 0", "blur"]
    runs = fake_runs(["none", "edda"], [0, 1, 2], fills, shift={"edda": 0.05})
    _, tables = report.tables(runs, ["none", "edda"])
    checked = [target for target, _, _ in report.targets(tables, config(["none", "edda"], fills))]
    deletion = [t for t in checked if "deletion_auc" in t]
    assert deletion == ["edda significantly better than none on deletion_auc (grad_cam / constant 0)"]


def test_report_of_a_run_that_no_seed_finished(tmp_path):
    # Interrupted during seed 0: the report says so instead of failing.
    runs = fake_runs(["none"], [0], ["blur"])
    results_lib.write_results(str(tmp_path), config(["none", "edda"], ["blur"]), runs)
    path = report.write(str(tmp_path))
    assert "(0 finished by every method)" in open(path).read()
    assert os.path.getsize(tmp_path / "report.png") > 0


def test_results_files_get_the_usual_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        runs = fake_runs(["none", "edda"], [0, 1], ["blur"])
        results_lib.write_results(str(tmp_path), config(["none", "edda"], ["blur"]), runs)
        report.write(str(tmp_path))
    finally:
        os.umask(umask)
    for name in ("results.json", "results.csv", "report.md", "report.png"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
    assert json.loads((tmp_path / "results.json").read_text())["seeds"] == [0, 1]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_default_eval_fills_name_each_fill_once():
    from keras_edda.experiments import protocol

    assert protocol.Settings(methods=("none", "edda")).eval_fills == (0.0, "blur", "noisy_linear")
    blur = protocol.Settings(methods=("none", "edda"), method_settings={"edda": {"fill": "blur"}})
    assert blur.eval_fills == ("blur", "noisy_linear")
    assert protocol.training_fill({"edda": {"fill": "constant", "fill_value": 0.5}}) == 0.5


def test_header_counts_the_test_images_scored():
    runs = fake_runs(["none", "edda"], [0, 1], ["blur"])
    small = {**config(["none", "edda"], ["blur"]), "eval_samples": 128, "split": {"test": 40}}
    assert "; 40 test images for the alignment metrics" in report.markdown({"config": small, "runs": runs})


def test_training_table_gives_each_method_its_validation_accuracy_and_time():
    runs = fake_runs(["none", "edda"], [1, 0], ["blur"])
    for run in runs:
        run["validation_accuracy"] = {"none": 0.5, "edda": 0.4}[run["method"]] + 0.1 * run["seed"]
        run["train_seconds"] = {"none": 100.0, "edda": 300.0}[run["method"]]
    text = report.markdown({"config": {**config(["none", "edda"], ["blur"]),
                                       "recipe": {"epochs": 4, "augmentation": "crop_flip"}}, "runs": runs})
    assert "base augmentation crop_flip" in text
    assert "| none | 2 | 0.550 (0.500, 0.600) | 100 |" in text
    assert "| edda | 2 | 0.450 (0.400, 0.500) | 300 |" in text
    assert report.training_summary([]) == []
