"""Built-in classifiers for the experiments: a small CNN and a small ResNet."""

import keras


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
