"""The embedded default data: scikit-learn's bundled handwritten digits.

1,797 images of 8x8 pixels, 10 classes, shipped inside scikit-learn, so it
loads with no network. Upscaled bilinearly so that a CNN has room for
spatial layers.
"""

import numpy as np
import tensorflow as tf

from keras_edda import _checks


def load_digits(image_size=32, test_fraction=0.25, seed=0, data_format=None):
    """Loads the digits as float32 images in [0, 1], split in train and test.

    Args:
        image_size: side of the upscaled square images.
        test_fraction: share of the images held out, stratified by class.
        seed: seed of the split.
        data_format: layout of the images; defaults to Keras' setting.

    Returns:
        `((x_train, y_train), (x_test, y_test))` numpy arrays; images
        (N, size, size, 1) (or (N, 1, size, size)), labels int32 (N,).

    Example:

    ```python
    (x_train, y_train), (x_test, y_test) = keras_edda.datasets.load_digits()
    ```
    """
    from sklearn.datasets import load_digits as sklearn_digits

    image_size = _checks.check_positive_int(image_size, "image_size")
    test_fraction = _checks.check_fraction(test_fraction, "test_fraction")
    data_format = _checks.standardize_data_format(data_format)
    digits = sklearn_digits()
    images = digits.images.astype("float32")[..., None] / 16.0
    images = tf.image.resize(images, (image_size, image_size), "bilinear").numpy()
    images = np.clip(images, 0.0, 1.0)
    if data_format == "channels_first":
        images = np.transpose(images, (0, 3, 1, 2))
    labels = digits.target.astype("int32")
    rng = np.random.default_rng(seed)
    test_index = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test_index.extend(members[: int(round(len(members) * test_fraction))])
    is_test = np.zeros(len(labels), bool)
    is_test[test_index] = True
    return (images[~is_test], labels[~is_test]), (images[is_test], labels[is_test])


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class Dataset:
    """A train/test split ready for the experiment: float32 images in [0, 1].

    Attributes:
        name: where the data came from.
        x_train, y_train, x_test, y_test: numpy arrays; images
            (N, H, W, C), int32 labels.
        class_names: one name per class.
    """

    def __init__(self, name, train, test, class_names):
        self.name = name
        (self.x_train, self.y_train), (self.x_test, self.y_test) = train, test
        self.class_names = list(class_names)

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_shape(self):
        return tuple(self.x_train.shape[1:])


def _prepare(images, image_size, channels):
    """Resizes to `image_size` and converts to `channels` (1 or 3), in [0, 1]."""
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32) / 255.0
    images = tf.cast(images, tf.float32)
    if channels == 3 and images.shape[-1] == 1:
        images = tf.image.grayscale_to_rgb(images)
    elif channels == 1 and images.shape[-1] == 3:
        images = tf.image.rgb_to_grayscale(images)
    elif images.shape[-1] == 4:
        images = images[..., :3] if channels != 1 else tf.image.rgb_to_grayscale(images[..., :3])
    if image_size is not None and tuple(images.shape[1:3]) != (image_size, image_size):
        images = tf.image.resize(images, (image_size, image_size), "bilinear")
    return np.clip(images.numpy(), 0.0, 1.0).astype("float32")


def _split(images, labels, test_fraction, seed):
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        is_test[members[: int(round(len(members) * test_fraction))]] = True
    return (images[~is_test], labels[~is_test]), (images[is_test], labels[is_test])


def load_folder(path, image_size=32, channels=None, test_fraction=0.25, seed=0):
    """Loads a folder with one sub-folder of images per class.

    Args:
        path: the folder; each sub-folder name is a class, its PNG / JPEG /
            BMP / GIF files the images.
        image_size: side of the square images after resizing.
        channels: 1 or 3; `None`: 1 if every image is grey, else 3.
        test_fraction: share held out for testing, stratified by class.
        seed: seed of the split.

    Returns:
        A `Dataset`.

    Example:

    ```python
    data = keras_edda.datasets.load_folder("photos/", image_size=64)
    ```
    """
    import os

    if not os.path.isdir(path):
        raise ValueError(f"Image folder not found. Received: folder={path!r}")
    class_names = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    files, labels = [], []
    for label, name in enumerate(class_names):
        for file in sorted(os.listdir(os.path.join(path, name))):
            if file.lower().endswith(IMAGE_SUFFIXES):
                files.append(os.path.join(path, name, file))
                labels.append(label)
    if len(class_names) < 2 or not files:
        raise ValueError(
            "An image folder needs at least two sub-folders (one per class) with "
            f"images ({', '.join(IMAGE_SUFFIXES)}). Received: folder={path!r} with "
            f"{len(class_names)} sub-folders and {len(files)} images")
    decoded = []
    for file in files:
        try:
            image = tf.io.decode_image(tf.io.read_file(file), expand_animations=False)
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(f"Cannot read image {file!r}: {error.message.splitlines()[0]}") from None
        decoded.append(tf.image.resize(tf.cast(image, tf.float32) / 255.0,
                                       (image_size, image_size), "bilinear"))
    if channels is None:
        channels = 1 if all(image.shape[-1] == 1 for image in decoded) else 3
    images = np.stack([_prepare(image[None], None, channels)[0] for image in decoded])
    train, test = _split(images, np.asarray(labels, "int32"), test_fraction, seed)
    return Dataset(f"folder:{path}", train, test, class_names)


def load_tfds(name, data_dir=None, download=False, image_size=32, channels=None,
              max_examples=None):
    """Loads an image classification dataset of TensorFlow Datasets.

    Uses its `train` split and its `test` split (or a quarter of `train`
    when there is none). Offline by default: with `download=False` the data
    must already be prepared in `data_dir`.

    Args:
        name: the tfds name, e.g. `"mnist"` or `"cifar10"`.
        data_dir: where tfds keeps its data (`None`: tfds' default).
        download: allow tfds to download and prepare the data.
        image_size: side of the square images after resizing.
        channels: 1 or 3; `None` keeps the dataset's.
        max_examples: most examples taken from each split.

    Returns:
        A `Dataset`.
    """
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
    if has_test:
        train, test = arrays
    else:
        train, test = _split(*arrays[0], 0.25, 0)
    return Dataset(f"tfds:{name}", train, test, label_feature.names)


def load(spec, data_dir=None, download=False, image_size=32, channels=None,
         max_examples=None):
    """Loads `"digits"`, `"tfds:NAME"` or `"folder:PATH"` as a `Dataset`.

    Args:
        spec: which data; `"digits"` is the embedded default (no network).
        data_dir: tfds' data directory.
        download: let tfds download.
        image_size: side of the square images.
        channels: 1 or 3 (`None`: the data's own).
        max_examples: most examples per split (tfds).

    Returns:
        A `Dataset`.
    """
    if spec == "digits":
        train, test = load_digits(image_size=image_size)
        if channels == 3:
            train = (_prepare(train[0], None, 3), train[1])
            test = (_prepare(test[0], None, 3), test[1])
        return Dataset("digits", train, test, [str(d) for d in range(10)])
    if spec.startswith("tfds:") and len(spec) > 5:
        return load_tfds(spec[5:], data_dir, download, image_size, channels, max_examples)
    if spec.startswith("folder:") and len(spec) > 7:
        return load_folder(spec[7:], image_size, channels)
    raise ValueError(
        "Unknown dataset. Expected 'digits', 'tfds:NAME' or 'folder:PATH'. "
        f"Received: dataset={spec!r}")
