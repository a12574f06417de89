"""Deletion / Insertion throughput: keras_edda vs xplique (when installed),
ROAD and the sanity checks: keras_edda vs Quantus (when installed), each
against the compute limit, in one process.

    python benchmarks/metrics.py [--batch 32] [--size 32] [--steps 16]
    python benchmarks/metrics.py --only-road [--road-batch 32] [--percentages 10,20,...,90] [--repeats 5]
    python benchmarks/metrics.py --only-randomisation [--sanity-batch 32] [--repeats 5]

Model-parameter randomisation and random logit: both libraries explain the
same images with the same Saliency maps (max |d logit / dx| over the
channels) on every randomised model (the 3 weighted layers of the
benchmark CNN, cascading from the top) or for the random class, and compare
them by Spearman rank correlation. Quantus 0.6's `MPRT` / `RandomLogit` get
an eager `tf.GradientTape` saliency as `explain_func` (the same maps; no
tracing for it to pay on the clone it makes at each call). The limit: the
explanations alone (4 batched saliency passes for MPRT, 1 for random logit:
the maps of the trained model and class are given), compiled.

Deletion / Insertion: both libraries compute `steps + 1` points per image.
ROAD: both libraries remove and impute the same percentages of the same
maps (noise 0.01) on single-channel images (Quantus' ROAD indexes pixels of
one channel only). The compute limit is the same model work done as bare
batched forward passes: N * (points + 1) prepared images in chunks of
`--chunk`; for ROAD the imputation alone (the same N * points solves) is
timed too. Prints images/s and ratios.
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import device_name, interleaved_times, median_seconds  # noqa: E402
from explainers import build_model, forward_limit  # noqa: E402

from keras_edda import explainers, metrics  # noqa: E402
from keras_edda import ops as metrics_ops  # noqa: E402
from keras_edda.ops import fills  # noqa: E402
from keras_edda.ops.batching import map_rows  # noqa: E402


def xplique_metrics():
    try:
        from xplique.metrics import Deletion, Insertion
    except ImportError:
        return None
    return {"deletion_auc": Deletion, "insertion_auc": Insertion}


def road_model(size, classes=10):
    """The benchmark CNN of `explainers.build_model` on one channel."""
    inputs = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))


def road_benchmark(args):
    try:
        import quantus
    except ImportError:
        quantus = None
    percentages = [float(p) for p in args.percentages.split(",")]
    model = road_model(args.size)
    images = tf.random.uniform((args.road_batch, args.size, args.size, 1), seed=1)
    maps = explainers.GradCAM(model)(images)
    labels = tf.argmax(model(images), axis=-1).numpy()
    points = len(percentages)
    road = metrics.ROAD(percentages=percentages, noise=0.01, batch_size=args.chunk)
    # The imputation alone: the same N * points masks through the fill, in the same chunks.
    counts = tf.constant(road.counts(args.size * args.size, args.size))
    ranks = tf.repeat(metrics_ops.pixel_ranks(maps), points, axis=0)
    masks = tf.cast(ranks < tf.reshape(tf.tile(counts, [args.road_batch]), (-1, 1, 1, 1)), tf.float32)
    work = tf.repeat(images, points, axis=0)
    fill = fills.noisy_linear_fill(noise=0.01)
    impute = tf.function(lambda x, m: map_rows(lambda a, b: fills.fill_masked(a, b, fill), x, m,
                                               list(x.shape[1:]), args.chunk))
    functions = {"ours": lambda: road(model, images, maps),
                 "limit": forward_limit(model, images, points + 1, args.chunk),
                 "impute": lambda: impute(work, masks)}
    if quantus is not None:
        reference = quantus.ROAD(percentages=percentages, noise=0.01, normalise=False, disable_warnings=True,
                                 display_progressbar=False)
        attributions = np.transpose(maps.numpy(), (0, 3, 1, 2))
        x = images.numpy()
        functions["quantus"] = lambda: np.float32(list(reference(
            model=model, x_batch=x, y_batch=labels, a_batch=attributions, channel_first=False,
            batch_size=args.chunk).values()))
    # Timed in turns, so that the machine's changes of speed hit every function alike; a ratio is
    # the median of the turns' ratios (with their range).
    turns = interleaved_times(functions, args.repeats)
    medians = {name: statistics.median(values) for name, values in turns.items()}

    def turn_ratio(slow, fast, unit=""):
        ratios = sorted(s / f for s, f in zip(turns[slow], turns[fast]))
        digits = 2 if statistics.median(ratios) < 10 else 1
        return f"{statistics.median(ratios):.{digits}f}{unit} ({ratios[0]:.{digits}f}-{ratios[-1]:.{digits}f})"

    print(f"\n# ROAD: batch {args.road_batch} of {args.size}x{args.size}x1, {points} percentages "
          f"({args.percentages}), noise 0.01, chunks of {args.chunk}; ours, the limit, the imputation and "
          f"Quantus timed in {args.repeats} turns: medians, and ratios as the median of the turns' ratios (range)")
    # "limit / Quantus": the most any implementation that needs these forward passes could gain.
    print("| metric | keras_edda img/s | Quantus img/s | ours / Quantus | limit / Quantus | limit img/s "
          "| ours / limit | imputation alone img/s |")
    print("|---|---|---|---|---|---|---|---|")
    if quantus is not None:
        theirs_text = (f"{args.road_batch / medians['quantus']:,.1f} | {turn_ratio('quantus', 'ours', 'x')} | "
                       f"{turn_ratio('quantus', 'limit', 'x')}")
    else:
        theirs_text = "not installed | - | -"
    print(f"| road_morf | {args.road_batch / medians['ours']:,.0f} | {theirs_text} | "
          f"{args.road_batch / medians['limit']:,.0f} | {turn_ratio('limit', 'ours')} | "
          f"{args.road_batch / medians['impute']:,.0f} |")


def eager_saliency(model, inputs, targets, **_):
    """Quantus' `explain_func`: max over the channels of |d logit / d x|, channels-first (N, 1, H, W)."""
    inputs = np.asarray(inputs, "float32")
    if inputs.shape[-1] != model.input_shape[-1]:  # Quantus passes channels-first copies to randomised models
        inputs = np.transpose(inputs, (0, 2, 3, 1))
    x = tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x, training=False)  # `sanity_model` ends in logits
        score = tf.reduce_sum(tf.gather(logits, np.asarray(targets).astype("int32"), axis=1, batch_dims=1))
    gradients = tf.abs(tape.gradient(score, x))
    return np.transpose(tf.reduce_max(gradients, axis=-1, keepdims=True).numpy(), (0, 3, 1, 2))


