"""Choose the training recipe of `keras-edda compare` on the validation split.

Trains the built-in small CNN on the digits (32x32, the split of
`keras_edda.datasets.load("digits")`, split seed 0; or on `digits-canvas`,
64x64) with a few recipes over
several seeds and prints the validation accuracy of each (mean, std with
ddof 1, minimum, per seed), the budget in optimiser steps and the seconds
per seed. `--split test` scores the test split instead: run it once, for
the chosen recipe only.

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/recipe_search.py
    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/recipe_search.py --configs default --split test
    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/recipe_search.py --configs default --dataset digits-canvas
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from keras_edda import datasets, models, recipes

# name: (recipe settings, small_cnn settings)
CONFIGS = {
    "old": (dict(epochs=20, learning_rate=3e-3, schedule="constant", weight_decay=0.0),
            dict(normalization=False)),
    "bn-constant-20": (dict(epochs=20, learning_rate=3e-3, schedule="constant", weight_decay=0.0), {}),
    "bn-cosine-12": (dict(epochs=12, learning_rate=3e-3), {}),
    "bn-cosine-20": (dict(epochs=20, learning_rate=3e-3), {}),
    "bn-cosine-20-lr1e-2": (dict(epochs=20, learning_rate=1e-2), {}),
    "bn-cosine-40": (dict(epochs=40, learning_rate=3e-3), {}),
    "bn-cosine-80": (dict(epochs=80, learning_rate=3e-3), {}),
    "default": (recipes.DEFAULT.to_dict(), {}),
}


def run(recipe, model_kwargs, data, seed, split):
    keras.utils.set_random_seed(seed)
    model = models.small_cnn(data.image_shape, data.num_classes, **model_kwargs)
    recipe.compile(model, len(data.x_train))
    train = (tf.data.Dataset.from_tensor_slices((data.x_train, tf.one_hot(data.y_train, data.num_classes)))
             .shuffle(len(data.x_train), seed=seed).batch(recipe.batch_size).prefetch(1))
    model.fit(train, epochs=recipe.epochs, verbose=0)
    images, labels = (data.x_val, data.y_val) if split == "validation" else (data.x_test, data.y_test)
    _, accuracy = model.evaluate(images, tf.one_hot(labels, data.num_classes), verbose=0)
    return accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(c for c in CONFIGS if c != "default"),
                        help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--dataset", choices=("digits", "digits-canvas"), default="digits")
    parser.add_argument("--image-size", type=int, help="default: 32 for digits, 64 for digits-canvas")
    args = parser.parse_args()
    size = args.image_size or (32 if args.dataset == "digits" else 64)
    data = datasets.load(args.dataset, image_size=size, split_seed=0)
    info = data.split_info()
    print(f"{args.dataset} {size}x{size}: {info['train']} train / {info['validation']} validation / "
          f"{info['test']} test (split seed 0); accuracy on the {args.split} split; seeds 0..{args.seeds - 1}")
    print(f"{'config':<22}{'steps':>6}{'mean':>8}{'std':>8}{'min':>8}{'s/seed':>8}  per seed")
    for name in args.configs.split(","):
        settings, model_kwargs = CONFIGS[name]
        recipe = recipes.Recipe(**settings)
        start = time.perf_counter()
        scores = [run(recipe, model_kwargs, data, seed, args.split) for seed in range(args.seeds)]
        seconds = (time.perf_counter() - start) / args.seeds
        print(f"{name:<22}{recipe.total_steps(len(data.x_train)):>6}{np.mean(scores):>8.4f}"
              f"{np.std(scores, ddof=1):>8.4f}{min(scores):>8.4f}{seconds:>8.1f}  "
              + " ".join(f"{s:.4f}" for s in scores), flush=True)
    print(f"default recipe: {recipes.DEFAULT!r}")


if __name__ == "__main__":
    main()
