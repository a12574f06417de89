"""CIFAR-10 (Krizhevsky, 2009) as a `keras_edda.datasets.Dataset`, offline first.

The images come from the first of these that holds them:

1. `data_dir`: a folder with `train/<class>/*.jpg|png` and `test/<class>/...`
   (the layout of the JPEG release), the `.tar.gz` of such a folder, or a
   folder holding `cifar10-jpg.tar.gz`;
2. the environment variable `KERAS_EDDA_DATA` (the same three forms);
3. `keras.datasets.cifar10.load_data()`: Keras' own copy when it is already
   in Keras' cache folder, or a download when `download=True` (never tried
   otherwise, so that an offline machine gets an error at once instead of a
   hanging download).

The first load decodes the images once and keeps them as uint8 arrays in a
`.npz` file in Keras' cache folder (`$KERAS_HOME/datasets`, by default
`~/.keras/datasets`); later loads read that file (about a second).

The official split is kept: 50,000 training and 10,000 test images. The
validation split is carved from the training images, stratified by class,
with the split seed (`keras_edda.datasets.split_indices`). Classes are in
Keras' label order.
"""

import hashlib
import io
import os
import socket
import tarfile

import numpy as np

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ENV_VAR = "KERAS_EDDA_DATA"
ARCHIVE_NAME = "cifar10-jpg.tar.gz"
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# Keras' own copy: the archive `keras.datasets.cifar10.load_data()` downloads into its cache (Keras 3's
# `get_file` downloads again unless this file is there).
KERAS_ARCHIVE = "cifar-10-batches-py-target_archive"


