"""keras_edda.datasets: train / validation / test splits, the digits canvas
with its object masks, and the folder loader's handling of bad folders."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits as sklearn_digits

from keras_edda import datasets


def write_pngs(folder, counts, channels=3, size=12):
    rng = np.random.default_rng(0)
    for c, count in enumerate(counts):
        os.makedirs(folder / f"class_{c}", exist_ok=True)
        for i in range(count):
            image = rng.integers(0, 255, (size, size, channels), dtype=np.uint8)
            tf.io.write_file(str(folder / f"class_{c}" / f"{i}.png"), tf.io.encode_png(image))
    return folder


def test_split_indices_are_disjoint_complete_and_stratified():
    labels = np.repeat(np.arange(4), [40, 60, 20, 80])
    train, val, test = datasets.split_indices(labels, 0.25, 0.2, seed=3)
    assert len(np.intersect1d(train, val)) == len(np.intersect1d(train, test)) == len(np.intersect1d(val, test)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(labels)))
    np.testing.assert_array_equal(np.bincount(labels[test]), [10, 15, 5, 20])
    np.testing.assert_array_equal(np.bincount(labels[val]), [6, 9, 3, 12])
    again = datasets.split_indices(labels, 0.25, 0.2, seed=3)
    other = datasets.split_indices(labels, 0.25, 0.2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, val, test)))
    assert not np.array_equal(other[1], val)
    # The test split does not depend on the validation share.
    np.testing.assert_array_equal(datasets.split_indices(labels, 0.25, 0.0, seed=3)[2], test)


def test_tiny_classes_still_give_a_validation_split():
    labels = np.arange(10).repeat(2)
    train, val, test = datasets.split_indices(labels, 0.0, 0.15, seed=0)
    assert len(val) == 3 and len(test) == 0 and len(train) == 17


def test_digits_dataset_has_a_validation_split_and_keeps_the_old_test_split():
    (x_train, y_train), (x_test, y_test) = datasets.load_digits(image_size=16)
    assert len(x_train) + len(x_test) == 1797 and x_train.shape[1:] == (16, 16, 1)
    data = datasets.load("digits", image_size=16)
    np.testing.assert_array_equal(data.x_test, x_test)
    np.testing.assert_array_equal(data.y_test, y_test)
    info = data.split_info()
    assert info == {"train": 1146, "validation": 201, "test": 450, "split_seed": 0,
                    "test_fraction": 0.25, "validation_fraction": 0.15}
    assert np.all(np.bincount(data.y_val, minlength=10) >= 19)
    # Validation images are training images of the two-way split, none is a test image.
    train_rows = {row.tobytes() for row in x_train}
    assert all(row.tobytes() in train_rows for row in data.x_val)
    (a, _), (v, yv), (t, _) = datasets.load_digits(image_size=16, validation_fraction=0.15)
    np.testing.assert_array_equal(v, data.x_val)
    np.testing.assert_array_equal(yv, data.y_val)
    assert len(a) == 1146 and len(t) == 450
    assert datasets.load("digits", image_size=16, split_seed=1).split_info()["split_seed"] == 1
    assert datasets.load("digits", image_size=16, validation_fraction=0).x_val.shape == (0, 16, 16, 1)
    assert datasets.load("digits", image_size=16, channels=3).x_val.shape[-1] == 3


def test_tfds_loader_holds_out_validation_from_train():
    with tfds.testing.mock_data(num_examples=40):
        data = datasets.load("tfds:mnist", image_size=16)
        whole = datasets.load("tfds:mnist", image_size=16, validation_fraction=0)
    info = data.split_info()
    assert info["validation"] > 0 and info["train"] + info["validation"] == len(whole.x_train)
    np.testing.assert_array_equal(data.x_test, whole.x_test)
    assert len(whole.x_val) == 0
    assert data.x_val.shape[1:] == (16, 16, 1)


def test_folder_loader_splits_three_ways(tmp_path):
    data = datasets.load(f"folder:{write_pngs(tmp_path / 'f', [8, 8])}", image_size=16)
    info = data.split_info()
    assert (info["train"], info["validation"], info["test"]) == (10, 2, 4)
    assert set(data.y_val) == {0, 1} and set(data.y_test) == {0, 1}
    # The files are read class by class; the splits must not keep that order (a prefix of the
    # training images, as --max-train takes, would be one class).
    assert np.any(np.diff(data.y_train) < 0) and len(set(data.y_train[:4])) == 2


def test_empty_class_folder_is_an_error(tmp_path):
    folder = write_pngs(tmp_path / "f", [8, 8])
    os.makedirs(folder / "class_2")
    with pytest.raises(ValueError, match="class_2.* has no images"):
        datasets.load_folder(str(folder))


def test_too_few_images_per_class_is_an_error(tmp_path):
    folder = write_pngs(tmp_path / "f", [8, 2])
    with pytest.raises(ValueError, match="class_1.* has 2 images: too few.*needs at least"):
        datasets.load_folder(str(folder))
    # Without a validation split three images suffice: a quarter of 3 rounds to one test image.
    with pytest.raises(ValueError, match="needs at least 3"):
        datasets.load_folder(str(folder), validation_fraction=0)


def test_grey_alpha_png_loads(tmp_path):
    folder = write_pngs(tmp_path / "f", [8, 8], channels=2)
    grey = datasets.load_folder(str(folder), image_size=8)
    assert grey.x_train.shape[1:] == (8, 8, 1)
    raw = tf.io.decode_png(tf.io.read_file(str(folder / "class_0" / "0.png")))
    assert raw.shape[-1] == 2
    rgb = datasets.load_folder(str(folder), image_size=12, channels=3)
    assert rgb.x_train.shape[1:] == (12, 12, 3)
    # Alpha is dropped, not mixed in: the grey values are those of the first channel.
    everything = np.concatenate([rgb.x_train, rgb.x_val, rgb.x_test])
    first = tf.cast(raw[..., :1], tf.float32).numpy() / 255.0
    assert np.min(np.abs(everything[..., :1] - first).reshape(len(everything), -1).max(1)) < 1e-6


@pytest.mark.parametrize("call", [
    lambda folder: datasets.load_folder(folder, image_size=2),
    lambda folder: datasets.load_digits(image_size=2),
    lambda folder: datasets.load("digits", image_size=7),
    lambda folder: datasets.load(f"folder:{folder}", image_size=2),
])
def test_too_small_image_size_is_an_error(call, tmp_path):
    folder = str(write_pngs(tmp_path / "f", [8, 8]))
    with pytest.raises(ValueError, match=r"image_size` must be at least 8. Received: image_size="):
        call(folder)


@pytest.fixture(scope="module")
def canvas():
    return datasets.load_digits_canvas(48, seed=1)


def test_canvas_shapes_splits_and_ground_truth(canvas):
    assert canvas.name == "digits-canvas" and canvas.has_object_masks
    assert canvas.split_info() == {"train": 1146, "validation": 201, "test": 450, "split_seed": 0,
                                   "test_fraction": 0.25, "validation_fraction": 0.15}
    for part in ("train", "val", "test"):
        images, masks, boxes = (getattr(canvas, f"{kind}_{part}") for kind in ("x", "object_masks", "boxes"))
        assert images.shape[1:] == (48, 48, 1) and images.dtype == np.float32
        assert masks.shape == images.shape and boxes.shape == (len(images), 4)
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert set(np.unique(masks)) == {0.0, 1.0}
        # The mask is the box.
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        np.testing.assert_array_equal(masks.sum((1, 2, 3)), area)
    # The object covers a minority of the canvas, and there is clutter outside it.
    assert canvas.object_masks_train.mean() < 0.2
    outside = (canvas.x_train > 0.3) & (canvas.object_masks_train == 0)
    assert np.mean(outside.any((1, 2, 3))) > 0.8


def test_canvas_masks_hold_the_pasted_digit():
    data = datasets.load_digits_canvas(48, distractors=(0, 1), noise=0.0, seed=2, validation_fraction=0)
    ink = data.x_test > 0.1
    # Without clutter every ink pixel lies in the mask, and the box is tight.
    assert not np.any(ink & (data.object_masks_test == 0))
    for image, (top, left, bottom, right) in zip(ink[:50, ..., 0], data.boxes_test[:50]):
        assert image[top].any() and image[bottom - 1].any() and image[:, left].any() and image[:, right - 1].any()
    # The box holds the digit of the label: resized to 8x8 it matches its source.
    sources = sklearn_digits().images / 16.0
    _, _, test = datasets.split_indices(sklearn_digits().target, 0.25, 0.0, seed=0)
    np.testing.assert_array_equal(data.y_test, sklearn_digits().target[test])
    correlations = []
    for image, box, index in zip(data.x_test[:100, ..., 0], data.boxes_test[:100], test[:100]):
        source = sources[index]
        rows, cols = np.flatnonzero(source.any(1)), np.flatnonzero(source.any(0))
        crop = source[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        pasted = tf.image.resize(image[box[0]:box[2], box[1]:box[3], None], crop.shape, "area").numpy()[..., 0]
        correlations.append(np.corrcoef(crop.ravel(), pasted.ravel())[0, 1])
    assert np.median(correlations) > 0.8


def test_canvas_is_deterministic_given_its_seed():
    first = datasets.load_digits_canvas(48, seed=1, max_digits=300)
    again = datasets.load_digits_canvas(48, seed=1, max_digits=300)
    np.testing.assert_array_equal(again.x_test, first.x_test)
    np.testing.assert_array_equal(again.x_train, first.x_train)
    np.testing.assert_array_equal(again.boxes_val, first.boxes_val)
    other = datasets.load_digits_canvas(48, seed=2, max_digits=300)
    assert not np.array_equal(other.x_test, again.x_test)
    np.testing.assert_array_equal(other.y_test, again.y_test)  # same split seed, same labels


def test_canvas_copies_stay_in_one_split():
    data = datasets.load_digits_canvas(32, digit_size=(0.25, 0.3), copies=2, validation_fraction=0.1,
                                       max_digits=200)
    single = datasets.load_digits_canvas(32, digit_size=(0.25, 0.3), validation_fraction=0.1, max_digits=200)
    for part in ("train", "val", "test"):
        labels = getattr(single, f"y_{part}")
        np.testing.assert_array_equal(getattr(data, f"y_{part}"), np.concatenate([labels, labels]))
    loaded = datasets.load("digits-canvas", channels=3)
    assert loaded.x_test.shape[1:] == (64, 64, 3) and loaded.object_masks_test.shape[1:] == (64, 64, 1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(canvas_size=16), "canvas_size=16"),
    (dict(digit_size=(0.5, 0.2)), "digit_size="),
    (dict(distractors=(3, 3)), "distractors="),
    (dict(noise=-1.0), "noise=-1.0"),
])
def test_canvas_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        datasets.load_digits_canvas(**kwargs)
