"""Configs of the things a user can pass as objects: fills and explainers.

A layer that saves to `.keras` must write its fill and explainer so that
they load again. Names, numbers and Keras-registered callables can be; an
unregistered callable cannot, and is refused when the config is written,
with the way to register it, instead of being written as `null`.
"""

import numbers
import types

import keras


def is_registered(value):
    """Whether `keras.saving` can load `value` again from its config.

    A function must be registered itself; an object's class must be
    registered and have `get_config`.
    """
    if isinstance(value, types.FunctionType):
        return keras.saving.get_registered_object(keras.saving.get_registered_name(value)) is value
    cls = type(value)
    return (keras.saving.get_registered_object(keras.saving.get_registered_name(cls)) is cls
            and hasattr(value, "get_config"))


def serialize_callable(value, argument):
    """A name or number as it is; a registered callable as its Keras config.

    A fill name that reads a file (`"inpainter:path.keras"`) is written
    pinned to its content (`keras_edda.ops.fills.pin`).

    Args:
        value: what the user passed.
        argument: the argument's name, for the error message.

    Returns:
        A JSON-ready value.

    Raises:
        ValueError: for a callable that `keras.saving` cannot load again.
    """
    if isinstance(value, str):
        # "inpainter:path.keras" is written pinned to the file's weights (refused on load if replaced).
        from keras_edda.ops import fills

        return fills.pin(value)
    if value is None or isinstance(value, numbers.Real):
        return value
    if callable(value) and is_registered(value):
        return keras.saving.serialize_keras_object(value)
    raise ValueError(
        f"`{argument}` cannot be saved: {value!r} is not registered with Keras. Decorate it with "
        "`@keras.saving.register_keras_serializable(package=...)` (a class also needs `get_config`), "
        f"or pass a registered name. Received: {argument}={value!r}")


def deserialize_callable(config):
    """Inverse of `serialize_callable`."""
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config
