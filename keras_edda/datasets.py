"""Datasets for the experiments, split in train / validation / test.

The embedded default is scikit-learn's bundled handwritten digits: 1,797
images of 8x8 pixels, 10 classes, shipped inside scikit-learn, so it loads
with no network. Upscaled bilinearly so that a CNN has room for spatial
layers. `load_digits_canvas` pastes the same digits on a larger cluttered
canvas and keeps where each one lies (ground truth for localisation
metrics). Folders of images and TensorFlow Datasets load the same way.

Every split is stratified by class where the classes allow it and
reproducible from its seed: the test split is drawn first, the validation
split from the rest, so the test images do not depend on
`validation_fraction`.
"""

import os

import numpy as np
import tensorflow as tf

from keras_edda import _checks, cifar10, decoy_data

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# The built-in models pool three times; smaller images leave no spatial map.
MIN_IMAGE_SIZE = 8


def _check_image_size(image_size, name="image_size"):
    image_size = _checks.check_positive_int(image_size, name)
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"`{name}` must be at least {MIN_IMAGE_SIZE}. Received: {name}={image_size}")
    return image_size


def _check_validation_fraction(value):
    if value == 0:
        return 0.0
    return _checks.check_fraction(value, "validation_fraction")


def _holdout(labels, fraction, rng):
    """Boolean mask of a held-out share of `labels`, stratified by class.

    Each class gives `round(members * fraction)` images. When that rounds to
    nothing in every class (tiny data), `round(n * fraction)` images (at
    least one) are drawn regardless of class.
    """
    held = np.zeros(len(labels), bool)
    if fraction == 0:
        return held
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held[members[: int(round(len(members) * fraction))]] = True
    if not held.any() and len(labels) > 1:
        held[rng.permutation(len(labels))[: max(1, int(round(len(labels) * fraction)))]] = True
    return held


def split_indices(labels, test_fraction=0.25, validation_fraction=0.15, seed=0):
    """Indices of a stratified train / validation / test split.

    Args:
        labels: int class labels (N,).
        test_fraction: share of all images held out for testing (0 for none).
        validation_fraction: share of the non-test images held out for
            validation (0 for none).
        seed: seed of the split.

    Returns:
        `(train, validation, test)` sorted int arrays of indices into `labels`.

    Example:

    ```python
    train, val, test = keras_edda.datasets.split_indices(labels, seed=0)
    ```
    """
    labels = np.asarray(labels)
    is_test = _holdout(labels, test_fraction, np.random.default_rng(seed))
    rest = np.flatnonzero(~is_test)
    is_val = np.zeros(len(labels), bool)
    is_val[rest[_holdout(labels[rest], validation_fraction, np.random.default_rng((seed, 1)))]] = True
    return np.flatnonzero(~is_test & ~is_val), np.flatnonzero(is_val), np.flatnonzero(is_test)


def stratified_subset(labels, count, seed=0):
    """Indices of a class-stratified subset of `count` of `labels`.

    Each class keeps its share of `count` (`count * members / N`, rounded
    down; the images left over go to the classes with the largest
    remainders, ties to the lower class), its members drawn at random with
    `seed`. The indices are sorted, so the subset keeps the order of the
    data (e.g. `--max-train` on a split whose order is already random).

    Args:
        labels: int class labels (N,).
        count: images to keep, 1 <= count; all of them when count >= N.
        seed: seed of the draw.

    Returns:
        A sorted int array of `min(count, N)` indices into `labels`.

    Example:

    ```python
    keep = keras_edda.datasets.stratified_subset(data.y_train, 500, seed=0)
    x, y = data.x_train[keep], data.y_train[keep]
    ```
    """
    count = _checks.check_positive_int(count, "count")
    labels = np.asarray(labels)
    if count >= len(labels):
        return np.arange(len(labels))
    classes, sizes = np.unique(labels, return_counts=True)
    exact = count * sizes / len(labels)
    quota = np.floor(exact).astype(int)
    order = np.lexsort((classes, -(exact - quota)))
    quota[order[: count - quota.sum()]] += 1
    rng = np.random.default_rng((seed, 3))
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:size] for label, size in zip(classes, quota)]
    return np.sort(np.concatenate(chosen))


