"""`keras-edda explain`: heatmap overlays of a saved model's explanations, one PNG per image.

Every change made to an input on its way to the model (resized, colour
converted, alpha dropped) is reported, one line per image; a file in `--out`
that an earlier `explain` did not write (its manifest) is never replaced.
"""

import json
import os
import zipfile

from keras_edda._errors import UserError, user_errors
from keras_edda._files import write_atomically

MANIFEST = ".keras-edda-explain.json"
_CHANNEL_NAMES = {1: "grey", 2: "grey+alpha", 3: "RGB", 4: "RGBA"}


def image_files(path):
    """The image files `--images` names: a file, or the images of a folder (sorted)."""
    from keras_edda.datasets import IMAGE_SUFFIXES

    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UserError(f"no such file or folder: {path}")
    files = sorted(os.path.join(path, f) for f in os.listdir(path)
                   if f.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(path, f)))
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
    return files


def load_model(path):
    """A `.keras` classifier with one fixed-size image input, or a one-line `UserError`."""
    import keras

    if not os.path.exists(path):
        raise UserError(f"model file not found: {path}")
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        raise UserError(f"cannot load model {path}: not a .keras archive (a .keras file is a zip file; "
                        "this one is damaged or of another format)")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a bad file
        raise UserError(f"cannot load model {path}: {str(error).strip().splitlines()[0][:200]}")
    from keras_edda import _checks

    shape = _checks.model_image_shape(model)
    if shape is None or len(model.outputs) != 1:
        raise UserError(f"explain needs a model with one image input and one output; {path} has "
                        f"{len(model.inputs)} inputs and {len(model.outputs)} outputs")
    if None in shape:
        raise UserError(f"the model's input size {shape} is not fixed; explain needs a model with a "
                        "fixed image size (height, width, channels)")
    return model, shape


def read_image(file, shape):
    """The image at `file` as the model takes it (float32 pixels), and what was done to it."""
    import tensorflow as tf

    try:
        raw = tf.io.decode_image(tf.io.read_file(file), expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        raise UserError(f"cannot read image {file}") from None
    changes = []
    height, width, channels = raw.shape
    if channels in (2, 4):
        raw = raw[..., :channels - 1]
        changes.append("alpha channel dropped")
    source = raw.shape[-1]
    if source != shape[-1]:
        raw = tf.image.rgb_to_grayscale(raw) if shape[-1] == 1 else tf.image.grayscale_to_rgb(raw)
        changes.append(f"converted {_CHANNEL_NAMES[source]} to {_CHANNEL_NAMES[shape[-1]]}")
    image = tf.cast(raw, tf.float32)
    if (height, width) != tuple(shape[:2]):
        image = tf.image.resize(image, shape[:2], "bilinear")
        changes.append(f"resized {width}x{height} -> {shape[1]}x{shape[0]} (width x height)")
    return image, changes


def _written_before(out):
    path = os.path.join(out, MANIFEST)
    if not os.path.isfile(path):
        return set()
    try:
        with open(path) as f:
            return set(json.load(f)["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{path} is not a keras-edda explain manifest; remove it or use another --out") from None


def run(model_path, images_path, explainer_name, out, scale=1 / 255, offset=0.0, zoom=4):
    """Writes one overlay PNG per image into `out`; returns the lines to print.

    Args:
        model_path: a `.keras` classifier.
        images_path: an image file or a folder of images.
        explainer_name: a registered explainer.
        out: the output folder (created).
        scale, offset: pixel values become `value * scale + offset`.
        zoom: upscaling of the PNGs.
    """
    import tensorflow as tf

    from keras_edda import _checks, explainers
    from keras_edda.ops import overlay

    files = image_files(images_path)
    model, shape = load_model(model_path)
    user_errors(_checks.check_writable_folder, out, "--out")
    names = []
    for file in files:
        # The suffix stays in the name: a.png and a.jpg get different files.
        stem, suffix = os.path.splitext(os.path.basename(file))
        names.append(f"{stem}_{suffix[1:]}_{explainer_name}")
    ours = _written_before(out)
    images, lines = [], []
    for file in files:
        image, changes = read_image(file, shape)
        images.append(image * scale + offset)
        if changes:
            lines.append(f"{file}: {', '.join(changes)} to fit the model's input {shape}")
    images = tf.stack(images)
    explainer = user_errors(explainers.get, explainer_name, model)
    maps = explainer(images)
    predicted = tf.argmax(model(images, training=False), axis=-1).numpy()
    paths = [os.path.join(out, f"{name}_class{label}.png") for name, label in zip(names, predicted)]
    foreign = [p for p in paths if (os.path.lexists(p) and os.path.basename(p) not in ours)]
    if foreign:
        raise UserError(f"{foreign[0]} exists and was not written by keras-edda explain; refusing to replace "
                        "it (use another --out)")
    # Signed maps (Integrated Gradients, LIME, Occlusion) in a diverging colour map: red for, blue against.
    overlays = overlay.overlay(images, maps, signed=explainer.signed_maps)
    write_atomically(os.path.join(out, MANIFEST),
                     json.dumps({"files": sorted(ours | {os.path.basename(p) for p in paths})}))
    for file, picture, label, path in zip(files, overlays, predicted, paths):
        overlay.write_png(path, picture, scale=zoom)
        lines.append(f"{file}: predicted class {label} -> {path}")
    if explainer.signed_maps:
        lines.append(f"{explainer_name} gives signed maps: red raises the class score, blue lowers it, white is 0")
    return lines
