"""Cost of EDDA in training, in one process.

    python benchmarks/edda_overhead.py [--batch 64] [--size 32]

1. In-model layer: a training step of `Sequential([EDDA(classifier),
   classifier])` (Grad-CAM, both copies) against the ideal = a plain training
   step on the expanded batch (N originals + N salient copies, as the layer's
   step trains on both) + one Grad-CAM of the original batch.
2. Map function: its cost per batch in a `tf.data` pipeline (the pipeline's
   time with the map minus without it; host CPU) and called directly in a
   `tf.function`, against the ideal = one Grad-CAM of the batch + one forward
   pass of the non-salient copies (the keep-if-correct check).
Prints times and ratios (ours / ideal; 1.00 is the ideal, lower is faster).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import device_name, median_seconds  # noqa: E402

from keras_edda import explainers, models  # noqa: E402
from keras_edda.data import edda_map_fn  # noqa: E402
from keras_edda.methods import EDDA  # noqa: E402


def train_step_fn(model):
    """One compiled training step of `model` (the same as `fit` runs)."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    optimizer = model.optimizer

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True)) + tf.add_n([0.0] + model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    shape = (args.size, args.size, 3)
    x = tf.random.uniform((args.batch, *shape))
    y = tf.random.uniform((args.batch,), 0, 10, tf.int32)

    classifier = models.small_cnn(shape, 10)
    with_edda = keras.Sequential([keras.Input(shape), EDDA(classifier, keep_if_correct=True), classifier])
    with_edda.compile("adam")
    edda_step = train_step_fn(with_edda)

    plain = models.small_cnn(shape, 10)
    plain.compile("adam")
    plain_step = train_step_fn(plain)
    grad_cam = explainers.GradCAM(plain)
    x2, y2 = tf.concat([x, x], 0), tf.concat([y, y], 0)

    edda_s = median_seconds(lambda: edda_step(x, y), args.repeats)
    plain2_s = median_seconds(lambda: plain_step(x2, y2), args.repeats)
    cam_s = median_seconds(lambda: grad_cam(x, y), args.repeats)
    plain_s = median_seconds(lambda: plain_step(x, y), args.repeats)

    fn = edda_map_fn(plain, keep_if_correct=True)
    batches = 20
    data = tf.data.Dataset.from_tensors((x, y)).repeat(batches)

    def run_pipeline(dataset):
        def run():
            for batch in dataset:
                pass
            return batch[0]
        return median_seconds(run, 3) / batches

    empty_s = run_pipeline(data)
    map_s = run_pipeline(data.map(fn, num_parallel_calls=tf.data.AUTOTUNE))
    direct = tf.function(lambda images, labels: fn(images, labels))
    direct_s = median_seconds(lambda: direct(x, y), args.repeats)
    forward = tf.function(lambda a: plain(a, training=False))
    forward_s = median_seconds(lambda: forward(x), args.repeats)

    print(f"# {device_name()}; TF {tf.__version__}, Keras {keras.__version__}; "
          f"small_cnn, batch {args.batch} x {args.size}x{args.size}x3, Grad-CAM, median of {args.repeats}")
    print("| measure | ms | ideal ms | ours / ideal |")
    print("|---|---|---|---|")
    ideal = plain2_s + cam_s
    print(f"| train step with EDDA layer | {edda_s * 1e3:.1f} | {ideal * 1e3:.1f} "
          f"(step on 2N {plain2_s * 1e3:.1f} + Grad-CAM {cam_s * 1e3:.1f}) | {edda_s / ideal:.2f} |")
    print(f"| plain train step on N (reference) | {plain_s * 1e3:.1f} | - "
          f"| EDDA step = {edda_s / plain_s:.1f}x plain |")
    ideal_map = cam_s + forward_s
    map_cost = map_s - empty_s
    print(f"| edda_map_fn in a tf.data pipeline, per batch | {map_cost * 1e3:.1f} "
          f"({args.batch / map_s:,.0f} img/s; pipeline alone {empty_s * 1e3:.2f}) | "
          f"{ideal_map * 1e3:.1f} (Grad-CAM + 1 forward) | {map_cost / ideal_map:.2f} |")
    print(f"| edda_map_fn called in a tf.function | {direct_s * 1e3:.1f} | "
          f"{ideal_map * 1e3:.1f} | {direct_s / ideal_map:.2f} |")

if __name__ == "__main__":
    main()