def subset_train(data, max_train, seed=0):
    """`data` with its training split cut to a class-stratified subset of `max_train` images.

    What `keras-edda compare --max-train N` keeps: `stratified_subset` of
    the training labels (and every per-image array that goes with them:
    object masks, boxes, a decoy's masks).
    Validation and test are unchanged. The `Dataset` is changed in place.

    Args:
        data: a `Dataset`.
        max_train: training images to keep (`None`: all).
        seed: seed of the draw (the split seed).

    Returns:
        `data`.
    """
    if max_train is None:
        return data
    count = len(data.y_train)
    keep = stratified_subset(data.y_train, _checks.check_positive_int(max_train, "max_train"), seed)
    # Every per-image array of the training split: images, labels, object masks, boxes, decoy masks, ...
    for name, value in list(vars(data).items()):
        if name.endswith("_train") and getattr(value, "shape", None) and len(value) == count:
            setattr(data, name, value[keep])
    return data


class Dataset:
    """Train / validation / test splits ready for an experiment: float32 images in [0, 1].

    Args:
        name: where the data came from.
        train, test: `(images, labels)` pairs.
        class_names: one name per class.
        validation: `(images, labels)`; `None` for an empty validation split.
        split_seed: seed of the split (recorded by `split_info`).
        test_fraction, validation_fraction: the shares the split used
            (`None` where the source fixed the split, e.g. a tfds test split).
        object_masks: optional `(train, validation, test)` float32 masks
            (N, H, W, 1), 1 on the object that decides the class.
        boxes: optional `(train, validation, test)` int32 boxes (N, 4) of the
            object, `(top, left, bottom, right)` with exclusive bottom/right.

    Attributes:
        x_train, y_train, x_val, y_val, x_test, y_test: numpy arrays; images
            (N, H, W, C) (or (N, C, H, W)), int32 labels.
        object_masks_train, object_masks_val, object_masks_test, boxes_train,
            boxes_val, boxes_test: ground truth where the data has some, else `None`.
        decoy_masks_train, decoy_masks_val, decoy_masks_test, x_test_consistent,
            x_test_swapped, decoy_settings: a planted decoy's masks, test views
            and settings (`keras_edda.decoy_data.add_decoys`, `"NAME-decoy"`
            datasets), else `None`.
        class_names: one name per class.
    """

    def __init__(self, name, train, test, class_names, validation=None, split_seed=None,
                 test_fraction=None, validation_fraction=None, object_masks=None, boxes=None):
        self.name = name
        (self.x_train, self.y_train), (self.x_test, self.y_test) = train, test
        if validation is None:
            validation = (self.x_train[:0], self.y_train[:0])
        self.x_val, self.y_val = validation
        self.class_names = list(class_names)
        self.split_seed = split_seed
        self.test_fraction = test_fraction
        self.validation_fraction = validation_fraction
        self.object_masks_train, self.object_masks_val, self.object_masks_test = object_masks or (None,) * 3
        self.boxes_train, self.boxes_val, self.boxes_test = boxes or (None,) * 3

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_shape(self):
        return tuple(self.x_train.shape[1:])

    @property
    def has_object_masks(self):
        """Whether the test images come with object masks (ground truth)."""
        return self.object_masks_test is not None

    # A planted decoy's views and masks (`keras_edda.decoy_data.add_decoys`); `None` without one.
    decoy_masks_train = decoy_masks_val = decoy_masks_test = None
    x_test_consistent = x_test_swapped = decoy_settings = None

    @property
    def has_decoy_masks(self):
        """Whether the data carries a planted decoy (`keras_edda.decoy_data`)."""
        return self.decoy_masks_test is not None

    def split_info(self):
        """The split as a JSON-ready dict: sizes, shares and seed.

        Returns:
            `{"train", "validation", "test"}` image counts (as the arrays are
            now), `"split_seed"`, `"test_fraction"`, `"validation_fraction"`.
        """
        return {"train": len(self.x_train), "validation": len(self.x_val), "test": len(self.x_test),
                "split_seed": self.split_seed, "test_fraction": self.test_fraction,
                "validation_fraction": self.validation_fraction}


def _digits_images(image_size, data_format):
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = digits.images.astype("float32")[..., None] / 16.0
    images = np.clip(tf.image.resize(images, (image_size, image_size), "bilinear").numpy(), 0.0, 1.0)
    if data_format == "channels_first":
        images = np.transpose(images, (0, 3, 1, 2))
    return images, digits.target.astype("int32")


