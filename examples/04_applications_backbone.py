"""A `keras.applications` backbone with a new head, Grad-CAM on the nested
backbone, and EDDA in the input pipeline.

    python examples/04_applications_backbone.py

The backbone is a model inside the model; keras_edda finds Grad-CAM's layer
inside it (the last spatial layer after a convolution) without building a
sub-model. The digits are made RGB 32 x 32, MobileNetV2's smallest input.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_edda  # noqa: E402
from keras_edda.ops import overlay  # noqa: E402

QUICK = os.environ.get("KERAS_EDDA_QUICK") == "1"
EPOCHS = 1 if QUICK else 5
OUT = os.environ.get("KERAS_EDDA_OUT", "runs/example_04")

keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = keras_edda.datasets.load_digits()
x_train, x_test = np.repeat(x_train, 3, axis=-1), np.repeat(x_test, 3, axis=-1)
if QUICK:
    x_train, y_train = x_train[:64], y_train[:64]

backbone = keras.applications.MobileNetV2(
    input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
model = keras.Sequential([
    keras.Input((32, 32, 3)),
    keras.layers.Rescaling(2.0, offset=-1.0),  # [0, 1] -> MobileNetV2's [-1, 1]
    backbone,
    keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(10, activation="softmax"),
])
explainer = keras_edda.explainers.GradCAM(model)
print(f"Grad-CAM reads layer {explainer.layer_path!r}")

train = (tf.data.Dataset.from_tensor_slices((x_train, tf.one_hot(y_train, 10)))
         .shuffle(len(x_train), seed=0).batch(64)
         .map(keras_edda.data.edda_map_fn(model, explainer=explainer, fraction=0.2,
                                          warmup_steps=len(x_train) // 64))
         .prefetch(1))
model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(),
              weighted_metrics=["accuracy"])
model.fit(train, epochs=EPOCHS, verbose=2)

images = x_test[:8]
maps = explainer(images)
os.makedirs(OUT, exist_ok=True)
path = os.path.join(OUT, "grad_cam_mobilenetv2.png")
overlay.write_png(path, overlay.image_grid([overlay.overlay(images, maps)]), scale=3)
print(f"wrote {path}")
