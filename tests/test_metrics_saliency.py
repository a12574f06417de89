"""SaliencyMetric (Dabkowski & Gal 2017) against a NumPy reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers, metrics


def bilinear_crop(image, top, left, bottom, right):
    """Pixels top..bottom x left..right resized to the image size, corners on pixel centres."""
    height, width = image.shape[:2]
    ys, xs = np.linspace(top, bottom, height), np.linspace(left, right, width)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    rows0, rows1 = image[y0], image[y1]
    return ((1 - wy) * ((1 - wx) * rows0[:, x0] + wx * rows0[:, x1])
            + wy * ((1 - wx) * rows1[:, x0] + wx * rows1[:, x1]))


def reference_saliency_metric(model, image, saliency, threshold=0.5):
    s = saliency[..., 0]
    salient = (s - s.min()) / (s.max() - s.min() + 1e-8) > threshold
    height, width = s.shape
    rows, cols = np.flatnonzero(salient.any(axis=1)), np.flatnonzero(salient.any(axis=0))
    if len(rows) == 0:
        rows, cols = np.array([0, height - 1]), np.array([0, width - 1])
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    area = (bottom - top + 1) * (right - left + 1) / (height * width)
    original = model(image[None], training=False).numpy()[0]
    crop = bilinear_crop(image.astype("float64"), top, left, bottom, right).astype("float32")
    p = model(crop[None], training=False).numpy()[0][np.argmax(original)]
    return np.log(max(area, 0.05)) - np.log(p)


def test_matches_numpy_reference():
    model = small_cnn((16, 16, 3), 5)
    images = random_images(6, (16, 16, 3), seed=11)
    maps = explainers.GradCAM(model)(images).numpy()
    maps[4] = 0.0  # constant map: no salient pixel, the whole image
    maps[5] = 0.0
    maps[5, 3:6, 9:14] = 1.0  # a known 3 x 5 box
    metric = metrics.SaliencyMetric(batch_size=4)
    expected = [reference_saliency_metric(model, x, m) for x, m in zip(images, maps)]
    np.testing.assert_allclose(metric(model, images, maps), expected, rtol=1e-4, atol=1e-5)
    crops, area = metric.crops(tf.constant(images), tf.constant(maps))
    np.testing.assert_allclose(area[4:], [1.0, 15 / 256], rtol=1e-6)
    np.testing.assert_allclose(crops[4], images[4], atol=1e-6)
    np.testing.assert_allclose(crops[5], bilinear_crop(images[5], 3, 9, 5, 13), atol=1e-5)
    assert metric.name == "saliency_metric" and metric.score_direction == "lower"
    assert isinstance(metrics.get("saliency_metric", threshold=0.3), metrics.SaliencyMetric)


def test_channels_first_and_bad_input():
    model = small_cnn((16, 16, 3), 5)
    images = random_images(3, (16, 16, 3), seed=12)
    maps = explainers.GradCAM(model)(images)
    expected = metrics.SaliencyMetric()(model, images, maps)

    keras.config.set_image_data_format("channels_first")
    first = small_cnn((3, 16, 16), 5, data_format="channels_first")
    first.set_weights(model.get_weights())
    to_first = lambda a: np.transpose(np.asarray(a), (0, 3, 1, 2))  # noqa: E731
    np.testing.assert_allclose(metrics.SaliencyMetric()(first, to_first(images), to_first(maps)), expected,
                               rtol=1e-4, atol=1e-5)
    for bad in ({"threshold": 1.0}, {"min_area": 0.0}):
        with pytest.raises(ValueError, match=f"Received: {next(iter(bad))}="):
            metrics.SaliencyMetric(**bad)
