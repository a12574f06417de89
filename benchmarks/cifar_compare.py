"""A short CIFAR-10 comparison of the plain model and EDDA within a time budget.

ResNet-20 (or any `keras_edda.models.build` name) trained with
`keras_edda.recipes.get("cifar")` (SGD momentum, cosine schedule, crop + flip
before EDDA's copies) on the full training split (or `--max-train`), in
`fit` (XLA where `fit` uses it), seed after seed: `none` then `edda` per seed
for as many seeds as `--budget` seconds allow (a seed is started only when
the last one's time says it fits). Prints per run the test accuracy,
seconds per epoch and the EDDA / plain epoch-time ratio, and a summary.

    python benchmarks/cifar_compare.py --budget 240
    python benchmarks/cifar_compare.py --max-train 64 --epochs 1 --budget 60 --test-samples 64   # smoke

Until `keras-edda compare --dataset cifar10 --model resnet20 --recipe cifar`
exists, this is the GPU check's compare.
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
from _timing import device_name  # noqa: E402

from keras_edda import datasets, models, recipes  # noqa: E402
from keras_edda.methods import EDDA  # noqa: E402


def train(method, seed, data, args, recipe):
    keras.utils.set_random_seed(seed)
    classifier = models.build(args.model, data.image_shape, data.num_classes)
    layers = [keras.Input(data.image_shape), *recipe.augmentation_layers(seed=seed)]
    if method == "edda":
        layers.append(EDDA(classifier, seed=seed))
    model = keras.Sequential(layers + [classifier])
    recipe.compile(model, len(data.x_train))
    labels = tf.one_hot(data.y_train, data.num_classes)
    train_data = (tf.data.Dataset.from_tensor_slices((data.x_train, labels)).shuffle(len(data.x_train), seed=seed)
                  .batch(recipe.batch_size).prefetch(tf.data.AUTOTUNE))
    epoch_seconds = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.start)

    start = time.perf_counter()
    model.fit(train_data, epochs=recipe.epochs, verbose=0, callbacks=[Clock()])
    seconds = time.perf_counter() - start
    x_test, y_test = data.x_test[:args.test_samples], data.y_test[:args.test_samples]
    predictions = classifier.predict(x_test, batch_size=512, verbose=0)
    accuracy = float((predictions.argmax(-1) == y_test).mean())
    # The first epoch carries the tracing (and XLA compilation); the later ones are the steady cost.
    steady = statistics.median(epoch_seconds[1:]) if len(epoch_seconds) > 1 else epoch_seconds[0]
    return {"method": method, "seed": seed, "accuracy": accuracy, "seconds": seconds, "epoch_seconds": steady}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--recipe", default="cifar")
    parser.add_argument("--epochs", type=int, help="default: the recipe's")
    parser.add_argument("--max-train", type=int, help="class-stratified training subset (default: all 45,000)")
    parser.add_argument("--test-samples", type=int, default=10000)
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for all runs")
    parser.add_argument("--max-seeds", type=int, default=5)
    parser.add_argument("--data-dir", help="default: $KERAS_EDDA_DATA, then Keras' copy")
    args = parser.parse_args()
    started = time.perf_counter()
    recipe = recipes.get(args.recipe)
    if args.epochs:
        recipe = recipes.Recipe(**dict(recipe.to_dict(), epochs=args.epochs))
    data = datasets.load("cifar10", data_dir=args.data_dir, validation_fraction=0.1, split_seed=0)
    datasets.subset_train(data, args.max_train, seed=0)
    loaded = time.perf_counter() - started
    print(f"# {device_name()}; TF {tf.__version__}, Keras {keras.__version__}; cifar10 {data.split_info()} "
          f"(loaded in {loaded:.1f} s, {'cache' if data.cached else 'decoded'}); model {args.model}; "
          f"recipe {recipe!r}; budget {args.budget:.0f} s")
    print("| method | seed | test accuracy | seconds | s/epoch (steady) |\n|---|---|---|---|---|", flush=True)
    runs, budget_start = [], time.perf_counter()
    for seed in range(args.max_seeds):
        elapsed = time.perf_counter() - budget_start
        last_pair = sum(r["seconds"] for r in runs[-2:])
        if runs and elapsed + last_pair > args.budget:
            break
        for method in ("none", "edda"):
            run = train(method, seed, data, args, recipe)
            runs.append(run)
            print(f"| {method} | {seed} | {run['accuracy']:.4f} | {run['seconds']:.1f} | "
                  f"{run['epoch_seconds']:.2f} |", flush=True)
    for method in ("none", "edda"):
        scores = [r["accuracy"] for r in runs if r["method"] == method]
        print(f"{method}: test accuracy mean {statistics.mean(scores):.4f} over {len(scores)} seeds")
    ratios = [e["epoch_seconds"] / n["epoch_seconds"] for n, e in zip(runs[::2], runs[1::2])]
    print(f"EDDA epoch / plain epoch (steady, batch {recipe.batch_size}): {statistics.median(ratios):.2f}x "
          f"(per seed {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
