"""`keras-edda demo`: the small CNN on the embedded digits, explained three ways."""

import os
import time


def run(epochs=12, num_images=8, seed=0, out="runs/demo"):
    """Trains the small CNN on the digits and writes heatmap overlays to `out/explanations.png`.

    Returns:
        The lines to print (timings, the file written).
    """
    import keras
    import tensorflow as tf

    from keras_edda import datasets, explainers, models
    from keras_edda.ops import overlay

    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(image_size=32)
    model = models.small_cnn(x_train.shape[1:], 10)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=2, validation_data=(x_test, y_test))
    images, labels = x_test[:num_images], y_test[:num_images]
    rows = [overlay.overlay(images, tf.zeros_like(images), alpha=0.0)]
    names = ["grad_cam", "integrated_gradients", "occlusion"]
    settings = {"integrated_gradients": {"steps": 32}, "occlusion": {"patch_size": 4}}
    lines = []
    for name in names:
        explainer = explainers.get(name, model, **settings.get(name, {}))
        start = time.perf_counter()
        maps = explainer(images, labels)
        lines.append(f"{name:>22}: {len(images)} images in {time.perf_counter() - start:.2f} s")
        rows.append(overlay.overlay(images, maps))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "explanations.png")
    overlay.write_png(path, overlay.image_grid(rows), scale=3)
    lines.append(f"Rows: input, {', '.join(names)}. Wrote {path}")
    return lines
