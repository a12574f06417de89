"""Training recipes: one optimiser, schedule and step budget shared by every
method of an experiment, so that methods differ in their augmentation only.

`DEFAULT` was chosen on the validation split of the digits by
`benchmarks/recipe_search.py` and confirmed once on the test split
(docs/recipe.md); `CIFAR` (`get("cifar")`), the recipe of natural images,
on CIFAR-10's validation split.
"""

import math

import keras

from keras_edda import _checks

SCHEDULES = ("cosine", "constant")
OPTIMIZERS = ("adamw", "sgd")
AUGMENTATIONS = ("crop_flip",)


class Recipe:
    """How to train: budget, batch size, optimiser and learning-rate schedule.

    The optimiser is AdamW (or SGD with momentum). With `schedule="cosine"` the learning rate rises
    linearly from 0 to `learning_rate` over the first `warmup_fraction` of
    the steps, then follows a cosine decay to 0 at the last step; with
    `"constant"` it stays at `learning_rate`.

    Args:
        epochs: passes over the training images.
        batch_size: images per optimiser step.
        learning_rate: peak learning rate.
        schedule: `"cosine"` (with warm-up) or `"constant"`.
        warmup_fraction: share of the steps spent warming up, in [0, 1).
        weight_decay: the optimiser's decoupled weight decay (0 for none):
            each step multiplies the weights by `1 - learning rate * weight_decay`.
        optimizer: `"adamw"` or `"sgd"` (SGD with `momentum`).
        momentum: SGD's momentum (ignored by AdamW).
        augmentation: the base augmentation every method trains under,
            applied before the method's copies: `None`, or `"crop_flip"`
            (`keras_edda.crop_flip.CropFlip`: 4-pixel zero padding, a random
            crop back to the image size, a random horizontal flip).

    Example:

    ```python
    recipe = keras_edda.recipes.DEFAULT
    steps = recipe.total_steps(len(x_train))
    model.compile(recipe.optimizer(steps), "categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_onehot, epochs=recipe.epochs, batch_size=recipe.batch_size)
    ```
    """

    def __init__(self, epochs=20, batch_size=64, learning_rate=3e-3, schedule="cosine",
                 warmup_fraction=0.05, weight_decay=1e-4, optimizer="adamw", momentum=0.9, augmentation=None):
        self.epochs = _checks.check_positive_int(epochs, "epochs")
        self.batch_size = _checks.check_positive_int(batch_size, "batch_size")
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
            raise ValueError(f"`learning_rate` must be a positive number. Received: learning_rate={learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.schedule = _checks.check_choice(schedule, "schedule", SCHEDULES)
        if warmup_fraction != 0:
            _checks.check_fraction(warmup_fraction, "warmup_fraction")
        self.warmup_fraction = float(warmup_fraction)
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
            raise ValueError(f"`weight_decay` must be a number >= 0. Received: weight_decay={weight_decay!r}")
        self.weight_decay = float(weight_decay)
        self.optimizer_name = _checks.check_choice(optimizer, "optimizer", OPTIMIZERS)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f"`momentum` must be a number in [0, 1). Received: momentum={momentum!r}")
        self.momentum = float(momentum)
        if augmentation is not None:
            _checks.check_choice(augmentation, "augmentation", AUGMENTATIONS)
        self.augmentation = augmentation

    def steps_per_epoch(self, num_train):
        """Optimiser steps in one pass over `num_train` images (the last batch may be short)."""
        return math.ceil(_checks.check_positive_int(num_train, "num_train") / self.batch_size)

    def total_steps(self, num_train):
        """The budget in optimiser steps for `num_train` training images."""
        return self.epochs * self.steps_per_epoch(num_train)

    def learning_rate_schedule(self, total_steps):
        """The learning rate: a float, or a `keras.optimizers.schedules.LearningRateSchedule`."""
        total_steps = _checks.check_positive_int(total_steps, "total_steps")
        if self.schedule == "constant":
            return self.learning_rate
        warmup = int(round(self.warmup_fraction * total_steps))
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else self.learning_rate, decay_steps=max(1, total_steps - warmup),
            warmup_target=self.learning_rate if warmup else None, warmup_steps=warmup)

    def optimizer(self, total_steps):
        """A fresh optimiser (AdamW or SGD) scheduled for `total_steps` steps (one per model)."""
        schedule = self.learning_rate_schedule(total_steps)
        if self.optimizer_name == "sgd":
            return keras.optimizers.SGD(schedule, momentum=self.momentum, weight_decay=self.weight_decay or None)
        return keras.optimizers.AdamW(schedule, weight_decay=self.weight_decay)

    def augmentation_layers(self, seed=None, data_format=None):
        """The base augmentation as layers to put in a model before the method layer.

        Args:
            seed: seed of the augmentation's draws.
            data_format: layout of the images (`None`: Keras' setting).

        Returns:
            A list: `[]` without augmentation, else `[CropFlip(...)]`
            (active in training only).

        Example:

        ```python
        model = keras.Sequential([keras.Input(shape), *recipe.augmentation_layers(seed),
                                  method_layer, classifier])
        ```
        """
        if self.augmentation is None:
            return []
        from keras_edda.crop_flip import CropFlip

        return [CropFlip(4, True, seed=seed, data_format=data_format)]

    def augment(self, dataset, seed=None, data_format=None):
        """`dataset` of `(x, y[, w])` batches with the base augmentation mapped on.

        Map the method's copies after it (`keras_edda.data.method_map_fn`) so
        that they are made from the augmented images.

        Args:
            dataset: a batched `tf.data.Dataset`.
            seed: seed of the augmentation's draws.
            data_format: layout of the images (`None`: Keras' setting).

        Returns:
            The dataset, unchanged without augmentation.
        """
        if self.augmentation is None:
            return dataset
        from keras_edda.crop_flip import crop_flip_map_fn

        return dataset.map(crop_flip_map_fn(4, True, seed=seed, data_format=data_format))

    def compile(self, model, num_train, loss=None, **kwargs):
        """Compiles `model` for `num_train` training images with this recipe.

        Args:
            model: the `keras.Model`.
            num_train: training images per epoch (sets the schedule's length).
            loss: defaults to `keras.losses.CategoricalCrossentropy()` (one-hot
                or soft targets, as the augmentation methods produce).
            **kwargs: passed on to `model.compile` (default
                `weighted_metrics=["accuracy"]`).

        Returns:
            `model`, compiled.
        """
        kwargs.setdefault("weighted_metrics", ["accuracy"])
        model.compile(self.optimizer(self.total_steps(num_train)),
                      loss or keras.losses.CategoricalCrossentropy(), **kwargs)
        return model

    def replace(self, **changes):
        """A new recipe with `changes` applied, e.g. `recipes.get("cifar").replace(epochs=30)`."""
        return Recipe(**{**self.to_dict(), **changes})

    def to_dict(self):
        """The recipe as a JSON-ready dict (for results.json); `Recipe(**to_dict())` rebuilds it.

        The optimiser's and augmentation's settings appear only when they
        differ from AdamW without augmentation, so earlier results files
        (which predate them) still match.
        """
        settings = {key: value for key, value in vars(self).items()
                    if key not in ("optimizer_name", "momentum", "augmentation")}
        if self.optimizer_name != "adamw":
            settings.update(optimizer=self.optimizer_name, momentum=self.momentum)
        if self.augmentation is not None:
            settings["augmentation"] = self.augmentation
        return settings

    def __repr__(self):
        return "Recipe(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


