"""Decoy datasets: a planted shortcut whose use the model itself defines.

As Decoy-MNIST (Ross, Hughes and Doshi-Velez, 2017): every training and
validation image gets a small grey square ("the decoy") in a random
corner whose shade encodes the class; on the test split the shade is
random, so a model that learnt the shortcut loses accuracy there, and a
faithful explainer of such a model puts mass on the patch. Each image
keeps where its patch lies (the decoy mask) and, where the data has them,
its object mask, with the patch cut out of it (the two masks never
overlap).

Settings:

- `patch_size`: side of the square patch in pixels; `None`: a quarter of
  the image side (8 at 32x32). Decoy-MNIST's 4x4 swatch was made for
  MLPs: the built-in global-average-pooled CNN barely reads it
  (`/work/shared/research/peers-and-protocol.md` measured a 1-2 point drop
  at 4 px against 5-15 at 8 px on the digits), so the default is larger.
- `informative_fraction`: share of training and validation images whose
  shade is their class's; the rest get the shade of a random class (1.0
  as in Decoy-MNIST: the shortcut predicts the class perfectly).
- `seed`: seed of the corners and the shades (independent of the split).

The shade of class `c` among `K` is `1 - c / K` in every channel (for 10
classes 1.0, 0.9, ..., 0.1: Decoy-MNIST's `255 - 25 c` rescaled), never 0,
so the patch is visible on a black background.
"""

import numpy as np

from keras_edda import _checks

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def decoy_shades(classes, num_classes):
    """The shade (in [0, 1]) of each class in `classes`: `1 - class / num_classes`."""
    return (1.0 - np.asarray(classes, "float32") / num_classes).astype("float32")


