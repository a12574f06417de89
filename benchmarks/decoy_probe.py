"""How much does the built-in CNN rely on the decoy of digits-decoy, and what do the decoy
metrics and the sanity checks say about its explainers? One plain training run per seed.

    python benchmarks/decoy_probe.py [--patch-size 8] [--seeds 0,1] [--explained 128]

Trains `keras_edda.models.small_cnn` with `keras_edda.recipes.DEFAULT` on
`load("digits-decoy", decoy={"patch_size": ...})` (plain cross-entropy), then prints the
test accuracy on the clean digits and on the three decoy views, `decoy_reliance` (random and
swapped), `decoy_attribution` / `object_attribution` of Saliency, Grad-CAM and Integrated
Gradients on the first `--explained` random-shade test images (explaining the true class), and
Saliency's model-parameter randomisation and random-logit scores on 32 of them.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_edda import datasets, explainers, metrics, models, recipes  # noqa: E402


def probe(patch_size, seed, explained):
    keras.utils.set_random_seed(seed)
    data = datasets.load("digits-decoy", decoy={"patch_size": patch_size})
    clean = datasets.load("digits")
    recipe = recipes.DEFAULT
    model = models.small_cnn(data.image_shape, data.num_classes)
    model.compile(recipe.optimizer(recipe.total_steps(len(data.x_train))), "categorical_crossentropy")
    model.fit(data.x_train, keras.utils.to_categorical(data.y_train, data.num_classes), epochs=recipe.epochs,
              batch_size=recipe.batch_size, verbose=0)

    def accuracy(images):
        return float(np.mean(np.argmax(model.predict(images, verbose=0), axis=-1) == data.y_test))

    mean = lambda scores: float(tf.reduce_mean(scores))  # noqa: E731
    row = {"patch": data.decoy_settings["patch_size"], "seed": seed, "clean": accuracy(clean.x_test),
           "random": accuracy(data.x_test), "consistent": accuracy(data.x_test_consistent),
           "swapped": accuracy(data.x_test_swapped),
           "reliance": mean(metrics.DecoyReliance()(model, data.x_test_consistent, data.x_test, data.y_test)),
           "reliance_swapped": mean(metrics.DecoyRelianceSwapped()(model, data.x_test_consistent,
                                                                   data.x_test_swapped, data.y_test))}
    images, labels = data.x_test[:explained], data.y_test[:explained]
    for name in ("saliency", "grad_cam", "integrated_gradients"):
        maps = explainers.get(name, model)(images, targets=labels)
        row[f"{name} decoy"] = mean(metrics.DecoyAttribution()(maps, data.decoy_masks_test[:explained]))
        row[f"{name} object"] = mean(metrics.ObjectAttribution()(maps, data.object_masks_test[:explained]))
    row["saliency mprt"] = mean(metrics.ModelParameterRandomisation("saliency")(model, images[:32]))
    row["saliency random_logit"] = mean(metrics.RandomLogit("saliency")(model, images[:32]))
    row["decoy area"] = float(data.decoy_masks_test.mean())
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch-size", type=int, default=None, help="default: a quarter of the image side")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--explained", type=int, default=128)
    args = parser.parse_args()
    keras.utils.disable_interactive_logging()
    rows = [probe(args.patch_size, int(seed), args.explained) for seed in args.seeds.split(",")]
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
