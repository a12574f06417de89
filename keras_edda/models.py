"""Classifiers for the experiments: a small CNN, small ResNets (ResNet-20) and
any `keras.applications` backbone, by name through `build`."""

import inspect

import keras

from keras_edda import _checks

BUILT_IN = ("cnn", "resnet", "resnet20")


def small_cnn(input_shape, num_classes, width=16, normalization=True, name="small_cnn"):
    """Three convolution blocks, global pooling and a softmax head (~20 k weights at width 16).

    Each block is a 3x3 convolution, batch normalisation (unless
    `normalization=False`, the historical architecture) and ReLU; the first
    two end in 2x2 max pooling. The normalisation's running statistics use
    momentum 0.9 (Keras' default 0.99 needs thousands of steps to forget
    their initial values, more than a small dataset's budget). Trained with `keras_edda.recipes.DEFAULT` it
    reaches 0.97+ test accuracy on the digits (see docs/recipe.md).

    Args:
        input_shape: shape of one image, e.g. `(32, 32, 1)`.
        num_classes: number of output classes.
        width: filters of the first block (doubled in the later ones).
        normalization: batch normalisation after each convolution.
        name: the model's name.

    Returns:
        An uncompiled `keras.Sequential`; its last convolution is named
        `"last_conv"`, its head `"classifier"`.

    Example:

    ```python
    model = keras_edda.models.small_cnn((32, 32, 1), 10)
    ```
    """
    layers = keras.layers

    def block(filters, name=None):
        if not normalization:
            return [layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)]
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name),
                layers.BatchNormalization(momentum=0.9), layers.Activation("relu")]

    return keras.Sequential(
        [
            keras.Input(input_shape),
            *block(width),
            layers.MaxPooling2D(),
            *block(2 * width),
            layers.MaxPooling2D(),
            *block(2 * width, name="last_conv"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(num_classes, activation="softmax", name="classifier"),
        ],
        name=name,
    )


def small_resnet(input_shape, num_classes, width=16, blocks=(1, 1, 1),
                 name="small_resnet", bn_momentum=0.99, kernel_initializer="glorot_uniform"):
    """A small residual network (He et al., 2016) for small images.

    Args:
        input_shape: shape of one image.
        num_classes: number of output classes.
        width: filters of the first stage, doubled at each later stage.
        blocks: residual blocks per stage.
        name: the model's name.
        bn_momentum: momentum of batch normalisation's running statistics.
        kernel_initializer: of the convolutions.

    Returns:
        An uncompiled Functional `keras.Model`.
    """
    layers = keras.layers

    def conv(filters, size, stride=1):
        return layers.Conv2D(filters, size, stride, padding="same", use_bias=False,
                             kernel_initializer=kernel_initializer)

    def norm():
        return layers.BatchNormalization(momentum=bn_momentum)

    inputs = keras.Input(input_shape)
    x = conv(width, 3)(inputs)
    x = norm()(x)
    x = layers.Activation("relu")(x)
    for stage, count in enumerate(blocks):
        filters = width * 2**stage
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            y = conv(filters, 3, stride)(x)
            y = norm()(y)
            y = layers.Activation("relu")(y)
            y = conv(filters, 3)(y)
            y = norm()(y)
            if stride != 1 or shortcut.shape[-1] != filters:
                shortcut = conv(filters, 1, stride)(shortcut)
                shortcut = norm()(shortcut)
            x = layers.Activation("relu")(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def resnet20(input_shape, num_classes, name="resnet20"):
    """ResNet-20 of He et al. (2016, section 4.2), the CIFAR ResNet: 0.27 M weights.

    A 3x3 convolution with 16 filters, then three stages of three residual
    blocks (two 3x3 convolutions each) with 16, 32 and 64 filters, the
    later stages starting with stride 2; global average pooling and a
    softmax head: 6n + 2 = 20 weighted layers with n = 3. Shortcuts that
    change the shape are 1x1 convolutions with batch normalisation (the
    paper's option B; its CIFAR models used option A, zero padding, which
    saves their 2,560 weights). He initialisation as in the paper; batch
    normalisation momentum 0.9 as `small_cnn` (for short budgets).

    Args:
        input_shape: shape of one image, e.g. `(32, 32, 3)`.
        num_classes: number of output classes.
        name: the model's name.

    Returns:
        An uncompiled Functional `keras.Model` (272,474 trainable weights for
        32x32x3 and 10 classes); its head is named `"classifier"`.

    Example:

    ```python
    model = keras_edda.models.resnet20((32, 32, 3), 10)
    ```
    """
    return small_resnet(input_shape, num_classes, width=16, blocks=(3, 3, 3), name=name, bn_momentum=0.9,
                        kernel_initializer="he_normal")


def _applications():
    """`{lower-case name without underscores: constructor}` of `keras.applications`."""
    return {name.lower(): getattr(keras.applications, name) for name in dir(keras.applications)
            if name[:1].isupper() and callable(getattr(keras.applications, name))}


def application_names():
    """The `keras.applications` constructors `build` knows, by their Keras names (e.g. `"ResNet50V2"`)."""
    return sorted(name for name in dir(keras.applications)
                  if name[:1].isupper() and callable(getattr(keras.applications, name)))


def application(name, input_shape, num_classes, image_size=None, bn_momentum=0.9, data_format=None):
    """A `keras.applications` backbone with fresh weights (`weights=None`) as a classifier.

    The backbone is built with its own softmax head for `num_classes` at
    `image_size` and nested in a model that takes the data's images: a
    `Resizing` layer (bilinear) in front when the sizes differ, so the
    arrays stay at the data's size. The backbones' own input
    preprocessing (`include_preprocessing`, where there is one) is left
    out: the images are in [0, 1] and the first batch normalisation takes
    their scale. Every batch normalisation's momentum is set to
    `bn_momentum` (Keras' 0.99 needs thousands of steps to forget its
    initial statistics, see `small_cnn`).

    Args:
        name: the constructor's name, in Keras' spelling (`"MobileNetV3Small"`)
            or in snake case (`"mobilenet_v3_small"`, `"resnet50_v2"`,
            `"efficientnet_b0"`); case and underscores are ignored.
        input_shape: shape of one image of the data.
        num_classes: number of output classes.
        image_size: side of the backbone's square input (`None`: the
            data's). Each backbone has a minimum (32 for most).
        bn_momentum: batch normalisation momentum (`None`: the backbone's).
        data_format: layout of the images; defaults to Keras' setting.

    Returns:
        An uncompiled Functional `keras.Model` named after the backbone,
        with the backbone as a nested model.

    Raises:
        ValueError: for an unknown name (the message lists the known ones)
            or a size the backbone refuses.

    Example:

    ```python
    model = keras_edda.models.application("mobilenet_v3_small", (32, 32, 3), 10, image_size=96)
    ```
    """
    constructor = _applications().get(str(name).replace("_", "").replace("-", "").lower())
    if constructor is None:
        raise ValueError(f"Unknown keras.applications model. Expected one of {application_names()}. "
                         f"Received: model={name!r}")
    data_format = _checks.standardize_data_format(data_format)
    input_shape = tuple(input_shape)
    spatial = input_shape[1:] if data_format == "channels_first" else input_shape[:2]
    channels = input_shape[0] if data_format == "channels_first" else input_shape[-1]
    size = spatial if image_size is None else (_checks.check_positive_int(image_size, "image_size"),) * 2
    backbone_shape = (channels, *size) if data_format == "channels_first" else (*size, channels)
    kwargs = dict(weights=None, include_top=True, classes=num_classes, input_shape=backbone_shape,
                  classifier_activation="softmax")
    if "include_preprocessing" in inspect.signature(constructor).parameters:
        kwargs["include_preprocessing"] = False
    try:
        backbone = constructor(**kwargs)
    except ValueError as error:
        raise ValueError(f"keras.applications.{constructor.__name__} refused input {backbone_shape}: "
                         f"{str(error).strip().splitlines()[0]} Received: model={name!r}, "
                         f"image_size={image_size!r}") from None
    if bn_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = bn_momentum
    inputs = keras.Input(input_shape)
    x = inputs
    if tuple(size) != tuple(spatial):
        x = keras.layers.Resizing(*size, interpolation="bilinear", data_format=data_format, name="resize")(x)
    return keras.Model(inputs, backbone(x), name=constructor.__name__.lower())


def build(spec, input_shape, num_classes, image_size=None):
    """A fresh classifier by name: what `keras-edda compare --model` builds.

    Args:
        spec: `"cnn"` (`small_cnn`), `"resnet"` (`small_resnet`),
            `"resnet20"` (`resnet20`), or the name of a `keras.applications`
            constructor (`application`, weights `None`).
        input_shape: shape of one image of the data.
        num_classes: number of classes.
        image_size: the backbone's input side for a `keras.applications`
            model (`None`: the data's); the built-in models take the
            data's size and refuse another.

    Returns:
        An uncompiled `keras.Model` with fresh weights (seed them with
        `keras.utils.set_random_seed`).

    Raises:
        ValueError: for an unknown name.

    Example:

    ```python
    model = keras_edda.models.build("resnet20", (32, 32, 3), 10)
    model = keras_edda.models.build("mobilenet_v3_small", (32, 32, 3), 10, image_size=96)
    ```
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"`model` must be a model name. Received: model={spec!r}")
    if spec in BUILT_IN:
        side = input_shape[1] if _checks.standardize_data_format(None) == "channels_first" else input_shape[0]
        if image_size is not None and image_size != side:
            raise ValueError(f"The built-in model {spec!r} takes the data's image size {side}; resize the data "
                             f"instead. Received: image_size={image_size!r}")
        if spec == "cnn":
            return small_cnn(input_shape, num_classes)
        if spec == "resnet":
            return small_resnet(input_shape, num_classes)
        return resnet20(input_shape, num_classes)
    if str(spec).replace("_", "").replace("-", "").lower() not in _applications():
        raise ValueError(f"Unknown model. Expected one of {list(BUILT_IN)}, a keras.applications name "
                         f"(e.g. 'mobilenet_v3_small', 'resnet50_v2', 'efficientnet_b0') or a .keras file. "
                         f"Received: model={spec!r}")
    return application(spec, input_shape, num_classes, image_size=image_size)


def is_known(spec):
    """Whether `build` knows `spec` (a built-in or `keras.applications` name)."""
    return isinstance(spec, str) and (spec in BUILT_IN or spec.replace("_", "").replace("-", "").lower()
                                      in _applications())
