"""ExCon: cost of a training step, and the optimizer of the linear classifier.

    python benchmarks/excon.py speed [--batch 64] [--size 32] [--repeats 15]
    python benchmarks/excon.py classifier [--seeds 0] [--size 32] [--author-views]

`speed`: an ExCon step (after the warm-up) against its ideal = a SupCon step
on the same views + one Grad-CAM of the batch + one forward pass (the
masked-view check); with `negative_pair` the views also hold the N
background candidates, so that ideal's SupCon step is one on 1.5 N samples
(3 N images through the encoder). Also against a SupCon step alone.

`classifier`: SupCon trained with `keras-edda compare`'s recipe, one row
per optimizer of the linear classifier (`ExCon(classifier_optimizer=...)`):
accuracy and mean confidence on the validation split, next to a linear probe
fitted on the frozen encoder's features (what the features can give). The
results table of ce / supcon / excon is `keras-edda compare --methods
none,supcon,excon` (docs/excon.md).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import device_name, interleaved_medians  # noqa: E402

from keras_edda import datasets, excon, recipes  # noqa: E402

DIGITS_SETTINGS = {"crop_scale": (0.4, 1.0), "flip": False, "jitter": (0.4, 0.4, 0.0, 0.0)}


def _step(model):
    return tf.function(model.train_step)


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


def linear_probe(encoder, data, epochs=300):
    """Validation accuracy of a softmax layer fitted on the frozen encoder's
    training features (full batch, Adam 1e-2): what the features can give."""
    train = encoder.predict(data.x_train, verbose=0)
    probe = keras.Sequential([keras.Input(train.shape[1:]), keras.layers.Dense(data.num_classes,
                                                                               activation="softmax")])
    probe.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    probe.fit(train, data.y_train, batch_size=len(train), epochs=epochs, verbose=0)
    predicted = probe.predict(encoder.predict(data.x_val, verbose=0), verbose=0).argmax(-1)
    return float(np.mean(predicted == data.y_val))


CLASSIFIER_OPTIMIZERS = {
    "shared": lambda: "shared",
    "sgd-0.5": lambda: keras.optimizers.SGD(0.5, momentum=0.9),
    "adam-1e-2": lambda: keras.optimizers.Adam(1e-2),
    "adam-3e-2": lambda: keras.optimizers.Adam(3e-2),
}


def classifier(args):
    """SupCon with the compare recipe, one classifier optimizer per row, on the validation split."""
    data = datasets.load("digits", image_size=args.size, split_seed=0)
    recipe = recipes.DEFAULT
    views = {} if args.author_views else DIGITS_SETTINGS
    print(f"# SupCon on digits {args.size}x{args.size} ({len(data.x_train)} train / {len(data.x_val)} "
          f"validation), recipes.DEFAULT ({recipe.total_steps(len(data.x_train))} steps, AdamW "
          f"{recipe.learning_rate} cosine for encoder and head), views "
          f"{'the authors' if args.author_views else DIGITS_SETTINGS}; validation split")
    print("| classifier optimizer | seed | accuracy | mean confidence | linear probe on the frozen features |")
    print("|---|---|---|---|---|")
    for name in args.optimizers:
        for seed in args.seeds:
            keras.utils.set_random_seed(seed)
            model = excon.build("supcon", excon.small_encoder, data.image_shape, data.num_classes,
                                optimizer=recipe.optimizer(recipe.total_steps(len(data.x_train))), seed=seed,
                                classifier_optimizer=CLASSIFIER_OPTIMIZERS[name](), **views)
            model.fit(data.x_train, data.y_train, batch_size=recipe.batch_size, epochs=recipe.epochs, verbose=0)
            probabilities = model.predict(data.x_val, verbose=0)
            accuracy = float(np.mean(probabilities.argmax(-1) == data.y_val))
            print(f"| {name} | {seed} | {accuracy:.3f} | {probabilities.max(-1).mean():.3f} | "
                  f"{linear_probe(model.encoder, data):.3f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    speed_parser = commands.add_parser("speed")
    speed_parser.add_argument("--batch", type=int, default=64)
    speed_parser.add_argument("--size", type=int, default=32)
    speed_parser.add_argument("--repeats", type=int, default=15)
    classifier_parser = commands.add_parser("classifier")
    classifier_parser.add_argument("--optimizers", nargs="+", default=list(CLASSIFIER_OPTIMIZERS),
                                   choices=list(CLASSIFIER_OPTIMIZERS))
    classifier_parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    classifier_parser.add_argument("--size", type=int, default=32)
    classifier_parser.add_argument("--author-views", action="store_true",
                                   help="the authors' crop, flip and jitter instead of the digit views")
    args = parser.parse_args()
    speed(args) if args.command == "speed" else classifier(args)


if __name__ == "__main__":
    main()
