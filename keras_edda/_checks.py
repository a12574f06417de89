"""Argument checks shared by every public entry point.

Each check raises a `ValueError` or `TypeError` that names the argument and
echoes what was received, so a user sees at once which input is wrong.
"""

import numbers

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
    return images


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