def load_digits(image_size=32, test_fraction=0.25, seed=0, data_format=None, validation_fraction=0.0):
    """Loads the digits as float32 images in [0, 1], split in train (validation) and test.

    Args:
        image_size: side of the upscaled square images (at least 8).
        test_fraction: share of the images held out, stratified by class.
        seed: seed of the split.
        data_format: layout of the images; defaults to Keras' setting.
        validation_fraction: share of the non-test images held out for
            validation. With the default 0 the result is the historical
            `(train, test)` pair; above 0 it is `(train, validation, test)`.
            `load("digits")` gives the same split as a `Dataset`.

    Returns:
        `((x_train, y_train), (x_test, y_test))` numpy arrays, or
        `((x_train, y_train), (x_val, y_val), (x_test, y_test))`; images
        (N, size, size, 1) (or (N, 1, size, size)), labels int32 (N,).

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = keras_edda.datasets.load_digits()
    train, val, test = keras_edda.datasets.load_digits(validation_fraction=0.15)
    ```
    """
    image_size = _check_image_size(image_size)
    test_fraction = _checks.check_fraction(test_fraction, "test_fraction")
    validation_fraction = _check_validation_fraction(validation_fraction)
    data_format = _checks.standardize_data_format(data_format)
    images, labels = _digits_images(image_size, data_format)
    parts = split_indices(labels, test_fraction, validation_fraction, seed)
    pairs = tuple((images[index], labels[index]) for index in parts)
    return pairs if validation_fraction else (pairs[0], pairs[2])


def _resize(image, size):
    """Bilinear resize of one 2-D float image to `size` (rows, columns), in [0, 1]."""
    from PIL import Image

    resized = Image.fromarray(image.astype("float32"), mode="F").resize(size[::-1], Image.BILINEAR)
    return np.clip(np.asarray(resized, "float32"), 0.0, 1.0)


def _outside(top, left, height, width, box):
    """Whether the rectangle lies outside `box` (top, left, bottom, right) with a 1-pixel gap."""
    return (top + height < box[0] or top > box[2] or left + width < box[1] or left > box[3])


