"""keras_edda.recipes (budget, schedule, optimiser) and the small CNN it trains."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_edda import explainers, models, recipes


def test_budget_in_optimizer_steps():
    recipe = recipes.Recipe(epochs=7, batch_size=64)
    assert recipe.steps_per_epoch(1146) == 18 and recipe.steps_per_epoch(1152) == 18
    assert recipe.steps_per_epoch(1153) == 19
    assert recipe.total_steps(1146) == 7 * 18


def test_cosine_schedule_with_warmup_matches_its_formula():
    recipe = recipes.Recipe(learning_rate=0.01, warmup_fraction=0.1)
    schedule = recipe.learning_rate_schedule(200)
    warmup = 20

    def expected(step):
        if step < warmup:
            return 0.01 * step / warmup
        return 0.01 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (200 - warmup)))

    for step in (0, 5, 19, 20, 21, 100, 150, 199, 200):
        assert float(schedule(step)) == pytest.approx(expected(step), abs=1e-7), step
    assert recipes.Recipe(schedule="constant", learning_rate=0.02).learning_rate_schedule(50) == 0.02
    no_warmup = recipes.Recipe(learning_rate=0.01, warmup_fraction=0).learning_rate_schedule(100)
    assert float(no_warmup(0)) == pytest.approx(0.01) and float(no_warmup(50)) == pytest.approx(0.005)


def test_compile_trains_for_the_budget_and_ends_at_zero_learning_rate():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 8, 8, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, 40), 3)
    recipe = recipes.Recipe(epochs=3, batch_size=16, weight_decay=1e-3)
    model = recipe.compile(models.small_cnn((8, 8, 1), 3, width=4), len(x))
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(1e-3)
    model.fit(x, y, epochs=recipe.epochs, batch_size=recipe.batch_size, verbose=0)
    assert int(model.optimizer.iterations) == recipe.total_steps(len(x)) == 9
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert recipe.to_dict() == {"epochs": 3, "batch_size": 16, "learning_rate": 3e-3, "schedule": "cosine",
                                "warmup_fraction": 0.05, "weight_decay": 1e-3}


def test_small_cnn_normalisation_and_grad_cam_layer():
    model = models.small_cnn((16, 16, 1), 4, width=4)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 3 and all(layer.momentum == 0.9 for layer in norms)
    assert model.get_layer("last_conv").filters == 8
    plain = models.small_cnn((16, 16, 1), 4, width=4, normalization=False)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)
    images = tf.random.uniform((3, 16, 16, 1), seed=1)
    maps = explainers.GradCAM(model)(images)
    assert maps.shape == (3, 16, 16, 1) and bool(tf.reduce_all(tf.math.is_finite(maps)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), "epochs=0"),
    (dict(learning_rate=-1e-3), "learning_rate=-0.001"),
    (dict(schedule="step"), "schedule='step'"),
    (dict(warmup_fraction=1.0), "warmup_fraction=1.0"),
    (dict(weight_decay=-1.0), "weight_decay=-1.0"),
])
def test_bad_recipe_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recipes.Recipe(**kwargs)
