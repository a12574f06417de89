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


def fill_config(fill):
    """A fill as it goes into a config: a name or number as it is, a registered callable as its Keras config.

    The one way every layer and model of keras_edda writes its fill (the
    inverse is `deserialize_callable`).
    """
    return serialize_callable(fill, "fill")


def explainer_config(explainer, explainer_kwargs=None):
    """`(explainer, explainer_kwargs)` as they go into a config.

    The one way every layer and model of keras_edda writes its explainer: a
    registered name stays a name; an `Explainer` instance of a registered
    class (`keras_edda.explainers.register`) becomes its name and settings;
    a plain function `fn(images, targets) -> maps` becomes its Keras config
    (it must be registered with `keras.saving.register_keras_serializable`).
    `deserialize_callable` reads the first element back.

    Raises:
        ValueError: for an explainer that could not be loaded again.
    """
    from keras_edda import explainers as explainers_lib

    if isinstance(explainer, explainers_lib.FunctionExplainer):
        explainer = explainer.fn
    if isinstance(explainer, explainers_lib.Explainer):
        name = explainers_lib.name_of(explainer)
        if explainers_lib.EXPLAINERS.get(name) is not type(explainer):
            raise ValueError(
                f"`explainer` cannot be saved: {type(explainer).__name__} is not registered. Decorate the "
                "class with `@keras_edda.explainers.register(\"name\")`. "
                f"Received: explainer={explainer!r}")
        settings = explainer.get_config()
        settings.pop("data_format", None)
        return name, settings
    kwargs = dict(explainer_kwargs or {})
    if isinstance(kwargs.get("fill"), str):
        from keras_edda.ops import fills

        kwargs["fill"] = fills.pin(kwargs["fill"])  # a file-reading fill is saved pinned to its content
    if callable(explainer) and not isinstance(explainer, str):
        return serialize_callable(explainer, "explainer"), kwargs
    return explainer, kwargs
