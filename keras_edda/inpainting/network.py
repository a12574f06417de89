"""A compact inpainting network: a U-Net of gated convolutions (Yu et al., 2019).

A gated convolution multiplies its features by a learnt sigmoid gate, so the
network learns by itself how much to trust each position of the hole; with
the mask as an input channel this is what partial convolutions hand-code.
"""

import keras

from keras_edda import _checks


def _gated_conv(x, filters, kernel_size=3, strides=1, dilation_rate=1, name=None):
    features = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, dilation_rate=dilation_rate,
        padding="same", activation="elu", name=f"{name}_features")(x)
    gate = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, dilation_rate=dilation_rate,
        padding="same", activation="sigmoid", name=f"{name}_gate")(x)
    return keras.layers.Multiply(name=name)([features, gate])


def build_inpainter(input_shape, filters=32, depth=2, name="inpainter"):
    """A gated-convolution U-Net that fills the holes of images.

    The network takes `[images, mask]` (mask 1 = pixels to replace, one
    channel) and returns a full image; the pixels outside the hole are not
    meant to be used (the `Inpainter` fill composites). It blanks the hole
    itself, so what is under the hole never leaks into the result. Sized for
    32-128 px inputs: `depth` halvings, two dilated gated convolutions at the
    bottom, skip connections on the way up.

    Args:
        input_shape: `(height, width, channels)` of the images
            (channels_last); height and width must be divisible by
            `2 ** depth`.
        filters: channels of the first level (doubled at each halving).
        depth: number of halvings of the resolution.
        name: the model's name.

    Returns:
        An unfitted `keras.Model` with inputs `[images, mask]`.

    Example:

    ```python
    network = keras_edda.inpainting.build_inpainter((32, 32, 3), filters=32)
    ```
    """
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels). Received: input_shape={input_shape!r}")
    height, width, channels = (_checks.check_positive_int(v, "input_shape") for v in input_shape)
    filters = _checks.check_positive_int(filters, "filters")
    depth = _checks.check_positive_int(depth, "depth")
    if height % 2 ** depth or width % 2 ** depth:
        raise ValueError(
            f"The image height and width must be divisible by 2 ** depth = {2 ** depth}. "
            f"Received: input_shape={tuple(input_shape)}, depth={depth}")
    images = keras.Input((height, width, channels), name="images")
    mask = keras.Input((height, width, 1), name="mask")
    visible = keras.ops.multiply(images, 1.0 - mask)
    x = keras.layers.Concatenate(name="with_mask")([visible, mask])
    x = _gated_conv(x, filters, 5, name="enc0")
    skips = []
    for level in range(1, depth + 1):
        skips.append(x)
        x = _gated_conv(x, filters * 2 ** level, 3, strides=2, name=f"down{level}")
        x = _gated_conv(x, filters * 2 ** level, 3, name=f"enc{level}")
    for rate in (2, 4):
        x = _gated_conv(x, filters * 2 ** depth, 3, dilation_rate=rate, name=f"dilated{rate}")
    for level in range(depth, 0, -1):
        x = keras.layers.UpSampling2D(name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level - 1]])
        x = _gated_conv(x, filters * 2 ** (level - 1), 3, name=f"dec{level}")
    outputs = keras.layers.Conv2D(channels, 3, padding="same", name="restored")(x)
    return keras.Model([images, mask], outputs, name=name)