def _distractor(canvas, sources, box, scale, rng):
    """Pastes a fragment of a digit or a stroke on `canvas`, away from the object's `box`."""
    size = canvas.shape[0]
    if rng.random() < 0.5:
        source = sources[rng.integers(len(sources))]
        rows, cols = rng.integers(2, 5, size=2)
        row, col = rng.integers(0, 9 - rows), rng.integers(0, 9 - cols)
        patch = _resize(source[row:row + rows, col:col + cols],
                        (max(2, round(rows * scale)), max(2, round(cols * scale))))
    else:
        length = rng.integers(size // 8, size // 4 + 1)
        angle = rng.uniform(0.0, np.pi)
        steps = np.linspace(0.0, length, 4 * length)
        rr = np.round(steps * np.sin(angle)).astype(int)
        cc = np.round(steps * np.cos(angle)).astype(int)
        cc -= cc.min()
        patch = np.zeros((rr.max() + 2, cc.max() + 2), "float32")
        intensity = rng.uniform(0.5, 1.0)
        for dr, dc in ((0, 0), (1, 0), (0, 1)):
            patch[rr + dr, cc + dc] = intensity
    height, width = patch.shape
    if height >= size or width >= size:
        return
    for _ in range(20):
        top, left = rng.integers(0, size - height + 1), rng.integers(0, size - width + 1)
        if _outside(top, left, height, width, box):
            region = canvas[top:top + height, left:left + width]
            np.maximum(region, patch, out=region)
            return


def load_digits_canvas(canvas_size=64, digit_size=(0.25, 0.45), distractors=(2, 5), noise=0.05,
                       copies=1, seed=0, test_fraction=0.25, validation_fraction=0.15, split_seed=0,
                       data_format=None, max_digits=None):
    """The digits at random positions and scales on a cluttered canvas, with object masks.

    Each of scikit-learn's 1,797 digits (`copies` times) is scaled to a side
    drawn from `digit_size` (shares of the canvas) and pasted at a random
    position on a black canvas. Distractors are pasted around it, never on
    it: fragments of other digits (2 to 4 of their 8 rows and columns, at
    the digit's scale) and straight strokes, plus Gaussian pixel noise. The
    class is decided by the whole digit alone; the clutter carries no
    label. The object mask is the tight box of the pasted digit's ink
    (pixels above 0.1), the ground truth of localisation metrics (pointing
    game, energy pointing game). Deterministic given `seed`; copies of one
    digit always fall in the same split.

    Args:
        canvas_size: side of the square canvas (at least 32).
        digit_size: `(low, high)` side of the pasted digit as shares of the
            canvas, 0 < low <= high <= 1.
        distractors: `(low, high)` number of distractors per image (high
            exclusive).
        noise: std of the Gaussian pixel noise (0 for none).
        copies: canvases made from each digit.
        seed: seed of the canvases.
        test_fraction: share held out for testing, stratified by class.
        validation_fraction: share of the non-test images held out for
            validation (0 for none).
        split_seed: seed of the split.
        data_format: layout of the images; defaults to Keras' setting. The
            masks are (N, H, W, 1) in both layouts, like explanation maps.
        max_digits: use only the first `max_digits` digits (`None`: all).

    Returns:
        A `Dataset` with `object_masks_train/val/test` (N, H, W, 1) float32
        and `boxes_train/val/test` (N, 4) int32 `(top, left, bottom, right)`,
        bottom and right exclusive.

    Example:

    ```python
    data = keras_edda.datasets.load_digits_canvas(64)
    data.x_test.shape, data.object_masks_test.shape  # (450, 64, 64, 1) twice
    ```
    """
    from sklearn.datasets import load_digits as sklearn_digits

    canvas_size = _checks.check_positive_int(canvas_size, "canvas_size")
    if canvas_size < 32:
        raise ValueError(f"`canvas_size` must be at least 32. Received: canvas_size={canvas_size}")
    low, high = digit_size
    if not 0 < low <= high <= 1 or round(low * canvas_size) < 8:
        raise ValueError("`digit_size` must be (low, high) with 0 < low <= high <= 1 and a digit of at "
                         f"least 8 pixels. Received: digit_size={digit_size!r}")
    if not 0 <= distractors[0] < distractors[1]:
        raise ValueError("`distractors` must be (low, high) with 0 <= low < high. "
                         f"Received: distractors={distractors!r}")
    if not noise >= 0:
        raise ValueError(f"`noise` must be >= 0. Received: noise={noise!r}")
    copies = _checks.check_positive_int(copies, "copies")
    max_digits = _checks.check_positive_int(max_digits, "max_digits", allow_none=True)
    test_fraction = _checks.check_fraction(test_fraction, "test_fraction")
    validation_fraction = _check_validation_fraction(validation_fraction)
    data_format = _checks.standardize_data_format(data_format)
    digits = sklearn_digits()
    sources = digits.images[:max_digits].astype("float32") / 16.0
    targets = digits.target[:max_digits].astype("int32")
    count = len(sources)
    rng = np.random.default_rng(seed)
    images = np.zeros((copies * count, canvas_size, canvas_size), "float32")
    boxes = np.zeros((copies * count, 4), "int32")
    sides = (round(low * canvas_size), round(high * canvas_size))
    for index in range(copies * count):
        side = rng.integers(sides[0], sides[1] + 1)
        digit = _resize(sources[index % count], (side, side))
        top, left = rng.integers(0, canvas_size - side + 1, size=2)
        rows, cols = np.flatnonzero((digit > 0.1).any(1)), np.flatnonzero((digit > 0.1).any(0))
        box = (top + rows[0], left + cols[0], top + rows[-1] + 1, left + cols[-1] + 1)
        canvas = images[index]
        for _ in range(rng.integers(*distractors)):
            _distractor(canvas, sources, box, side / 8, rng)
        region = canvas[top:top + side, left:left + side]
        np.maximum(region, digit, out=region)
        boxes[index] = box
    if noise:
        images = np.clip(images + rng.normal(0.0, noise, images.shape).astype("float32"), 0.0, 1.0)
    rows = np.arange(canvas_size)[None, :, None]
    cols = np.arange(canvas_size)[None, None, :]
    masks = ((rows >= boxes[:, 0, None, None]) & (rows < boxes[:, 2, None, None])
             & (cols >= boxes[:, 1, None, None]) & (cols < boxes[:, 3, None, None]))
    masks = masks[..., None].astype("float32")
    images = images[:, None] if data_format == "channels_first" else images[..., None]
    labels = np.tile(targets, copies)
    parts = split_indices(targets, test_fraction, validation_fraction, split_seed)
    parts = [np.sort(np.concatenate([part + c * count for c in range(copies)])) for part in parts]
    pick = lambda array: tuple(array[part] for part in parts)  # noqa: E731
    train, validation, test = zip(pick(images), pick(labels))
    return Dataset("digits-canvas", train, test, [str(d) for d in range(10)], validation=validation,
                   split_seed=split_seed, test_fraction=test_fraction,
                   validation_fraction=validation_fraction, object_masks=pick(masks), boxes=pick(boxes))


def _prepare(images, image_size, channels):
    """Resizes to `image_size` and converts to `channels` (1 or 3), in [0, 1].

    Alpha (grey + alpha, RGBA) is dropped.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32) / 255.0
    images = tf.cast(images, tf.float32)
    if images.shape[-1] in (2, 4):
        images = images[..., : images.shape[-1] - 1]
    if channels == 3 and images.shape[-1] == 1:
        images = tf.image.grayscale_to_rgb(images)
    elif channels == 1 and images.shape[-1] == 3:
        images = tf.image.rgb_to_grayscale(images)
    if image_size is not None and tuple(images.shape[1:3]) != (image_size, image_size):
        images = tf.image.resize(images, (image_size, image_size), "bilinear")
    return np.clip(images.numpy(), 0.0, 1.0).astype("float32")


def _split_dataset(name, images, labels, class_names, test_fraction, validation_fraction, seed):
    parts = split_indices(labels, test_fraction, validation_fraction, seed)
    train, validation, test = ((images[index], labels[index]) for index in parts)
    return Dataset(name, train, test, class_names, validation=validation, split_seed=seed,
                   test_fraction=test_fraction, validation_fraction=validation_fraction)


def _min_class_size(test_fraction, validation_fraction):
    """Fewest images a class needs for one in each of train, validation and test."""
    for size in range(1, 10_000):
        test = int(round(size * test_fraction))
        val = int(round((size - test) * validation_fraction))
        if test >= 1 and (val >= 1 or not validation_fraction) and size - test - val >= 1:
            return size
    return None


def load_folder(path, image_size=32, channels=None, test_fraction=0.25, seed=0, validation_fraction=0.15):
    """Loads a folder with one sub-folder of images per class.

    Args:
        path: the folder; each sub-folder name is a class, its PNG / JPEG /
            BMP / GIF files the images (grey, grey + alpha, RGB or RGBA;
            alpha is dropped).
        image_size: side of the square images after resizing (at least 8).
        channels: 1 or 3; `None`: 1 if every image is grey, else 3.
        test_fraction: share held out for testing, stratified by class.
        seed: seed of the split and of the images' order: each split holds
            its images in a random order, so that its first images (e.g.
            `keras-edda compare --max-train`, or the test images the
            alignment metrics score) mix the classes.
        validation_fraction: share of the non-test images held out for
            validation, stratified by class (0 for none).

    Returns:
        A `Dataset`.

    Raises:
        ValueError: for a missing folder, fewer than two class sub-folders,
            a class sub-folder without images, a class with too few images
            for an image in each of train, validation and test, or an
            unreadable image.

    Example:

    ```python
    data = keras_edda.datasets.load_folder("photos/", image_size=64)
    ```
    """
    image_size = _check_image_size(image_size)
    test_fraction = _checks.check_fraction(test_fraction, "test_fraction")
    validation_fraction = _check_validation_fraction(validation_fraction)
    if channels is not None:
        _checks.check_choice(channels, "channels", (1, 3))
    if not os.path.isdir(path):
        raise ValueError(f"Image folder not found. Received: folder={path!r}")
    class_names = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    files, labels = [], []
    for label, name in enumerate(class_names):
        for file in sorted(os.listdir(os.path.join(path, name))):
            full = os.path.join(path, name, file)
            if not file.lower().endswith(IMAGE_SUFFIXES):
                continue
            if not os.path.isfile(full):  # a folder named like an image, or a link to nothing
                raise ValueError(f"{full!r} is named like an image but is "
                                 f"{'a broken link' if os.path.islink(full) else 'not a file'}; remove or "
                                 f"rename it. Received: folder={path!r}")
            files.append(full)
            labels.append(label)
    if len(class_names) < 2 or not files:
        raise ValueError(
            "An image folder needs at least two sub-folders (one per class) with "
            f"images ({', '.join(IMAGE_SUFFIXES)}). Received: folder={path!r} with "
            f"{len(class_names)} sub-folders and {len(files)} images")
    counts = np.bincount(labels, minlength=len(class_names))
    needed = _min_class_size(test_fraction, validation_fraction)
    for name, count in zip(class_names, counts):
        if count == 0:
            raise ValueError(
                f"Class folder {os.path.join(path, name)!r} has no images ({', '.join(IMAGE_SUFFIXES)}); "
                f"remove it or add images. Received: folder={path!r}")
        if needed is None or count < needed:
            raise ValueError(
                f"Class folder {os.path.join(path, name)!r} has {count} images: too few for an image "
                f"in each of train, validation and test with test_fraction={test_fraction} and "
                f"validation_fraction={validation_fraction} (needs at least {needed}). "
                f"Received: folder={path!r}")
    # The files come class by class; in that order every split's first images would be one class.
    order = np.random.default_rng((seed, 2)).permutation(len(files))
    files, labels = [files[i] for i in order], [labels[i] for i in order]
    decoded = []
    for file in files:
        try:
            image = tf.io.decode_image(tf.io.read_file(file), expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.FailedPreconditionError) as error:
            raise ValueError(f"Cannot read image {file!r}: {error.message.splitlines()[0]}") from None
        decoded.append(tf.image.resize(tf.cast(image, tf.float32) / 255.0,
                                       (image_size, image_size), "bilinear"))
    if channels is None:
        channels = 1 if all(image.shape[-1] in (1, 2) for image in decoded) else 3
    images = np.stack([_prepare(image[None], None, channels)[0] for image in decoded])
    return _split_dataset(f"folder:{path}", images, np.asarray(labels, "int32"), class_names,
                          test_fraction, validation_fraction, seed)


def load_tfds(name, data_dir=None, download=False, image_size=32, channels=None,
              max_examples=None, validation_fraction=0.15, split_seed=0):
    """Loads an image classification dataset of TensorFlow Datasets.

    Uses its `test` split for testing (or a quarter of `train` when there is
    none) and holds out `validation_fraction` of the rest of `train` for
    validation, stratified by class. Offline by default: with
    `download=False` the data must already be prepared in `data_dir`.

    Args:
        name: the tfds name, e.g. `"mnist"` or `"cifar10"`.
        data_dir: where tfds keeps its data (`None`: tfds' default).
        download: allow tfds to download and prepare the data.
        image_size: side of the square images after resizing (at least 8).
        channels: 1 or 3; `None` keeps the dataset's.
        max_examples: most examples taken from each split.
        validation_fraction: share of the training images held out for
            validation (0 for none).
        split_seed: seed of the validation (and missing test) split.

    Returns:
        A `Dataset`.
    """
    image_size = _check_image_size(image_size)
    validation_fraction = _check_validation_fraction(validation_fraction)
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ValueError("--dataset tfds:... needs tensorflow-datasets: "
                         "pip install keras_edda[tfds]") from None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
        splits = builder.info.splits
        has_test = "test" in splits
        split_names = ["train", "test"] if has_test else ["train"]
        take = "" if max_examples is None else f"[:{int(max_examples)}]"
        loaded = [builder.as_dataset(split=s + take, as_supervised=True) for s in split_names]
        label_feature = builder.info.features["label"]
    except Exception as error:  # tfds raises many kinds for "not there"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"Cannot load tfds dataset {name!r} from data_dir={data_dir!r} "
            f"(download={download}): {first_line}") from None
    arrays = []
    for dataset in loaded:
        images, labels = zip(*tfds.as_numpy(dataset)) if len(dataset) else ((), ())
        if not images:
            raise ValueError(f"tfds dataset {name!r} has an empty split")
        keep = channels or images[0].shape[-1]
        arrays.append((_prepare(np.stack(images), image_size, keep),
                       np.asarray(labels, "int32")))
    if not has_test:
        return _split_dataset(f"tfds:{name}", *arrays[0], label_feature.names, 0.25,
                              validation_fraction, split_seed)
    (images, labels), test = arrays
    train_index, val_index, _ = split_indices(labels, 0, validation_fraction, split_seed)
    return Dataset(f"tfds:{name}", (images[train_index], labels[train_index]), test, label_feature.names,
                   validation=(images[val_index], labels[val_index]), split_seed=split_seed,
                   validation_fraction=validation_fraction)


def load(spec, data_dir=None, download=False, image_size=None, channels=None,
         max_examples=None, validation_fraction=0.15, split_seed=0, test_fraction=0.25, decoy=None):
    """Loads `"digits"`, `"digits-canvas"`, `"cifar10"`, `"tfds:NAME"` or `"folder:PATH"` as a `Dataset`.

    `"NAME-decoy"` (`"digits-decoy"`, `"digits-canvas-decoy"`, and any other
    built-in name) loads NAME with a class-coded decoy patch planted
    (`keras_edda.decoy_data`; `"digits-decoy"` adds the digits' object masks).

    Args:
        spec: which data; `"digits"` is the embedded default (no network),
            `"digits-canvas"` the digits on a cluttered canvas with object
            masks (`load_digits_canvas`, canvas side `image_size`),
            `"cifar10"` the official CIFAR-10 split (`keras_edda.cifar10`).
        data_dir: tfds' data directory; for `"cifar10"` the folder or
            archive of the images (see `keras_edda.datasets.load_cifar10`).
        download: let tfds (or `keras.datasets.cifar10`) download.
        image_size: side of the square images (at least 8; at least 32 for
            `"digits-canvas"`); `None`: 64 for `"digits-canvas"`, else 32.
        channels: 1 or 3 (`None`: the data's own).
        max_examples: most examples per split (tfds).
        validation_fraction: share of the non-test images held out for
            validation, stratified by class (0 for none).
        split_seed: seed of the split.
        test_fraction: share held out for testing where the source has no
            test split of its own (digits, digits-canvas, folders).
        decoy: settings of a `"NAME-decoy"` dataset, a dict of
            `keras_edda.decoy_data.add_decoys`' `patch_size`,
            `informative_fraction` and `seed` (`None`: the defaults).

    Returns:
        A `Dataset`.

    Example:

    ```python
    data = keras_edda.datasets.load("digits", validation_fraction=0.15, split_seed=0)
    data.split_info()  # {"train": 1146, "validation": 201, "test": 450, ...}
    ```
    """
    if channels is not None:
        _checks.check_choice(channels, "channels", (1, 3))
    if decoy is not None and not (isinstance(spec, str) and spec.endswith("-decoy")):
        raise ValueError(f"`decoy` settings need a 'NAME-decoy' dataset. Received: decoy={decoy!r}, dataset={spec!r}")
    if isinstance(spec, str) and spec.endswith("-decoy") and not spec.startswith(("tfds:", "folder:")):
        return load_decoy(spec, decoy, data_dir=data_dir, download=download,
                                     image_size=image_size, channels=channels, max_examples=max_examples,
                                     validation_fraction=validation_fraction, split_seed=split_seed,
                                     test_fraction=test_fraction)
    if image_size is None:
        image_size = 64 if spec == "digits-canvas" else 32
    if spec in ("digits", "digits-canvas"):
        if spec == "digits":
            image_size = _check_image_size(image_size)
            test_fraction = _checks.check_fraction(test_fraction, "test_fraction")
            validation_fraction = _check_validation_fraction(validation_fraction)
            images, labels = _digits_images(image_size, _checks.standardize_data_format(None))
            data = _split_dataset("digits", images, labels, [str(d) for d in range(10)],
                                  test_fraction, validation_fraction, split_seed)
        else:
            data = load_digits_canvas(image_size, test_fraction=test_fraction,
                                      validation_fraction=validation_fraction, split_seed=split_seed)
        if channels == 3:
            for part in ("train", "val", "test"):
                setattr(data, f"x_{part}", _prepare(getattr(data, f"x_{part}"), None, 3))
        return data
    if spec == "cifar10":
        return load_cifar10(data_dir, download, validation_fraction, split_seed,
                                    image_size=image_size, channels=channels)
    if spec.startswith("tfds:") and len(spec) > 5:
        return load_tfds(spec[5:], data_dir, download, image_size, channels, max_examples,
                         validation_fraction, split_seed)
    if spec.startswith("folder:") and len(spec) > 7:
        return load_folder(spec[7:], image_size, channels, test_fraction, split_seed, validation_fraction)
    raise ValueError(
        "Unknown dataset. Expected 'digits', 'digits-canvas', 'cifar10', 'tfds:NAME' or 'folder:PATH'. "
        f"Received: dataset={spec!r}")


def load_decoy(spec, decoy=None, **load_kwargs):
    """Loads `"NAME-decoy"`: the dataset NAME with `add_decoys(**decoy)`.

    `keras_edda.datasets.load` sends its `"NAME-decoy"` names here. For
    `"digits-decoy"` each digit also gets an object mask: the tight box of
    its ink (pixels above 0.1), as the digits canvas does.

    Args:
        spec: `"NAME-decoy"`, NAME a name `keras_edda.datasets.load` knows
            (`"digits"`, `"digits-canvas"`, `"cifar10"`, ...).
        decoy: dict of `add_decoys` settings (`patch_size`,
            `informative_fraction`, `seed`); `None`: the defaults.
        **load_kwargs: passed to `keras_edda.datasets.load` for NAME.

    Returns:
        A `Dataset` with the attributes of `add_decoys`.

    Example:

    ```python
    data = keras_edda.datasets.load("digits-decoy", decoy={"patch_size": 8})
    ```
    """
    if decoy is None:
        decoy = {}
    if not isinstance(decoy, dict) or set(decoy) - set(decoy_data.SETTINGS):
        raise ValueError(f"`decoy` must be a dict with keys among {list(decoy_data.SETTINGS)}. "
                         f"Received: decoy={decoy!r}")
    base = spec[: -len("-decoy")]
    data = load(base, **load_kwargs)
    if base == "digits":
        data = decoy_data.with_ink_masks(data)
    return decoy_data.add_decoys(data, **decoy)


def load_digits_decoy(image_size=32, patch_size=None, informative_fraction=1.0, seed=0, test_fraction=0.25,
                      validation_fraction=0.15, split_seed=0):
    """The embedded digits with a class-coded decoy patch (Decoy-MNIST's recipe), with object masks.

    The digits of `load("digits")` (the same split), each with an object
    mask (the tight box of its ink, pixels above 0.1, as the digits canvas
    does) and a decoy (`add_decoys`; the object mask has the patch cut
    out). The same as `keras_edda.datasets.load("digits-decoy", ...)`.

    Args:
        image_size: side of the square images (at least 8).
        patch_size: side of the patch (`None`: `image_size // 4`).
        informative_fraction: share of training and validation images whose
            patch shows their own class's shade.
        seed: seed of the decoys.
        test_fraction, validation_fraction, split_seed: the split, as in
            `keras_edda.datasets.load`.

    Returns:
        A `Dataset` with the attributes of `add_decoys`.

    Example:

    ```python
    data = keras_edda.datasets.load_digits_decoy(32)
    data.x_test.shape, data.decoy_masks_test.shape  # (450, 32, 32, 1) twice
    ```
    """
    return load_decoy("digits-decoy", {"patch_size": patch_size, "informative_fraction": informative_fraction,
                                       "seed": seed}, image_size=image_size, test_fraction=test_fraction,
                      validation_fraction=validation_fraction, split_seed=split_seed)


def load_cifar10(data_dir=None, download=False, validation_fraction=0.1, split_seed=0, max_train=None,
                 image_size=None, channels=None, data_format=None, cache_dir=None, cache=True):
    """Loads CIFAR-10 as a `Dataset`: the official test split, a validation split carved from train.

    Args:
        data_dir: a folder with `train/` and `test/` class folders, its
            `.tar.gz`, or a folder holding `cifar10-jpg.tar.gz` (`None`:
            `$KERAS_EDDA_DATA`, then Keras' copy).
        download: let `keras.datasets.cifar10.load_data()` download when no
            local copy is found (off by default: offline, no download is
            tried and the error names where it looked).
        validation_fraction: share of the 50,000 training images held out
            for validation, stratified by class (0 for none).
        split_seed: seed of the validation split and of each split's order.
        max_train: keep a class-stratified subset of this many training
            images (`keras_edda.datasets.stratified_subset`); `None`: all.
        image_size: side of the images (`None` or 32: as stored; else
            resized bilinearly). For a large model input prefer resizing in
            the model (`keras_edda.models.build(..., image_size=)`), which
            keeps the arrays small.
        channels: 3 (`None`) or 1 (grey).
        data_format: layout of the images; defaults to Keras' setting.
        cache_dir: folder of the decoded cache (`None`: Keras' cache folder).
        cache: use the cache file.

    Returns:
        A `Dataset` named `"cifar10"`, float32 images in [0, 1], classes
        `keras_edda.cifar10.CLASS_NAMES`; each split holds its images in an order drawn from
        `split_seed`, so that its first images mix the classes. Its
        `source` attribute says where the images came from.

    Raises:
        ValueError: when no source holds CIFAR-10 (the message names the
            three places looked in), or for bad arguments.

    Example:

    ```python
    data = keras_edda.datasets.load_cifar10("../shared/datasets", max_train=5000)
    data.split_info()  # {"train": 5000, "validation": 5000, "test": 10000, ...}
    ```
    """
    if validation_fraction != 0:
        _checks.check_fraction(validation_fraction, "validation_fraction")
    max_train = _checks.check_positive_int(max_train, "max_train", allow_none=True)
    if image_size is not None:
        image_size = _check_image_size(image_size)
    if channels is not None:
        _checks.check_choice(channels, "channels", (1, 3))
    data_format = _checks.standardize_data_format(data_format)
    (x_train, y_train), (x_test, y_test), info = cifar10.load_arrays(data_dir, download, cache_dir, cache)
    train, val, _ = split_indices(y_train, 0, validation_fraction, split_seed)
    rng = np.random.default_rng((split_seed, 2))
    train, val = rng.permutation(train), rng.permutation(val)
    test = rng.permutation(len(y_test))
    if max_train is not None and max_train < len(train):
        train = train[stratified_subset(y_train[train], max_train, split_seed)]

    def prepared(images):
        if image_size not in (None, 32) or channels == 1:
            chunks = [_prepare(images[i:i + 2048], image_size, channels or 3)
                      for i in range(0, len(images), 2048)]
            images = np.concatenate(chunks) if chunks else np.zeros((0, image_size or 32, image_size or 32,
                                                                      channels or 3), "float32")
        else:
            images = images.astype("float32") / 255.0
        return np.transpose(images, (0, 3, 1, 2)) if data_format == "channels_first" else images

    data = Dataset(
        "cifar10", (prepared(x_train[train]), y_train[train]), (prepared(x_test[test]), y_test[test]),
        cifar10.CLASS_NAMES, validation=(prepared(x_train[val]), y_train[val]), split_seed=split_seed,
        validation_fraction=float(validation_fraction))
    data.source = info["source"]
    data.cached = info["cached"]
    return data
