"""Reading tensors from inside a model call, without rebuilding the model.

Building `keras.Model(model.inputs, layer.output)` is what breaks Grad-CAM on
nested and Sequential models ("Graph disconnected"). Instead, for the length
of a `with Capture(...)` block, the wanted layers' `call` (or `activation`)
is wrapped so that it records what flows through it. The user's layers are
left exactly as they were when the block ends, and a wrapper only records for
captures opened on its own thread, so a model traced elsewhere at the same
time (another `tf.data` worker, a `fit` step) is untouched.
"""

import functools
import threading

import keras

_local = threading.local()
_install_lock = threading.Lock()
_installed = {}  # (id(obj), attr) -> [refcount, had_instance_attr, previous]


def _active_captures():
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _make_wrapper(obj, attr, original):
    if attr == "call":

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            outputs = original(*args, **kwargs)
            for capture in _active_captures():
                capture._record(obj, attr, args[0] if args else None, outputs)
            return outputs

    else:

        @functools.wraps(original)
        def wrapper(inputs, *args, **kwargs):
            for capture in _active_captures():
                capture._record(obj, attr, inputs, None)
            return original(inputs, *args, **kwargs)

    return wrapper


def _install(obj, attr):
    key = (id(obj), attr)
    with _install_lock:
        if key in _installed:
            _installed[key][0] += 1
            return
        had_instance_attr = attr in obj.__dict__
        previous = obj.__dict__.get(attr)
        original = getattr(obj, attr)
        object.__setattr__(obj, attr, _make_wrapper(obj, attr, original))
        _installed[key] = [1, had_instance_attr, previous]


def _uninstall(obj, attr):
    key = (id(obj), attr)
    with _install_lock:
        entry = _installed[key]
        entry[0] -= 1
        if entry[0]:
            return
        del _installed[key]
        _, had_instance_attr, previous = entry
        if had_instance_attr:
            object.__setattr__(obj, attr, previous)
        else:
            object.__delattr__(obj, attr)


class Tap:
    """One place to read from: a layer's output, or the input of its activation.

    Args:
        layer: the `keras.layers.Layer` to read from.
        read: `"output"` (what `layer.call` returns), `"activation_input"`
            (what the layer's `activation` function receives: the logits of a
            `Dense(..., activation="softmax")`), or `"call_input"` (the first
            argument of `layer.call`: the logits entering a `Softmax` layer).
    """

    def __init__(self, layer, read="output"):
        self.layer = layer
        self.read = read
        self.attr = "activation" if read == "activation_input" else "call"


class Capture:
    """Context manager that records tensors at `taps` during a model call.

    Example:

    ```python
    tap = Tap(model.get_layer("conv"))
    with Capture([tap]) as capture:
        outputs = model(images, training=False)
    activations = capture[tap]
    ```

    With `record_all=True` it also records the output of every layer in
    `layers` in call order (`capture.calls`), which is how the last spatial
    layer and the output layer are found on any kind of model.
    """

    def __init__(self, taps=(), record_all=None):
        self.taps = list(taps)
        self.record_all = list(record_all or ())
        self.values = {}
        self.calls = []

    def __enter__(self):
        self._hooks = {(tap.layer, tap.attr) for tap in self.taps}
        self._hooks.update((layer, "call") for layer in self.record_all)
        self._hooks = list({(id(o), a): (o, a) for o, a in self._hooks}.values())
        for obj, attr in self._hooks:
            _install(obj, attr)
        _active_captures().append(self)
        return self

    def __exit__(self, *exc_info):
        _active_captures().remove(self)
        for obj, attr in self._hooks:
            _uninstall(obj, attr)
        return False

    def _record(self, obj, attr, inputs, outputs):
        for tap in self.taps:
            if tap.layer is obj and tap.attr == attr:
                self.values[id(tap)] = outputs if tap.read == "output" else inputs
        if attr == "call" and any(obj is layer for layer in self.record_all):
            self.calls.append((obj, outputs))

    def __getitem__(self, tap):
        if id(tap) not in self.values:
            raise RuntimeError(
                f"Layer '{tap.layer.name}' was not called while the model ran, "
                "so its tensor could not be read."
            )
        return self.values[id(tap)]


def leaf_layers(model, prefix=""):
    """Returns `(path, layer)` for every non-model layer, nested models opened.

    Paths join names with "/", e.g. `"mobilenetv2_1.00_96/Conv_1"`.
    """
    found = []
    # A functional model's `operations` also hold `keras.ops` calls such as a
    # final `keras.ops.softmax`, which `layers` leaves out.
    children = getattr(model, "operations", None) or getattr(model, "layers", ())
    for layer in children:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            found.extend(leaf_layers(layer, prefix=path + "/"))
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append((path, layer))
    return found


def find_layer(model, layer):
    """Resolves a layer given as an object, a name or a nested path.

    Args:
        model: the `keras.Model` to search.
        layer: a `keras.layers.Layer` of the model, a name, a path such as
            `"backbone/Conv_1"`, or a tuple `("backbone", "Conv_1")`.

    Returns:
        `(path, layer)`.
    """
    if isinstance(layer, keras.layers.Layer):
        for path, candidate in leaf_layers(model):
            if candidate is layer:
                return path, candidate
        for candidate in getattr(model, "layers", ()):
            if candidate is layer:
                return candidate.name, candidate
        raise ValueError(
            f"`layer` is not a layer of model '{model.name}'. "
            f"Received: layer={layer.name!r}"
        )
    if isinstance(layer, (tuple, list)):
        parts = [str(part) for part in layer]
    elif isinstance(layer, str):
        parts = layer.split("/")
    else:
        raise TypeError(
            "`layer` must be a layer name, a nested path like 'backbone/conv', "
            f"a tuple of names or a Layer. Received: layer={layer!r}"
        )
    current = model
    for depth, part in enumerate(parts):
        children = {child.name: child for child in getattr(current, "layers", ())}
        if part not in children:
            # A unique leaf with that name anywhere in the nesting also counts.
            if len(parts) == 1:
                matches = [
                    (path, leaf)
                    for path, leaf in leaf_layers(model)
                    if leaf.name == part
                ]
                if len(matches) == 1:
                    return matches[0]
            available = [path for path, _ in leaf_layers(model)]
            raise ValueError(
                f"`layer` names no layer of model '{model.name}'. "
                f"Received: layer={layer!r}. Available layers: {available}"
            )
        current = children[part]
    return "/".join(parts), current
