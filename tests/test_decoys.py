"""Decoy datasets (a class-coded corner patch, Decoy-MNIST's recipe) and the
decoy metrics: construction, known answers on hand-built maps and models,
bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_edda import datasets, decoy_data, explainers, metrics


def patch_values(images, masks):
    """The pixel values inside each image's patch, (N, patch pixels)."""
    return np.stack([image[mask[..., 0] > 0].ravel() for image, mask in zip(images, masks)])


@pytest.fixture(scope="module")
def digits_decoy():
    return datasets.load("digits-decoy", image_size=16)


def test_the_shade_encodes_the_class_on_train_and_validation(digits_decoy):
    data = digits_decoy
    assert data.name == "digits-decoy" and data.has_decoy_masks and data.has_object_masks
    assert data.decoy_settings == {"patch_size": 4, "informative_fraction": 1.0, "seed": 0}
    for images, labels, masks in ((data.x_train, data.y_train, data.decoy_masks_train),
                                  (data.x_val, data.y_val, data.decoy_masks_val)):
        values = patch_values(images, masks)
        # The whole patch is one shade, the class's: 1 - class / 10 (Decoy-MNIST's 255 - 25 c).
        np.testing.assert_allclose(values, np.repeat(1.0 - labels[:, None] / 10, values.shape[1], 1), atol=1e-6)


def test_the_test_shade_is_random_and_the_views_differ_only_on_the_patch(digits_decoy):
    data = digits_decoy
    labels = data.y_test
    shades = {name: patch_values(getattr(data, name), data.decoy_masks_test)[:, 0]
              for name in ("x_test", "x_test_consistent", "x_test_swapped")}
    np.testing.assert_allclose(shades["x_test"], 1.0 - data.decoy_classes_test / 10, atol=1e-6)
    np.testing.assert_allclose(shades["x_test_consistent"], 1.0 - labels / 10, atol=1e-6)
    np.testing.assert_allclose(shades["x_test_swapped"], 1.0 - data.decoy_classes_swapped / 10, atol=1e-6)
    # Random: about a tenth agree with the class, every class shows up; swapped: never the class.
    assert 0.03 < np.mean(data.decoy_classes_test == labels) < 0.2
    assert set(data.decoy_classes_test) == set(range(10))
    assert not np.any(data.decoy_classes_swapped == labels)
    assert set(data.decoy_classes_swapped) == set(range(10))
    # Outside the patch every view is the clean digit of load("digits") (the same split).
    clean = datasets.load("digits", image_size=16)
    np.testing.assert_array_equal(clean.y_test, labels)
    outside = data.decoy_masks_test == 0
    for name in shades:
        np.testing.assert_array_equal(np.where(outside, getattr(data, name), 0), np.where(outside, clean.x_test, 0))


def test_masks_are_a_corner_patch_and_the_object_mask_leaves_it_out(digits_decoy):
    data = digits_decoy
    for masks in (data.decoy_masks_train, data.decoy_masks_val, data.decoy_masks_test):
        assert masks.shape[1:] == (16, 16, 1) and masks.dtype == np.float32
        np.testing.assert_array_equal(masks.sum(axis=(1, 2, 3)), np.full(len(masks), 16.0))
        corners = np.stack([masks[:, :4, :4, 0].all((1, 2)), masks[:, :4, -4:, 0].all((1, 2)),
                            masks[:, -4:, :4, 0].all((1, 2)), masks[:, -4:, -4:, 0].all((1, 2))], axis=1)
        np.testing.assert_array_equal(corners.sum(axis=1), np.ones(len(masks)))
        assert corners.mean(axis=0).min() > 0.15  # all four corners are used
    for objects, decoys in ((data.object_masks_train, data.decoy_masks_train),
                            (data.object_masks_test, data.decoy_masks_test)):
        assert np.all(objects.sum(axis=(1, 2, 3)) > 0)
        assert not np.any(objects * decoys)
    # The object mask covers the digit's ink outside the patch.
    ink = (datasets.load("digits", image_size=16).x_test > 0.1) & (data.decoy_masks_test == 0)
    assert np.all(data.object_masks_test[ink] == 1)


def test_settings_informative_fraction_and_patch_size():
    data = datasets.load("digits-decoy", image_size=16, decoy={"patch_size": 3, "informative_fraction": 0.5,
                                                              "seed": 4})
    informative = data.decoy_classes_train == data.y_train
    # Half informative, plus the random tenth of the others that show their class by chance.
    assert 0.48 < informative.mean() < 0.62
    np.testing.assert_array_equal(data.decoy_masks_train.sum(axis=(1, 2, 3)), np.full(len(data.y_train), 9.0))
    again = datasets.load("digits-decoy", image_size=16, decoy={"patch_size": 3, "informative_fraction": 0.5,
                                                               "seed": 4})
    np.testing.assert_array_equal(again.x_test_swapped, data.x_test_swapped)
    other = datasets.load("digits-decoy", image_size=16, decoy={"seed": 5})
    assert not np.array_equal(other.decoy_masks_train, data.decoy_masks_train)
    # The same digits function, straight.
    direct = datasets.load_digits_decoy(16, patch_size=3, informative_fraction=0.5, seed=4)
    np.testing.assert_array_equal(direct.x_train, data.x_train)


