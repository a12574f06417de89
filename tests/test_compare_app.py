"""The compare application's shape and its safety: one home (`keras_edda.experiments`), no import
circles, nothing a user made lost or overwritten, resume only on the same data and model, fast
`--help`, and the executors (processes, Ray's local cluster) giving the in-process results."""

import ast
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_edda
from keras_edda import cli, models
from keras_edda.experiments import compare, executors, protocol, report, results

TINY = ["--seeds", "1", "--epochs", "1", "--max-train", "16", "--batch-size", "16", "--eval-samples", "4",
        "--monitor-samples", "4", "--num-images", "2", "--verbose", "0", "--metric", "deletion_auc",
        "--eval-fill", "blur"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(keras_edda.__file__)))


def run_cli(*args):
    return cli.main(list(args))


# --- structure -------------------------------------------------------------------------------

def _import_graph(package_dir):
    modules = {}
    for folder, _, files in os.walk(package_dir):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                name = os.path.relpath(path[:-3], os.path.dirname(package_dir)).replace(os.sep, ".")
                modules[name.removesuffix(".__init__")] = path
    edges = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    edges[name].add(target)
    return edges


def _cycles(edges):
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_circles_and_the_library_never_imports_the_application():
    edges = _import_graph(os.path.join(ROOT, "keras_edda"))
    assert _cycles(edges) == []
    application = ("keras_edda.cli", "keras_edda.experiments", "keras_edda.experiment", "keras_edda.__main__")
    library = [name for name in edges if not name.startswith(application) and name != "keras_edda"
               and not name.startswith("keras_edda.inpainting.cli")]
    for name in library:
        upward = [target for target in edges[name] if target.startswith(application)]
        assert not upward, f"{name} imports the application: {upward}"
    ops = [name for name in edges if name.startswith("keras_edda.ops")]
    assert not any(target.startswith("keras_edda.inpainting") for name in ops for target in edges[name])


