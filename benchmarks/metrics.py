"""Deletion / Insertion throughput: keras_edda vs xplique (when installed),
and against the compute limit, in one process.

    python benchmarks/metrics.py [--batch 32] [--size 32] [--steps 16]

Both libraries compute `steps + 1` points per image. The compute limit is
the same model work done as bare batched forward passes: N * (steps + 1)
prepared images in chunks of `--chunk`. Prints images/s and ratios.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import device_name, median_seconds  # noqa: E402
from explainers import build_model, forward_limit  # noqa: E402

from keras_edda import explainers, metrics  # noqa: E402
from keras_edda.ops import fills  # noqa: E402


def xplique_metrics():
    try:
        from xplique.metrics import Deletion, Insertion
    except ImportError:
        return None
    return {"deletion_auc": Deletion, "insertion_auc": Insertion}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    keras.utils.disable_interactive_logging()
    model = build_model(args.size)
    images = tf.random.uniform((args.batch, args.size, args.size, 3))
    maps = explainers.GradCAM(model)(images)
    predicted = tf.argmax(model(images), axis=-1)
    one_hot = tf.one_hot(predicted, 10).numpy()
    limit_s = median_seconds(forward_limit(model, images, args.steps + 1, args.chunk), args.repeats)
    reference = xplique_metrics()

    print(f"# {device_name()}; TF {tf.__version__}, Keras {keras.__version__}; "
          f"batch {args.batch} of {args.size}x{args.size}x3, {args.steps} steps, "
          f"chunks of {args.chunk}, median of {args.repeats}")
    print("| metric | keras_edda img/s | xplique img/s | ours / xplique | limit img/s | ours / limit |")
    print("|---|---|---|---|---|---|")
    for name in ("deletion_auc", "insertion_auc"):
        metric = metrics.get(name, steps=args.steps, batch_size=args.chunk)
        ours_s = median_seconds(lambda: metric(model, images, maps), args.repeats)
        if reference is not None:
            # The same protocol: insertion starts from the same Gaussian blur.
            start = {"deletion_auc": 0.0,
                     "insertion_auc": lambda x: fills.gaussian_blur(x).numpy()}[name]
            theirs = reference[name](model, images.numpy(), one_hot, batch_size=args.chunk,
                                     steps=args.steps, baseline_mode=start)
            theirs_s = median_seconds(lambda: np.float32(theirs(maps.numpy())), args.repeats)
            theirs_text = f"{args.batch / theirs_s:,.0f} | {theirs_s / ours_s:.1f}x"
        else:
            theirs_text = "not installed | -"
        print(f"| {name} | {args.batch / ours_s:,.0f} | {theirs_text} | "
              f"{args.batch / limit_s:,.0f} | {limit_s / ours_s:.2f} |")


if __name__ == "__main__":
    main()
