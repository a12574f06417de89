"""Training methods by name: what `keras-edda compare --methods` reads."""

METHODS = {}


def register(name):
    """Class decorator: adds a method layer to the registry under `name`.

    Args:
        name: the name `keras-edda compare --methods` and `get` know it by.

    Returns:
        The decorator; it returns the class unchanged.

    Example:

    ```python
    @keras_edda.methods.register("my_method")
    class MyMethod(keras_edda.methods.MethodLayer):
        ...
    ```
    """
    if not isinstance(name, str) or not name or name == "none":
        raise ValueError(f"`name` must be a non-empty string other than 'none'. Received: name={name!r}")

    def decorator(cls):
        METHODS[name] = cls
        cls.method_name = name
        return cls

    return decorator


def get(name):
    """The method layer class registered as `name`.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in METHODS:
        raise ValueError(f"Unknown method. Expected one of {sorted(METHODS)}. Received: method={name!r}")
    return METHODS[name]
