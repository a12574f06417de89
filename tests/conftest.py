import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns oneDNN on by itself only on CPUs with AVX-512; without it, Conv2D has no channels_first
# (NCHW) kernel on the CPU, and the channels_first tests fail on e.g. an AVX2-only AMD EPYC.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")
# Two logical CPU devices, for the tf.distribute.MirroredStrategy tests.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2,
)


@pytest.fixture(autouse=True)
def _reset_keras_state():
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_image_data_format("channels_last")
    keras.mixed_precision.set_global_policy("float32")


def small_cnn(input_shape=(16, 16, 3), num_classes=5, activation="softmax",
              data_format=None):
    """Conv-Conv-GAP-Dense, the workhorse model of the tests."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                name="conv1", data_format=data_format),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu",
                                name="conv2", data_format=data_format),
            keras.layers.GlobalAveragePooling2D(data_format=data_format),
            keras.layers.Dense(num_classes, activation=activation, name="head"),
        ],
        name="small_cnn",
    )


def smooth_cnn(input_shape=(12, 12, 3), num_classes=4):
    """A model with smooth activations, for axioms that need derivatives."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(6, 3, activation="tanh", name="conv")(inputs)
    x = keras.layers.Conv2D(6, 3, activation="softplus", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="smooth_cnn")


def random_images(n=6, shape=(16, 16, 3), seed=1):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


@pytest.fixture
def model():
    return small_cnn()


@pytest.fixture
def images():
    return random_images()
