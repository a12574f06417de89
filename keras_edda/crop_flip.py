"""The standard base augmentation of natural images: pad, random crop, horizontal flip.

As in He et al. (2016) for CIFAR-10: each training image is padded with
`padding` zero pixels on every side and a window of the original size is
cropped at a random position (each of the `(2 * padding + 1) ** 2` offsets
equally likely), then flipped left-right with probability 1/2. It runs
before a training method makes its copies, on both surfaces: as a layer in
front of the method layer inside a model, and as a map function in front
of `keras_edda.data.method_map_fn` in `tf.data`. `keras_edda.recipes`
names it `"crop_flip"`.
"""

import keras
import tensorflow as tf

from keras_edda import _checks


@keras.saving.register_keras_serializable(package="keras_edda")
class CropFlip(keras.layers.Layer):
    """Pads by `padding` zeros, crops back at a random offset and flips horizontally at random.

    In training only (`training=True`); at inference the images pass
    unchanged. Each image of a batch gets its own offset and flip, drawn
    from the layer's seed. Batched TF ops (two gathers), usable inside a
    model, `tf.function` and `tf.data`.

    Args:
        padding: zero pixels added on each side before cropping (int >= 0;
            4 for 32x32 CIFAR images).
        flip: also flip left-right with probability 1/2.
        seed: seed of the draws.
        data_format: layout of the images (`None`: Keras' setting).
        **kwargs: the usual layer arguments.

    Call arguments:
        inputs: images (N, H, W, C) (or (N, C, H, W)).
        training: augment only when true.

    Example:

    ```python
    model = keras.Sequential([keras.Input((32, 32, 3)), keras_edda.crop_flip.CropFlip(4, seed=0),
                              keras_edda.methods.EDDA(classifier), classifier])
    ```
    """

    def __init__(self, padding=4, flip=True, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"`padding` must be an int >= 0. Received: padding={padding!r}")
        if not isinstance(flip, bool):
            raise TypeError(f"`flip` must be a bool. Received: flip={flip!r}")
        self.padding = padding
        self.flip = flip
        self.seed = seed
        self.data_format = _checks.standardize_data_format(data_format)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training:
            return inputs
        return self.augment(inputs)

    def augment(self, images):
        """The augmented images (always, whatever the training flag)."""
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4:
            raise ValueError(f"`images` must be a batch (N, H, W, C). Received: images.shape={images.shape}")
        if self.data_format == "channels_first":
            images = tf.transpose(images, (0, 2, 3, 1))
        shape = tf.shape(images)
        num_images, height, width = shape[0], shape[1], shape[2]
        pad = self.padding
        padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        offsets = keras.random.randint((2, num_images), 0, 2 * pad + 1, seed=self.seed_generator, dtype="int32")
        rows = offsets[0][:, None] + tf.range(height)[None]
        cols = offsets[1][:, None] + tf.range(width)[None]
        if self.flip:
            flips = keras.random.uniform((num_images,), seed=self.seed_generator) < 0.5
            cols = tf.where(flips[:, None], tf.reverse(cols, [1]), cols)
        out = tf.gather(padded, rows, axis=1, batch_dims=1)
        out = tf.gather(out, cols, axis=2, batch_dims=1)
        if self.data_format == "channels_first":
            out = tf.transpose(out, (0, 3, 1, 2))
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "flip": self.flip, "seed": self.seed,
                "data_format": self.data_format}


class CropFlipMapFunction:
    """What `crop_flip_map_fn` returns: call it on `(x, y)` or `(x, y, w)` batches.

    Attributes:
        layer: the `CropFlip` layer.
    """

    def __init__(self, layer):
        if not isinstance(layer, CropFlip):
            raise TypeError(f"`layer` must be a CropFlip layer. Received: layer={layer!r}")
        self.layer = layer

    def __call__(self, x, y, sample_weight=None):
        x = self.layer.augment(x)
        return (x, y) if sample_weight is None else (x, y, sample_weight)


def crop_flip_map_fn(padding=4, flip=True, seed=None, data_format=None):
    """A map function that augments `(x, y[, w])` batches with `CropFlip`.

    Put it before the method's map function so that the copies are made
    from the augmented images:

    ```python
    ds = (ds.batch(64).map(keras_edda.crop_flip.crop_flip_map_fn(4, seed=0))
          .map(keras_edda.data.method_map_fn(layer)))
    ```

    Args:
        padding, flip, seed, data_format: those of `CropFlip`.

    Returns:
        A `CropFlipMapFunction`, callable as `fn(x, y)` or `fn(x, y, w)`.
    """
    return CropFlipMapFunction(CropFlip(padding, flip, seed, data_format))
