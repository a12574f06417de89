"""Cost of each training method of `keras_edda.methods`, in one process.

    python benchmarks/methods.py [--model cnn] [--batch 32] [--size 32] [--rounds 5] [--repeats 5] [--clock wall|cpu]

`--model` is any name of `keras_edda.models.build`: `cnn` (the small CNN,
default), `resnet20` (ResNet-20 at 32x32x3), or a `keras.applications`
backbone with fresh weights (e.g. `--model mobilenet_v3_small --size 96`).

1. In a model: a training step of `Sequential([layer, classifier])` (a
   `tf.function` step, the same as `fit` runs) against its ideal = a plain
   training step on the batch the method trains on (N originals + K * N
   copies, concatenated) + the explanation and extra forward passes of the
   batch its docstring's "Cost per step" names. Inside a model there are no
   labels, so the prediction is explained.
2. The map function: `keras_edda.data.method_map_fn(layer)` called in a
   `tf.function` on `(x, y)` against its ideal = the explanation and forward
   passes it needs (Cutout needs none: its ideal is a minimal hand-written
   cutout of the same batch).
3. The parts of the methods' own work (ranking pixels, fills, building the
   copies), each in its own `tf.function`, to show where a gap goes.

Every measured function is timed in `--rounds` rounds of `--repeats` calls,
the functions taking turns call by call so that the load of the shared
machine hits ours and the ideal alike; a ratio is computed per round (median
of its calls). `--clock cpu` times the process's CPU time with TensorFlow on
one thread instead of the elapsed time: on a machine that other jobs load,
it counts the work done and not the waits for a core. Prints markdown tables: median
ms, the ideal and its parts, and ours / ideal (median, min-max over rounds;
1.00 is the ideal, lower is faster).
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")
from _timing import _block, device_name, median_seconds  # noqa: E402

from keras_edda import explainers, models, ops  # noqa: E402
from keras_edda.data import method_map_fn  # noqa: E402
from keras_edda.methods import EDDA, Cutout, RandomOcclusion, SaliencyGuided  # noqa: E402
from keras_edda.ops import fills  # noqa: E402

# name and layer factory; the ideal's parts are read from the layer's settings (`passes`).
METHODS = [
    ("EDDA (defaults)", lambda c: EDDA(c, seed=0)),
    ("EDDA decrease + consistency",
     lambda c: EDDA(c, salient_target="decrease", non_salient_target="consistency", seed=0)),
    ("RandomOcclusion", lambda c: RandomOcclusion(c, seed=0)),
    ("SaliencyGuided", lambda c: SaliencyGuided(c, seed=0)),
    ("Cutout", lambda c: Cutout(c, seed=0)),
]


def passes(layer, in_model):
    """The explanation and forward passes of N images a layer needs, as its docstring counts them.

    "grad_cam" and "saliency" are an explanation of the batch, "forward" one
    forward pass of N images without a gradient.
    """
    if isinstance(layer, SaliencyGuided):
        return ("saliency",)
    if isinstance(layer, Cutout):
        return ("forward",) if in_model else ("cutout_reference",)
    if isinstance(layer, RandomOcclusion):
        # The prediction comes from the area's Grad-CAM; without an area to match, from a forward pass.
        needed = ("grad_cam",) if layer.area_explainer is not None else ("forward",)
    else:
        needed = ("grad_cam",)
    return needed + ("forward",) * layer.keep_if_correct + ("forward",) * (layer.salient_target == "decrease")


def cutout_reference(size, num_classes):
    """A minimal cutout map function: one copy per image with a random square set to 0."""
    generator = tf.random.Generator.from_seed(0)

    @tf.function
    def fn(x, y):
        n, height, width = tf.shape(x)[0], x.shape[1], x.shape[2]
        centers = generator.uniform((n, 2)) * [height, width]
        half = size * min(height, width) / 2
        rows = tf.abs(tf.range(height, dtype=tf.float32)[None] + 0.5 - centers[:, :1]) <= half
        cols = tf.abs(tf.range(width, dtype=tf.float32)[None] + 0.5 - centers[:, 1:]) <= half
        box = tf.cast(rows[:, :, None, None] & cols[:, None, :, None], x.dtype)
        targets = tf.one_hot(y, num_classes)
        return (tf.concat([x, x * (1.0 - box)], 0), tf.concat([targets, targets], 0),
                tf.ones([2 * n]))

    return fn


def train_step_fn(model, jit=False):
    """One compiled training step of `model` (the same as `fit` runs; `jit`: XLA, as `fit` uses on a GPU)."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    optimizer = model.optimizer

    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True)) + tf.add_n([0.0] + model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return step


def cpu_seconds(fn):
    """CPU seconds of the whole process (all its threads) spent in one call of `fn`."""
    start = time.process_time()
    _block(fn())
    return time.process_time() - start


def timed_rounds(functions, rounds, repeats, clock="wall"):
    """Per-round median seconds of each function.

    Within a round the functions take turns call by call, so that the load of
    the shared machine falls on all of them alike.
    """
    for fn in functions.values():
        median_seconds(fn, 1)
    times = {name: [] for name in functions}
    for _ in range(rounds):
        calls = {name: [] for name in functions}
        for _ in range(repeats):
            for name, fn in functions.items():
                calls[name].append(cpu_seconds(fn) if clock == "cpu" else median_seconds(fn, 1, warmup=0))
        for name in functions:
            times[name].append(statistics.median(calls[name]))
    return times


def row(label, ours, parts, times):
    """One markdown row: median ms of ours, of its ideal and its parts, ratio median (min-max)."""
    ideal = [sum(times[p][i] for p in parts) for i in range(len(times[ours]))]
    ratios = [o / i for o, i in zip(times[ours], ideal)]
    counts = {p: parts.count(p) for p in parts}
    detail = " + ".join(f"{n} x {p} {statistics.median(times[p]) * 1e3:.1f}" if n > 1 else
                        f"{p} {statistics.median(times[p]) * 1e3:.1f}" for p, n in counts.items())
    return (f"| {label} | {statistics.median(times[ours]) * 1e3:.1f} | {statistics.median(ideal) * 1e3:.1f} "
            f"({detail}) | {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn", help="a name of keras_edda.models.build (default: cnn)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jit", action="store_true", help="compile the train steps with XLA (as fit on a GPU)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time; cpu: the process's CPU time, with TensorFlow on one thread")
    args = parser.parse_args()
    if args.clock == "cpu":
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    shape = (args.size, args.size, 3)
    x = tf.random.uniform((args.batch, *shape))
    y = tf.random.uniform((args.batch,), 0, 10, tf.int32)

    def classifier_of():
        return models.build(args.model, shape, 10)

    plain = classifier_of()
    plain.compile("adam")
    plain_step = train_step_fn(plain, args.jit)
    grad_cam = explainers.GradCAM(plain)
    saliency = explainers.Saliency(plain)
    forward = tf.function(lambda images: plain(images, training=False))
    functions = {
        "grad_cam": lambda: grad_cam(x),
        "saliency": lambda: saliency(x),
        "forward": lambda: forward(x),
        "cutout_reference": (lambda fn: lambda: fn(x, y))(cutout_reference(0.5, 10)),
    }
    layers = {name: make(classifier_of()) for name, make in METHODS}
    for copies in sorted({0} | {len(layer.copy_names) for layer in layers.values()}):
        xs, ys = tf.concat([x] * (1 + copies), 0), tf.concat([y] * (1 + copies), 0)
        functions[f"step on {1 + copies}N"] = (lambda a, b: lambda: plain_step(a, b))(xs, ys)

    for name, make in METHODS:
        classifier = classifier_of()
        model = keras.Sequential([keras.Input(shape), make(classifier), classifier])
        model.compile("adam")
        step = train_step_fn(model, args.jit)
        functions[f"{name} step"] = (lambda s: lambda: s(x, y))(step)
        map_fn = method_map_fn(layers[name])
        mapped = tf.function(lambda images, labels, fn=map_fn: fn(images, labels))
        functions[f"{name} map"] = (lambda m: lambda: m(x, y))(mapped)

    # Parts of the methods' own work (not model passes), to see where a gap to the ideal goes.
    maps = saliency(x, y)
    edda = EDDA(plain)
    transformation = edda.get_random_transformation({"images": x, "labels": y})
    noise = fills.get("noise")  # built outside the tf.function: it owns a seed generator (a variable)
    parts = {
        "empty tf.function call": (tf.function(lambda a: a), (x,)),
        "rank N maps for a top-fraction mask (SaliencyGuided)": (
            tf.function(lambda m: ops.top_fraction_mask(-m, 0.5)), (maps,)),
        "noise fill of N images (SaliencyGuided)": (
            tf.function(lambda a, m: noise(a, m)), (x, transformation["copy_masks"][0])),
        "threshold masks of N maps (EDDA)": (tf.function(lambda m: ops.salient_mask(m, 0.5)), (maps,)),
        "2N copies from masks and fills (EDDA, MethodLayer.copies)": (
            tf.function(lambda a, t: edda.copies(a, t)), (x, transformation)),
        "phase 2 on N + 2N rows (EDDA, transform_*)": (
            tf.function(lambda a, b, t: (edda.transform_images(a, t), edda.transform_labels(b, t),
                                         edda.transform_sample_weights(None, t))), (x, y, transformation)),
    }
    for name, (fn, fn_args) in parts.items():
        functions[name] = (lambda f, a: lambda: f(*a))(fn, fn_args)

    times = timed_rounds(functions, args.rounds, args.repeats, args.clock)

    print(f"# {device_name()}; TF {tf.__version__}, Keras {keras.__version__}; {args.model} "
          f"({plain.count_params():,} weights), batch {args.batch} x "
          f"{args.size}x{args.size}x3, {args.rounds} rounds x median of {args.repeats}, {args.clock} clock"
          + (", train steps with XLA" if args.jit else ""))
    edda_default = layers["EDDA (defaults)"]
    print(f"EDDA defaults: salient_target={edda_default.salient_target!r}, "
          f"non_salient_target={edda_default.non_salient_target!r}, keep_if_correct={edda_default.keep_if_correct}")
    print(f"plain train step on N (reference): {statistics.median(times['step on 1N']) * 1e3:.1f} ms")
    step_ratios = [e / p for e, p in zip(times["EDDA (defaults) step"], times["step on 1N"])]
    print(f"one EDDA step (defaults, in a model) / one plain step on the same N images: "
          f"{statistics.median(step_ratios):.2f}x ({min(step_ratios):.2f}-{max(step_ratios):.2f} over rounds)")
    print()
    print("| train step in a model | ms | ideal ms (parts) | ours / ideal |")
    print("|---|---|---|---|")
    for name, layer in layers.items():
        print(row(name, f"{name} step", (f"step on {1 + len(layer.copy_names)}N",) + passes(layer, True), times))
    print()
    print("| method_map_fn in a tf.function | ms | ideal ms (parts) | ours / ideal |")
    print("|---|---|---|---|")
    for name, layer in layers.items():
        print(row(name, f"{name} map", passes(layer, False), times))
    print()
    print("| part of the methods' own work, in its own tf.function | ms |")
    print("|---|---|")
    for name in parts:
        print(f"| {name} | {statistics.median(times[name]) * 1e3:.2f} |")


if __name__ == "__main__":
    main()
