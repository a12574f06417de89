"""Argument checks shared by every public entry point.

Each check raises a `ValueError` or `TypeError` that names the argument and
echoes what was received, so a user sees at once which input is wrong.
"""

import numbers
import os
import tempfile

import keras
import tensorflow as tf


def standardize_data_format(data_format):
    """Returns `"channels_last"` or `"channels_first"`.

    `None` means `keras.config.image_data_format()`.
    """
    if data_format is None:
        return keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


def check_images(images, name="images"):
    """Converts `images` to a float tensor of rank 4 and checks it.

    Args:
        images: array-like of shape (N, H, W, C) or (N, C, H, W).
        name: the argument's name, used in error messages.

    Returns:
        A float tensor. float16/bfloat16/float64 are kept as they are;
        the model decides how to cast.
    """
    if not tf.is_tensor(images):
        try:
            images = tf.convert_to_tensor(images)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"`{name}` must be a float tensor or array of shape "
                f"(N, H, W, C). Received: {name} of type {type(images)}"
            ) from error
    if not images.dtype.is_floating:
        raise TypeError(
            f"`{name}` must have a floating dtype (scale integer images to "
            f"float first). Received: {name}.dtype={images.dtype.name}"
        )
    if images.shape.rank != 4:
        raise ValueError(
            f"`{name}` must be a batch of images of rank 4, (N, H, W, C) or "
            f"(N, C, H, W). Received: {name}.shape={images.shape}"
        )
    if images.shape[0] == 0:
        raise ValueError(
            f"`{name}` is an empty batch: there is nothing to explain or score. "
            f"Received: {name}.shape={images.shape}"
        )
    return images


def model_image_shape(model):
    """The shape of one image the model takes, `None` for unknown sizes.

    Returns:
        A tuple (H, W, C) or (C, H, W) with `None` where the model accepts
        any size, or `None` when the model has no single known image input
        (a subclassed model not built yet, several inputs).
    """
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1 or len(inputs[0].shape) != 4:
        return None
    return tuple(inputs[0].shape[1:])


def check_image_shape(images, model, name="images"):
    """Raises a `ValueError` when `images` do not fit the model's input.

    Only the sizes the model fixes are compared: a model built for 16x16
    images would otherwise be scored on 8x8 ones without a word (Keras
    only warns).
    """
    expected = model_image_shape(model)
    if expected is None:
        return images
    received = tuple(images.shape[1:])
    if any(e is not None and r is not None and e != r for e, r in zip(expected, received)):
        raise ValueError(
            f"`{name}` must fit the input of model '{model.name}', one image of shape "
            f"{expected}. Received: {name}.shape={tuple(images.shape)}")
    return images


def check_writable_folder(path, name):
    """Creates the folder `path` if needed and checks that files can be
    written in it, so that a bad path fails before any work is done."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(
            f"Cannot write to `{name}`: {error.strerror or error}. Received: {name}={os.fspath(path)!r}"
        ) from None
    return path


def check_positive_int(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < 1
    ):
        raise ValueError(
            f"`{name}` must be a positive integer"
            f"{' or None' if allow_none else ''}. Received: {name}={value!r}"
        )
    return int(value)


def check_seed(seed, name="seed", allow_none=True):
    """An int seed (not a bool), or None where `allow_none`: a `TypeError` naming the value otherwise."""
    if seed is None and allow_none:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"`{name}` must be an int{' or None' if allow_none else ''}. Received: {name}={seed!r}")
    return int(seed)


def check_fraction(value, name, low_open=True, high_open=True):
    """Checks that `value` is a float in the interval (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a float. Received: {name}={value!r}")
    too_low = value <= 0 if low_open else value < 0
    too_high = value >= 1 if high_open else value > 1
    if too_low or too_high:
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(
            f"`{name}` must lie in {interval}. Received: {name}={value!r}"
        )
    return float(value)


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_model(model, name="model"):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`{name}` must be a `keras.Model`. "
            f"Received: {name} of type {type(model).__name__}"
        )
    return model


def assert_all_finite(tensor, name):
    """Raises if `tensor` holds NaN or Inf.

    Eagerly this is a `ValueError`; inside a graph it is a runtime
    `InvalidArgumentError` carrying the same message.
    """
    message = f"`{name}` contains NaN or Inf values."
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(tf.math.is_finite(tensor))):
            raise ValueError(f"{message} Received: {name} with non-finite entries")
        return tensor
    return tf.debugging.assert_all_finite(tensor, message)


def check_class_ids(labels, rows, rows_argument, per="row", integer=True):
    """Checks labels as class ids (N,), one per row of another argument.

    Args:
        labels: the labels (converted to a tensor).
        rows: the tensor whose leading axis the labels follow.
        rows_argument: that argument's name, for the messages.
        per: what one row is, for the message (`"image"`, `"sample"`, ...).
        integer: also require an integer dtype.

    Returns:
        The labels as a tensor (dtype unchanged).
    """
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank != 1 or (integer and not labels.dtype.is_integer):
        raise ValueError(
            "`labels` must be int class ids of shape (N,). "
            f"Received: labels.shape={labels.shape}, labels.dtype={labels.dtype.name}")
    if None not in (labels.shape[0], rows.shape[0]) and labels.shape[0] != rows.shape[0]:
        raise ValueError(
            f"`labels` must have one entry per {per} of `{rows_argument}`. "
            f"Received: labels.shape={labels.shape}, {rows_argument}.shape={rows.shape}")
    return labels
