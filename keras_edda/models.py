"""Built-in classifiers for the experiments: a small CNN and a small ResNet."""

import keras


def small_cnn(input_shape, num_classes, width=16, name="small_cnn"):
    """Three convolution blocks, global pooling and a softmax head (~20 k weights).

    Args:
        input_shape: shape of one image, e.g. `(32, 32, 1)`.
        num_classes: number of output classes.
        width: filters of the first block (doubled in the later ones).
        name: the model's name.

    Returns:
        An uncompiled `keras.Sequential`.
    """
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(2 * width, 3, padding="same", activation="relu",
                          name="last_conv"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(num_classes, activation="softmax", name="classifier"),
        ],
        name=name,
    )


def small_resnet(input_shape, num_classes, width=16, blocks=(1, 1, 1),
                 name="small_resnet"):
    """A small residual network (He et al., 2016) for small images.

    Args:
        input_shape: shape of one image.
        num_classes: number of output classes.
        width: filters of the first stage, doubled at each later stage.
        blocks: residual blocks per stage.
        name: the model's name.

    Returns:
        An uncompiled Functional `keras.Model`.
    """
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    for stage, count in enumerate(blocks):
        filters = width * 2**stage
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            y = layers.Conv2D(filters, 3, stride, padding="same", use_bias=False)(x)
            y = layers.BatchNormalization()(y)
            y = layers.Activation("relu")(y)
            y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
            y = layers.BatchNormalization()(y)
            if stride != 1 or shortcut.shape[-1] != filters:
                shortcut = layers.Conv2D(filters, 1, stride, use_bias=False)(shortcut)
                shortcut = layers.BatchNormalization()(shortcut)
            x = layers.Activation("relu")(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)
