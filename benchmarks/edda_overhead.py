"""Cost of EDDA in training, in one process.

    python benchmarks/edda_overhead.py [--batch 64] [--size 32]

1. In-model layer at each setting (defaults: Grad-CAM, both copies,
   keep-if-correct, the "decrease" target): a training step of
   `Sequential([EDDA(classifier, ...), classifier])` against the ideal = one
   Grad-CAM of the batch + a plain training step on the batch and its copies
   ((1 + K) N images), and against a plain training step on N. The row
   "before" runs the decisions' own inference pass over the copies, as the
   layer did before it read them from the training pass.
2. Map function: its cost per batch in a `tf.data` pipeline (the pipeline's
   time with the map minus without it; host CPU) and called directly in a
   `tf.function`, against the ideal = one Grad-CAM of the batch + one forward
   pass of the 2N copies (keep-if-correct and "decrease" read it).
Prints times and ratios (ours / ideal; 1.00 is the ideal, lower is faster).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import device_name, interleaved_medians, median_seconds  # noqa: E402

from keras_edda import explainers, models  # noqa: E402
from keras_edda.data import edda_map_fn  # noqa: E402
from keras_edda.methods import EDDA  # noqa: E402


class EDDABefore(EDDA):
    """The layer's step before it read its decisions from the training pass: an inference pass of its own."""

    def call(self, inputs, training=None):
        if not training:
            return inputs
        transformation = self.get_random_transformation(inputs)
        outputs = self.training_pass(tf.stop_gradient(self.copies(inputs, transformation)))
        self.add_loss(self.copy_loss(outputs, transformation))
        return inputs


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

    plain = models.small_cnn(shape, 10)
    plain.compile("adam")
    plain_step = train_step_fn(plain)
    grad_cam = explainers.GradCAM(plain)
    settings = {
        "defaults": (EDDA, {}),
        "before (own inference pass for the decisions)": (EDDABefore, {}),
        "keep_if_correct=False, salient_target='uniform'": (EDDA, {"keep_if_correct": False,
                                                                   "salient_target": "uniform"}),
        "salient_target='none'": (EDDA, {"salient_target": "none"}),
    }
    functions, copies = {}, {}
    for name, (cls, extra) in settings.items():
        classifier = models.small_cnn(shape, 10)
        model = keras.Sequential([keras.Input(shape), cls(classifier, **extra), classifier])
        model.compile("adam")
        step = train_step_fn(model)
        functions[name] = (lambda step: lambda: step(x, y))(step)
        copies[name] = len(model.layers[0].copy_names)
    for k in sorted(set(copies.values())):
        xk, yk = tf.concat([x] * (1 + k), 0), tf.concat([y] * (1 + k), 0)
        functions[f"plain {1 + k}N"] = (lambda a, b: lambda: plain_step(a, b))(xk, yk)
    functions["plain N"] = lambda: plain_step(x, y)
    functions["grad_cam"] = lambda: grad_cam(x, y)
    seconds = interleaved_medians(functions, args.repeats)
    cam_s = seconds["grad_cam"]

    fn = edda_map_fn(plain)
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

    x2 = tf.concat([x, x], 0)
    forward_s = median_seconds(lambda: forward(x2), args.repeats)

    print(f"# {device_name()}; TF {tf.__version__}, Keras {keras.__version__}; "
          f"small_cnn, batch {args.batch} x {args.size}x{args.size}x3, Grad-CAM, median of {args.repeats}")
    print("| EDDA layer setting | train step ms | ideal ms (Grad-CAM + plain step on (1+K)N) | ours / ideal "
          "| ours / plain step on N |")
    print("|---|---|---|---|---|")
    for name in settings:
        k = copies[name]
        ideal = cam_s + seconds[f"plain {1 + k}N"]
        ours = seconds[name]
        print(f"| {name} | {ours * 1e3:.1f} | {ideal * 1e3:.1f} (Grad-CAM {cam_s * 1e3:.1f} + step on {1 + k}N "
              f"{seconds[f'plain {1 + k}N'] * 1e3:.1f}) | {ours / ideal:.2f} | {ours / seconds['plain N']:.1f}x |")
    print(f"| plain train step on N (reference) | {seconds['plain N'] * 1e3:.1f} | - | - | 1.0x |")
    print()
    print("| map function | ms | ideal ms | ours / ideal |")
    print("|---|---|---|---|")
    ideal_map = cam_s + forward_s
    map_cost = map_s - empty_s
    print(f"| edda_map_fn in a tf.data pipeline, per batch | {map_cost * 1e3:.1f} "
          f"({args.batch / map_s:,.0f} img/s; pipeline alone {empty_s * 1e3:.2f}) | "
          f"{ideal_map * 1e3:.1f} (Grad-CAM + 1 forward on 2N) | {map_cost / ideal_map:.2f} |")
    print(f"| edda_map_fn called in a tf.function | {direct_s * 1e3:.1f} | "
          f"{ideal_map * 1e3:.1f} | {direct_s / ideal_map:.2f} |")


if __name__ == "__main__":
    main()