# "bn-cosine-20" of benchmarks/recipe_search.py: 360 steps on the digits' 1,146 training images.
DEFAULT = Recipe(epochs=20, batch_size=64, learning_rate=3e-3, schedule="cosine", warmup_fraction=0.05,
                 weight_decay=1e-4)

# Chosen on CIFAR-10's validation split by benchmarks/recipe_search.py --dataset cifar10 (docs/recipe.md).
# "adamw-3e-3-wd5e-4": 400 steps on a 5,000-image stratified subset; it beat SGD-momentum 0.1 there.
CIFAR = Recipe(epochs=10, batch_size=128, learning_rate=3e-3, schedule="cosine", warmup_fraction=0.05,
               weight_decay=5e-4, optimizer="adamw", augmentation="crop_flip")

RECIPES = {"default": DEFAULT, "cifar": CIFAR}


def get(name):
    """A recipe by name: `"default"` (the digits') or `"cifar"` (natural images).

    Args:
        name: the name (`keras-edda compare --recipe`), or a `Recipe` (returned as is).

    Returns:
        The `Recipe`.

    Example:

    ```python
    recipe = keras_edda.recipes.get("cifar")
    ```
    """
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe. Expected one of {sorted(RECIPES)}. Received: recipe={name!r}")
    return RECIPES[name]
