"""The `keras-edda` command: the parser and the dispatch.

The application lives in `keras_edda.experiments` (compare, explain, the
report); the inpainter's command in `keras_edda.inpainting.cli`. This module
imports neither TensorFlow nor the library until a command needs them, so
`keras-edda --help` answers at once.
"""

import argparse
import os
import sys
import time

from keras_edda._argtypes import finite_float, fraction, non_negative_int, positive_float, positive_int
from keras_edda._errors import UserError, user_errors

# Names the help texts show without importing the registries (TensorFlow); the argument checks
# read the registries themselves, so a user's registered explainer or fill is accepted.
BUILT_IN_EXPLAINERS = ("grad_cam", "integrated_gradients", "occlusion", "saliency", "smoothgrad", "lime",
                       "meaningful_perturbation", "dance", "random")
BUILT_IN_FILLS = ("constant", "mean", "blur", "noise", "inpaint", "noisy_linear")


def run_demo(args):
    """Trains the small CNN on the digits and writes heatmap overlays."""
    from keras_edda.experiments import demo

    for line in demo.run(args.epochs, args.num_images, args.seed, args.out):
        print(line)


def _explainer_name(text):
    from keras_edda.explainers import EXPLAINERS

    if text not in EXPLAINERS:
        raise argparse.ArgumentTypeError(
            f"unknown explainer {text!r}; registered: {', '.join(BUILT_IN_EXPLAINERS)}, or your own registered one")
    return text


def _fill_name(text):
    """A registered fill name, or `SCHEME:ARGUMENT` of a registered scheme (e.g. `inpainter:PATH`)."""
    from keras_edda.ops.fills import FILLS, SCHEMES

    scheme, colon, argument = text.partition(":")
    if text not in FILLS and not (colon and argument and scheme in SCHEMES):
        raise argparse.ArgumentTypeError(
            f"unknown fill {text!r}; registered: {', '.join(sorted(FILLS))}, or "
            f"{', '.join(f'{name}:ARGUMENT' for name in sorted(SCHEMES))}")
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


def run_compare(args):
    """Trains each method over seeds with one recipe and reports the comparison."""
    from keras_edda import recipes
    from keras_edda.experiments import compare, executors, protocol

    if args.fraction is not None and args.threshold is not None:
        raise UserError("set --threshold or --fraction, not both")
    if args.fraction is None and args.threshold is None:
        args.threshold = 0.5
    explainers = args.explainer or ["grad_cam"]
    chosen = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
              "schedule": args.schedule}
    base = user_errors(recipes.get, args.recipe)
    recipe = user_errors(base.replace, **{k: v for k, v in chosen.items() if v is not None})
    settings = user_errors(
        protocol.Settings, methods=args.methods, seeds=args.seeds, recipe=recipe, surface=args.surface,
        explainers=explainers, method_settings=_method_settings(args), eval_fills=args.eval_fill,
        eval_samples=args.eval_samples, monitor_samples=args.monitor_samples, num_images=args.num_images,
        **_metric_selection(args.metric))
    executor = user_errors(executors.get, args.executor, args.workers, args.ray_address)
    decoy = {key: value for key, value in (("patch_size", args.decoy_patch_size),
                                           ("informative_fraction", args.decoy_informative_fraction))
             if value is not None} or None
    data = compare.DataSpec(args.dataset, args.data_dir, args.download, args.image_size, args.channels,
                            args.max_examples, args.max_train, args.validation_fraction, args.split_seed, decoy)
    job = compare.Job(args.out or os.path.join("runs", time.strftime("%Y%m%d-%H%M%S")), data, args.model,
                      settings, args.verbose, args.command_line)
    prepared, failures, _ = compare.run(job, args.resume, args.overwrite, executor)
    print("\n".join(compare.summary_lines(job, prepared)))
    if failures:
        raise UserError(f"{len(failures)} run(s) failed (listed above); `--resume` with the same flags reruns them")


