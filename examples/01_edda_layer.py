"""EDDA as a layer inside the model, on the embedded digits.

    python examples/01_edda_layer.py

The layer sits in front of the classifier. During `fit` it explains the
classifier's prediction with Grad-CAM (current weights, inside the compiled
train step) and, for the half of the images `rate=0.5` picks, adds the loss
of two copies next to the batch (which passes through unchanged): the
non-salient-occluded copy keeps the prediction as its label (weight 0 where
the model misclassifies it), and the salient-occluded copy is asked to lower
the class probability by `margin` (0.1) below its value on the original
(`salient_target="decrease"`, the default). The logged `loss` includes the
copies' loss (kept apart in `layer.statistics()["copies_loss"]`). At inference the layer is
the identity. The model saves and loads as `.keras`; the classifier can also
be shipped alone.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_edda  # noqa: E402

QUICK = os.environ.get("KERAS_EDDA_QUICK") == "1"  # the test suite's short run
EPOCHS = 1 if QUICK else 15

keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = keras_edda.datasets.load_digits()
if QUICK:
    x_train, y_train = x_train[:128], y_train[:128]

classifier = keras_edda.models.small_cnn(x_train.shape[1:], 10)
model = keras.Sequential([
    keras.Input(x_train.shape[1:]),
    keras_edda.methods.EDDA(classifier, rate=0.5, warmup_steps=2 * len(x_train) // 64),
    classifier,
])
model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=EPOCHS, batch_size=64, verbose=2)

# At inference the EDDA layer is the identity: the model is the classifier.
np.testing.assert_allclose(model.predict(x_test, verbose=0), classifier.predict(x_test, verbose=0),
                           rtol=1e-6)
_, accuracy = model.evaluate(x_test, y_test, verbose=0)
maps = keras_edda.explainers.GradCAM(classifier)(x_test[:128])
deletion = keras_edda.metrics.DeletionAUC()(classifier, x_test[:128], maps)
print(f"test accuracy {accuracy:.3f}; Grad-CAM deletion AUC {float(np.mean(deletion)):.3f} (lower is better)")

with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "with_edda.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict(x_test[:32], verbose=0),
                               model.predict(x_test[:32], verbose=0), rtol=1e-6)
    classifier.save(os.path.join(folder, "classifier_only.keras"))  # what you ship
print("saved and reloaded with identical predictions")