def test_any_dataset_takes_decoys_and_keeps_its_object_masks():
    canvas = datasets.load_digits_canvas(32, max_digits=60, validation_fraction=0.2)
    data = decoy_data.add_decoys(canvas, patch_size=6, seed=1)
    assert data.name == "digits-canvas-decoy"
    np.testing.assert_array_equal(data.object_masks_test, canvas.object_masks_test * (1 - data.decoy_masks_test))
    np.testing.assert_array_equal(data.boxes_test, canvas.boxes_test)
    values = patch_values(data.x_train, data.decoy_masks_train)
    np.testing.assert_allclose(values[:, 0], 1.0 - data.y_train / 10, atol=1e-6)


def test_channels_first_and_rgb_images_get_the_patch_in_every_channel():
    keras.config.set_image_data_format("channels_first")
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(6, 3, 16, 16)).astype("float32")
    labels = np.arange(6, dtype="int32") % 3
    toy = datasets.Dataset("toy", (images, labels), (images, labels), ["a", "b", "c"], validation=(images, labels))
    data = decoy_data.add_decoys(toy, patch_size=4)
    inside = np.transpose(data.decoy_masks_train, (0, 3, 1, 2)) > 0
    inside = np.broadcast_to(inside, images.shape)
    expected = np.broadcast_to((1.0 - labels / 3)[:, None, None, None], images.shape)
    np.testing.assert_allclose(data.x_train[inside], expected[inside], atol=1e-6)
    np.testing.assert_array_equal(data.x_train[~inside], images[~inside])
    assert data.decoy_masks_train.shape == (6, 16, 16, 1)


def test_bad_decoy_settings_and_data_without_decoys():
    with pytest.raises(ValueError, match=r"at most half the image side.*patch_size=9"):
        datasets.load("digits-decoy", image_size=16, decoy={"patch_size": 9})
    with pytest.raises(ValueError, match=r"informative_fraction=1.5"):
        datasets.load("digits-decoy", image_size=16, decoy={"informative_fraction": 1.5})
    with pytest.raises(ValueError, match=r"keys among.*Received: decoy=\{'size': 4\}"):
        datasets.load("digits-decoy", image_size=16, decoy={"size": 4})
    with pytest.raises(ValueError, match=r"need a 'NAME-decoy' dataset.*dataset='digits'"):
        datasets.load("digits", image_size=16, decoy={"patch_size": 4})
    with pytest.raises(ValueError, match=r"Unknown dataset.*dataset='nothing'"):
        datasets.load("nothing-decoy")
    plain = datasets.load("digits", image_size=16)
    assert not plain.has_decoy_masks and plain.x_test_swapped is None
    with pytest.raises(ValueError, match=r"planted decoy.*Received: dataset='digits'"):
        decoy_data.require_decoys(plain)


# Decoy metrics -------------------------------------------------------------


def test_decoy_attribution_on_hand_built_maps(digits_decoy):
    masks = digits_decoy.decoy_masks_test[:8]
    objects = digits_decoy.object_masks_test[:8]
    np.testing.assert_allclose(metrics.DecoyAttribution()(masks, masks), np.ones(8), rtol=1e-6)
    constant = np.full(masks.shape, 0.7, "float32")
    np.testing.assert_allclose(metrics.DecoyAttribution()(constant, masks), np.full(8, 16 / 256), rtol=1e-5)
    np.testing.assert_allclose(metrics.ObjectAttribution()(constant, objects), objects.mean(axis=(1, 2, 3)),
                               rtol=1e-5)
    # The two shares of one map never add up to more than 1 (the masks are disjoint).
    maps = np.random.default_rng(0).uniform(size=masks.shape).astype("float32")
    total = metrics.DecoyAttribution()(maps, masks) + metrics.ObjectAttribution()(maps, objects)
    assert np.all(total.numpy() <= 1 + 1e-6)
    # By name, as the registry gives them.
    assert metrics.get("decoy_attribution").name == "decoy_attribution"
    assert set(metrics.DECOY_METRICS) == {"decoy_attribution", "object_attribution", "decoy_reliance",
                                          "decoy_reliance_swapped"}


