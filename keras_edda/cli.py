"""The `keras-edda` command."""

import argparse
import os
import shutil
import signal
import sys
import threading
import time

from keras_edda._argtypes import finite_float, fraction, non_negative_int, positive_float, positive_int


class UserError(Exception):
    """A mistake in the command line: one line on stderr, exit code 2."""


# Set by SIGINT. The KeyboardInterrupt the handler raises can be swallowed
# when it lands in a finaliser (`__del__` of a TensorFlow object prints
# "Exception ignored" and goes on); the flag is checked again after every
# training batch and every run.
_INTERRUPTED = threading.Event()


def _on_sigint(signum, frame):
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def _check_interrupted(*args, **kwargs):
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


def _on_unraisable(unraisable):
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        _INTERRUPTED.set()  # swallowed in a finaliser: acted on at the next check
        return
    sys.__unraisablehook__(unraisable)




def run_demo(args):
    """Trains the small CNN on the digits and writes heatmap overlays."""
    import keras
    import tensorflow as tf

    from keras_edda import datasets, explainers, models
    from keras_edda.ops import overlay

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(image_size=32)
    model = models.small_cnn(x_train.shape[1:], 10)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=2,
              validation_data=(x_test, y_test))
    images = x_test[: args.num_images]
    labels = y_test[: args.num_images]
    rows = [overlay.overlay(images, tf.zeros_like(images), alpha=0.0)]
    names = ["grad_cam", "integrated_gradients", "occlusion"]
    settings = {"integrated_gradients": {"steps": 32}, "occlusion": {"patch_size": 4}}
    for name in names:
        explainer = explainers.get(name, model, **settings.get(name, {}))
        start = time.perf_counter()
        maps = explainer(images, labels)
        print(f"{name:>22}: {len(images)} images in {time.perf_counter() - start:.2f} s")
        rows.append(overlay.overlay(images, maps))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "explanations.png")
    overlay.write_png(path, overlay.image_grid(rows), scale=3)
    print(f"Rows: input, {', '.join(names)}. Wrote {path}")








def _explainer_name(text):
    from keras_edda.explainers import EXPLAINERS

    if text not in EXPLAINERS:
        raise argparse.ArgumentTypeError(
            f"unknown explainer {text!r}; registered: {', '.join(sorted(EXPLAINERS))}")
    return text


def _fill_name(text):
    from keras_edda.ops.fills import FILLS

    if text not in FILLS:
        raise argparse.ArgumentTypeError(f"unknown fill {text!r}; registered: {', '.join(sorted(FILLS))}")
    return text




def _salient_target(text):
    if text in ("uniform", "none", "decrease"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'uniform', 'decrease', 'none' or a number in (0, 1], got {text!r}")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected 'uniform', 'decrease', 'none' or a number in (0, 1], got {text!r}")
    return value


def _user_errors(fn, *args, **kwargs):
    """Runs a loading step; its ValueErrors are the user's: one line, exit 2."""
    try:
        return fn(*args, **kwargs)
    except ValueError as error:
        raise UserError(str(error).strip().splitlines()[0]) from None


def _edda_settings(args):
    settings = {
        "fill": args.fill, "fill_value": args.fill_value,
        "salient_target": args.salient_target, "non_salient_target": args.non_salient_target,
        "keep_if_correct": args.keep_if_correct, "margin": args.margin, "copies_weight": args.copies_weight,
        "rate": args.rate, "warmup_epochs": args.warmup_epochs,
    }
    if args.fraction is not None:
        settings["fraction"] = args.fraction
    else:
        settings["threshold"] = args.threshold
    return settings


def _method_list(text):
    from keras_edda.experiments.protocol import MODEL_METHODS
    from keras_edda.methods import METHODS

    names = [name.strip() for name in text.split(",") if name.strip()]
    known = ["none", *sorted(METHODS), *MODEL_METHODS]
    unknown = [name for name in names if name not in known]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"expected distinct methods from {', '.join(known)} separated by commas, got {text!r}")
    return names


