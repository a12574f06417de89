"""EDDA as a `tf.data` map function, on the embedded digits.

    python examples/02_map_fn_pipeline.py

`edda_map_fn` turns each batch `(x, y)` into `(x', y', w')`: the originals,
their non-salient-occluded copies (same label; weight 0 when the current
model misclassifies them) and their salient-occluded copies (the target asks
the class probability to fall `margin` = 0.1 below its value on the
original: `salient_target="decrease"`, the default). The labels are soft
(N, C): the model is compiled with `CategoricalCrossentropy`. It runs on the
host CPU with the model's current weights.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_edda  # noqa: E402

QUICK = os.environ.get("KERAS_EDDA_QUICK") == "1"
EPOCHS = 1 if QUICK else 15

keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = keras_edda.datasets.load_digits()
if QUICK:
    x_train, y_train = x_train[:128], y_train[:128]

model = keras_edda.models.small_cnn(x_train.shape[1:], 10)
augment = keras_edda.data.edda_map_fn(
    model, explainer="grad_cam", threshold=0.5, fill="constant",
    warmup_epochs=2, steps_per_epoch=int(np.ceil(len(x_train) / 64)))
train = (tf.data.Dataset.from_tensor_slices((x_train, tf.one_hot(y_train, 10)))
         .shuffle(len(x_train), seed=0)
         .batch(64)
         .map(augment)
         .prefetch(1))

images, targets, weights = next(iter(train))
print(f"one batch: {images.shape[0]} images from 64 (originals, non-salient, salient copies)")

model.compile(keras.optimizers.Adam(3e-3), keras.losses.CategoricalCrossentropy(),
              weighted_metrics=["accuracy"])
model.fit(train, epochs=EPOCHS, verbose=2)
_, accuracy = model.evaluate(x_test, tf.one_hot(y_test, 10), verbose=0)
maps = keras_edda.explainers.GradCAM(model)(x_test[:128])
agreement = keras_edda.metrics.NonSalientAgreement()(model, x_test[:128], maps)
print(f"test accuracy {accuracy:.3f}; non-salient agreement {float(np.mean(agreement)):.3f}")
