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
