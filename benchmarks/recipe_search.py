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

On CIFAR-10 (`--dataset cifar10`: ResNet-20, a class-stratified subset of
`--max-train` training images, the 5,000 validation images of split seed 0;
the archive from `--data-dir` or `$KERAS_EDDA_DATA`) the configurations are
those of `CIFAR_CONFIGS`:

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/recipe_search.py --dataset cifar10 --max-train 5000 --seeds 1
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

# name: recipe settings of ResNet-20 on CIFAR-10 (crop + flip unless "plain").
_SGD = dict(epochs=10, batch_size=128, optimizer="sgd", momentum=0.9, augmentation="crop_flip")
CIFAR_CONFIGS = {
    "sgd-0.1-wd5e-4": dict(_SGD, learning_rate=0.1, weight_decay=5e-4),
    "sgd-0.1-wd5e-3": dict(_SGD, learning_rate=0.1, weight_decay=5e-3),
    "adamw-3e-3-wd5e-4": dict(_SGD, optimizer="adamw", learning_rate=3e-3, weight_decay=5e-4),
    "sgd-0.1-plain": dict(_SGD, learning_rate=0.1, weight_decay=5e-4, augmentation=None),
    "cifar": recipes.CIFAR.to_dict(),
}


def run(recipe, model_kwargs, data, seed, split, architecture="cnn"):
    keras.utils.set_random_seed(seed)
    if architecture == "cnn":
        model = models.small_cnn(data.image_shape, data.num_classes, **model_kwargs)
    else:
        model = models.build(architecture, data.image_shape, data.num_classes)
    train = (tf.data.Dataset.from_tensor_slices((data.x_train, tf.one_hot(data.y_train, data.num_classes)))
             .shuffle(len(data.x_train), seed=seed).batch(recipe.batch_size))
    train = recipe.augment(train, seed=seed)
    recipe.compile(model, len(data.x_train))
    model.fit(train.prefetch(1), epochs=recipe.epochs, verbose=0)
    images, labels = (data.x_val, data.y_val) if split == "validation" else (data.x_test, data.y_test)
    _, accuracy = model.evaluate(images, tf.one_hot(labels, data.num_classes), verbose=0)
    return accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", help=f"comma-separated, of {', '.join(CONFIGS)} (digits) or "
                        f"{', '.join(CIFAR_CONFIGS)} (cifar10); default: all but the chosen one")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--dataset", choices=("digits", "digits-canvas", "cifar10"), default="digits")
    parser.add_argument("--image-size", type=int, help="default: 32 for digits, 64 for digits-canvas")
    parser.add_argument("--max-train", type=int, help="cifar10: class-stratified training subset")
    parser.add_argument("--epochs", type=int, help="cifar10: epochs of every configuration (default: its own)")
    parser.add_argument("--data-dir", help="cifar10: the folder or archive (default: $KERAS_EDDA_DATA)")
    args = parser.parse_args()
    cifar = args.dataset == "cifar10"
    table = CIFAR_CONFIGS if cifar else CONFIGS
    names = args.configs.split(",") if args.configs else [c for c in table if c not in ("default", "cifar")]
    size = args.image_size or (64 if args.dataset == "digits-canvas" else 32)
    if cifar:
        data = datasets.load("cifar10", data_dir=args.data_dir, validation_fraction=0.1, split_seed=0)
        datasets.subset_train(data, args.max_train, seed=0)
    else:
        data = datasets.load(args.dataset, image_size=size, split_seed=0)
    info = data.split_info()
    print(f"{args.dataset} {size}x{size}: {info['train']} train / {info['validation']} validation / "
          f"{info['test']} test (split seed 0); accuracy on the {args.split} split; seeds 0..{args.seeds - 1}"
          + ("; model resnet20" if cifar else ""))
    print(f"{'config':<22}{'steps':>6}{'mean':>8}{'std':>8}{'min':>8}{'s/seed':>8}  per seed")
    for name in names:
        settings, model_kwargs = (table[name], {}) if cifar else table[name]
        if args.epochs:
            settings = dict(settings, epochs=args.epochs)
        recipe = recipes.Recipe(**settings)
        start = time.perf_counter()
        scores = [run(recipe, model_kwargs, data, seed, args.split, "resnet20" if cifar else "cnn")
                  for seed in range(args.seeds)]
        seconds = (time.perf_counter() - start) / args.seeds
        print(f"{name:<22}{recipe.total_steps(len(data.x_train)):>6}{np.mean(scores):>8.4f}"
              f"{np.std(scores, ddof=1) if len(scores) > 1 else float('nan'):>8.4f}{min(scores):>8.4f}{seconds:>8.1f}  "
              + (" ".join(f"{s:.4f}" for s in scores) if len(scores) > 1 else ""), flush=True)
    print(f"chosen recipe: {(recipes.CIFAR if cifar else recipes.DEFAULT)!r}")


if __name__ == "__main__":
    main()