def _metric_selection(names):
    """`fill_metrics` / `fill_free_metrics` of `protocol.Settings` from `--metric` flags."""
    from keras_edda.experiments import protocol

    if not names:
        return {}
    chosen = {kind: protocol.metric_names(kind) for kind in ("fill", "fill_free", "sanity")}
    known = [name for names_of_kind in chosen.values() for name in names_of_kind]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UserError(f"unknown --metric {unknown[0]!r}; known: {', '.join(known)} (localization and decoy "
                        "judges are scored wherever the data has their masks)")
    return {f"{kind}_metrics": [n for n in names if n in names_of_kind] for kind, names_of_kind in chosen.items()}


def run_report(args):
    """Writes report.md and report.png of a compare output folder."""
    from keras_edda.experiments import report

    path = user_errors(report.write, args.out_dir)
    print(f"Wrote {path} and {os.path.join(args.out_dir, 'report.png')}")


def run_explain(args):
    """Writes heatmap overlays of a saved model's explanations."""
    from keras_edda.experiments import explain

    for line in explain.run(args.model, args.images, args.explainer, args.out, args.scale, args.offset,
                            args.zoom):
        print(line)


def build_parser():
    """The `keras-edda` parser (imports no TensorFlow: `--help` answers at once)."""
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
                           "64x64 canvas with object masks), 'cifar10' (see --data-dir), 'NAME-decoy' (NAME with a "
                           "planted class-coded patch: digits-decoy, cifar10-decoy; docs/decoys.md), 'tfds:NAME' "
                           "or 'folder:PATH'")
    data.add_argument("--data-dir", help="tfds data directory, or CIFAR-10's folder or .tar.gz (else "
                                         "KERAS_EDDA_DATA, then keras.datasets)")
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
    data.add_argument("--decoy-patch-size", type=positive_int,
                      help="side in pixels of the planted decoy patch of a NAME-decoy dataset (docs/decoys.md)")
    data.add_argument("--decoy-informative-fraction", type=fraction,
                      help="share of the training and validation images whose decoy shade encodes the class "
                           "(docs/decoys.md)")
    training = compare.add_argument_group("training (one recipe for every method)")
    training.add_argument("--methods", type=_method_list, default=["none", "random", "edda"],
                          help="comma-separated methods: none, the registered method layers "
                               "(random, edda, sgt, cutout, ...), and supcon / excon (contrastive, on the "
                               "built-in cnn's encoder); default none,random,edda")
    training.add_argument("--surface", choices=("map", "layer"), default="map",
                          help="the methods as tf.data map functions (map, default) or as layers inside the model")
    training.add_argument("--model", default="cnn",
                          help="'cnn' (default), 'resnet', 'resnet20' (He et al.'s CIFAR ResNet), any "
                               "keras.applications name (e.g. mobilenet_v3_small, resnet50_v2, efficientnet_b0; "
                               "weights=None, at the data's --image-size), or a .keras file (architecture "
                               "re-initialised per run)")
    training.add_argument("--recipe", default="default",
                          help="'default' (the digits': AdamW, cosine, 20 epochs) or 'cifar' (natural images: "
                               "random crop with 4-pixel padding + horizontal flip under every method, AdamW; "
                               "docs/recipe.md); --epochs, --batch-size, --learning-rate, --schedule override it")
    training.add_argument("--seeds", type=positive_int, default=3, help="number of seeds (3)")
    training.add_argument("--epochs", type=positive_int,
                          help="epochs per run (default: the recipe's; 20 for 'default')")
    training.add_argument("--batch-size", type=positive_int, help="(default: the recipe's, 64)")
    training.add_argument("--learning-rate", type=positive_float,
                          help="peak learning rate of AdamW (default: the recipe's, 3e-3)")
    training.add_argument("--schedule", choices=("cosine", "constant"), help="(default: the recipe's, cosine)")
    edda = compare.add_argument_group("EDDA settings (see docs/edda.md); random occlusion shares them")
    edda.add_argument("--threshold", type=fraction,
                      help="salient = normalised map above it (default 0.5, the authors')")
    edda.add_argument("--fraction", type=fraction, help="salient = this share of the top pixels instead")
    edda.add_argument("--fill", default="constant", type=_fill_name,
                      help=f"a registered fill: {', '.join(BUILT_IN_FILLS)} or your own registered one (constant)")
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
                        help=f"a registered explainer ({', '.join(BUILT_IN_EXPLAINERS)}, or your own) to score; "
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
    where = compare.add_argument_group("where the runs go (docs/scaling.md)")
    where.add_argument("--executor", choices=("local", "processes", "ray"), default="local",
                       help="local: one run after another in this process (default); processes: one fresh "
                            "process per run, --workers at a time (one GPU each where there are GPUs); ray: "
                            "each run a Ray task (pip install 'keras_edda[ray]')")
    where.add_argument("--workers", type=positive_int,
                       help="runs at the same time (processes: 2; ray: as many as the cluster takes)")
    where.add_argument("--ray-address",
                       help="the Ray cluster to run on (e.g. ray://head:10001 or auto); default: start Ray's "
                            "local cluster on this machine")
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
                         help=f"a registered explainer: {', '.join(BUILT_IN_EXPLAINERS)}, or your own (grad_cam)")
    explain.add_argument("--out", default="runs/explain")
    explain.add_argument("--scale", type=finite_float, default=1 / 255,
                         help="pixel values are multiplied by it (1/255: [0, 1] inputs)")
    explain.add_argument("--offset", type=finite_float, default=0.0, help="then this is added")
    explain.add_argument("--zoom", type=positive_int, default=4, help="upscaling of the PNGs")
    explain.set_defaults(handler=run_explain)
    _add_train_inpainter(commands)
    return parser


