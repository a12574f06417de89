"""Grad-CAM++, Score-CAM, RISE and Kernel SHAP: keras_edda against its reference and
against its compute limit, in one process, on the benchmark CNN and on ResNet-20.

    python benchmarks/explainers_cam_shap_rise.py [--images 8] [--size 32] [--masks 500]
        [--samples 200] [--grid 8] [--chunk 512] [--repeats 3] [--models benchmark,resnet20]
        [--only grad_cam_pp,score_cam,rise,kernel_shap]

References (each on the same model, images and targets, timed in turns with ours):
Grad-CAM++ and Score-CAM: tf-keras-vis 0.8.7 (`GradcamPlusPlus`, `Scorecam(max_N=-1)`: every
channel, as ours); RISE: the authors' algorithm (github.com/eclique/RISE: NumPy masks upsampled
with scikit-image, `model.predict` in batches of `--chunk`) and xplique 2.0.2's `Rise` (batch size
`--chunk`) when `--xplique-path` (default `.venv/xplique`, where `make test` installs it without its
dependency pins) holds it; Kernel SHAP: the shap package's `KernelExplainer` on
the same grid segmentation and number of samples, its model call compiled.

The compute limit is the model work the method needs, done as bare batched passes in chunks of
`--chunk` on prepared inputs: Grad-CAM++ = one forward pass of the batch (a lower bound: it also
needs a backward pass to the layer, as in benchmarks/explainers.py for Grad-CAM);
Score-CAM = (1 + K) forward passes per image (K = the layer's channels); RISE = `--masks`
forward passes per image; Kernel SHAP = `--samples` + 2 forward passes per image. Prints seconds
per image of ours and of the fastest reference (named), the ratios reference / ours for the fastest
reference and limit / ours (1.0 = at the limit).
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

from keras_edda import explainers, models  # noqa: E402


def benchmark_cnn(size, classes=10):
    """The benchmark CNN of benchmarks/explainers.py: Conv32-Conv64-GAP-Dense10, logits."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="head")(x))


def resnet20(size, classes=10):
    """ResNet-20 (He et al., 2016, CIFAR): `keras_edda.models.resnet20` where it exists, else the
    same architecture from `small_resnet` (width 16, three stages of three blocks)."""
    if hasattr(models, "resnet20"):
        return models.resnet20((size, size, 3), classes)
    return models.small_resnet((size, size, 3), classes, width=16, blocks=(3, 3, 3), name="resnet20")


MODELS = {"benchmark": benchmark_cnn, "resnet20": resnet20}


def forward_limit(model, images, per_image, chunk):
    """per_image x N forward passes on prepared inputs, in chunks."""
    work = tf.repeat(images, per_image, axis=0)

    @tf.function
    def run(work):
        total = tf.constant(0.0)
        for start in range(0, work.shape[0], chunk):
            total += tf.reduce_sum(tf.cast(model(work[start:start + chunk], training=False), tf.float32))
        return total

    return lambda: run(work)


def authors_rise(model, images, targets, num_masks, grid, p, chunk):
    """RISE as its authors' code computes it (NumPy masks, scikit-image resize, predict in batches)."""
    from skimage.transform import resize

    size = images.shape[1]
    rng = np.random.default_rng(0)

    def run():
        cell = int(np.ceil(size / grid))
        up = (grid + 1) * cell
        cells = (rng.random((num_masks, grid, grid)) < p).astype("float32")
        masks = np.empty((num_masks, size, size), "float32")
        for i in range(num_masks):
            x, y = rng.integers(0, cell, 2)
            masks[i] = resize(cells[i], (up, up), order=1, mode="reflect", anti_aliasing=False)[x:x + size,
                                                                                                y:y + size]
        maps = []
        for image, target in zip(images, targets):
            scores = model.predict(image[None] * masks[..., None], batch_size=chunk, verbose=0)[:, target]
            maps.append(np.tensordot(scores, masks, axes=1) / num_masks / p)
        return np.array(maps)

    return run


def shap_kernel(model, images, targets, segments, num_samples, chunk):
    import shap

    predict = tf.function(lambda batch: model(batch, training=False))
    features = int(segments.max()) + 1

    def run():
        values = []
        for image, target, cells in zip(images, targets, segments):
            def f(z, image=image, target=target, cells=cells):
                visible = z[:, cells].astype("float32")
                out = [predict(tf.constant(image[None] * visible[start:start + chunk, ..., None])).numpy()
                       for start in range(0, len(z), chunk)]
                return np.concatenate(out)[:, target]
            reference = shap.KernelExplainer(f, np.zeros((1, features)))
            values.append(reference.shap_values(np.ones((1, features)), nsamples=num_samples, l1_reg=False,
                                                silent=True))
        return values

    return run