def _method_setting(text):
    """`METHOD.NAME=VALUE`, the value read as JSON when it parses (numbers, true/false), else a string."""
    import json

    key, sep, value = text.partition("=")
    method, dot, name = key.partition(".")
    if not sep or not dot or not method or not name:
        raise argparse.ArgumentTypeError(f"expected METHOD.NAME=VALUE (e.g. sgt.fraction=0.3), got {text!r}")
    try:
        value = json.loads(value)
    except ValueError:
        pass
    return method, name, value


def _eval_fill(text):
    try:
        return float(text)
    except ValueError:
        return _fill_name(text)


def _method_settings(args):
    """`{method: settings}` from the EDDA flags and `--method-setting`, checked now."""
    settings = {"edda": _edda_settings(args)}
    for method, name, value in args.method_setting or ():
        if method not in args.methods:
            raise UserError(f"--method-setting {method}.{name}: {method} is not in --methods")
        settings.setdefault(method, {})[name] = value
    return settings


def _check_method_settings(method_settings, methods, explainer):
    import keras

    from keras_edda.experiments import protocol

    probe = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    settings = protocol.Settings(methods=methods, method_settings=method_settings, explainers=(explainer,))
    for method in methods:
        if method in protocol.MODEL_METHODS:
            _user_errors(protocol.model_method, method, settings, (8, 8, 1), 2, 1)
        else:
            _user_errors(protocol.method_layer, method, probe, settings, 1)


def _check_warmup(method_settings, methods, epochs):
    """Refuses a warm-up as long as training: the method would never add a copy."""
    from keras_edda.experiments import protocol

    for method in methods:
        warmup = protocol.settings_of(method, method_settings).get("warmup_epochs", 0)
        if isinstance(warmup, (int, float)) and warmup >= epochs:
            raise UserError(f"{method}: warmup_epochs={warmup} must be below --epochs {epochs}, "
                            "else the method never trains on a copy")