def test_help_answers_without_importing_tensorflow():
    code = ("import sys; sys.argv = ['keras-edda', '--help']\n"
            "from keras_edda import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TF', 'tensorflow' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL, cwd=ROOT)
    assert "compare" in output.stdout and "TF False" in output.stdout, output.stderr


def test_the_deprecated_experiment_module_still_answers_and_warns():
    from keras_edda import experiment
    from keras_edda.experiments.factory import ModelFactory

    with pytest.warns(DeprecationWarning, match="moved to keras_edda.experiments.factory"):
        assert experiment.ModelFactory is ModelFactory


def test_one_loop_over_seeds_and_methods():
    assert compare.pending_runs(("none", "edda"), 2, {("none", 0)}) == [("edda", 0), ("none", 1), ("edda", 1)]


# --- open metrics ------------------------------------------------------------------------------

def test_a_registered_metric_is_one_registration_away_from_compare(tmp_path):
    @keras_edda.metrics.register(default=False)
    class MapMass(keras_edda.metrics.AlignmentMetric):
        name = "test_map_mass"
        kind = "fill_free"
        score_direction = "higher"

        def score_batch(self, reader, images, maps, classes, original):
            import tensorflow as tf

            return tf.reduce_mean(maps, axis=[1, 2, 3])

    try:
        assert "test_map_mass" in protocol.metric_names("fill_free")
        assert "test_map_mass" not in protocol.metric_names("fill_free", defaults_only=True)
        assert protocol.direction("test_map_mass") == "higher"
        out = tmp_path / "out"
        assert run_cli("compare", *TINY, "--methods", "none", "--metric", "test_map_mass", "--out", str(out)) == 0
        stored = json.loads((out / "results.json").read_text())
        assert "test_map_mass" in stored["runs"][0]["scores"]["grad_cam"]["fill-free"]
    finally:
        keras_edda.metrics.METRICS.pop("test_map_mass", None)


def test_a_metric_of_an_unknown_kind_is_refused():
    class Odd:
        name, kind, score_direction = "odd", "vibes", "higher"

    with pytest.raises(ValueError, match="kind"):
        keras_edda.metrics.register(Odd)


# --- nothing a user made is lost -----------------------------------------------------------------

def test_overwrite_deletes_only_what_a_compare_run_recorded(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "tensorboard").mkdir(parents=True)
    (out / "tensorboard" / "my_run.txt").write_text("mine")
    (out / "report.md").write_text("my notes")
    assert run_cli("compare", *TINY, "--methods", "none", "--out", str(out), "--overwrite") == 2
    assert "no manifest" in capsys.readouterr().err
    assert (out / "tensorboard" / "my_run.txt").read_text() == "mine"
    assert (out / "report.md").read_text() == "my notes"


def test_links_inside_out_are_refused_and_their_targets_untouched(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("compare", *TINY, "--methods", "none", "--out", str(out)) == 0
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"precious")
    (out / "report.png").unlink()
    os.symlink(outside, out / "report.png")
    assert run_cli("compare", *TINY, "--methods", "none", "--out", str(out), "--overwrite") == 2
    assert "symbolic link" in capsys.readouterr().err
    assert outside.read_bytes() == b"precious"
    # A link inside a folder compare deletes on --resume (an interrupted run's events).
    (out / "report.png").unlink()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    os.symlink(victim, out / "tensorboard" / "none_seed0" / "link")
    assert run_cli("compare", *TINY, "--methods", "none", "--out", str(out), "--resume") == 2
    assert "symbolic link" in capsys.readouterr().err
    assert (victim / "keep.txt").read_text() == "keep"


def test_resume_refuses_changed_data_and_a_replaced_model_file(tmp_path, capsys):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for c in range(2):
        (folder / f"class_{c}").mkdir(parents=True)
        for i in range(12):
            image = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            image[:, :4] = 255 * c
            keras.utils.save_img(folder / f"class_{c}" / f"{i}.png", image)
    model_path = tmp_path / "m.keras"
    models.small_cnn((8, 8, 3), 2, width=4).save(model_path)
    flags = [*TINY, "--methods", "none", "--dataset", f"folder:{folder}", "--image-size", "8",
             "--model", str(model_path), "--out", str(tmp_path / "out")]
    assert run_cli("compare", *flags, "--seeds", "2") == 0
    capsys.readouterr()
    stored = json.loads((tmp_path / "out" / "results.json").read_text())
    stored["runs"] = stored["runs"][:1]
    (tmp_path / "out" / "results.json").write_text(json.dumps(stored))
    # Two class folders swapped: same files, other labels.
    os.rename(folder / "class_0", folder / "tmp")
    os.rename(folder / "class_1", folder / "class_0")
    os.rename(folder / "tmp", folder / "class_1")
    assert run_cli("compare", *flags, "--seeds", "2", "--resume") == 2
    err = capsys.readouterr().err
    assert "the data changed" in err and len(err.strip().splitlines()) == 1
    os.rename(folder / "class_0", folder / "tmp")
    os.rename(folder / "class_1", folder / "class_0")
    os.rename(folder / "tmp", folder / "class_1")
    models.small_cnn((8, 8, 3), 2, width=6).save(model_path)  # replaced by another architecture
    assert run_cli("compare", *flags, "--seeds", "2", "--resume") == 2
    assert "the model changed" in capsys.readouterr().err


def test_a_results_file_with_a_run_twice_is_refused(tmp_path):
    runs = [{"method": "none", "seed": 0, "scores": {"accuracy": 0.5}}] * 2
    (tmp_path / "results.json").write_text(json.dumps({"config": {}, "runs": runs}))
    with pytest.raises(ValueError, match="two runs of method 'none', seed 0"):
        results.read_results(str(tmp_path))


def test_a_misspelt_method_setting_names_the_method_and_the_closest_setting(tmp_path, capsys):
    code = run_cli("compare", *TINY, "--methods", "none,edda", "--method-setting", "edda.treshold=0.3",
                   "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2 and "'treshold' of method 'edda'" in err and "'threshold'" in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_an_almost_empty_training_split_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("compare", *TINY[:2], "--epochs", "1", "--validation-fraction", "0.999", "--methods", "none",
                   "--out", str(out)) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (out / "results.json").exists()


def test_too_few_seeds_and_a_run_at_chance_are_warned_about():
    config = {"num_classes": 10}
    runs = [{"method": "none", "seed": 0, "validation_accuracy": 0.12},
            {"method": "edda", "seed": 0, "validation_accuracy": 0.80}]
    lines = report.warnings_of(config, runs)
    assert any("only 1 seed" in line for line in lines)
    assert any(line.startswith("none: validation accuracy 0.120") for line in lines)
    assert not any(line.startswith("edda") for line in lines)


# --- explain -------------------------------------------------------------------------------------

def _saved_model(tmp_path, shape=(16, 16, 3)):
    path = tmp_path / "m.keras"
    models.small_cnn(shape, 3, width=4).save(path)
    return path


def test_explain_says_what_it_did_to_each_input_and_never_replaces_a_users_file(tmp_path, capsys):
    model_path = _saved_model(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    keras.utils.save_img(images / "wide.png", np.zeros((80, 100, 1), "uint8"))
    out = tmp_path / "out"
    assert run_cli("explain", "--model", str(model_path), "--images", str(images), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "resized 100x80 -> 16x16" in printed and "converted grey to RGB" in printed
    written = [name for name in os.listdir(out) if name.endswith(".png")]
    assert len(written) == 1
    # Its own file is replaced on a second run; a user's file of that name is not.
    assert run_cli("explain", "--model", str(model_path), "--images", str(images), "--out", str(out)) == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / written[0]).write_bytes(b"user's")
    assert run_cli("explain", "--model", str(model_path), "--images", str(images), "--out", str(other)) == 2
    assert "not written by keras-edda explain" in capsys.readouterr().err
    assert (other / written[0]).read_bytes() == b"user's"


@pytest.mark.parametrize("case", ["two_inputs", "corrupt", "nan_scale"])
def test_explain_bad_input_is_one_line(case, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    keras.utils.save_img(images / "a.png", np.zeros((16, 16, 3), "uint8"))
    model_path = _saved_model(tmp_path)
    extra = []
    if case == "two_inputs":
        first, second = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
        model = keras.Model([first, second], keras.layers.Dense(2)(keras.layers.Flatten()(first + second)))
        model_path = tmp_path / "two.keras"
        model.save(model_path)
    elif case == "corrupt":
        model_path.write_bytes(b"this is not a zip")
    else:
        extra = ["--scale", "nan"]
    with pytest.raises(SystemExit) if case == "nan_scale" else _nothing():
        code = run_cli("explain", "--model", str(model_path), "--images", str(images), "--out",
                       str(tmp_path / "o"), *extra)
        assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 or err.startswith("usage:")  # argparse prints its usage first
    assert {"two_inputs": "one image input", "corrupt": "not a .keras archive", "nan_scale": "nan"}[case] in err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- executors -----------------------------------------------------------------------------------

def _scores(out):
    stored = json.loads((out / "results.json").read_text())
    return {(run["method"], run["seed"]): run["scores"] for run in stored["runs"]}


def _assert_same_scores(first, second, tolerance=1e-6):
    assert first.keys() == second.keys()
    for key in first:
        flat_a, flat_b = _flatten(first[key]), _flatten(second[key])
        assert flat_a.keys() == flat_b.keys()
        for name in flat_a:
            assert abs(flat_a[name] - flat_b[name]) <= tolerance, (key, name, flat_a[name], flat_b[name])


def _flatten(scores, prefix=""):
    flat = {}
    for key, value in scores.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_processes_and_ray_give_the_in_process_results_and_resume_across_executors(tmp_path):
    pytest.importorskip("ray")
    # The layer surface: the map surface explains with weights that training updates while tf.data
    # prefetches, so its runs are not bit-reproducible in any executor (docs/scaling.md).
    flags = [*TINY, "--methods", "none,random,edda", "--seeds", "1", "--surface", "layer"]
    local, processes, ray_out = tmp_path / "local", tmp_path / "processes", tmp_path / "ray"
    assert run_cli("compare", *flags, "--out", str(local)) == 0
    assert run_cli("compare", *flags, "--out", str(processes), "--executor", "processes", "--workers", "2") == 0
    _assert_same_scores(_scores(local), _scores(processes))
    # Ray's local cluster, 2 workers; one finished run kept from the in-process executor.
    ray_out.mkdir()
    for name in ("results.json", results.MANIFEST):
        (ray_out / name).write_bytes((local / name).read_bytes())
    stored = json.loads((ray_out / "results.json").read_text())
    stored["runs"] = [run for run in stored["runs"] if (run["method"], run["seed"]) == ("none", 0)]
    (ray_out / "results.json").write_text(json.dumps(stored))
    assert run_cli("compare", *flags, "--out", str(ray_out), "--executor", "ray", "--workers", "2",
                   "--resume") == 0
    _assert_same_scores(_scores(local), _scores(ray_out))
    assert sorted(os.listdir(ray_out / "runs")) == ["edda_seed0.json", "random_seed0.json"]  # 2 tasks, 2 workers


def test_a_killed_worker_loses_only_its_own_run_and_resume_reruns_it(tmp_path, capsys):
    import multiprocessing
    import signal
    import threading
    import time

    flags = [*TINY, "--methods", "none,edda", "--seeds", "1", "--out", str(tmp_path / "out")]
    killed = []

    def kill_the_edda_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for child in multiprocessing.active_children():
                if child.name == "keras-edda edda seed 0" and child.pid:
                    time.sleep(1.0)
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_edda_worker, daemon=True)
    killer.start()
    code = run_cli("compare", *flags, "--executor", "processes", "--workers", "2")
    killer.join()
    printed = capsys.readouterr()
    assert killed and code == 2 and "1 run(s) failed" in printed.err
    assert "edda, seed 0: the worker process died" in printed.out
    assert list(_scores(tmp_path / "out")) == [("none", 0)]
    assert run_cli("compare", *flags, "--resume") == 0
    assert sorted(_scores(tmp_path / "out")) == [("edda", 0), ("none", 0)]


def test_executor_flags_are_checked_before_training():
    with pytest.raises(ValueError, match="--workers needs"):
        executors.get("local", workers=3)
    with pytest.raises(ValueError, match="--ray-address needs"):
        executors.get("processes", ray_address="auto")
    with pytest.raises(ValueError, match="workers"):
        executors.ProcessExecutor(workers=0)


@pytest.mark.parametrize("odd", ["folder", "dangling_link"])
def test_a_folder_dataset_with_an_odd_entry_named_like_an_image_is_one_clear_error(odd, tmp_path):
    from keras_edda import datasets

    rng = np.random.default_rng(0)
    for c in range(2):
        (tmp_path / f"class_{c}").mkdir()
        for i in range(8):
            keras.utils.save_img(tmp_path / f"class_{c}" / f"{i}.png", rng.integers(0, 255, (8, 8, 3), "uint8"))
    if odd == "folder":
        (tmp_path / "class_0" / "album.png").mkdir()
    else:
        os.symlink(tmp_path / "nowhere.png", tmp_path / "class_0" / "gone.png")
    with pytest.raises(ValueError, match="named like an image but is"):
        datasets.load_folder(str(tmp_path), image_size=8)


def test_two_seeds_with_a_constant_difference_give_no_verdict_and_the_report_says_why(tmp_path):
    from keras_edda import statistics

    def run(method, seed, accuracy):
        return {"method": method, "seed": seed, "validation_accuracy": 0.9,
                "scores": {"accuracy": accuracy, "ece": 0.1, "mean_confidence": 0.8}}

    # The case of the review: a difference of 2 of 450 test images on each of 2 seeds.
    runs = [run("none", 0, 0.9), run("edda", 0, 0.9 - 2 / 450), run("none", 1, 0.8), run("edda", 1, 0.8 - 2 / 450)]
    config = {"methods": ["none", "edda"], "num_classes": 10}
    results.write_results(str(tmp_path), config, runs)
    stored = json.loads((tmp_path / "results.json").read_text())
    cell = stored["comparisons"]["model"]["accuracy"]["none"]
    assert cell["verdict"] == statistics.NO_VERDICT and cell["p_value"] is None
    text = report.markdown(stored)
    assert "### Warnings" in text and "only 2 seed(s)" in text
    rows = [line for line in text.split("### Tables")[1].splitlines() if line.startswith("| `accuracy`")]
    assert rows and not any("worse" in row or "p=0.000" in row for row in rows)


def test_compare_on_a_decoy_dataset_reports_reliance_attribution_and_sanity(tmp_path):
    out = tmp_path / "out"
    assert run_cli("compare", *TINY, "--dataset", "digits-decoy", "--methods", "none",
                   "--metric", "random_logit", "--out", str(out)) == 0
    scores = json.loads((out / "results.json").read_text())["runs"][0]["scores"]
    assert {"decoy_reliance", "decoy_reliance_swapped"} <= set(scores)
    assert {"decoy_attribution", "object_attribution"} <= set(scores["grad_cam"]["decoy"])
    assert set(scores["grad_cam"]["sanity"]) == {"random_logit"}
    text = (out / "report.md").read_text()
    assert "### Decoy: how much each model uses the shortcut" in text and "#### grad_cam / sanity" in text


@pytest.mark.parametrize("name", sorted(keras_edda.explainers.EXPLAINERS))
def test_every_registered_explainer_is_rebuilt_from_its_config_for_a_given_model(name):
    model = models.small_cnn((16, 16, 3), 3, width=4)
    explainer = keras_edda.explainers.get(name, model)
    twin = type(explainer).from_config(explainer.get_config(), model)
    assert type(twin) is type(explainer) and twin.get_config() == explainer.get_config()
    assert twin.model is model


def test_commands_print_no_tensorflow_start_up_lines_unless_the_user_asks(tmp_path):
    runs = [{"method": "none", "seed": 0, "scores": {"accuracy": 0.5}}]
    results.write_results(str(tmp_path), {"methods": ["none"]}, runs)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"  # TensorFlow then prints its oneDNN line at start-up
    ran = subprocess.run([sys.executable, "-m", "keras_edda", "report", str(tmp_path)], capture_output=True,
                         text=True, env=env, stdin=subprocess.DEVNULL, timeout=300, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr
    assert "oneDNN" not in ran.stderr and "absl" not in ran.stderr, ran.stderr


def test_an_inpainter_made_for_another_image_size_is_refused_before_training(tmp_path, capsys):
    from keras_edda.inpainting.network import build_inpainter

    path = tmp_path / "inpainter16.keras"
    build_inpainter((16, 16, 1), filters=4, depth=1).save(path)
    out = tmp_path / "out"
    assert run_cli("compare", *TINY, "--methods", "none,edda", "--fill", f"inpainter:{path}",
                   "--out", str(out)) == 2  # the digits are 32x32
    err = capsys.readouterr().err
    assert "--methods edda" in err and "16, 16, 1" in err and len(err.strip().splitlines()) == 1
    assert not (out / "results.json").exists()