def rows_for(model_name, args, xplique_rise=None):
    keras.utils.set_random_seed(0)
    model = MODELS[model_name](args.size)
    images_np = np.random.default_rng(0).uniform(size=(args.images, args.size, args.size, 3)).astype("float32")
    images = tf.constant(images_np)
    targets = np.arange(args.images) % 10
    target_tensor = tf.constant(targets, tf.int32)
    grad_cam_pp = explainers.GradCAMPlusPlus(model, batch_size=args.chunk)
    layer_name = grad_cam_pp.layer_path
    score_cam = explainers.ScoreCAM(model, batch_size=args.chunk)
    channels = int(score_cam._layer_shape[-1])
    rise = explainers.Rise(model, num_masks=args.masks, grid_size=7, p=0.5, batch_size=args.chunk)
    kernel_shap = explainers.KernelShap(model, num_samples=args.samples, grid_size=args.grid, batch_size=args.chunk)
    segments = kernel_shap.superpixels.segment(images).numpy()

    runs = {
        "grad_cam_pp": {"ours": lambda: grad_cam_pp(images, target_tensor),
                        "limit": forward_limit(model, images, 1, args.chunk)},
        "score_cam": {"ours": lambda: score_cam(images, target_tensor),
                      "limit": forward_limit(model, images, 1 + channels, args.chunk)},
        "rise": {"ours": lambda: rise(images, target_tensor),
                 "limit": forward_limit(model, images, args.masks, args.chunk),
                 "authors": authors_rise(model, images_np, targets, args.masks, 7, 0.5, args.chunk)},
        "kernel_shap": {"ours": lambda: kernel_shap(images, target_tensor),
                        "limit": forward_limit(model, images, args.samples + 2, args.chunk),
                        "shap": shap_kernel(model, images_np, targets, segments, args.samples, args.chunk)},
    }
    if xplique_rise is not None:
        rise_reference = xplique_rise(model, batch_size=args.chunk, nb_samples=args.masks, grid_size=7,
                                      preservation_probability=0.5)
        one_hot = np.eye(10, dtype="float32")[targets]
        runs["rise"]["xplique"] = lambda: rise_reference.explain(images_np, one_hot)
    try:
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore

        score = CategoricalScore(list(targets))
        layer = layer_name.split("/")[-1]
        plus_plus_reference = GradcamPlusPlus(model, clone=True)
        score_cam_reference = Scorecam(model, clone=True)
        runs["grad_cam_pp"]["tf-keras-vis"] = lambda: plus_plus_reference(score, images_np,
                                                                           penultimate_layer=layer)
        runs["score_cam"]["tf-keras-vis"] = lambda: score_cam_reference(
            score, images_np, penultimate_layer=layer, max_N=-1, batch_size=args.chunk)
    except ImportError:
        pass

    rows = []
    for name, functions in runs.items():
        if args.only and name not in args.only.split(","):
            continue
        seconds = interleaved_medians(functions, args.repeats)
        ours = seconds["ours"]
        references = {label: value for label, value in seconds.items() if label not in ("ours", "limit")}
        fastest = min(references, key=references.get) if references else None
        reference = references.get(fastest)
        rows.append((model_name, name, ours / args.images, fastest, reference and reference / args.images,
                     reference and reference / ours, seconds["limit"] / ours))
    return rows, layer_name, channels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--masks", type=int, default=500)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--grid", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="benchmark,resnet20")
    parser.add_argument("--only", default="", help="comma-separated explainers to time (default: all four)")
    parser.add_argument("--xplique-path", default=os.path.join(os.path.dirname(__file__), "..", ".venv", "xplique"),
                        help="folder holding xplique 2.0.2 (installed with --no-deps); RISE's second reference")
    args = parser.parse_args()
    xplique_rise = None
    if os.path.isdir(os.path.join(args.xplique_path, "xplique")):
        sys.path.append(os.path.abspath(args.xplique_path))
        from xplique.attributions import Rise as xplique_rise
    print(f"# {device_name()}; {args.images} images {args.size}x{args.size}x3; RISE {args.masks} masks grid 7; "
          f"Kernel SHAP {args.samples} samples grid {args.grid}; chunk {args.chunk}; median of {args.repeats} "
          "turns (ours, reference, limit timed in turns)")
    print("| model | explainer | keras_edda s/image | fastest reference | its s/image | reference / ours | "
          "limit / ours |\n|---|---|---|---|---|---|---|")
    for model_name in args.models.split(","):
        rows, layer, channels = rows_for(model_name, args, xplique_rise)
        for model, name, ours, label, reference, speedup, limit in rows:
            reference_text = f"{reference:.4f}" if reference else "-"
            speedup_text = f"{speedup:.1f}x" if speedup else "-"
            print(f"| {model} (CAM layer {layer}, K={channels}) | {name} | {ours:.4f} | {label or '-'} | "
                  f"{reference_text} | {speedup_text} | {limit:.2f} |")


if __name__ == "__main__":
    main()