def run_compare(args):
    """Trains each method over seeds with one recipe and reports the comparison."""
    import keras
    import tensorflow as tf
    from tqdm import tqdm

    from keras_edda import _checks, datasets, experiment, recipes
    from keras_edda.experiments import protocol, report
    from keras_edda.ops import overlay

    if args.fraction is not None and args.threshold is not None:
        raise UserError("set --threshold or --fraction, not both")
    if args.fraction is None and args.threshold is None:
        args.threshold = 0.5
    out = args.out or os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    if args.resume and args.overwrite:
        raise UserError("set --resume or --overwrite, not both")
    _user_errors(_checks.check_writable_folder, out, "--out")
    explainers = args.explainer or ["grad_cam"]
    method_settings = _method_settings(args)
    _check_method_settings(method_settings, args.methods, explainers[0])
    _check_warmup(method_settings, args.methods, args.epochs)
    recipe = _user_errors(recipes.Recipe, epochs=args.epochs, batch_size=args.batch_size,
                          learning_rate=args.learning_rate, schedule=args.schedule)
    settings = _user_errors(
        protocol.Settings, methods=args.methods, seeds=args.seeds, recipe=recipe, surface=args.surface,
        explainers=explainers, method_settings=method_settings, eval_fills=args.eval_fill,
        eval_samples=args.eval_samples, monitor_samples=args.monitor_samples, num_images=args.num_images,
        **_metric_selection(args.metric))
    data = _user_errors(datasets.load, args.dataset, data_dir=args.data_dir, download=args.download,
                        image_size=args.image_size, channels=args.channels, max_examples=args.max_examples,
                        validation_fraction=args.validation_fraction, split_seed=args.split_seed)
    if args.max_train:
        data.x_train, data.y_train = data.x_train[:args.max_train], data.y_train[:args.max_train]
    if not len(data.x_val):
        raise UserError("the validation split is empty; use --validation-fraction > 0")
    factory = _user_errors(experiment.ModelFactory, args.model, data.image_shape, data.num_classes)
    if args.model != "cnn" and set(args.methods) & set(protocol.MODEL_METHODS):
        raise UserError(f"--methods supcon / excon train the built-in cnn's encoder; --model is {args.model!r}")
    config = {"dataset": data.name, "model": args.model, "image_shape": list(data.image_shape),
              "num_classes": data.num_classes, "split": data.split_info(),
              "optimizer_steps": protocol.steps_budget(settings, len(data.x_train)), **settings.to_dict()}
    runs = _start_output(out, config, args.resume, args.overwrite)
    print(f"Data {data.name}: {len(data.x_train)} train / {len(data.x_val)} validation / {len(data.x_test)} test "
          f"images {data.image_shape}, {data.num_classes} classes. Methods {', '.join(settings.methods)} "
          f"({settings.surface} surface), {config['optimizer_steps']} optimiser steps each. Output: {out}")
    if runs:
        print(f"Resuming: {len(runs)} finished runs in {out}/results.json are kept")
    images = data.x_test[:settings.num_images]
    rows_dir = os.path.join(out, "explanations")
    os.makedirs(rows_dir, exist_ok=True)
    overlay.write_png(os.path.join(rows_dir, "input.png"), overlay.image_grid([experiment.input_row(images)]))
    finished = {(run["method"], run["seed"]) for run in runs}
    progress = tqdm(total=len(settings.methods) * settings.seeds, initial=len(finished), desc="compare",
                    unit="run")
    try:
        for seed in range(settings.seeds):
            for method in settings.methods:
                if (method, seed) in finished:
                    continue
                progress.set_postfix_str(f"{method}, seed {seed}")
                log_dir = os.path.join(out, "tensorboard", f"{method}_seed{seed}")
                if os.path.isdir(log_dir):  # events of an interrupted run
                    shutil.rmtree(log_dir)
                model, record = protocol.run(
                    method, seed, data, factory, settings, log_dir, verbose=args.verbose,
                    callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=_check_interrupted)])
                if seed == 0:
                    overlay.write_png(os.path.join(rows_dir, f"{method}.png"), overlay.image_grid(
                        [experiment.explanation_rows(model, images, settings.explainers[0])]))
                runs.append(record)
                experiment.write_results(out, config, runs, args.command_line)
                _check_interrupted()
                progress.update(1)
    except KeyboardInterrupt:
        progress.close()
        print(f"Interrupted: the {len(runs)} finished runs are in {out}/results.json", file=sys.stderr)
        raise
    progress.close()
    experiment.write_results(out, config, runs, args.command_line)
    path = report.write(out)
    seeds, result_tables = report.tables(runs, settings.methods)
    print()
    for check, met, evidence in report.targets(result_tables, config):
        print(f"{'yes' if met else ('no ' if met is False else 'n/a')}  {check}: {evidence}")
    print()
    print(experiment.format_table(result_tables["model"], "model"))
    first = f"{explainers[0]} / {protocol.FILL_FREE}"
    if first in result_tables:
        print()
        print(experiment.format_table(result_tables[first], first))
    grid = [_read_png(path) for path in (os.path.join(rows_dir, f"{name}.png")
                                         for name in ("input",) + settings.methods)
            if os.path.exists(path)]
    overlay.write_png(os.path.join(out, "explanations.png"), tf.concat(grid, axis=0), scale=3)
    print(f"\nReport: {path} (every table, per-seed values, intervals, Holm-adjusted verdicts), {out}/report.png")
    print(f"Results: {out}/results.json, {out}/results.csv")
    print(f"Explanations: {out}/explanations.png (rows: input, {', '.join(settings.methods)}; seed 0)")
    print(f"TensorBoard: tensorboard --logdir {out}/tensorboard")


def _metric_selection(names):
    """`fill_metrics` / `fill_free_metrics` of `protocol.Settings` from `--metric` flags."""
    from keras_edda.experiments import protocol

    if not names:
        return {}
    fill_metrics = protocol.FILL_METRICS + protocol.OPTIONAL_FILL_METRICS
    known = fill_metrics + protocol.FILL_FREE_METRICS
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UserError(f"unknown --metric {unknown[0]!r}; known: {', '.join(known)}")
    return {"fill_metrics": [n for n in names if n in fill_metrics],
            "fill_free_metrics": [n for n in names if n in protocol.FILL_FREE_METRICS]}


def run_report(args):
    """Writes report.md and report.png of a compare output folder."""
    from keras_edda.experiments import report

    path = _user_errors(report.write, args.out_dir)
    print(f"Wrote {path} and {os.path.join(args.out_dir, 'report.png')}")


