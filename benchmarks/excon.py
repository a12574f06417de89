"""ExCon: cost of a training step, and the ce / supcon / excon results table.

    python benchmarks/excon.py speed [--batch 64] [--size 32] [--repeats 15]
    python benchmarks/excon.py results [--seeds 0 1 2] [--epochs 30] [--size 16]

`speed`: an ExCon step (after the warm-up) against its ideal = a SupCon step
on the same views + one Grad-CAM of the batch + one forward pass (the
masked-view check); with `negative_pair` the views also hold the N
background candidates, so that ideal's SupCon step is one on 1.5 N samples
(3 N images through the encoder). Also against a SupCon step alone.

`results`: the three methods on the embedded digits with the same encoder
(`excon.small_encoder`), optimiser and epochs, one run per seed; test top-1
accuracy, Average Drop and Increase in Confidence (Grad-CAM, top 15 % kept,
in %), accuracy under FGSM (epsilon 4/255) and ECE (15 bins) on the clean
and the FGSM images. Prints a markdown table of mean ± std over seeds and
writes the per-run numbers to `--json`.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import _block, device_name  # noqa: E402

from keras_edda import datasets, excon, explainers, metrics  # noqa: E402

DIGITS_SETTINGS = {"crop_scale": (0.4, 1.0), "flip": False, "jitter": (0.4, 0.4, 0.0, 0.0)}


def _step(model):
    return tf.function(model.train_step)


def interleaved_medians(functions, repeats):
    """Median seconds of each function, timed in turns so that a busy machine
    slows all of them alike; one untimed warm-up call each."""
    for fn in functions.values():
        _block(fn())
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            _block(fn())
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def speed(args):
    keras.utils.set_random_seed(0)
    shape = (args.size, args.size, 1)
    x = tf.random.uniform((args.batch, *shape))
    y = tf.random.uniform((args.batch,), 0, 10, tf.int32)
    half = args.batch // 2
    x15, y15 = tf.concat([x, x[:half]], 0), tf.concat([y, y[:half]], 0)

    def make(method, **settings):
        return excon.build(method, excon.small_encoder, shape, 10, jit_compile=False, **settings)

    supcon_step = _step(make("supcon"))
    functions = {"supcon": lambda: supcon_step((x, y)), "supcon15": lambda: supcon_step((x15, y15))}
    for negative_pair in (False, True):
        model = make("excon", negative_pair=negative_pair)
        step, forward = _step(model), tf.function(lambda a, model=model: model(a, training=False))
        functions[f"excon{negative_pair}"] = lambda step=step: step((x, y))
        functions[f"cam{negative_pair}"] = lambda explainer=model.explainer: explainer(x, y)
        functions[f"forward{negative_pair}"] = lambda forward=forward: forward(x)
    seconds = interleaved_medians(functions, args.repeats)
    supcon_s = seconds["supcon"]
    rows = [(negative_pair, seconds[f"excon{negative_pair}"], seconds["supcon15" if negative_pair else "supcon"],
             seconds[f"cam{negative_pair}"], seconds[f"forward{negative_pair}"]) for negative_pair in (False, True)]

    print(f"# {device_name()}; TF {tf.__version__}, Keras {keras.__version__}; excon.small_encoder, "
          f"batch {args.batch} x {args.size}x{args.size}x1, Grad-CAM, median of {args.repeats} interleaved runs")
    print("| step | ms | ideal ms | ours / ideal | ours / SupCon step |")
    print("|---|---|---|---|---|")
    print(f"| SupCon step (2 random views) | {supcon_s * 1e3:.1f} | - | - | 1.00 |")
    for negative_pair, excon_s, base, cam_s, forward_s in rows:
        ideal = base + cam_s + forward_s
        label = "1.5 N samples" if negative_pair else "N samples"
        print(f"| ExCon step, negative_pair={negative_pair} | {excon_s * 1e3:.1f} | {ideal * 1e3:.1f} "
              f"(SupCon on {label} {base * 1e3:.1f} + Grad-CAM {cam_s * 1e3:.1f} + forward {forward_s * 1e3:.1f}) "
              f"| {excon_s / ideal:.2f} | {excon_s / supcon_s:.2f} |")


def evaluate(model, x, y, batch_size=128):
    probabilities = model.predict(x, batch_size=batch_size, verbose=0)
    maps = explainers.GradCAM(model, batch_size=batch_size)(x)
    shifted = metrics.fgsm_images(model, x, y, 4 / 255, (0.0, 1.0), batch_size)
    shifted_probabilities = model.predict(shifted.numpy(), batch_size=batch_size, verbose=0)
    return {
        "accuracy": float(np.mean(probabilities.argmax(-1) == y)) * 100,
        "average_drop": float(tf.reduce_mean(metrics.AverageDrop(batch_size=batch_size)(model, x, maps))) * 100,
        "increase_in_confidence": float(tf.reduce_mean(
            metrics.IncreaseInConfidence(batch_size=batch_size)(model, x, maps))) * 100,
        "fgsm_accuracy": float(np.mean(shifted_probabilities.argmax(-1) == y)) * 100,
        "ece": float(metrics.expected_calibration_error(probabilities, y)) * 100,
        "ece_fgsm": float(metrics.expected_calibration_error(shifted_probabilities, y)) * 100,
    }


def results(args):
    (x, y), (x_test, y_test) = datasets.load_digits(args.size)
    steps_per_epoch = int(np.ceil(len(x) / args.batch))
    runs = []
    for seed in args.seeds:
        for method in excon.METHODS:
            keras.utils.set_random_seed(seed)
            settings = {**DIGITS_SETTINGS, "seed": seed}
            if method == "excon":
                settings.update(warmup_epochs=args.warmup_epochs, steps_per_epoch=steps_per_epoch)
            model = excon.build(method, excon.small_encoder, x.shape[1:], 10,
                                optimizer=keras.optimizers.Adam(args.learning_rate), **settings)
            model.fit(x, y, batch_size=args.batch, epochs=args.epochs, verbose=0)
            row = {"method": method, "seed": seed, **evaluate(model, x_test, y_test)}
            runs.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"settings": vars(args), "runs": runs}, handle, indent=1)
    columns = ["accuracy", "average_drop", "increase_in_confidence", "fgsm_accuracy", "ece", "ece_fgsm"]
    print(f"\n# digits {args.size}x{args.size}, {args.epochs} epochs, batch {args.batch}, Adam {args.learning_rate}, "
          f"seeds {args.seeds}; excon warm-up {args.warmup_epochs} epochs; mean ± std over seeds (%)")
    print("| method | top-1 acc ↑ | Average Drop ↓ | Increase in Conf. ↑ | FGSM acc ↑ | ECE ↓ | ECE on FGSM ↓ |")
    print("|---|---|---|---|---|---|---|")
    for method in excon.METHODS:
        cells = []
        for column in columns:
            values = [run[column] for run in runs if run["method"] == method]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        print(f"| {method} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    speed_parser = commands.add_parser("speed")
    speed_parser.add_argument("--batch", type=int, default=64)
    speed_parser.add_argument("--size", type=int, default=32)
    speed_parser.add_argument("--repeats", type=int, default=15)
    results_parser = commands.add_parser("results")
    results_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    results_parser.add_argument("--epochs", type=int, default=30)
    results_parser.add_argument("--warmup-epochs", type=int, default=3)
    results_parser.add_argument("--batch", type=int, default=64)
    results_parser.add_argument("--size", type=int, default=16)
    results_parser.add_argument("--learning-rate", type=float, default=3e-3)
    results_parser.add_argument("--json", default=None)
    args = parser.parse_args()
    speed(args) if args.command == "speed" else results(args)


if __name__ == "__main__":
    main()