def run_train_inpainter(args):
    """Trains the learned inpainter and saves it (`keras_edda.inpainting.cli`)."""
    from keras_edda.inpainting import cli as inpainting_cli

    inpainting_cli.run_train_inpainter(args)


def _add_train_inpainter(commands):
    train = commands.add_parser(
        "train-inpainter", help="train the learned inpainting fill on a dataset",
        description="Trains keras_edda.inpainting's gated-convolution U-Net to fill random boxes and "
                    "strokes (5-60 %% of the image) on the training split and saves it as a .keras "
                    "file, usable as fill='inpainter:PATH'.")
    train.add_argument("--dataset", default="digits",
                       help="'digits' (embedded, no network; default), 'tfds:NAME' or 'folder:PATH'")
    train.add_argument("--data-dir", help="tfds data directory")
    train.add_argument("--download", action="store_true", help="let tfds download")
    train.add_argument("--image-size", type=positive_int, default=32, help="side of the images (32)")
    train.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 (default: the data's)")
    train.add_argument("--max-examples", type=positive_int, help="most examples per tfds split")
    train.add_argument("--max-train", type=positive_int, help="use only the first N training images")
    train.add_argument("--epochs", type=positive_int, default=20, help="epochs (20)")
    train.add_argument("--batch-size", type=positive_int, default=64)
    train.add_argument("--filters", type=positive_int, default=32, help="channels of the first level (32)")
    train.add_argument("--depth", type=positive_int, default=2, help="number of halvings (2)")
    train.add_argument("--learning-rate", type=positive_float, default=2e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", required=True, help="the .keras file to write")
    train.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    train.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras' fit verbosity")
    train.set_defaults(handler=run_train_inpainter)


def _import_tensorflow_quietly():
    """Imports TensorFlow without its start-up lines (oneDNN, absl), unless the user set TF_CPP_MIN_LOG_LEVEL.

    Some of those lines are printed by C++ before any log level is read, so standard error is
    pointed at /dev/null for the import alone (an import error is raised after it is restored).
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def main(argv=None):
    """Runs `keras-edda ARGS`; returns the exit code (0, 2 for a user's mistake, 130 when interrupted)."""
    args = build_parser().parse_args(argv)
    args.command_line = "keras-edda " + " ".join(sys.argv[1:] if argv is None else argv)
    _import_tensorflow_quietly()
    import keras_edda
    from keras_edda.experiments import interrupts

    keras_edda.import_all()  # registers the library's Keras objects, as `import keras_edda` does
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    with interrupts.installed():
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
