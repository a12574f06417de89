"""DANCE's robustness claims, measured: saturation, sensitivity under a
top-k explanation attack, and fidelity, DANCE against its base explainer.

    python benchmarks/dance.py [--images 32] [--seed 0] [--epochs 15]

1. Saturation: a model whose class score is min(relu(evidence), cap) with
   random evidence blocks pushed past the cap; share of evidence pixels with
   a non-zero map (the input gradient is zero there).
2. Sensitivity (Alvarez-Melis & Jaakkola, 2018) under Ghorbani et al.'s
   top-k attack (AAAI 2019): on a small softplus CNN trained on the embedded
   digits, projected signed-gradient steps within an L-inf ball that keep
   the predicted class and push the base saliency (normalised to sum 1) off
   the original top-k pixels. The attack is white-box on the base
   explainer; DANCE is measured on the same attacked images (transfer).
   Reported: ||E(x) - E(x')||_2 / ||x - x'||_2 with maps normalised to sum
   1, and the share of the top-k pixels kept; a random-sign perturbation of
   the same size is the control.
3. Fidelity: Deletion AUC (keras_edda.metrics, lower is better) and, when
   the library has it, `keras_edda.metrics.SaliencyMetric` (Dabkowski & Gal
   saliency score, lower is better).

Prints mean and standard error over the test images.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import device_name  # noqa: E402

from keras_edda import datasets, explainers, metrics  # noqa: E402
from keras_edda.explainers.decoys import winsorize  # noqa: E402
from keras_edda.ops.normalize import minmax_normalize  # noqa: E402


def saturating_model(size=8, cap=3.5):
    """logits [c, -c], c = min(relu(sum of the image), cap)."""
    model = keras.Sequential([
        keras.Input((size, size, 1)), keras.layers.Flatten(),
        keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="evidence"),
        keras.layers.ReLU(max_value=cap, name="cap"),
        keras.layers.Dense(2, use_bias=False, name="head")])
    model.get_layer("head").set_weights([np.array([[1.0, -1.0]], "float32")])
    return model


def evidence_images(count, rng, size=8):
    """A 2x2 block at a random place, values drawn so that the sum is 3.6-4."""
    images = np.zeros((count, size, size, 1), "float32")
    for image in images:
        top, left = rng.integers(0, size - 1, size=2)
        image[top:top + 2, left:left + 2] = rng.uniform(0.9, 1.0)
    return images


def digits_model(size, seed, epochs):
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(image_size=size, seed=seed)
    model = keras.Sequential([
        keras.Input((size, size, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="softplus"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="softplus", name="conv2"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10, name="logits")])
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    return model, x_test, y_test, accuracy


def unit_sum(maps):
    maps = np.abs(np.asarray(maps, "float64")).reshape(len(maps), -1)
    return maps / np.maximum(maps.sum(axis=1, keepdims=True), 1e-12)


def top_k_masks(maps, k):
    flat = unit_sum(maps)
    masks = np.zeros_like(flat, "float32")
    np.put_along_axis(masks, np.argsort(-flat, axis=1)[:, :k], 1.0, axis=1)
    return masks


def top_k_attack(model, images, labels, masks, radius, steps):
    """Ghorbani et al.'s top-k attack on the input-gradient saliency."""
    images = tf.constant(images)
    masks = tf.constant(masks)
    labels = tf.constant(labels, tf.int32)
    step = radius / 4

    @tf.function
    def attack_step(attacked):
        with tf.GradientTape() as outer:
            outer.watch(attacked)
            with tf.GradientTape() as inner:
                inner.watch(attacked)
                score = tf.gather(model(attacked, training=False), labels, batch_dims=1)
            saliency = tf.reshape(tf.reduce_max(tf.abs(inner.gradient(score, attacked)), axis=-1),
                                  (len(images), -1))
            saliency /= tf.reduce_sum(saliency, axis=1, keepdims=True) + 1e-12
            on_top = tf.reduce_sum(saliency * masks)
        moved = attacked - step * tf.sign(outer.gradient(on_top, attacked))
        moved = tf.clip_by_value(tf.clip_by_value(moved, images - radius, images + radius), 0.0, 1.0)
        kept = tf.argmax(model(moved, training=False), axis=-1, output_type=tf.int32) == labels
        return tf.where(kept[:, None, None, None], moved, attacked)

    attacked = images
    for _ in range(steps):
        attacked = attack_step(attacked)
    return attacked.numpy()


def mean_se(values):
    values = np.asarray(values, "float64")
    return f"{values.mean():.3f} ± {values.std(ddof=1) / np.sqrt(len(values)):.3f}"


def saturation(args, rng):
    model = saturating_model()
    images = evidence_images(args.images, rng)
    evidence = images[..., 0] > 0
    made = {
        "saliency": explainers.Saliency(model),
        "smoothgrad": explainers.SmoothGrad(model, samples=32),
        "dance(saliency)": explainers.Decoys(model, layer="cap", epsilon=0.3, steps=args.steps),
    }
    print("\n## Saturation: share of evidence pixels with a non-zero map "
          f"({args.images} images, cap 3.5, evidence 3.6-4, DANCE layer 'cap', epsilon 0.3)")
    print("| explainer | share non-zero (mean ± s.e.) |\n|---|---|")
    for name, explainer in made.items():
        maps = explainer(images, targets=0).numpy()[..., 0]
        shares = [np.mean(m[e] > 1e-6) for m, e in zip(maps, evidence)]
        print(f"| {name} | {mean_se(shares)} |")