def test_decoy_metrics_refuse_bad_masks(digits_decoy):
    masks = digits_decoy.decoy_masks_test[:4]
    with pytest.raises(ValueError, match=r"`decoy_masks` must have the shape of `maps`.*shape=\(4, 8, 8, 1\)"):
        metrics.DecoyAttribution()(masks, masks[:, :8, :8])
    nan_masks = masks.copy()
    nan_masks[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"`decoy_masks` contains NaN"):
        metrics.DecoyAttribution()(masks, nan_masks)
    with pytest.raises(ValueError, match=r"no decoy pixel at images \[0\]"):
        metrics.DecoyAttribution()(masks, np.concatenate([masks[:1] * 0, masks[1:]]))
    plain = datasets.load("digits", image_size=16)
    with pytest.raises(ValueError, match=r"planted decoy.*Received: decoy_masks=None"):
        metrics.DecoyAttribution()(masks, plain.decoy_masks_test)
    model = shortcut_model(16, 4)
    with pytest.raises(ValueError, match=r"planted decoy.*Received: consistent_images=None"):
        metrics.DecoyReliance()(model, plain.x_test_consistent, plain.x_test, plain.y_test)


def toy_decoy_data(size=16, patch=4, count=40, classes=10):
    """Black images with a grey square in the middle (the same for every class) and a decoy."""
    images = np.zeros((count, size, size, 1), "float32")
    images[:, size // 2 - 3:size // 2 + 3, size // 2 - 3:size // 2 + 3] = 0.5
    labels = (np.arange(count) % classes).astype("int32")
    toy = datasets.Dataset("toy", (images, labels), (images, labels), [str(c) for c in range(classes)],
                           validation=(images, labels))
    return decoy_data.add_decoys(toy, patch_size=patch, seed=3)


def shortcut_model(size, patch, classes=10):
    """Reads the class off the brightest corner patch alone (the decoy's shade)."""
    inputs = keras.Input((size, size, 1))
    corners = [keras.ops.mean(inputs[:, r:r + patch, c:c + patch], axis=(1, 2, 3))
               for r in (0, size - patch) for c in (0, size - patch)]
    shade = keras.ops.max(keras.ops.stack(corners, axis=1), axis=1, keepdims=True)
    targets = keras.ops.convert_to_tensor(1.0 - np.arange(classes, dtype="float32") / classes)[None]
    # -1000 (shade - target)^2 up to a term the same for every class (so that the gradient is not 0).
    logits = 1000.0 * (2.0 * shade * targets - targets ** 2)
    return keras.Model(inputs, keras.layers.Activation("softmax")(logits))


def center_model(size, classes=10):
    """Sees only the middle of the image, never the corners."""
    inputs = keras.Input((size, size, 1))
    middle = keras.layers.Flatten()(inputs[:, size // 4:3 * size // 4, size // 4:3 * size // 4])
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(middle))


def test_decoy_reliance_of_a_shortcut_model_and_of_a_model_that_ignores_the_decoy():
    data = toy_decoy_data()
    shortcut = shortcut_model(16, 4)
    swapped = metrics.get("decoy_reliance_swapped")(shortcut, data.x_test_consistent, data.x_test_swapped,
                                                    data.y_test)
    np.testing.assert_array_equal(swapped, np.ones(40))  # right on every consistent view, wrong on every swap
    random = metrics.DecoyReliance(batch_size=7)(shortcut, data.x_test_consistent, data.x_test, data.y_test)
    np.testing.assert_array_equal(random, (data.decoy_classes_test != data.y_test).astype("float32"))
    ignores = center_model(16)
    np.testing.assert_array_equal(
        metrics.DecoyReliance()(ignores, data.x_test_consistent, data.x_test_swapped, data.y_test), np.zeros(40))
    # Read together: the shortcut model's saliency lies on the decoy only, the other model's never.
    maps = explainers.Saliency(shortcut)(data.x_test_consistent, targets=data.y_test)
    np.testing.assert_allclose(metrics.DecoyAttribution()(maps, data.decoy_masks_test), np.ones(40), atol=1e-6)
    maps = explainers.Saliency(ignores)(data.x_test_consistent, targets=data.y_test)
    np.testing.assert_array_equal(metrics.DecoyAttribution()(maps, data.decoy_masks_test), np.zeros(40))


def test_decoy_reliance_bad_input():
    data = toy_decoy_data(count=10)
    model = shortcut_model(16, 4)
    reliance = metrics.DecoyReliance()
    with pytest.raises(ValueError, match=r"two views of the same images.*other_images.shape=\(5, 16, 16, 1\)"):
        reliance(model, data.x_test_consistent, data.x_test[:5], data.y_test)
    with pytest.raises(ValueError, match=r"one entry per image"):
        reliance(model, data.x_test_consistent, data.x_test, data.y_test[:4])
    with pytest.raises(ValueError, match=r"class ids in \[0, 10\).*12"):
        reliance(model, data.x_test_consistent, data.x_test, np.full(10, 12, "int32"))
    bad = data.x_test.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"`other_images` contains NaN"):
        reliance(model, data.x_test_consistent, bad, data.y_test)
    with pytest.raises(ValueError, match=r"batch_size=0"):
        metrics.DecoyReliance(batch_size=0)
    assert isinstance(reliance(model, tf.constant(data.x_test_consistent), data.x_test, data.y_test), tf.Tensor)
