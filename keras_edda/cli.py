"""The `keras-edda` command."""

import argparse
import os
import sys
import time


class UserError(Exception):
    """A mistake in the command line: one line on stderr, exit code 2."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-edda",
        description="Explanation-driven data augmentation (EDDA) for Keras.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a small CNN on the embedded digits and explain it")
    demo.add_argument("--epochs", type=_positive_int, default=12)
    demo.add_argument("--num-images", type=_positive_int, default=8)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo")
    demo.set_defaults(handler=run_demo)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
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