def robustness(args):
    model, x_test, y_test, accuracy = digits_model(args.size, args.seed, args.epochs)
    predicted = np.argmax(model.predict(x_test, verbose=0), axis=-1)
    correct = np.flatnonzero(predicted == y_test)
    chosen = np.random.default_rng(args.seed).choice(correct, args.images, replace=False)
    images, labels = x_test[chosen], y_test[chosen]
    pixels = args.size * args.size
    k = max(1, int(round(args.top_k * pixels)))
    dance_settings = {"steps": args.steps, "epsilon": args.epsilon, "batch_size": args.batch_size}
    made = {
        "saliency": explainers.Saliency(model),
        "dance(saliency)": explainers.Decoys(model, **dance_settings),
        "dance-mean(saliency)": explainers.Decoys(model, aggregation="mean", **dance_settings),
        "smoothgrad": explainers.SmoothGrad(model, samples=args.samples),
        "dance(smoothgrad)": explainers.Decoys(model, base="smoothgrad",
                                               base_kwargs={"samples": args.samples}, **dance_settings),
    }
    print(f"\n## Digits {args.size}x{args.size}, softplus CNN, seed {args.seed}, {args.epochs} epochs, "
          f"test accuracy {accuracy:.3f}; {args.images} correctly classified test images; "
          f"DANCE patch 3, epsilon {args.epsilon}, {args.steps} steps, layer conv2")
    maps = {"original": {}}
    for label, explainer in made.items():
        start = time.perf_counter()
        maps["original"][label] = explainer(images, labels).numpy()
        print(f"# {label} on {args.images} images: {time.perf_counter() - start:.1f} s "
              "(first call, tracing included)")

    decoys = made["dance(saliency)"].decoys(images[:4]).numpy()
    change = np.abs(decoys - images[:4, None, None]).sum(axis=(3, 4, 5))
    print(f"# decoys of dance(saliency), first 4 images: L1 change per decoy mean {change.mean():.3f}, "
          f"max {change.max():.3f} (a patch holds 9 pixels in [0, 1])")

    attacked = top_k_attack(model, images, labels, top_k_masks(maps["original"]["saliency"], k),
                            args.radius, args.attack_steps)
    noise = np.random.default_rng(args.seed + 1).choice([-1.0, 1.0], images.shape).astype("float32")
    perturbed = {"top-k attack": attacked, "random sign": np.clip(images + args.radius * noise, 0.0, 1.0)}
    for kind, changed in perturbed.items():
        maps[kind] = {label: explainer(changed, labels).numpy() for label, explainer in made.items()}
    still = np.mean(np.argmax(model.predict(attacked, verbose=0), axis=-1) == labels)
    variants = {"raw": lambda m: m,
                "abs+winsorise+min-max": lambda m: minmax_normalize(winsorize(np.abs(m))).numpy()}
    print(f"\n## Sensitivity: top-k attack on saliency (k = {k} of {pixels} pixels, L-inf radius "
          f"{args.radius}, {args.attack_steps} steps; prediction kept on {still:.0%})")
    print("| maps | explainer | perturbation | sensitivity ‖E(x)-E(x')‖/‖x-x'‖ (maps sum to 1) | "
          "top-k kept |\n|---|---|---|---|---|")
    for variant, post in variants.items():
        for label in made:
            reference = unit_sum(post(maps["original"][label]))
            before = top_k_masks(post(maps["original"][label]), k)
            for kind, changed in perturbed.items():
                after = post(maps[kind][label])
                moved = np.linalg.norm(unit_sum(after) - reference, axis=1)
                distance = np.linalg.norm((changed - images).reshape(len(images), -1), axis=1)
                kept = np.sum(top_k_masks(after, k) * before, axis=1) / k
                print(f"| {variant} | {label} | {kind} | {mean_se(moved / distance)} | {mean_se(kept)} |")

    print("\n## Fidelity on the original images (lower is better)")
    scorers = {"deletion_auc": metrics.get("deletion_auc")}
    if hasattr(metrics, "SaliencyMetric"):
        scorers["saliency_metric"] = metrics.SaliencyMetric()
    else:
        print("# keras_edda.metrics.SaliencyMetric is not in the library yet: Deletion AUC only")
    print("| maps | explainer | " + " | ".join(scorers) + " |\n|---|---|" + "---|" * len(scorers))
    for variant, post in variants.items():
        for label, original in maps["original"].items():
            cells = [mean_se(scorer(model, images, post(original), labels).numpy())
                     for scorer in scorers.values()]
            print(f"| {variant} | {label} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=16, help="decoy optimisation steps")
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=8, help="SmoothGrad samples")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--top-k", type=float, default=0.1, help="share of pixels attacked")
    parser.add_argument("--radius", type=float, default=0.05, help="L-inf radius of the attack")
    parser.add_argument("--attack-steps", type=int, default=30)
    args = parser.parse_args()
    keras.utils.disable_interactive_logging()
    tf.get_logger().setLevel("ERROR")
    print(f"# {device_name()}; TF {tf.__version__}, Keras {keras.__version__}; "
          f"python benchmarks/dance.py {' '.join(sys.argv[1:])}")
    saturation(args, np.random.default_rng(args.seed))
    robustness(args)


if __name__ == "__main__":
    main()