# What `compare` writes into its output folder.
_OUTPUTS = ("results.json", "results.csv", "explanations.png", "explanations", "tensorboard", "report.md",
            "report.png")


def _start_output(out, config, resume, overwrite):
    """Prepares the output folder; returns the finished runs to keep.

    A folder with files in it is refused unless `resume` (its results.json
    must hold the same config) or `overwrite` (compare's outputs in it are
    removed first).
    """
    from keras_edda import experiment

    if os.listdir(out):
        stored = _user_errors(experiment.read_results, out)
        if resume:
            if stored is None:
                raise UserError(f"--resume: {out} holds no results.json of a compare run")
            difference = experiment.config_difference(stored["config"], config)
            if difference:
                raise UserError(f"--resume: the settings differ from the run in {out} ({difference}); "
                                "use the same settings, --overwrite or another --out")
            runs = stored["runs"]
            experiment.write_results(out, config, runs)
            return runs
        if not overwrite:
            raise UserError(f"--out {out} is not empty; use --resume to continue the run in it, "
                            "--overwrite to replace it, or another folder")
        for name in os.listdir(out):
            path = os.path.join(out, name)
            if name in _OUTPUTS:
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    experiment.write_results(out, config, [])
    return []


def _read_png(path):
    import tensorflow as tf

    return tf.cast(tf.io.decode_png(tf.io.read_file(path), channels=3), tf.float32) / 255.0