def keras_cache_dir():
    """Keras' dataset cache folder: `$KERAS_HOME/datasets` (default `~/.keras/datasets`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def _source_of(path):
    """`("folder", path)` or `("archive", path)` for a path given by the user, else `None`."""
    path = os.path.expanduser(str(path))
    if os.path.isfile(path) and path.endswith((".tar.gz", ".tgz", ".tar")):
        return "archive", path
    if os.path.isdir(path):
        if all(os.path.isdir(os.path.join(path, split)) for split in SPLITS):
            return "folder", path
        if os.path.isfile(os.path.join(path, ARCHIVE_NAME)):
            return "archive", os.path.join(path, ARCHIVE_NAME)
    return None


def find_source(data_dir=None, download=False, environ=None):
    """Where the images will come from: `(kind, path)`.

    Args:
        data_dir: a folder with `train/` and `test/` class folders, its
            `.tar.gz`, or a folder holding `cifar10-jpg.tar.gz`; `None` to
            look further.
        download: allow `keras.datasets.cifar10.load_data()` to download.
        environ: the environment (`None`: `os.environ`).

    Returns:
        `("folder", path)`, `("archive", path)` or `("keras", None)`.

    Raises:
        ValueError: `data_dir` given but holding no CIFAR-10, or no source
            at all; the message names the three places looked in.
    """
    environ = os.environ if environ is None else environ
    if data_dir is not None:
        found = _source_of(data_dir)
        if found is None:
            raise ValueError(
                "`data_dir` must be a folder with train/ and test/ class folders, the .tar.gz of one, or a "
                f"folder holding {ARCHIVE_NAME}. Received: data_dir={str(data_dir)!r}")
        return found
    if environ.get(ENV_VAR):
        found = _source_of(environ[ENV_VAR])
        if found is not None:
            return found
    if download or os.path.isfile(os.path.join(keras_cache_dir(), KERAS_ARCHIVE)):
        return "keras", None
    raise ValueError(
        "CIFAR-10 not found. Looked in (1) data_dir= / --data-dir (None given), (2) the environment "
        f"variable {ENV_VAR} ({environ.get(ENV_VAR)!r}: no train/ and test/ class folders nor "
        f"{ARCHIVE_NAME} there), (3) Keras' cache {os.path.join(keras_cache_dir(), KERAS_ARCHIVE)!r} (absent). "
        "Give the folder or archive with data_dir= / --data-dir, set "
        f"{ENV_VAR}, or allow keras.datasets.cifar10.load_data() to download it with download=True / "
        "--download. Received: data_dir=None, download=False")


def _split_and_class(name):
    """`(split, class)` of an image path inside the layout, else `None`."""
    parts = name.replace("\\", "/").split("/")
    if len(parts) < 3 or not parts[-1].lower().endswith(IMAGE_SUFFIXES):
        return None
    split, label = parts[-3], parts[-2]
    if split not in SPLITS:
        return None
    return split, label


def _decode(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), "uint8")


def _check_classes(found, where):
    if tuple(sorted(found)) != CLASS_NAMES:
        raise ValueError(
            f"The CIFAR-10 class folders must be {list(CLASS_NAMES)}. Received: {sorted(found)} in {where!r}")


def _read_entries(kind, path):
    """`{split: [(class, file name, path or bytes)]}` of a folder or archive."""
    entries = {split: [] for split in SPLITS}
    if kind == "folder":
        for split in SPLITS:
            root = os.path.join(path, split)
            for label in sorted(os.listdir(root)):
                folder = os.path.join(root, label)
                if not os.path.isdir(folder):
                    continue
                for file in sorted(os.listdir(folder)):
                    if file.lower().endswith(IMAGE_SUFFIXES):
                        entries[split].append((label, file, os.path.join(folder, file)))
        return entries
    # Read while streaming: a gzip stream cannot seek back, so reading members later costs O(N^2).
    with tarfile.open(path, "r|*") as archive:
        for member in archive:
            found = member.isfile() and _split_and_class(member.name)
            if found:
                entries[found[0]].append((found[1], member.name, archive.extractfile(member).read()))
    return entries


def _decode_source(kind, path):
    """uint8 images and int32 labels of both splits, in (class, file name) order."""
    entries = _read_entries(kind, path)
    index = {name: label for label, name in enumerate(CLASS_NAMES)}
    arrays = {}
    for split in SPLITS:
        items = sorted(entries[split], key=lambda item: (item[0], item[1]))
        _check_classes({label for label, _, _ in items}, path)
        images = np.empty((len(items), 32, 32, 3), "uint8")
        for row, (_, name, handle) in enumerate(items):
            if isinstance(handle, str):
                with open(handle, "rb") as f:
                    handle = f.read()
            try:
                image = _decode(handle)
            except Exception as error:  # Pillow raises many kinds for a bad file
                raise ValueError(f"Cannot read image {name!r} in {path!r}: {error}") from None
            if image.shape != (32, 32, 3):
                raise ValueError(f"CIFAR-10 images are 32x32. Received: {name!r} of shape {image.shape}")
            images[row] = image
        arrays[split] = images, np.asarray([index[label] for label, _, _ in items], "int32")
    return arrays


def _load_keras(download):
    import keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)  # an unreachable host fails instead of hanging
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # urllib / Keras raise many kinds offline
        raise ValueError(
            "keras.datasets.cifar10.load_data() failed (offline?): "
            f"{str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}. "
            f"Give the images with data_dir= / --data-dir or {ENV_VAR}. Received: download={download}") from None
    finally:
        socket.setdefaulttimeout(previous)
    if x_train.shape[1] == 3:  # Keras' layout follows its global data_format
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    return {"train": (x_train, y_train.reshape(-1).astype("int32")),
            "test": (x_test, y_test.reshape(-1).astype("int32"))}


def cache_path(kind, path, cache_dir=None):
    """The `.npz` file that caches the decoded images of a source.

    The name carries a hash of the source's path, size and modification
    time, so another archive (or an updated folder) gets a file of its own.
    """
    if kind == "keras":
        key = "keras"
    else:
        stats = [os.path.abspath(path)]
        roots = [path] if kind == "archive" else [os.path.join(path, s) for s in SPLITS]
        for root in roots:
            stat = os.stat(root)
            stats += [stat.st_size if kind == "archive" else len(os.listdir(root)), stat.st_mtime_ns]
        key = repr(stats)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir or keras_cache_dir(), f"keras_edda_cifar10_{digest}.npz")


def load_arrays(data_dir=None, download=False, cache_dir=None, cache=True, environ=None):
    """The official split as uint8 arrays, decoded once and then read from the cache.

    Args:
        data_dir: see `find_source`.
        download: let `keras.datasets.cifar10.load_data()` download.
        cache_dir: folder of the cache file (`None`: Keras' cache folder).
        cache: read and write the cache file.
        environ: the environment (`None`: `os.environ`).

    Returns:
        `((x_train, y_train), (x_test, y_test), info)`: images uint8
        (N, 32, 32, 3), labels int32 (N,), and `info` a dict with the
        `"source"` (`"folder:PATH"`, `"archive:PATH"` or `"keras"`) and
        `"cached"` (whether the images came from the cache file).
    """
    kind, path = find_source(data_dir, download, environ)
    source = kind if kind == "keras" else f"{kind}:{path}"
    file = cache_path(kind, path, cache_dir) if cache else None
    if file is not None and os.path.isfile(file):
        try:
            with np.load(file) as stored:
                arrays = {s: (stored[f"x_{s}"], stored[f"y_{s}"]) for s in SPLITS}
            return arrays["train"], arrays["test"], {"source": source, "cached": True, "cache_file": file}
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is decoded again and rewritten
    arrays = _load_keras(download) if kind == "keras" else _decode_source(kind, path)
    if file is not None:
        try:
            os.makedirs(os.path.dirname(file), exist_ok=True)
            temporary = f"{file}.{os.getpid()}.tmp.npz"
            np.savez(temporary, **{f"{p}_{s}": arrays[s][i] for s in SPLITS for i, p in enumerate("xy")})
            os.replace(temporary, file)
        except OSError:
            file = None  # a read-only cache folder: decode every time
    return arrays["train"], arrays["test"], {"source": source, "cached": False, "cache_file": file}