def default_patch_size(image_side):
    """The default side of the patch: a quarter of the image side, at least 2 pixels."""
    return max(2, image_side // 4)


def decoy_masks(corners, patch_size, height, width):
    """float32 masks (N, H, W, 1), 1 on each image's patch.

    Args:
        corners: int corner per image (N,), an index into `CORNERS`.
        patch_size: side of the patch.
        height, width: image size.
    """
    corners = np.asarray(corners)
    top = np.where(corners < 2, 0, height - patch_size)[:, None, None]
    left = np.where(corners % 2 == 0, 0, width - patch_size)[:, None, None]
    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    inside = (rows >= top) & (rows < top + patch_size) & (cols >= left) & (cols < left + patch_size)
    return inside[..., None].astype("float32")


def plant_decoys(images, shade_classes, masks, num_classes, data_format=None):
    """Paints each image's patch (`masks`) in the shade of `shade_classes`.

    Args:
        images: float images (N, H, W, C) (or (N, C, H, W)) in [0, 1].
        shade_classes: int class per image (N,) whose shade the patch shows.
        masks: decoy masks (N, H, W, 1) from `decoy_masks`.
        num_classes: number of classes.
        data_format: layout of the images; defaults to Keras' setting.

    Returns:
        float32 images with the patches, the same shape as `images`.
    """
    data_format = _checks.standardize_data_format(data_format)
    layout_masks = np.transpose(masks, (0, 3, 1, 2)) if data_format == "channels_first" else masks
    shades = decoy_shades(shade_classes, num_classes)[:, None, None, None]
    return np.where(layout_masks > 0, shades, images).astype("float32")


def _check_settings(patch_size, informative_fraction, height, width):
    patch_size = _checks.check_positive_int(patch_size, "patch_size", allow_none=True)
    if patch_size is None:
        patch_size = default_patch_size(min(height, width))
    if 2 * patch_size > min(height, width):
        raise ValueError("`patch_size` must be at most half the image side (the patch lies in a corner). "
                         f"Received: patch_size={patch_size} for images of {height}x{width}")
    informative_fraction = _checks.check_fraction(informative_fraction, "informative_fraction", low_open=False,
                                                  high_open=False)
    return patch_size, informative_fraction


def add_decoys(data, patch_size=None, informative_fraction=1.0, seed=0, data_format=None):
    """A copy of a `Dataset` with a class-coded decoy patch on every image.

    Training and validation images: a patch in a random corner whose shade
    is the class's (for an `informative_fraction` of them; the others show
    a random class's shade). Test images: the same corner drawn per image,
    shown in three views that differ only in the patch's shade.

    Args:
        data: a `keras_edda.datasets.Dataset` (float images in [0, 1]).
        patch_size: side of the square patch in pixels (`None`: a quarter
            of the image side); at most half the side.
        informative_fraction: share of training and validation images whose
            patch shows their own class's shade, in [0, 1].
        seed: seed of the corners and shades.
        data_format: layout of the data's images; defaults to Keras' setting
            (the layout `keras_edda.datasets.load` gives).

    Returns:
        A new `Dataset` named `data.name + "-decoy"`, with:

        - `x_train`, `x_val`: the images with class-coded patches;
        - `x_test`: the main test split, patches of a random class's shade
          (drawn uniformly: it carries no information on the class);
        - `x_test_consistent`: the same test images, patch of the true
          class's shade (what the shortcut expects);
        - `x_test_swapped`: the same test images, patch of another class's
          shade (drawn uniformly among the other classes);
        - `decoy_masks_train`, `decoy_masks_val`, `decoy_masks_test`:
          float32 (N, H, W, 1), 1 on the patch (the same for every test view);
        - `decoy_classes_train`, `decoy_classes_val`, `decoy_classes_test`,
          `decoy_classes_swapped`: the class whose shade each patch shows;
        - `object_masks_*`: the data's object masks (if any) with the patch
          cut out; `decoy_settings`: the settings as a dict.

    Raises:
        ValueError: for a `patch_size` above half the image side, an
            `informative_fraction` outside [0, 1], or data with fewer than
            two classes.

    Example:

    ```python
    data = keras_edda.decoy_data.add_decoys(keras_edda.datasets.load("digits"), patch_size=8)
    data.x_test_swapped.shape == data.x_test.shape  # True
    ```
    """
    data_format = _checks.standardize_data_format(data_format)
    height, width = (data.x_train.shape[2:4] if data_format == "channels_first" else data.x_train.shape[1:3])
    patch_size, informative_fraction = _check_settings(patch_size, informative_fraction, height, width)
    num_classes = data.num_classes
    if num_classes < 2:
        raise ValueError(f"Decoys need at least two classes. Received: data with class_names={data.class_names!r}")
    rng = np.random.default_rng(seed)

    def train_like(images, labels):
        count = len(labels)
        corners = rng.integers(0, len(CORNERS), count)
        informative = rng.random(count) < informative_fraction
        shown = np.where(informative, labels, rng.integers(0, num_classes, count)).astype("int32")
        masks = decoy_masks(corners, patch_size, height, width)
        return plant_decoys(images, shown, masks, num_classes, data_format), masks, shown

    x_train, masks_train, shown_train = train_like(data.x_train, data.y_train)
    x_val, masks_val, shown_val = train_like(data.x_val, data.y_val)
    count = len(data.y_test)
    masks_test = decoy_masks(rng.integers(0, len(CORNERS), count), patch_size, height, width)
    shown_test = rng.integers(0, num_classes, count).astype("int32")
    shown_swapped = ((data.y_test + rng.integers(1, num_classes, count)) % num_classes).astype("int32")
    object_masks = None
    if data.object_masks_test is not None:
        object_masks = tuple(o * (1.0 - m) for o, m in zip(
            (data.object_masks_train, data.object_masks_val, data.object_masks_test),
            (masks_train, masks_val, masks_test)))
    boxes = None if data.boxes_test is None else (data.boxes_train, data.boxes_val, data.boxes_test)
    decoyed = type(data)(f"{data.name}-decoy", (x_train, data.y_train),
                      (plant_decoys(data.x_test, shown_test, masks_test, num_classes, data_format), data.y_test),
                      data.class_names, validation=(x_val, data.y_val), split_seed=data.split_seed,
                      test_fraction=data.test_fraction, validation_fraction=data.validation_fraction,
                      object_masks=object_masks, boxes=boxes)
    decoyed.x_test_consistent = plant_decoys(data.x_test, data.y_test, masks_test, num_classes, data_format)
    decoyed.x_test_swapped = plant_decoys(data.x_test, shown_swapped, masks_test, num_classes, data_format)
    decoyed.decoy_masks_train, decoyed.decoy_masks_val, decoyed.decoy_masks_test = masks_train, masks_val, masks_test
    decoyed.decoy_classes_train, decoyed.decoy_classes_val = shown_train, shown_val
    decoyed.decoy_classes_test, decoyed.decoy_classes_swapped = shown_test, shown_swapped
    decoyed.decoy_settings = {"patch_size": patch_size, "informative_fraction": informative_fraction,
                              "seed": seed}
    return decoyed


def ink_box_masks(images, threshold=0.1, data_format=None):
    """Object masks (N, H, W, 1): the tight box of each image's pixels above `threshold`.

    The digits canvas' rule for its object masks, applied to images whose
    object is the only ink (the upscaled digits). An image with no such
    pixel gets a mask of the whole image.
    """
    data_format = _checks.standardize_data_format(data_format)
    ink = (images.max(axis=1 if data_format == "channels_first" else -1) > threshold)
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    height, width = ink.shape[1:]

    def span(hits, size):
        empty = ~hits.any(axis=1)
        first = np.where(empty, 0, hits.argmax(axis=1))
        last = np.where(empty, size, size - hits[:, ::-1].argmax(axis=1))
        return first[:, None], last[:, None]

    (top, bottom), (left, right) = span(rows, height), span(cols, width)
    r = np.arange(height)[None, :]
    c = np.arange(width)[None, :]
    masks = ((r >= top) & (r < bottom))[:, :, None] & ((c >= left) & (c < right))[:, None, :]
    return masks[..., None].astype("float32")


def with_ink_masks(data, threshold=0.1):
    """`data` with object masks made by `ink_box_masks` on each split (set in place, returned)."""
    data.object_masks_train, data.object_masks_val, data.object_masks_test = (
        ink_box_masks(images, threshold) for images in (data.x_train, data.x_val, data.x_test))
    return data


SETTINGS = ("patch_size", "informative_fraction", "seed")


def require_decoys(data, what="decoy metrics"):
    """Raises a `ValueError` unless `data` carries decoy masks (a decoy dataset).

    Args:
        data: a `Dataset`.
        what: what needs them, for the message.

    Returns:
        `data`.
    """
    if getattr(data, "decoy_masks_test", None) is None:
        raise ValueError(
            f"{what} need a dataset with a planted decoy (decoy masks): load 'digits-decoy', "
            f"'cifar10-decoy' or any 'NAME-decoy', or call keras_edda.decoy_data.add_decoys. "
            f"Received: dataset={getattr(data, 'name', data)!r}")
    return data
