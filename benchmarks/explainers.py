"""Explainer throughput: keras_edda vs tf-explain (core, no drawing) vs
xplique (when installed), and each against its compute limit, in one process.

    python benchmarks/explainers.py [--batch 32] [--steps 50] [--patch 4]
    python benchmarks/explainers.py --model resnet20 --size 32 --only-core
    python benchmarks/explainers.py --model mobilenet_v3_small --size 96 --patch 16 --only-core

`--model` is `benchmark` (Conv32-Conv64-GAP-Dense10, default) or any name of
`keras_edda.models.build` with fresh weights; a `keras.applications`
backbone is built at `--size` and used without its wrapper (a flat model,
as tf-explain and xplique need), and Grad-CAM reads the layer keras_edda's
Grad-CAM picks (the last spatial one) in all three libraries.

The compute limit is the same model work done as bare batched passes:
Grad-CAM = one forward pass of the batch (a lower bound: it also needs a
backward pass to the layer); IG = steps x images forward+backward passes in chunks of `batch_size`;
Occlusion = patches x images forward passes in chunks of `batch_size`
(occluded inputs prepared beforehand). Prints images/s and ratios.
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
from _timing import device_name, interleaved_medians, median_seconds  # noqa: E402

from keras_edda import explainers, models  # noqa: E402


def build_model(size, classes=10):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def gradient_limit(model, images, steps, chunk):
    """steps x N forward+backward passes, chunked like the explainer."""
    work = tf.repeat(images, steps, axis=0)

    @tf.function
    def run(work):
        total = tf.constant(0.0)
        for start in range(0, work.shape[0], chunk):
            batch = work[start:start + chunk]
            with tf.GradientTape() as tape:
                tape.watch(batch)
                score = tf.reduce_sum(model(batch, training=False)[:, 0])
            total += tf.reduce_sum(tape.gradient(score, batch))
        return total

    return lambda: run(work)


def forward_limit(model, images, patches, chunk):
    """patches x N forward passes on prepared inputs, chunked."""
    work = tf.repeat(images, patches, axis=0)

    @tf.function
    def run(work):
        total = tf.constant(0.0)
        for start in range(0, work.shape[0], chunk):
            total += tf.reduce_sum(model(work[start:start + chunk], training=False))
        return total

    return lambda: run(work)


def tf_explain_runs(model, images, steps, patch, layer="conv2"):
    try:
        from tf_explain.core import GradCAM, IntegratedGradients, OcclusionSensitivity
    except ImportError:
        return {}
    class_index = 0

    def grad_cam():
        outputs, grads = GradCAM.get_gradients_and_filters(
            model, images, layer, class_index, False)
        return GradCAM.generate_ponderated_output(outputs, grads)

    def integrated_gradients():
        interpolated = IntegratedGradients.generate_interpolations(images, steps)
        return IntegratedGradients.get_integrated_gradients(
            interpolated, model, class_index, steps)

    occlusion = OcclusionSensitivity(batch_size=512)

    def occlusion_run():
        return [occlusion.get_sensitivity_map(model, image, class_index, patch)
                for image in images]

    return {"grad_cam": grad_cam, "integrated_gradients": integrated_gradients,
            "occlusion": occlusion_run}


def xplique_runs(model, images, steps, patch, batch_size, layer="conv2"):
    try:
        import xplique.attributions as xa
    except ImportError:
        return {}
    targets = tf.one_hot(np.zeros(len(images), int), 10)
    made = {
        "grad_cam": xa.GradCAM(model, conv_layer=layer),
        "integrated_gradients": xa.IntegratedGradients(model, steps=steps, batch_size=batch_size),
        "occlusion": xa.Occlusion(model, patch_size=patch, patch_stride=patch, batch_size=batch_size),
    }
    return {name: (lambda e=e: e.explain(images, targets)) for name, e in made.items()}


def dance(args):
    """DANCE against its compute limit: per decoy (images x patches x 2),
    `steps` forward+backward passes to the layer plus the base explainer
    (Saliency: one forward+backward pass), in chunks of `--chunk`. The two
    are timed in turns, so that a change of load hits both; the ratio is the
    median of the per-turn ratios."""
    keras.utils.set_random_seed(0)
    model = build_model(args.dance_size)
    images = tf.constant(np.random.default_rng(0).uniform(
        size=(args.dance_images, args.dance_size, args.dance_size, 3)).astype("float32"))
    explainer = explainers.Decoys(model, layer="conv2", batch_size=args.chunk)
    patches = int(explainer.patch_masks(args.dance_size, args.dance_size).shape[0])
    trunk = keras.Model(model.inputs, model.get_layer("conv2").output)
    work = tf.repeat(images, 2 * patches, axis=0)

    @tf.function
    def limit(work):
        total = tf.constant(0.0)
        for start in range(0, work.shape[0], args.chunk):
            batch = work[start:start + args.chunk]
            for _ in tf.range(explainer.steps):
                with tf.GradientTape() as tape:
                    tape.watch(batch)
                    values = tf.reduce_sum(trunk(batch, training=False))
                batch = batch + 1e-3 * tf.sign(tape.gradient(values, batch))
            with tf.GradientTape() as tape:
                tape.watch(batch)
                score = tf.reduce_sum(model(batch, training=False)[:, 0])
            total += tf.reduce_sum(tape.gradient(score, batch))
        return total

    def ours():
        return explainer(images, 0)

    def bound():
        return limit(work)

    median_seconds(ours, 1), median_seconds(bound, 1)  # warm-up
    turns = [(median_seconds(ours, 1, warmup=0), median_seconds(bound, 1, warmup=0))
             for _ in range(args.repeats)]
    ours_s, limit_s = (statistics.median(times) for times in zip(*turns))
    ratios = sorted(limit / ours for ours, limit in turns)
    print(f"# DANCE: {device_name()}; {args.dance_images} images {args.dance_size}x{args.dance_size}x3, "
          f"Conv32-Conv64-GAP-Dense10, base saliency, patch 3 ({patches} patches, {2 * patches} decoys "
          f"per image), {explainer.steps} steps, layer conv2, chunk {args.chunk}; median of {args.repeats} turns")
    print("| explainer | keras_edda s/image | compute limit s/image | limit / ours (median, range) |\n"
          "|---|---|---|---|")
    print(f"| dance | {ours_s / args.dance_images:.3f} | {limit_s / args.dance_images:.3f} | "
          f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f}) |")


LIME_GRID = 8
LIME_MODELS = {
    "benchmark": lambda size: build_model(size),
    # The library's own classifier (the one `compare` trains): pooling after its first two blocks makes it
    # far cheaper per image than the benchmark CNN, so the lime package's own work weighs more.
    "small_cnn": lambda size: models.small_cnn((size, size, 3), 10),
    # softmax(W x): a model whose forward passes cost next to nothing, so the ratio shows the explainers' own work.
    "dense": lambda size: keras.Sequential([keras.Input((size, size, 3)), keras.layers.Flatten(),
                                            keras.layers.Dense(10, activation="softmax")]),
}


def lime_times(model, images, args):
    """(ours, compute limit, lime package or None) seconds for LIME on `images`: same grid
    segmentation, samples and batch size; the lime package gets a compiled predictor."""
    tensor = tf.constant(images)
    lime_ours = explainers.Lime(model, num_samples=args.lime_samples, grid_size=LIME_GRID, batch_size=args.chunk,
                                use_logits=False)
    segments = lime_ours.segment(tensor)[0].numpy()
    predict = tf.function(lambda batch: model(batch, training=False))
    times = interleaved_medians({"ours": lambda: lime_ours(tensor, 0),
                                 "limit": forward_limit(model, tensor, args.lime_samples + 1, args.chunk)},
                                args.repeats)
    try:
        from lime import lime_image
    except ImportError:
        return times["ours"], times["limit"], None
    reference = lime_image.LimeImageExplainer(random_state=0)

    def lime_package():
        for image in images:
            reference.explain_instance(
                image.astype("float64"), lambda batch: predict(tf.constant(batch, tf.float32)).numpy(),
                labels=(0,), top_labels=None, hide_color=0, num_samples=args.lime_samples, random_seed=0,
                segmentation_fn=lambda _: segments, batch_size=args.chunk)

    return times["ours"], times["limit"], median_seconds(lime_package, max(1, min(args.repeats, 2)))


def generative(args):
    """LIME vs the `lime` package (same model, grid superpixels, samples and
    batch), MP vs its compute limit (`steps` forward+backward passes of the
    batch, one after the other), and the Inpainter fill's cost per image."""
    from keras_edda.inpainting import Inpainter, build_inpainter

    images = np.random.default_rng(0).uniform(size=(args.lime_images, args.size, args.size, 3)).astype("float32")
    lime_rows = []
    for name in args.lime_models.split(","):
        keras.utils.set_random_seed(0)
        lime_rows.append((name, *lime_times(LIME_MODELS[name](args.size), images, args)))
    keras.utils.set_random_seed(0)
    model = build_model(args.size)
    mp = explainers.MeaningfulPerturbation(model, steps=args.mp_steps, batch_size=args.batch)
    mp_images = tf.constant(np.random.default_rng(1).uniform(
        size=(args.batch, args.size, args.size, 3)).astype("float32"))

    @tf.function
    def mp_limit(batch):
        total = tf.constant(0.0)
        for _ in tf.range(args.mp_steps):
            with tf.GradientTape() as tape:
                tape.watch(batch)
                score = tf.reduce_sum(model(batch, training=False)[:, 0])
            total += tf.reduce_sum(tape.gradient(score, batch))
        return total

    mp_s = median_seconds(lambda: mp(mp_images, 0), args.repeats)
    mp_limit_s = median_seconds(lambda: mp_limit(mp_images), args.repeats)

    network = build_inpainter((args.size, args.size, 3), filters=32)
    fill = Inpainter(network)
    masks = tf.cast(tf.random.uniform((256, args.size, args.size, 1)) < 0.3, tf.float32)
    fill_images = tf.random.uniform((256, args.size, args.size, 3))
    fill_call = tf.function(lambda x, m: fill(x, m))
    fill_s = median_seconds(lambda: fill_call(fill_images, masks), args.repeats)
    forward = tf.function(lambda x: model(x, training=False))
    forward_s = median_seconds(lambda: forward(fill_images), args.repeats)

    print(f"# LIME / MP / Inpainter: {device_name()}; TF {tf.__version__}; {args.size}x{args.size}x3, "
          f"MP and the inpainter on Conv32-Conv64-GAP-Dense10; median of {args.repeats} (LIME: ours and its limit "
          f"in turns; lime package: of {min(args.repeats, 2)})")
    print("| explainer | keras_edda s/image | reference s/image | reference / ours |\n|---|---|---|---|")
    for name, lime_s, lime_limit_s, lime_ref_s in lime_rows:
        reference_cells = ("n/a", "n/a") if lime_ref_s is None else (
            f"{lime_ref_s / args.lime_images:.3f}", f"{lime_ref_s / lime_s:.1f}x")
        print(f"| lime on {name} ({args.lime_samples} samples, {LIME_GRID}x{LIME_GRID} grid, {args.lime_images} "
              f"images) vs lime package | {lime_s / args.lime_images:.3f} | {reference_cells[0]} | "
              f"{reference_cells[1]} |")
        print(f"| lime on {name} vs its compute limit ({args.lime_samples + 1} forward passes per image) | "
              f"{lime_s / args.lime_images:.3f} | {lime_limit_s / args.lime_images:.3f} | "
              f"{lime_limit_s / lime_s:.2f} |")
    print(f"| meaningful_perturbation ({args.mp_steps} steps, batch {args.batch}) vs its compute limit | "
          f"{mp_s / args.batch:.4f} | {mp_limit_s / args.batch:.4f} | {mp_limit_s / mp_s:.2f} |")
    print(f"| Inpainter fill (32 filters, depth 2, {network.count_params():,} weights; batch 256) vs one "
          f"classifier forward pass | {fill_s / 256 * 1e3:.3f} ms | {forward_s / 256 * 1e3:.3f} ms | "
          f"{forward_s / fill_s:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--patch", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dance-images", type=int, default=4)
    parser.add_argument("--dance-size", type=int, default=16)
    parser.add_argument("--only-dance", action="store_true", help="run only the DANCE section")
    parser.add_argument("--lime-images", type=int, default=4)
    parser.add_argument("--lime-samples", type=int, default=500)
    parser.add_argument("--lime-models", default="benchmark,small_cnn,dense",
                        help="comma-separated: benchmark (Conv32-Conv64-GAP-Dense10), small_cnn (keras_edda.models), "
                             "dense (Flatten-Dense10)")
    parser.add_argument("--mp-steps", type=int, default=300)
    parser.add_argument("--only-generative", action="store_true", help="run only the LIME / MP / Inpainter section")
    parser.add_argument("--model", default="benchmark",
                        help="benchmark (Conv32-Conv64-GAP-Dense10) or a name of keras_edda.models.build")
    parser.add_argument("--only-core", action="store_true",
                        help="run only Grad-CAM / IG / Occlusion (no DANCE, LIME, MP sections)")
    args = parser.parse_args()
    if args.only_dance:
        return dance(args)
    if args.only_generative:
        return generative(args)

    keras.utils.set_random_seed(0)
    keras.utils.disable_interactive_logging()
    if args.model == "benchmark":
        model, description = build_model(args.size), "Conv32-Conv64-GAP-Dense10"
    else:
        model = models.build(args.model, (args.size, args.size, 3), 10)
        if isinstance(model.layers[-1], keras.Model):  # a keras.applications backbone, nested: use it flat
            model = model.layers[-1]
        description = f"{args.model} ({model.count_params():,} weights, fresh)"
    images = np.random.default_rng(0).uniform(size=(args.batch, args.size, args.size, 3)).astype("float32")
    tensor = tf.constant(images)
    patches = (args.size // args.patch) ** 2
    grad_cam = explainers.GradCAM(model)
    grad_cam(tensor[:1], 0)
    layer = grad_cam.layer.name
    ours = {
        "grad_cam": explainers.GradCAM(model, layer=layer),
        "integrated_gradients": explainers.IntegratedGradients(
            model, steps=args.steps, batch_size=args.chunk),
        "occlusion": explainers.Occlusion(
            model, patch_size=args.patch, batch_size=args.chunk),
    }
    limits = {
        "grad_cam": forward_limit(model, tensor, 1, args.chunk),
        "integrated_gradients": gradient_limit(model, tensor, args.steps, args.chunk),
        "occlusion": forward_limit(model, tensor, patches + 1, args.chunk),
    }
    references = {"tf-explain": tf_explain_runs(model, images, args.steps, args.patch, layer),
                  "xplique": xplique_runs(model, tensor, args.steps, args.patch, args.chunk, layer)}

    print(f"# {device_name()}; TF {tf.__version__}, Keras {keras.__version__}; "
          f"batch {args.batch} x {args.size}x{args.size}x3, {description}, Grad-CAM layer {layer}, "
          f"IG steps {args.steps}, occlusion patch {args.patch} ({patches} patches), "
          f"chunk {args.chunk}; median of {args.repeats}")
    print("| explainer | keras_edda img/s | tf-explain img/s | ours / tf-explain | "
          "xplique img/s | ours / xplique | compute limit img/s | ours / limit |")
    print("|---|---|---|---|---|---|---|---|")
    for name, explainer in ours.items():
        ours_s = median_seconds(lambda: explainer(tensor, 0), args.repeats)
        rate = args.batch / ours_s
        cells = [name, f"{rate:,.0f}"]
        for label in ("tf-explain", "xplique"):
            run = references[label].get(name)
            if run is None:
                cells += ["n/a", "n/a"]
                continue
            seconds = median_seconds(run, max(1, args.repeats if name != "occlusion" else 2))
            cells += [f"{args.batch / seconds:,.0f}", f"{seconds / ours_s:.1f}x"]
        if name in limits:
            limit_s = median_seconds(limits[name], args.repeats)
            cells += [f"{args.batch / limit_s:,.0f}", f"{limit_s / ours_s:.2f}"]
        else:
            cells += ["-", "-"]
        print("| " + " | ".join(cells) + " |", flush=True)
    if not args.only_core:
        dance(args)
        generative(args)


if __name__ == "__main__":
    main()
