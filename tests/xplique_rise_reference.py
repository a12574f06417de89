"""xplique 2.0.2's RISE on a saved model, run in its own process (test reference only).

xplique pins tensorflow <= 2.20 and needs tf-keras and tensorflow-probability, so `make test` installs it
with `--no-deps` into a folder of its own (`.venv/xplique`) that only this script puts on `sys.path`.
It explains each image alone (xplique's own loop is per image) with one chunk of masks, and records the
masked images its inference function receives; with a fill of 0 and images without zeros, the masks
xplique drew (upsampled and cropped) are those images divided by the image, and the caller gives
keras_edda the same masks.

Usage: python xplique_rise_reference.py MODEL.keras IN.npz OUT.npz NUM_MASKS GRID_SIZE P
IN.npz holds `images` (N, H, W, C) and `targets` (N,) class indices; OUT.npz gets `maps` (N, H, W) and
`masks` (N, NUM_MASKS, H, W).
"""

import sys

import keras
import numpy as np
from xplique.attributions import Rise


def main(model_path, inputs_path, output_path, num_masks, grid_size, p):
    model = keras.saving.load_model(model_path)
    inputs = np.load(inputs_path)
    images, targets = inputs["images"], inputs["targets"]
    num_classes = model.output_shape[-1]
    explainer = Rise(model, batch_size=int(num_masks), nb_samples=int(num_masks), grid_size=int(grid_size),
                     preservation_probability=float(p))
    inference, seen = explainer.inference_function, []

    def recording_inference(model, masked_images, targets):
        seen.append(np.asarray(masked_images))
        return inference(model, masked_images, targets)

    explainer.inference_function = recording_inference
    maps, masks = [], []
    for image, target in zip(images, targets):
        one_hot = np.eye(num_classes, dtype="float32")[[target]]
        maps.append(np.asarray(explainer.explain(image[None], one_hot)).reshape(image.shape[:2]))
        masks.append((seen.pop() / image).mean(axis=-1))
        assert not seen, "xplique used more than one chunk of masks"
    np.savez(output_path, maps=np.array(maps), masks=np.array(masks))


if __name__ == "__main__":
    main(*sys.argv[1:])
