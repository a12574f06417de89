"""The `keras-edda` command on tiny settings: outputs, data sources, models,
bad input (one line, non-zero exit, no traceback), interruption, `explain`."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_edda import cli, explainers, models
from keras_edda.experiments import factory as factory_lib
from keras_edda.experiments import interrupts
from keras_edda.experiments import results as results_lib

TINY = ["--seeds", "1", "--epochs", "1", "--max-train", "48", "--eval-samples", "6",
        "--monitor-samples", "4", "--num-images", "2", "--verbose", "0",
        "--metric", "deletion_auc", "--metric", "road_morf", "--eval-fill", "blur"]


def compare(tmp_path, *extra):
    out = tmp_path / "out"
    code = cli.main(["compare", *TINY, "--out", str(out), *extra])
    return code, out


def write_png_folder(root, classes=2, per_class=8, size=12, rgb=True):
    rng = np.random.default_rng(0)
    for c in range(classes):
        os.makedirs(root / f"class_{c}", exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 255, (size, size, 3 if rgb else 1), dtype=np.uint8)
            image[:, : size // 2] = 255 * c  # a visible class cue
            tf.io.write_file(str(root / f"class_{c}" / f"{i}.png"), tf.io.encode_png(image))
    return root


def test_compare_on_the_embedded_digits(tmp_path, capsys):
    code, out = compare(tmp_path)
    assert code == 0
    for name in ("results.json", "results.csv", "report.md", "report.png", "explanations.png"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    assert set(results) >= {"config", "runs", "summaries", "comparisons", "seeds"}
    assert sorted(run["method"] for run in results["runs"]) == ["edda", "none", "random"]
    for run in results["runs"]:
        scores = run["scores"]
        assert set(scores) == {"accuracy", "ece", "mean_confidence", "fgsm_accuracy", "fgsm_ece", "grad_cam"}
        assert all(0.0 <= scores[k] <= 1.0 for k in ("fgsm_accuracy", "fgsm_ece"))
        assert set(scores["grad_cam"]) == {"blur", "fill-free"}
        assert set(scores["grad_cam"]["blur"]) == {"deletion_auc", "deletion_auc_random", "deletion_auc_gain"}
        assert set(scores["grad_cam"]["fill-free"]) == {"road_morf", "road_morf_random", "road_morf_gain"}
        assert all(np.isfinite(v) for v in scores["grad_cam"]["blur"].values())
        assert run["optimizer_steps"] == 1 and run["train_seconds"] > 0
    assert results["config"]["dataset"] == "digits"
    assert results["config"]["split"]["validation"] > 0
    runs = sorted(os.listdir(out / "tensorboard"))
    assert runs == ["edda_seed0", "none_seed0", "random_seed0"]
    assert os.listdir(out / "tensorboard" / "edda_seed0" / "validation")
    printed = capsys.readouterr().out
    assert "better" in printed and "report.md" in printed and "results.json" in printed
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header == "method,seed,explainer,fill,metric,value"


def test_compare_two_fills_three_methods_gives_per_seed_values_intervals_and_holm(tmp_path):
    code, out = compare(tmp_path, "--seeds", "2", "--methods", "none,edda,sgt", "--eval-fill", "0",
                        "--max-train", "32", "--batch-size", "32")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1]
    assert set(results["comparisons"]) == {"model", "grad_cam / blur", "grad_cam / constant 0",
                                           "grad_cam / fill-free"}
    summary = results["summaries"]["grad_cam / blur"]["sgt"]["deletion_auc"]
    assert len(summary["values"]) == 2 and summary["std"] is not None
    cell = results["comparisons"]["grad_cam / blur"]["deletion_auc"]["sgt"]
    assert {"difference_mean", "ci_low", "ci_high", "p_value", "p_holm", "test", "verdict"} <= set(cell)
    # 2 seeds (below statistics.MIN_SEEDS): an interval, no test, no verdict (issue 25 item 6).
    assert cell["test"] == "none" and cell["p_value"] is None and cell["p_holm"] is None
    assert cell["verdict"] == "no verdict" and cell["ci_low"] is not None
    report = (out / "report.md").read_text()
    assert "edda − sgt" in report and "per-seed values" in report and "Holm" in report
    assert cli.main(["report", str(out)]) == 0


def test_compare_on_tfds_mock_data_two_explainers(tmp_path):
    with tfds.testing.mock_data(num_examples=24):
        code, out = compare(tmp_path, "--dataset", "tfds:mnist", "--image-size", "16",
                            "--model", "resnet", "--methods", "none,edda",
                            "--explainer", "grad_cam", "--explainer", "saliency")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["dataset"] == "tfds:mnist"
    assert results["config"]["image_shape"] == [16, 16, 1]
    assert results["config"]["model"] == "resnet"
    assert {"grad_cam", "saliency"} <= set(results["runs"][0]["scores"])


def test_compare_layer_surface_and_copy_statistics(tmp_path):
    code, out = compare(tmp_path, "--methods", "edda,cutout", "--surface", "layer", "--max-train", "32")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    edda = next(run for run in results["runs"] if run["method"] == "edda")
    assert set(edda["copies"][0]) == {"non_salient_area", "non_salient_used", "salient_area", "salient_used",
                                      "copies_loss"}
    assert 0.0 < edda["copies"][0]["salient_area"] < 1.0
    assert results["config"]["surface"] == "layer"


def test_compare_on_a_folder_with_a_saved_model(tmp_path):
    folder = write_png_folder(tmp_path / "pngs")
    model_path = tmp_path / "mine.keras"
    models.small_cnn((16, 16, 3), 2, width=4).save(model_path)
    code, out = compare(tmp_path, "--dataset", f"folder:{folder}", "--image-size", "16",
                        "--model", str(model_path), "--fraction", "0.3", "--fill", "blur")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["num_classes"] == 2
    assert results["config"]["method_settings"]["edda"]["fraction"] == 0.3


def test_model_factory_reinitialises_a_saved_model(tmp_path):
    path = tmp_path / "m.keras"
    trained = models.small_cnn((8, 8, 1), 3, width=4)
    trained.set_weights([w + 1.0 for w in trained.get_weights()])
    trained.save(path)
    factory = factory_lib.ModelFactory(str(path), (8, 8, 1), 3)
    fresh = factory.build()
    assert not any(np.allclose(a, b) for a, b in zip(fresh.get_weights(), trained.get_weights())
                   if a.size > 3)


def bad_model_file(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a model")
    return str(path)


def wrong_classes_model(tmp_path):
    path = tmp_path / "three.keras"
    models.small_cnn((32, 32, 1), 3, width=4).save(path)
    return str(path)


def segmentation_model(tmp_path):
    path = tmp_path / "segmentation.keras"
    keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(10, 3, padding="same")]).save(path)
    return str(path)


@pytest.mark.parametrize("case", ["dataset", "data_dir", "model_file", "model_classes",
                                  "empty_folder", "seeds", "threshold_and_fraction",
                                  "warmup", "negative_rate", "zero_rate", "nan_fill", "nan_rate",
                                  "unwritable_out", "explainer", "resume_and_overwrite",
                                  "segmentation_model", "method", "eval_fill", "method_setting", "metric",
                                  "warmup_as_long_as_training", "excon_setting"])
def test_bad_input_gives_one_line_and_non_zero_exit(case, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    arguments, message = {
        "warmup": (["--warmup-epochs", "-1"], "expected an integer >= 0, got '-1'"),
        "negative_rate": (["--learning-rate", "-0.1"], "expected a positive number, got '-0.1'"),
        "zero_rate": (["--learning-rate", "0"], "expected a positive number, got '0'"),
        "nan_fill": (["--fill-value", "nan"], "expected a finite number, got 'nan'"),
        "nan_rate": (["--rate", "nan"], "expected a finite number, got 'nan'"),
        "unwritable_out": (["--out", str(a_file / "out")],
                           f"Cannot write to `--out`: Not a directory. Received: --out='{a_file / 'out'}'"),
        "explainer": (["--explainer", "gradcam"], "unknown explainer 'gradcam'; registered: "),
        "resume_and_overwrite": (["--resume", "--overwrite"], "not both"),
        "method": (["--methods", "none,magic"], "expected distinct methods from none"),
        "eval_fill": (["--eval-fill", "smudge"], "unknown fill 'smudge'"),
        "method_setting": (["--methods", "none,sgt", "--method-setting", "sgt.fraction=1.5"],
                           "Received: fraction=1.5"),
        "metric": (["--metric", "accuracy"], "unknown --metric 'accuracy'"),
        "warmup_as_long_as_training": (["--methods", "none,random", "--warmup-epochs", "1"],
                                       "random: warmup_epochs=1 must be below --epochs 1"),
        "excon_setting": (["--methods", "none,excon", "--method-setting", "excon.threshold=2.0"],
                          "Received: threshold=2.0"),
        "segmentation_model": (["--model", segmentation_model(tmp_path)], "is not a classifier"),
        "dataset": (["--dataset", "imagenet"], "Unknown dataset"),
        "data_dir": (["--dataset", "tfds:mnist", "--data-dir", str(tmp_path / "none")],
                     "Cannot load tfds dataset 'mnist'"),
        "model_file": (["--model", bad_model_file(tmp_path)], "not a .keras archive"),
        "model_classes": (["--model", wrong_classes_model(tmp_path)],
                          "has 3 outputs but the data has 10 classes"),
        "empty_folder": (["--dataset", f"folder:{empty}"], "at least two sub-folders"),
        "seeds": (["--seeds", "0"], "expected a positive integer, got '0'"),
        "threshold_and_fraction": (["--threshold", "0.5", "--fraction", "0.2"], "not both"),
    }[case]
    try:
        code, _ = compare(tmp_path, *arguments)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_interrupted_run_keeps_finished_results(tmp_path):
    # Started as `cmd &` from a script starts it: SIGINT ignored, no stdin. main()
    # must install the default handler, so this passes however pytest runs.
    out = tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_edda", "compare", *TINY, "--seeds", "3", "--out", str(out)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        text=True, preexec_fn=_ignore_sigint, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and process.poll() is None:
            if (out / "results.json").exists() and json.loads((out / "results.json").read_text())["runs"]:
                break
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    results = json.loads((out / "results.json").read_text())
    assert 1 <= len(results["runs"]) < 9
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]


def test_explain_writes_overlays(tmp_path, capsys):
    model_path = tmp_path / "m.keras"
    models.small_cnn((12, 12, 3), 2, width=4).save(model_path)
    folder = write_png_folder(tmp_path / "pngs", per_class=2)
    out = tmp_path / "overlays"
    code = cli.main(["explain", "--model", str(model_path), "--images", str(folder / "class_1"),
                     "--explainer", "grad_cam", "--out", str(out)])
    assert code == 0
    written = sorted(name for name in os.listdir(out) if not name.startswith("."))
    assert len(written) == 2 and all(name.endswith(".png") and "grad_cam" in name for name in written)
    image = tf.io.decode_png(tf.io.read_file(str(out / written[0])))
    assert image.shape == (48, 48, 3)
    assert cli.main(["explain", "--model", str(model_path), "--images", str(tmp_path / "nope"),
                     "--out", str(out)]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_explain_names_keep_the_suffix_and_a_dynamic_model_is_refused(tmp_path, capsys):
    model_path = tmp_path / "m.keras"
    models.small_cnn((12, 12, 3), 2, width=4).save(model_path)
    folder = tmp_path / "same_stem"
    folder.mkdir()
    picture = tf.io.encode_png(np.full((12, 12, 3), 200, np.uint8))
    tf.io.write_file(str(folder / "a.png"), picture)
    tf.io.write_file(str(folder / "a.jpg"), tf.io.encode_jpeg(np.full((12, 12, 3), 200, np.uint8)))
    out = tmp_path / "overlays"
    assert cli.main(["explain", "--model", str(model_path), "--images", str(folder),
                     "--out", str(out)]) == 0
    assert len([n for n in os.listdir(out) if not n.startswith(".")]) == 2  # same stem, same class: two files

    dynamic = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3),
                                keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    dynamic.save(tmp_path / "dynamic.keras")
    capsys.readouterr()
    assert cli.main(["explain", "--model", str(tmp_path / "dynamic.keras"), "--images", str(folder),
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "input size (None, None, 3) is not fixed" in err and "Traceback" not in err


def test_a_registered_explainer_is_a_command_line_choice(tmp_path, capsys):
    @explainers.register("test_cli_saliency")
    class MySaliency(explainers.Saliency):
        pass

    try:
        parsed = cli.build_parser().parse_args(["compare", "--explainer", "test_cli_saliency"])
        assert parsed.explainer == ["test_cli_saliency"]
        model_path = tmp_path / "m.keras"
        models.small_cnn((12, 12, 3), 2, width=4).save(model_path)
        folder = write_png_folder(tmp_path / "pngs", per_class=1)
        out = tmp_path / "overlays"
        assert cli.main(["explain", "--model", str(model_path), "--images", str(folder / "class_0"),
                         "--explainer", "test_cli_saliency", "--out", str(out)]) == 0
        assert all("test_cli_saliency" in name for name in os.listdir(out) if not name.startswith("."))
    finally:
        explainers.EXPLAINERS.pop("test_cli_saliency")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["explain", "--model", "m.keras", "--images", "x", "--explainer", "test_cli_saliency"])
    assert exit_.value.code == 2
    assert "unknown explainer 'test_cli_saliency'" in capsys.readouterr().err


def test_results_are_written_atomically(tmp_path):
    config = {"seeds": 1, "methods": ["none"]}
    runs = [{"method": "none", "seed": 0, "scores": {"accuracy": 0.5, "grad_cam": {"blur": {"deletion_auc": 0.5}}}}]
    results_lib.write_results(str(tmp_path), config, runs)
    before = (tmp_path / "results.json").read_text()
    broken = runs + [{"method": "none", "seed": 1, "scores": {"accuracy": 0.5, "grad_cam": {
        "blur": {"deletion_auc": object()}}}}]
    with pytest.raises(TypeError):
        results_lib.write_results(str(tmp_path), config, broken)
    assert (tmp_path / "results.json").read_text() == before  # whole, and the old one
    assert sorted(os.listdir(tmp_path)) == ["results.csv", "results.json"]  # no temporary left


def test_out_folder_refused_overwritten_and_resumed(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "report.png").write_bytes(b"stale")
    small = ["--max-train", "16", "--batch-size", "16"]
    code, _ = compare(tmp_path, *small)
    assert code == 2 and "is not empty; use --resume" in capsys.readouterr().err
    assert (out / "report.png").read_bytes() == b"stale"

    # No compare run recorded these files as its own: --overwrite deletes nothing.
    code, _ = compare(tmp_path, *small, "--overwrite")
    assert code == 2 and "no manifest" in capsys.readouterr().err
    assert (out / "report.png").read_bytes() == b"stale" and (out / "notes.txt").read_text() == "mine"
    (out / "report.png").unlink()
    (out / "notes.txt").unlink()

    code, _ = compare(tmp_path, *small)
    assert code == 0
    (out / "notes.txt").write_text("mine")  # a user's file beside a compare run's outputs
    code, _ = compare(tmp_path, *small, "--overwrite")
    assert code == 0
    assert (out / "notes.txt").read_text() == "mine"
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 3

    # As if interrupted while training "none": its run is missing, its events partial.
    kept = [run for run in results["runs"] if run["method"] != "none"]
    (out / "results.json").write_text(json.dumps({**results, "runs": kept}))
    (out / "runs" / "none_seed0.json").unlink()
    stale = out / "tensorboard" / "none_seed0" / "train" / "events.out.tfevents.stale"
    stale.write_bytes(b"partial")
    code, _ = compare(tmp_path, *small, "--resume")
    assert code == 0
    assert "Resuming: 2 finished runs" in capsys.readouterr().out
    resumed = json.loads((out / "results.json").read_text())
    assert sorted(run["method"] for run in resumed["runs"]) == ["edda", "none", "random"]
    assert [run for run in resumed["runs"] if run["method"] != "none"] == kept
    assert not stale.exists()
    assert len(os.listdir(out / "tensorboard" / "none_seed0" / "train")) == 1

    code, _ = compare(tmp_path, *small, "--resume", "--epochs", "2")
    assert code == 2
    err = capsys.readouterr().err
    assert "the settings differ" in err and "1 stored, 2 now" in err  # epochs or the steps they give
    assert len(err.strip().splitlines()) == 1


def test_an_interrupt_swallowed_by_a_finaliser_still_stops_the_run():
    class Finaliser:
        def __del__(self):
            raise KeyboardInterrupt  # where a SIGINT can land; Python only prints it

    previous = sys.unraisablehook
    sys.unraisablehook = interrupts.on_unraisable
    try:
        interrupts.INTERRUPTED.clear()
        Finaliser()
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()  # after every batch and every run
    finally:
        sys.unraisablehook = previous
        interrupts.INTERRUPTED.clear()


def test_compare_contrastive_methods_share_the_recipe(tmp_path):
    code, out = compare(tmp_path, "--methods", "none,supcon,excon", "--max-train", "32", "--batch-size", "16",
                        "--seeds", "2")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    steps = {run["method"]: run["optimizer_steps"] for run in results["runs"]}
    assert steps == {"none": 2, "supcon": 2, "excon": 2}
    # Without EDDA, ExCon is the method the others are compared with.
    assert set(results["comparisons"]["model"]["fgsm_accuracy"]) == {"none", "supcon"}
    assert "excon − none" in (out / "report.md").read_text()
    for run in results["runs"]:
        assert 0.0 <= run["scores"]["accuracy"] <= 1.0
        assert np.isfinite(run["scores"]["grad_cam"]["blur"]["deletion_auc"])


def test_metric_flags_split_into_fill_and_fill_free_metrics_and_take_optional_ones():
    selection = cli._metric_selection(["increase_in_confidence", "road_morf", "deletion_auc", "random_logit"])
    assert selection == {"fill_metrics": ["increase_in_confidence", "deletion_auc"],
                         "fill_free_metrics": ["road_morf"], "sanity_metrics": ["random_logit"]}
