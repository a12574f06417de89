"""keras_edda.crop_flip and the recipes' base augmentation: pad + random crop + flip,
exactly, and before the method's copies on both surfaces (copies and labels aligned)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_cnn

from keras_edda import recipes
from keras_edda.crop_flip import CropFlip, crop_flip_map_fn
from keras_edda.data import method_map_fn
from keras_edda.methods import Cutout, SaliencyGuided

SIZE, PAD = 8, 2


def coded_images(n, size=SIZE, channels=3):
    """Images whose every pixel value is unique and positive: (image, row, column, channel)."""
    index = np.arange(n * size * size * channels, dtype="float32").reshape(n, size, size, channels)
    return (index + 1.0) / (n * size * size * channels + 1.0)


def candidates(image, pad=PAD):
    """Every padded crop of `image`, flipped and not: {(row, col, flipped): array} (NumPy reference)."""
    size = image.shape[0]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    out = {}
    for row in range(2 * pad + 1):
        for col in range(2 * pad + 1):
            crop = padded[row:row + size, col:col + size]
            out[(row, col, False)] = crop
            out[(row, col, True)] = crop[:, ::-1]
    return out


def which(augmented, image, pad=PAD):
    """The (row, col, flipped) draw that made `augmented` from `image`; fails when none did."""
    found = [key for key, crop in candidates(image, pad).items() if np.array_equal(crop, augmented)]
    assert found, "not a padded crop (or its mirror) of its original"
    return found[0]


def test_each_image_is_one_padded_crop_of_itself_every_offset_and_flip_drawn():
    images = coded_images(200)
    out = CropFlip(PAD, seed=3)(images, training=True).numpy()
    draws = [which(out[i], images[i]) for i in range(len(images))]
    # All (2 * pad + 1) ** 2 offsets and both flips occur; about half the images are flipped.
    assert {(r, c) for r, c, _ in draws} == {(r, c) for r in range(5) for c in range(5)}
    assert 0.35 < np.mean([f for _, _, f in draws]) < 0.65
    np.testing.assert_array_equal(CropFlip(PAD, seed=3)(images, training=False), images)
    np.testing.assert_array_equal(CropFlip(PAD, seed=3)(images), images)
    # Without flip, never mirrored (the coded pixels tell a mirror from a shift).
    plain = CropFlip(PAD, flip=False, seed=1)(images[:40], training=True).numpy()
    assert not any(which(plain[i], images[i])[2] for i in range(40))
    # padding 0 and no flip: the identity.
    np.testing.assert_array_equal(CropFlip(0, flip=False)(images, training=True), images)


def test_channels_first_layout_and_config_round_trip():
    images = coded_images(6)
    first = CropFlip(PAD, seed=2, data_format="channels_first")(np.transpose(images, (0, 3, 1, 2)),
                                                                   training=True).numpy()
    last = CropFlip(PAD, seed=2, data_format="channels_last")(images, training=True).numpy()
    np.testing.assert_array_equal(np.transpose(first, (0, 2, 3, 1)), last)
    layer = CropFlip(3, flip=False, seed=7, data_format="channels_last")
    again = CropFlip.from_config(layer.get_config())
    assert (again.padding, again.flip, again.seed, again.data_format) == (3, False, 7, "channels_last")
    with pytest.raises(ValueError, match="padding=-1"):
        CropFlip(-1)
    with pytest.raises(TypeError, match="flip='yes'"):
        CropFlip(4, flip="yes")


def test_map_surface_makes_the_copies_from_the_augmented_images_with_their_labels():
    n = 6
    images = coded_images(n)
    labels = np.arange(n) % 3
    classifier = small_cnn((SIZE, SIZE, 3), 3)
    # Cutout fills a square with -1, a value no image and no padding holds.
    layer = Cutout(classifier, size=0.5, fill_value=-1.0, seed=0)
    ds = (tf.data.Dataset.from_tensor_slices((images, keras.utils.to_categorical(labels, 3))).batch(n)
          .map(crop_flip_map_fn(PAD, seed=4)).map(method_map_fn(layer)))
    x, y, w = (t.numpy() for t in next(iter(ds)))
    assert x.shape == (2 * n, SIZE, SIZE, 3) and y.shape == (2 * n, 3) and w.shape == (2 * n,)
    draws = [which(x[i], images[i]) for i in range(n)]  # the originals are augmented, in order
    assert len(set(draws)) > 1
    for i in range(n):
        copy = x[n + i]
        erased = copy == -1.0
        assert erased.any() and not erased.all()
        # Outside the square the copy is its augmented original (not the raw image).
        np.testing.assert_array_equal(copy[~erased], x[i][~erased])
        if draws[i] != (PAD, PAD, False):
            assert not np.array_equal(copy[~erased], images[i][~erased])
        np.testing.assert_array_equal(y[i], np.eye(3)[labels[i]])
        np.testing.assert_array_equal(y[n + i], np.eye(3)[labels[i]])
    # The recipe's map form is the same function.
    recipe = recipes.Recipe(augmentation="crop_flip")
    mapped = recipe.augment(tf.data.Dataset.from_tensor_slices((images, labels)).batch(n), seed=4)
    augmented = next(iter(mapped))[0].numpy()
    for i in range(n):
        which(augmented[i], images[i], pad=4)
    plain = recipes.Recipe().augment(tf.data.Dataset.from_tensor_slices((images, labels)).batch(n))
    np.testing.assert_array_equal(next(iter(plain))[0], images)


def test_model_surface_trains_the_copies_of_the_augmented_images():
    n = 4
    images = tf.constant(coded_images(n))
    classifier = small_cnn((SIZE, SIZE, 3), 3)
    settings = dict(fraction=0.3, seed=5)
    layer = SaliencyGuided(classifier, **settings)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), CropFlip(PAD, seed=9), layer, classifier])
    # Known answer: the same draws made by hand, augmentation first, then the method's copies.
    augmented = CropFlip(PAD, seed=9)(images, training=True)
    reference = SaliencyGuided(classifier, **settings)
    transformation = reference.get_random_transformation({"images": augmented})
    expected = reference.copy_loss(classifier(reference.copies(augmented, transformation), training=True),
                                   transformation)
    unaugmented = SaliencyGuided(classifier, **settings)
    plain = unaugmented.get_random_transformation({"images": images})
    loss_without = unaugmented.copy_loss(classifier(unaugmented.copies(images, plain), training=True), plain)
    model(images, training=True)
    np.testing.assert_allclose(float(layer.losses[0]), float(expected), rtol=1e-5)
    assert abs(float(expected) - float(loss_without)) > 1e-6
    # At inference the model is the classifier.
    np.testing.assert_allclose(model(images, training=False), classifier(images, training=False), rtol=1e-6)


def test_recipes_by_name_with_sgd_and_the_augmentation():
    cifar = recipes.get("cifar")
    assert cifar is recipes.CIFAR and recipes.get("default") is recipes.DEFAULT
    assert cifar.augmentation == "crop_flip" and cifar.optimizer_name in recipes.OPTIMIZERS
    sgd = recipes.Recipe(optimizer="sgd", momentum=0.8, weight_decay=5e-4, learning_rate=0.1)
    optimizer = sgd.optimizer(100)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.momentum == pytest.approx(0.8)
    assert optimizer.weight_decay == pytest.approx(5e-4)
    assert sgd.to_dict()["optimizer"] == "sgd" and recipes.Recipe(**sgd.to_dict()).momentum == 0.8
    [layer] = cifar.augmentation_layers(seed=1)
    assert isinstance(layer, CropFlip) and layer.padding == 4 and layer.flip
    assert recipes.DEFAULT.augmentation_layers() == []
    assert recipes.Recipe(**cifar.to_dict()).to_dict() == cifar.to_dict()
    assert "optimizer" not in recipes.DEFAULT.to_dict() and "augmentation" not in recipes.DEFAULT.to_dict()
    with pytest.raises(ValueError, match="recipe='imagenet'"):
        recipes.get("imagenet")
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        recipes.Recipe(optimizer="rmsprop")
    with pytest.raises(ValueError, match="augmentation='mixup'"):
        recipes.Recipe(augmentation="mixup")
    with pytest.raises(ValueError, match="momentum=1.5"):
        recipes.Recipe(optimizer="sgd", momentum=1.5)
