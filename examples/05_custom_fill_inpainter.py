"""A custom fill: a small Keras model used as an inpainter.

    python examples/05_custom_fill_inpainter.py

EDDA's fill decides what replaces occluded pixels. A grey box is out of
distribution for the classifier; an inpainter fills the hole from its
surroundings (Agarwal & Nguyen). Any callable `fill(images, mask) -> images`
works: here a three-layer convolutional model, first trained to restore
randomly masked digits, then plugged into `edda_map_fn`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_edda  # noqa: E402

QUICK = os.environ.get("KERAS_EDDA_QUICK") == "1"
EPOCHS = 1 if QUICK else 12

keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = keras_edda.datasets.load_digits()
if QUICK:
    x_train, y_train = x_train[:128], y_train[:128]
shape = x_train.shape[1:]

# 1. The inpainter: (masked image, mask) -> image.
masked_in = keras.Input(shape)
mask_in = keras.Input(shape[:-1] + (1,))
x = keras.layers.Concatenate()([masked_in, mask_in])
for filters in (16, 16):
    x = keras.layers.Conv2D(filters, 5, padding="same", activation="relu")(x)
restored = keras.layers.Conv2D(shape[-1], 3, padding="same", activation="sigmoid")(x)
inpainter = keras.Model([masked_in, mask_in], restored, name="inpainter")


def random_block_masks(n):
    # Coarse random blocks, like the salient regions EDDA occludes.
    return tf.cast(tf.image.resize(tf.random.uniform((n, 4, 4, 1)), shape[:2], "nearest") > 0.6,
                   tf.float32)


masks = random_block_masks(len(x_train))
inpainter.compile("adam", "mse")
inpainter.fit([x_train * (1.0 - masks), masks], x_train, epochs=2 if QUICK else 10,
              batch_size=64, verbose=0)


def inpaint(images, mask):
    """The fill: the inpainter's guess for the whole image (kept only where masked)."""
    return inpainter([images * (1.0 - mask), mask], training=False)


test_masks = random_block_masks(256)
error = {
    "grey box": float(tf.reduce_mean(tf.abs(keras_edda.ops.fills.fill_masked(
        x_test[:256], test_masks, keras_edda.ops.fills.get("constant")) - x_test[:256]))),
    "inpainter": float(tf.reduce_mean(tf.abs(keras_edda.ops.fills.fill_masked(
        x_test[:256], test_masks, inpaint) - x_test[:256]))),
}
print(f"mean absolute error in the holes' images: {error}")

# 2. EDDA with the inpainting fill.
model = keras_edda.models.small_cnn(shape, 10)
train = (tf.data.Dataset.from_tensor_slices((x_train, tf.one_hot(y_train, 10)))
         .shuffle(len(x_train), seed=0).batch(64)
         .map(keras_edda.data.edda_map_fn(model, fill=inpaint, warmup_steps=len(x_train) // 32))
         .prefetch(1))
model.compile(keras.optimizers.Adam(3e-3), keras.losses.CategoricalCrossentropy(),
              weighted_metrics=["accuracy"])
model.fit(train, epochs=EPOCHS, verbose=2)
_, accuracy = model.evaluate(x_test, tf.one_hot(y_test, 10), verbose=0)
print(f"test accuracy with the inpainting fill: {accuracy:.3f}")
