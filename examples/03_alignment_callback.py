"""Watch explanation alignment in TensorBoard and stop on it.

    python examples/03_alignment_callback.py
    tensorboard --logdir runs/example_03

`AlignmentCallback` adds `val_alignment_<explainer>_<metric>` to the epoch
logs and writes an "alignment" section into the same TensorBoard run as
`keras.callbacks.TensorBoard`; `EarlyStopping` can monitor those keys.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_edda  # noqa: E402

QUICK = os.environ.get("KERAS_EDDA_QUICK") == "1"
EPOCHS = 2 if QUICK else 30
LOG_DIR = os.environ.get("KERAS_EDDA_LOG_DIR", "runs/example_03")

keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = keras_edda.datasets.load_digits()
if QUICK:
    x_train, y_train = x_train[:128], y_train[:128]

model = keras_edda.models.small_cnn(x_train.shape[1:], 10)
model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
monitor = "val_alignment_grad_cam_insertion_auc"
callbacks = [
    keras_edda.callbacks.AlignmentCallback(
        (x_test, y_test), explainers=("grad_cam",),
        metrics=("average_drop", "deletion_auc", "insertion_auc"),
        log_dir=LOG_DIR, max_samples=64, num_images=4),
    keras.callbacks.TensorBoard(LOG_DIR),
    keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=5,
                                  restore_best_weights=True),
]
history = model.fit(x_train, y_train, epochs=EPOCHS, batch_size=64, verbose=2,
                    validation_data=(x_test, y_test), callbacks=callbacks)
print(f"trained {len(history.history['loss'])} epochs; best {monitor} "
      f"{max(history.history[monitor]):.3f}; logs in {LOG_DIR}")
