"""Explainers by name: an open registry, and plain functions as explainers.

Everywhere keras_edda accepts an explainer (the method layers, the map
functions, the metrics suite, the callback, `keras-edda compare`), it accepts
a registered name, an `Explainer` instance, or a plain callable
`fn(images, targets) -> maps`. `register` adds a user's class, which then
also appears in the command line's choices.
"""

from keras_edda.explainers.base import Explainer

EXPLAINERS = {}


def register(name):
    """Class decorator: adds an `Explainer` subclass to the registry.

    Args:
        name: the name it is known by (`explainers.get(name, model)`,
            `compare --explainer name`). Registering a name again replaces
            the earlier class.

    Returns:
        The decorator; it returns the class unchanged.

    Example:

    ```python
    @keras_edda.explainers.register("my_gradients")
    class MyGradients(keras_edda.explainers.Explainer):
        def explain_batch(self, images, targets):
            ...
    ```
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")

    def decorator(cls):
        if not (isinstance(cls, type) and issubclass(cls, Explainer)):
            raise TypeError(
                "`register` decorates subclasses of keras_edda.explainers.Explainer. "
                f"Received: {cls!r}")
        EXPLAINERS[name] = cls
        return cls

    return decorator


class FunctionExplainer(Explainer):
    """A plain function `fn(images, targets) -> maps` as an `Explainer`.

    The function gets float32 images in the model's layout and the targets in
    standard form (`None`, int32 ids (N,) or float32 weights (N, C)); it
    must return maps of one channel, (N, H, W, 1) (or (N, 1, H, W) for
    channels_first; (N, H, W) is accepted too), with TensorFlow ops so that
    it runs inside `tf.function`.

    Args:
        model: the model the maps are of.
        fn: the function.
        batch_size: unused by the wrapper (the function bounds its own
            memory); kept for the common signature.
        use_logits: see `Explainer`.
        data_format: layout of the images.

    Example:

    ```python
    def edges(images, targets):
        return tf.image.sobel_edges(images)[..., :1, 0] ** 2
    explainer = keras_edda.explainers.get(edges, model)
    ```
    """

    def __init__(self, model, fn, batch_size=None, use_logits=True, data_format=None):
        if not callable(fn):
            raise TypeError(f"`fn` must be callable. Received: fn={fn!r}")
        self.fn = fn
        super().__init__(model, batch_size, use_logits, data_format)

    @property
    def registered_name(self):
        return getattr(self.fn, "__name__", "function")

    def explain_batch(self, images, targets):
        import tensorflow as tf

        from keras_edda.ops.layout import to_channels_last

        maps = tf.convert_to_tensor(self.fn(images, targets))
        if maps.shape.rank == 3:
            maps = maps[..., None] if self.data_format == "channels_last" else maps[:, None]
        if maps.shape.rank != 4:
            raise ValueError(
                "An explainer function must return maps (N, H, W, 1). "
                f"Received: maps.shape={maps.shape} from {self.registered_name}")
        return to_channels_last(tf.cast(maps, tf.float32), self.data_format)


def _is_plain_callable(explainer):
    return callable(explainer) and not isinstance(explainer, (str, Explainer, type))


def name_of(explainer):
    """The name an explainer is known by: its registry name or function name.

    Args:
        explainer: a registered name, an `Explainer` instance (registered or
            not: an unregistered class gives its class name) or a plain
            callable (its `__name__`).

    Returns:
        A string.

    Raises:
        ValueError: for a string that is not a registered name.
        TypeError: for anything else that is not an explainer.
    """
    if isinstance(explainer, FunctionExplainer):
        return explainer.registered_name
    if isinstance(explainer, Explainer):
        for name, cls in EXPLAINERS.items():
            if type(explainer) is cls:
                return name
        return type(explainer).__name__
    if _is_plain_callable(explainer):
        return getattr(explainer, "__name__", type(explainer).__name__)
    if isinstance(explainer, str):
        if explainer not in EXPLAINERS:
            raise ValueError(
                f"Unknown explainer. Expected one of {sorted(EXPLAINERS)}, an "
                "Explainer instance or a function `fn(images, targets) -> maps`. "
                f"Received: explainer={explainer!r}")
        return explainer
    raise TypeError(
        "An explainer must be a registered name, an Explainer instance or a "
        f"function `fn(images, targets) -> maps`. Received: explainer={explainer!r}")


def get(explainer, model, **kwargs):
    """Returns an `Explainer` of `model`.

    Args:
        explainer: a registered name (`"grad_cam"`, `"integrated_gradients"`,
            `"occlusion"`, `"saliency"`, `"random"`, ... see `EXPLAINERS`),
            an `Explainer` instance (returned as it is), or a plain callable
            `fn(images, targets) -> maps` (wrapped in `FunctionExplainer`).
        model: the `keras.Model` to explain.
        **kwargs: passed to the explainer's constructor.

    Returns:
        An `Explainer`.

    Example:

    ```python
    explainer = keras_edda.explainers.get("integrated_gradients", model, steps=16)
    ```
    """
    if isinstance(explainer, Explainer):
        return explainer
    if _is_plain_callable(explainer):
        return FunctionExplainer(model, explainer, **kwargs)
    return EXPLAINERS[name_of(explainer)](model, **kwargs)