def sanity_model(size, classes=10):
    """The benchmark CNN of `explainers.build_model`, ending in logits (no softmax)."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(x))


def randomisation_benchmark(args):
    try:
        import quantus
    except ImportError:
        quantus = None
    model = sanity_model(args.size)
    images = tf.random.uniform((args.sanity_batch, args.size, args.size, 3), seed=2)
    labels = tf.argmax(model(images), axis=-1, output_type=tf.int32)
    saliency = explainers.Saliency(model, batch_size=args.chunk)
    maps = saliency(images, targets=labels)
    x, y = images.numpy(), labels.numpy()
    attributions = np.transpose(maps.numpy(), (0, 3, 1, 2))
    np.testing.assert_allclose(eager_saliency(model, x, y), attributions, rtol=1e-4, atol=1e-6)
    mprt = metrics.ModelParameterRandomisation("saliency", batch_size=args.chunk)
    random_logit = metrics.RandomLogit("saliency", batch_size=args.chunk)
    layers = len(metrics.ModelParameterRandomisation().layer_names(model))
    other = (labels + 1) % 10
    functions = {
        "mprt": lambda: mprt(model, images, maps, targets=labels),
        "mprt_limit": lambda: [saliency(images, targets=labels) for _ in range(layers)],
        "random_logit": lambda: random_logit(model, images, maps, targets=labels),
        "random_logit_limit": lambda: saliency(images, targets=other),
    }
    if quantus is not None:
        reference_mprt = quantus.MPRT(disable_warnings=True, display_progressbar=False)
        reference_logit = quantus.RandomLogit(
            num_classes=10, similarity_func=quantus.similarity_func.correlation_spearman, disable_warnings=True,
            display_progressbar=False)
        common = {"x_batch": x, "y_batch": y, "a_batch": attributions, "channel_first": False,
                  "explain_func": eager_saliency, "batch_size": args.sanity_batch}
        functions["mprt_quantus"] = lambda: reference_mprt(model=model, **common)
        functions["random_logit_quantus"] = lambda: np.float32(reference_logit(model=model, **common))
    turns = interleaved_times(functions, args.repeats)
    medians = {name: statistics.median(values) for name, values in turns.items()}

    def turn_ratio(slow, fast, unit=""):
        ratios = sorted(s / f for s, f in zip(turns[slow], turns[fast]))
        digits = 2 if statistics.median(ratios) < 10 else 1
        return f"{statistics.median(ratios):.{digits}f}{unit} ({ratios[0]:.{digits}f}-{ratios[-1]:.{digits}f})"

    print(f"\n# Sanity checks: {device_name()}; batch {args.sanity_batch} of {args.size}x{args.size}x3, the benchmark "
          f"CNN with logits ({layers} weighted layers), Saliency maps, Spearman; ours, the limit and Quantus timed "
          f"in {args.repeats} turns: medians, and ratios as the median of the turns' ratios (range)")
    # "limit / Quantus": the most any implementation that computes these explanations could gain.
    print("| metric | keras_edda img/s | Quantus img/s | ours / Quantus | limit / Quantus | limit img/s "
          "| ours / limit |")
    print("|---|---|---|---|---|---|---|")
    for name, label in (("mprt", "model_parameter_randomisation"), ("random_logit", "random_logit")):
        if quantus is not None:
            theirs = (f"{args.sanity_batch / medians[name + '_quantus']:,.1f} | "
                      f"{turn_ratio(name + '_quantus', name, 'x')} | "
                      f"{turn_ratio(name + '_quantus', name + '_limit', 'x')}")
        else:
            theirs = "not installed | - | -"
        print(f"| {label} | {args.sanity_batch / medians[name]:,.0f} | {theirs} | "
              f"{args.sanity_batch / medians[name + '_limit']:,.0f} | {turn_ratio(name + '_limit', name)} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--road-batch", type=int, default=32)
    parser.add_argument("--percentages", default="10,20,30,40,50,60,70,80,90")
    parser.add_argument("--only-road", action="store_true", help="run only the ROAD section")
    parser.add_argument("--sanity-batch", type=int, default=32)
    parser.add_argument("--only-randomisation", action="store_true",
                        help="run only the sanity checks (model-parameter randomisation, random logit)")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    keras.utils.disable_interactive_logging()
    if args.only_road:
        road_benchmark(args)
        return
    if args.only_randomisation:
        randomisation_benchmark(args)
        return
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
    road_benchmark(args)
    randomisation_benchmark(args)


if __name__ == "__main__":
    main()