def _image_files(path):
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UserError(f"no such file or folder: {path}")
    from keras_edda.datasets import IMAGE_SUFFIXES

    files = sorted(os.path.join(path, f) for f in os.listdir(path)
                   if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
    return files


def run_explain(args):
    """Writes heatmap overlays of a saved model's explanations."""
    import keras
    import tensorflow as tf

    from keras_edda import _checks, explainers
    from keras_edda.ops import overlay

    files = _image_files(args.images)
    if not os.path.exists(args.model):
        raise UserError(f"model file not found: {args.model}")
    try:
        model = keras.saving.load_model(args.model, compile=False)
    except Exception as error:  # Keras raises many kinds for a bad file
        raise UserError(f"cannot load model {args.model}: {str(error).strip().splitlines()[0]}")
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or None in shape:
        raise UserError(f"the model's input size {shape} is not fixed; explain needs a model with a "
                        "fixed image size (height, width, channels)")
    _user_errors(_checks.check_writable_folder, args.out, "--out")
    images = []
    for file in files:
        try:
            image = tf.io.decode_image(tf.io.read_file(file), channels=shape[-1],
                                       expand_animations=False)
        except tf.errors.InvalidArgumentError:
            raise UserError(f"cannot read image {file}")
        image = tf.image.resize(tf.cast(image, tf.float32), shape[:2], "bilinear")
        images.append(image * args.scale + args.offset)
    images = tf.stack(images)
    explainer = _user_errors(explainers.get, args.explainer, model)
    maps = explainer(images)
    predicted = tf.argmax(model(images, training=False), axis=-1).numpy()
    overlays = overlay.overlay(images, maps)
    for file, picture, label in zip(files, overlays, predicted):
        # The suffix stays in the name: a.png and a.jpg get different files.
        stem, suffix = os.path.splitext(os.path.basename(file))
        path = os.path.join(args.out, f"{stem}_{suffix[1:]}_{args.explainer}_class{label}.png")
        overlay.write_png(path, picture, scale=args.zoom)
        print(f"{file}: predicted class {label} -> {path}")


def recipes_default(name):
    """A setting of the default recipe (`keras_edda.recipes.DEFAULT`)."""
    from keras_edda import recipes

    return getattr(recipes.DEFAULT, name)


def build_parser():
    from keras_edda.explainers import EXPLAINERS
    from keras_edda.ops.fills import FILLS

    parser = argparse.ArgumentParser(
        prog="keras-edda",
        description="Explanation-driven data augmentation (EDDA) for Keras.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a small CNN on the embedded digits and explain it")
    demo.add_argument("--epochs", type=positive_int, default=12)
    demo.add_argument("--num-images", type=positive_int, default=8)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo")
    demo.set_defaults(handler=run_demo)

    compare = commands.add_parser(
        "compare", help="train each method over seeds with one recipe and compare accuracy, calibration "
                        "and alignment with paired statistics",
        description="Trains the same architecture with each of --methods (none: no augmentation; random: "
                    "random occlusion of the area EDDA occludes; edda; sgt: saliency-guided training; cutout) "
                    "over --seeds seeds with one recipe, fits on the train split watching the validation "
                    "split, and scores the test split once: accuracy, calibration, and every alignment metric "
                    "of every --explainer under every --eval-fill, next to random maps. Writes results.json, "
                    "report.md (paired statistics, Holm-adjusted verdicts) and plots.")
    data = compare.add_argument_group("data")
    data.add_argument("--dataset", default="digits",
                      help="'digits' (embedded, no network; default), 'digits-canvas' (digits on a cluttered "
                           "64x64 canvas with object masks), 'tfds:NAME' or 'folder:PATH'")
    data.add_argument("--data-dir", help="tfds data directory")
    data.add_argument("--download", action="store_true",
                      help="let tfds download (off by default: offline, tfds otherwise retries)")
    data.add_argument("--image-size", type=positive_int, default=None,
                      help="side of the images (32; 64 for digits-canvas)")
    data.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 (default: the data's)")
    data.add_argument("--max-examples", type=positive_int, help="most examples per tfds split")
    data.add_argument("--max-train", type=positive_int, help="use only the first N training images")
    data.add_argument("--validation-fraction", type=fraction, default=0.15,
                      help="share of the non-test images held out for validation (0.15)")
    data.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation/test split (0)")
    training = compare.add_argument_group("training (one recipe for every method)")
    training.add_argument("--methods", type=_method_list, default=["none", "random", "edda"],
                          help="comma-separated methods: none, the registered method layers "
                               "(random, edda, sgt, cutout, ...), and supcon / excon (contrastive, on the "
                               "built-in cnn's encoder); default none,random,edda")
    training.add_argument("--surface", choices=("map", "layer"), default="map",
                          help="the methods as tf.data map functions (map, default) or as layers inside the model")
    training.add_argument("--model", default="cnn",
                          help="'cnn' (default), 'resnet', or a .keras file (architecture re-initialised per run)")
    training.add_argument("--seeds", type=positive_int, default=3, help="number of seeds (3)")
    training.add_argument("--epochs", type=positive_int, default=recipes_default("epochs"),
                          help=f"epochs per run ({recipes_default('epochs')})")
    training.add_argument("--batch-size", type=positive_int, default=recipes_default("batch_size"))
    training.add_argument("--learning-rate", type=positive_float, default=recipes_default("learning_rate"),
                          help="peak learning rate of AdamW")
    training.add_argument("--schedule", choices=("cosine", "constant"), default=recipes_default("schedule"))
    edda = compare.add_argument_group("EDDA settings (see docs/edda.md); random occlusion shares them")
    edda.add_argument("--threshold", type=fraction,
                      help="salient = normalised map above it (default 0.5, the authors')")
    edda.add_argument("--fraction", type=fraction, help="salient = this share of the top pixels instead")
    edda.add_argument("--fill", default="constant", type=_fill_name,
                      help=f"a registered fill: {', '.join(sorted(FILLS))} (constant)")
    edda.add_argument("--fill-value", type=finite_float, default=0.0,
                      help="value of the constant fill (0.0)")
    edda.add_argument("--salient-target", type=_salient_target, default="decrease",
                      help="'decrease' (default, chosen on validation data), 'uniform', 'none' or a smoothing "
                           "alpha in (0, 1]")
    edda.add_argument("--non-salient-target", choices=("label", "consistency"), default="label",
                      help="target of the non-salient copies (label)")
    edda.add_argument("--margin", type=fraction, default=0.1, help="the fall 'decrease' asks for (0.1)")
    edda.add_argument("--copies-weight", type=finite_float, default=1.0,
                      help="weight of the copies relative to the originals (1.0)")
    edda.add_argument("--no-keep-if-correct", dest="keep_if_correct", action="store_false",
                      help="keep non-salient copies even when misclassified")
    edda.add_argument("--warmup-epochs", type=non_negative_int, default=0, help="epochs without copies (0)")
    edda.add_argument("--rate", type=finite_float, default=1.0, help="share of images that get copies (1.0)")
    edda.add_argument("--method-setting", action="append", type=_method_setting, metavar="METHOD.NAME=VALUE",
                      help="a setting of another method layer, e.g. sgt.fraction=0.3 (repeatable)")
    report = compare.add_argument_group("evaluation and output")
    report.add_argument("--explainer", action="append", type=_explainer_name,
                        help=f"a registered explainer ({', '.join(sorted(EXPLAINERS))}) to score; "
                             "repeat the flag for several (default grad_cam); the first one drives EDDA")
    report.add_argument("--eval-fill", action="append", type=_eval_fill,
                        help="a fill the occlusion metrics are scored under (repeatable); default: the "
                             "training fill, blur and noisy_linear")
    report.add_argument("--metric", action="append",
                        help="an alignment metric to score (repeatable); default: deletion_auc, "
                             "deletion_auc_normalized, insertion_auc, insertion_auc_normalized, average_drop, "
                             "salient_occlusion_drop, non_salient_agreement under every --eval-fill, and "
                             "road_morf, road_lerf, saliency_metric once (pointing games where the data has "
                             "object masks); increase_in_confidence when named")
    report.add_argument("--eval-samples", type=positive_int, default=128,
                        help="test images for the alignment metrics (128)")
    report.add_argument("--monitor-samples", type=positive_int, default=32,
                        help="validation images the TensorBoard curves follow each epoch (32)")
    report.add_argument("--num-images", type=positive_int, default=6,
                        help="test images in explanations.png (6)")
    report.add_argument("--out", help="output folder (default runs/<timestamp>); one that holds files "
                                      "needs --resume or --overwrite")
    report.add_argument("--resume", action="store_true",
                        help="continue the run in --out: skip its finished method x seed runs "
                             "(the settings must be the same)")
    report.add_argument("--overwrite", action="store_true",
                        help="replace the results of an earlier run in --out")
    report.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras' fit verbosity")
    compare.set_defaults(handler=run_compare)

    report_command = commands.add_parser(
        "report", help="write report.md and report.png from a compare output folder",
        description="Reads OUT_DIR/results.json and writes OUT_DIR/report.md (tables per explainer and "
                    "evaluation fill, per-seed values, paired differences with bootstrap intervals, "
                    "Holm-adjusted p-values and verdicts) and OUT_DIR/report.png.")
    report_command.add_argument("out_dir", help="the --out folder of a keras-edda compare run")
    report_command.set_defaults(handler=run_report)

    explain = commands.add_parser("explain", help="heatmap overlays of a saved model's explanations")
    explain.add_argument("--model", required=True, help="a .keras file")
    explain.add_argument("--images", required=True, help="an image file or a folder of images")
    explain.add_argument("--explainer", default="grad_cam", type=_explainer_name,
                         help=f"a registered explainer: {', '.join(sorted(EXPLAINERS))} (grad_cam)")
    explain.add_argument("--out", default="runs/explain")
    explain.add_argument("--scale", type=float, default=1 / 255,
                         help="pixel values are multiplied by it (1/255: [0, 1] inputs)")
    explain.add_argument("--offset", type=float, default=0.0, help="then this is added")
    explain.add_argument("--zoom", type=positive_int, default=4, help="upscaling of the PNGs")
    explain.set_defaults(handler=run_explain)
    from keras_edda.inpainting import cli as inpainting_cli
    inpainting_cli.add_commands(commands)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    _INTERRUPTED.clear()
    previous = signal.getsignal(signal.SIGINT), sys.unraisablehook
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        # A process started in the background (`cmd &` in a script) inherits
        # SIGINT as ignored; Ctrl-C and `kill -INT` must still stop it.
        signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = _on_unraisable
    try:
        return _run(argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous[0])
        sys.unraisablehook = previous[1]


def _run(argv):
    args = build_parser().parse_args(argv)
    args.command_line = "keras-edda " + " ".join(sys.argv[1:] if argv is None else argv)
    if getattr(args, "seeds", 1) < 1:
        print("keras-edda: error: --seeds must be at least 1", file=sys.stderr)
        return 2
    try:
        args.handler(args)
    except UserError as error:
        print(f"keras-edda: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-edda: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
