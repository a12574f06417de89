"""keras_edda.cifar10: the official split from a folder, an archive, $KERAS_EDDA_DATA or
Keras' copy; the validation split, the class order, the stratified subset and the cache.

A small fake archive in CIFAR-10's layout covers every path; the real archive
(../shared/datasets/cifar10-jpg.tar.gz) is read only where it is present."""

import os
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from keras_edda import cifar10, datasets


def real_folder():
    """Where the real archive is: $KERAS_EDDA_DATA (set by .ci/run) or ../shared/datasets, else None."""
    for folder in (os.environ.get(cifar10.ENV_VAR),
                   os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets")):
        if folder and os.path.isfile(os.path.join(folder, cifar10.ARCHIVE_NAME)):
            return folder
    return None


REAL = real_folder()
TRAIN_PER_CLASS, TEST_PER_CLASS = 6, 2


def pixel(split, label, index):
    """The value every pixel of one fake image holds: says which image it is."""
    return 100 * (split == "test") + 10 * label + index


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A folder in CIFAR-10's layout (PNG: exact pixels) and its .tar.gz; classes written in reverse."""
    root = tmp_path_factory.mktemp("cifar") / "cifar10"
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for label, name in reversed(list(enumerate(cifar10.CLASS_NAMES))):
            os.makedirs(root / split / name)
            for index in range(count):
                image = np.full((32, 32, 3), pixel(split, label, index), "uint8")
                image[0, 0] = (index, label, 7)
                tf.io.write_file(str(root / split / name / f"{index:04d}.png"), tf.io.encode_png(image))
    archive = root.parent / "fake.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(root / split, arcname=split)
    return root, archive


def identities(images):
    """(split-free) pixel value of each image, in [0, 1] * 255."""
    return np.round(images[:, 16, 16, 0] * 255).astype(int)


def test_folder_gives_the_official_split_validation_carved_from_train_and_keras_order(fake, tmp_path):
    root, _ = fake
    data = datasets.load_cifar10(root, validation_fraction=2 / 6, split_seed=0, cache_dir=tmp_path)
    assert data.class_names == list(cifar10.CLASS_NAMES)
    info = data.split_info()
    assert (info["train"], info["validation"], info["test"]) == (40, 20, 20)
    assert info["split_seed"] == 0 and info["validation_fraction"] == pytest.approx(1 / 3)
    np.testing.assert_array_equal(np.bincount(data.y_val, minlength=10), [2] * 10)
    np.testing.assert_array_equal(np.bincount(data.y_test, minlength=10), [2] * 10)
    assert data.x_train.dtype == np.float32 and data.x_train.shape[1:] == (32, 32, 3)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    # Each label is the class folder's index in Keras' order: the pixels say which folder.
    for images, labels, split in ((data.x_train, data.y_train, "train"), (data.x_val, data.y_val, "train"),
                                  (data.x_test, data.y_test, "test")):
        values = identities(images)
        np.testing.assert_array_equal((values - 100 * (split == "test")) // 10, labels)
    # Train and validation hold different training images, together all of them; test only test images.
    train_ids = set(identities(data.x_train)) | set(identities(data.x_val))
    assert len(train_ids) == 60 and not set(identities(data.x_train)) & set(identities(data.x_val))
    assert set(identities(data.x_test)) == {pixel("test", c, i) for c in range(10) for i in range(2)}
    # The order mixes the classes (not class by class) and is the split seed's.
    assert len(set(data.y_train[:10])) > 3
    again = datasets.load_cifar10(root, validation_fraction=2 / 6, split_seed=0, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.x_val, data.x_val)
    other = datasets.load_cifar10(root, validation_fraction=2 / 6, split_seed=1, cache_dir=tmp_path)
    assert set(identities(other.x_val)) != set(identities(data.x_val))


def test_archive_equals_folder_and_the_second_load_hits_the_cache(fake, tmp_path):
    root, archive = fake
    from_folder = datasets.load_cifar10(root, cache_dir=tmp_path / "a")
    first = datasets.load_cifar10(archive, cache_dir=tmp_path / "b")
    assert first.source == f"archive:{archive}" and not first.cached
    assert from_folder.source == f"folder:{root}"
    np.testing.assert_array_equal(first.x_train, from_folder.x_train)
    np.testing.assert_array_equal(first.y_test, from_folder.y_test)
    files = os.listdir(tmp_path / "b")
    assert len(files) == 1 and files[0].endswith(".npz")
    second = datasets.load_cifar10(archive, cache_dir=tmp_path / "b")
    assert second.cached
    np.testing.assert_array_equal(second.x_train, first.x_train)
    np.testing.assert_array_equal(second.y_val, first.y_val)
    # A folder holding the archive under its release name is found too.
    os.makedirs(tmp_path / "shared")
    os.symlink(archive, tmp_path / "shared" / cifar10.ARCHIVE_NAME)
    assert cifar10.find_source(tmp_path / "shared") == ("archive", str(tmp_path / "shared" / cifar10.ARCHIVE_NAME))
    # Through datasets.load, as `--dataset cifar10 --data-dir` will call it.
    data = datasets.load("cifar10", data_dir=str(archive), validation_fraction=0.5, split_seed=0)
    assert data.name == "cifar10" and data.split_info()["validation"] == 30


def test_stratified_max_train_keeps_each_class_share(fake, tmp_path):
    root, _ = fake
    data = datasets.load_cifar10(root, validation_fraction=0, max_train=30, cache_dir=tmp_path)
    np.testing.assert_array_equal(np.bincount(data.y_train, minlength=10), [3] * 10)
    labels = np.repeat(np.arange(3), [50, 30, 20])
    keep = datasets.stratified_subset(labels, 10, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[keep]), [5, 3, 2])
    assert np.all(np.diff(keep) > 0)
    # Remainders go to the largest fractional shares: 7 * (0.5, 0.3, 0.2) = (3.5, 2.1, 1.4) -> (4, 2, 1).
    np.testing.assert_array_equal(np.bincount(labels[datasets.stratified_subset(labels, 7)]), [4, 2, 1])
    assert len(datasets.stratified_subset(labels, 500)) == 100
    canvas = datasets.load("digits-canvas", image_size=32)
    datasets.subset_train(canvas, 100, seed=0)
    assert len(canvas.x_train) == len(canvas.object_masks_train) == len(canvas.boxes_train) == 100
    with pytest.raises(ValueError, match="count=0"):
        datasets.stratified_subset(labels, 0)


def test_sources_in_order_and_one_clear_error_naming_all_three(fake, tmp_path, monkeypatch):
    root, archive = fake
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv(cifar10.ENV_VAR, str(archive))
    # data_dir first, then the environment variable.
    assert cifar10.find_source(root) == ("folder", str(root))
    assert cifar10.find_source() == ("archive", str(archive))
    data = datasets.load_cifar10(cache_dir=tmp_path)
    assert data.source == f"archive:{archive}"
    # Then Keras' own copy: used when it is in Keras' cache, downloaded only when allowed.
    monkeypatch.delenv(cifar10.ENV_VAR)
    assert cifar10.find_source(download=True) == ("keras", None)
    with pytest.raises(ValueError) as error:
        cifar10.find_source()
    message = str(error.value)
    for named in ("data_dir", cifar10.ENV_VAR, "Keras' cache", "download=True", "--download"):
        assert named in message
    with pytest.raises(ValueError, match="CIFAR-10 not found"):
        datasets.load("cifar10")
    os.makedirs(tmp_path / "keras_home" / "datasets")
    (tmp_path / "keras_home" / "datasets" / cifar10.KERAS_ARCHIVE).write_bytes(b"")
    assert cifar10.find_source() == ("keras", None)
    # An environment variable without the data falls through; a data_dir without it is an error.
    monkeypatch.setenv(cifar10.ENV_VAR, str(tmp_path / "nothing"))
    assert cifar10.find_source() == ("keras", None)
    with pytest.raises(ValueError, match="data_dir="):
        cifar10.find_source(tmp_path / "nothing")


def test_bad_arguments_and_bad_folders_are_refused(fake, tmp_path):
    root, _ = fake
    with pytest.raises(ValueError, match="validation_fraction=1.5"):
        datasets.load_cifar10(root, validation_fraction=1.5)
    with pytest.raises(ValueError, match="max_train=0"):
        datasets.load_cifar10(root, max_train=0)
    with pytest.raises(ValueError, match="channels=2"):
        datasets.load_cifar10(root, channels=2)
    bad = tmp_path / "bad"
    for split in ("train", "test"):
        os.makedirs(bad / split / "cats")
    with pytest.raises(ValueError, match="class folders must be"):
        datasets.load_cifar10(bad, cache=False)


def test_grey_resized_and_channels_first(fake, tmp_path):
    root, _ = fake
    data = datasets.load_cifar10(root, image_size=16, channels=1, data_format="channels_first", cache_dir=tmp_path)
    assert data.x_train.shape[1:] == (1, 16, 16) and data.x_test.dtype == np.float32


@pytest.mark.skipif(REAL is None, reason="the real CIFAR-10 archive ($KERAS_EDDA_DATA or ../shared/datasets) "
                                         "is absent")
def test_the_real_archive():
    # Keras' cache folder, as a user's run: decoded once per machine (about 20-40 s), then read back.
    data = datasets.load("cifar10", data_dir=REAL, validation_fraction=0.1, split_seed=0)
    assert data.split_info() == {"train": 45000, "validation": 5000, "test": 10000, "split_seed": 0,
                                 "test_fraction": None, "validation_fraction": 0.1}
    np.testing.assert_array_equal(np.bincount(data.y_test), [1000] * 10)
    np.testing.assert_array_equal(np.bincount(data.y_val), [500] * 10)
    means = data.x_test.reshape(-1, 3).astype("float64").mean(0)
    np.testing.assert_allclose(means, [0.4942, 0.4851, 0.4504], atol=0.01)  # CIFAR-10's test-set means
    again = datasets.load("cifar10", data_dir=REAL, validation_fraction=0.1, split_seed=0)
    assert again.cached
    np.testing.assert_array_equal(again.y_train[:100], data.y_train[:100])
