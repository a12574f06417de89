"""The learned inpainter as a fill: x * (1 - m) + G(x, m) * m."""

import hashlib
import os

import keras
import numpy as np
import tensorflow as tf

from keras_edda import _checks
from keras_edda.ops import fills
from keras_edda.ops.batching import map_rows
from keras_edda.ops.layout import from_channels_last, to_channels_last


def _check_network(model):
    _checks.check_model(model, "model")
    inputs = getattr(model, "inputs", None)
    signature = [tuple(t.shape) for t in inputs] if inputs else None
    if (not signature or len(signature) != 2 or len(signature[0]) != 4 or len(signature[1]) != 4
            or signature[1][-1] != 1 or signature[0][1:3] != signature[1][1:3]):
        raise ValueError(
            "The inpainting model must take two inputs, [images (N, H, W, C), mask (N, H, W, 1)], "
            "channels_last, as `keras_edda.inpainting.build_inpainter` builds. "
            f"Received: model '{model.name}' with inputs {signature}")
    output_shape = tuple(model.outputs[0].shape)
    if output_shape[1:] != signature[0][1:]:
        raise ValueError(
            "The inpainting model must return images of its input's shape. "
            f"Received: model '{model.name}' with inputs {signature} and output {output_shape}")
    return model


@keras.saving.register_keras_serializable(package="keras_edda")
class Inpainter(keras.layers.Layer):
    """A learned inpainting network as a fill: `fill(images, mask) -> images`.

    Returns `images * (1 - mask) + G(images, mask) * mask`: the pixels where
    the mask is 1 come from the network, the others stay. It is a fill like
    `"blur"` or `"inpaint"`, accepted wherever a fill is (Occlusion as SP-G,
    Lime as LIME-G, MeaningfulPerturbation as MP-G, the EDDA settings, the
    metrics), and runs in the graph on whole batches. It is also a Keras
    layer: a model or layer that holds it saves and loads it (weights
    included) in `.keras` files. `fill="inpainter:path.keras"` loads one;
    configs store that name pinned to the network's weights
    (`"inpainter:path.keras#sha256=..."`, see `weights_digest`), and loading
    a config whose file was replaced since is refused.

    Args:
        model: a network with inputs `[images (N, H, W, C), mask (N, H, W, 1)]`
            (channels_last) returning images, e.g. from `train_inpainter`.
        batch_size: most images per network call; `None`: the whole batch.
            Callers such as Occlusion already chunk by their own
            `batch_size`.
        data_format: layout of the images and masks it is called with.
        **kwargs: `keras.layers.Layer` arguments (`name`, ...).

    Call arguments:
        images: (N, H, W, C) (or (N, C, H, W)) float images.
        mask: one-channel mask broadcastable to the images, 1 = replace.

    Returns:
        Images of the input's shape and dtype.

    Example:

    ```python
    fill = keras_edda.inpainting.Inpainter(keras.saving.load_model("inpainter.keras"))
    maps = keras_edda.explainers.Occlusion(classifier, patch_size=8, stride=4, fill=fill)(images)
    ```
    """

    def __init__(self, model, batch_size=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.model = _check_network(model)
        self.batch_size = _checks.check_positive_int(batch_size, "batch_size", allow_none=True)
        self.data_format = _checks.standardize_data_format(data_format)
        self.image_shape = tuple(model.inputs[0].shape[1:])
        self.__name__ = f"Inpainter({model.name})"

    @classmethod
    def load(cls, path, batch_size=None, data_format=None, sha256=None):
        """An `Inpainter` of the network saved at `path` (a `.keras` file).

        Args:
            path: the `.keras` file.
            batch_size, data_format: as for the constructor.
            sha256: the expected `weights_digest`, if any: a network with
                other weights (the file was replaced) is refused.

        Returns:
            An `Inpainter` whose `config_name` is
            `"inpainter:<path>#sha256=<digest>"`.
        """
        if not isinstance(path, str) or not os.path.isfile(path):
            raise ValueError(f"No inpainter model file at this path. Received: path={path!r}")
        model = keras.saving.load_model(path, compile=False)
        inpainter = model if isinstance(model, Inpainter) else cls(
            model, batch_size=batch_size, data_format=data_format)
        digest = inpainter.weights_digest()
        if sha256 is not None and digest != sha256:
            raise ValueError(
                "The inpainter file is not the one this fill was saved with: its weights' SHA-256 is "
                f"{digest}, the saved fill names {sha256} (the file was replaced since). Restore the file, or "
                f"build the layer again with the new inpainter. Received: path={path!r}")
        inpainter.config_name = f"inpainter:{path}#sha256={digest}"
        return inpainter

    def weights_digest(self):
        """SHA-256 (hex) of the network's weights: shapes, dtypes and values, in order.

        Independent of the file (a network saved twice has one digest) and
        of the layers' names.
        """
        digest = hashlib.sha256()
        for weight in self.model.weights:
            value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
            digest.update(f"{value.dtype.str}{value.shape}".encode())
            digest.update(value.tobytes())
        return digest.hexdigest()

    def build(self, *shapes):
        self.built = True

    def call(self, images, masks):
        x = to_channels_last(images, self.data_format)
        dtype = x.dtype
        x = tf.cast(x, tf.float32)
        if tuple(x.shape[1:]) != self.image_shape and None not in x.shape[1:]:
            raise ValueError(
                f"The inpainter was built for images of shape {self.image_shape} (channels_last). "
                f"Received: images.shape={tuple(images.shape)}")
        m = tf.cast(to_channels_last(masks, self.data_format), tf.float32)[..., :1]
        m = tf.broadcast_to(m, tf.concat([tf.shape(x)[:3], [1]], axis=0))
        restored = map_rows(
            lambda chunk, chunk_masks: tf.cast(self.model([chunk, chunk_masks], training=False), tf.float32),
            x, m, list(self.image_shape), self.batch_size)
        filled = x * (1.0 - m) + restored * m
        return from_channels_last(tf.cast(filled, dtype), self.data_format)

    def compute_output_shape(self, images_shape, masks_shape=None):
        return images_shape

    def get_config(self):
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "batch_size": self.batch_size,
            "data_format": self.data_format,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


PIN = "#sha256="


def _load_scheme(argument, data_format=None, **kwargs):
    """`"inpainter:PATH"` or `"inpainter:PATH#sha256=DIGEST"` (pinned, as configs store it)."""
    path, _, digest = argument.rpartition(PIN) if PIN in argument else (argument, "", None)
    return Inpainter.load(path, data_format=data_format, sha256=digest)


# The learned inpainter registers its fill with the ops fill registry: ops never imports inpainting.
fills.register_scheme("inpainter", _load_scheme)
