"""Training the inpainter on the user's own images: random holes, hole loss."""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_edda import _checks
from keras_edda.inpainting.network import build_inpainter
from keras_edda.ops.layout import to_channels_last
from keras_edda.ops.masks import pixel_ranks


def _distance_to_segment(rows, cols, start, end):
    """Distance of every pixel to the segments start-end; points (N, 2)."""
    direction = end - start
    length2 = tf.maximum(tf.reduce_sum(direction ** 2, axis=-1), 1e-6)
    dy = rows[None] - start[:, 0, None, None]
    dx = cols[None] - start[:, 1, None, None]
    t = (dy * direction[:, 0, None, None] + dx * direction[:, 1, None, None]) / length2[:, None, None]
    t = tf.clip_by_value(t, 0.0, 1.0)
    return tf.sqrt((dy - t * direction[:, 0, None, None]) ** 2 + (dx - t * direction[:, 1, None, None]) ** 2)


def random_masks(num_masks, height, width, min_area=0.05, max_area=0.6, seed=None):
    """Random holes: boxes and free-form strokes covering a random share of the image.

    Each mask draws its area uniformly in `[min_area, max_area]` and is, with
    equal odds, a box (random centre and aspect ratio between 1:2 and 2:1)
    or a thick stroke along a random polyline of three segments. The shape is
    the pixels nearest to it (`keras_edda.ops.masks.pixel_ranks` of a distance
    field), so the area is exact, also where a box meets the border. TensorFlow ops only.

    Args:
        num_masks: N, an int or an int32 scalar tensor.
        height, width: size of the masks (Python ints).
        min_area, max_area: range of the share of hidden pixels, in (0, 1].
        seed: an int (the same masks on every call), a
            `keras.random.SeedGenerator` (new masks on every call) or `None`.

    Returns:
        float32 masks (N, H, W, 1), 1.0 on the hole.
    """
    if not 0.0 < min_area <= max_area <= 1.0:
        raise ValueError(
            "`min_area` and `max_area` must satisfy 0 < min_area <= max_area <= 1. "
            f"Received: min_area={min_area!r}, max_area={max_area!r}")
    u = keras.random.uniform((num_masks, 12), seed=seed)
    area = min_area + u[:, 0] * (max_area - min_area)
    is_box = u[:, 1] < 0.5
    size = tf.constant([height, width], tf.float32)
    rows = tf.range(height, dtype=tf.float32)[:, None] + 0.5
    cols = tf.range(width, dtype=tf.float32)[None, :] + 0.5
    rows, cols = tf.broadcast_to(rows, (height, width)), tf.broadcast_to(cols, (height, width))
    aspect = tf.exp((u[:, 2] - 0.5) * 2.0 * math.log(2.0))
    centre = u[:, 3:5] * size
    box = tf.maximum(
        tf.abs(rows[None] - centre[:, 0, None, None]) * aspect[:, None, None],
        tf.abs(cols[None] - centre[:, 1, None, None]) / aspect[:, None, None])
    points = tf.reshape(u[:, 4:12], (-1, 4, 2)) * size
    stroke = tf.reduce_min(tf.stack([
        _distance_to_segment(rows, cols, points[:, i], points[:, i + 1]) for i in range(3)]), axis=0)
    distance = tf.where(is_box[:, None, None], box, stroke)[..., None]
    count = tf.clip_by_value(tf.cast(tf.round(area * height * width), tf.int32), 1, height * width)
    return tf.cast(pixel_ranks(-distance) < count[:, None, None, None], tf.float32)


def square_holes(num_masks, height, width, side, seed=0):
    """One square hole of `side` pixels per mask, at a uniformly random place inside the image.

    The held-out holes on which the inpainter is compared with other fills
    (issue 13's "boxes of a third of the image side"); NumPy, not in-graph:
    the same masks for the same seed, on every platform.

    Args:
        num_masks: N, a positive int.
        height, width: size of the masks.
        side: the hole's side in pixels, at most `min(height, width)`.
        seed: seed of `numpy.random.default_rng`.

    Returns:
        float32 NumPy masks (N, H, W, 1), 1.0 on the hole.

    Example:

    ```python
    holes = keras_edda.inpainting.square_holes(256, 32, 32, side=32 // 3)
    restored = keras_edda.ops.fills.fill_masked(images, holes, keras_edda.inpainting.Inpainter(network))
    ```
    """
    num_masks = _checks.check_positive_int(num_masks, "num_masks")
    height = _checks.check_positive_int(height, "height")
    width = _checks.check_positive_int(width, "width")
    side = _checks.check_positive_int(side, "side")
    if side > min(height, width):
        raise ValueError(f"`side` must be at most min(height, width) = {min(height, width)}. Received: side={side!r}")
    corners = np.random.default_rng(seed).integers(0, [height - side + 1, width - side + 1], size=(num_masks, 2))
    top, left = corners[:, 0, None, None], corners[:, 1, None, None]
    rows, cols = np.arange(height)[None, :, None], np.arange(width)[None, None, :]
    inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
    return inside[..., None].astype("float32")


def hole_losses(restored, images, masks):
    """Per-image mean absolute and squared error on the hole (N,), (N,)."""
    error = (restored - images) * masks
    channels = tf.cast(tf.shape(images)[-1], tf.float32)
    area = tf.maximum(tf.reduce_sum(masks, axis=(1, 2, 3)) * channels, 1.0)
    return (tf.reduce_sum(tf.abs(error), axis=(1, 2, 3)) / area,
            tf.reduce_sum(tf.square(error), axis=(1, 2, 3)) / area)


class InpainterTrainer(keras.Model):
    """Wraps the network for `fit`: draws holes in-graph, trains on the hole.

    Loss = hole L1 + hole MSE + 0.1 * L1 outside the hole (keeps the whole
    output an image, which helps at the hole's border). Validation draws the
    same holes every epoch (`seed`), so its `loss` and `hole_mse` compare
    across epochs.
    """

    def __init__(self, network, min_area=0.05, max_area=0.6, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.min_area, self.max_area = min_area, max_area
        self.validation_seed = int(seed) + 1
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hole_mse_tracker = keras.metrics.Mean(name="hole_mse")

    @property
    def metrics(self):
        return [self.loss_tracker, self.hole_mse_tracker]

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    def _step(self, images, seed, training):
        images = tf.cast(images, tf.float32)
        shape = tf.shape(images)
        masks = random_masks(shape[0], images.shape[1], images.shape[2],
                             self.min_area, self.max_area, seed)
        restored = self.network([images, masks], training=training)
        hole_l1, hole_mse = hole_losses(restored, images, masks)
        outside_l1, _ = hole_losses(restored, images, 1.0 - masks)
        loss = tf.reduce_mean(hole_l1 + hole_mse + 0.1 * outside_l1)
        return loss, tf.reduce_mean(hole_mse)

    def _report(self, loss, hole_mse):
        self.loss_tracker.update_state(loss)
        self.hole_mse_tracker.update_state(hole_mse)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            loss, hole_mse = self._step(images, self.seed_generator, True)
        variables = self.network.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return self._report(loss, hole_mse)

    def test_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        return self._report(*self._step(images, self.validation_seed, False))


def _as_dataset(data, batch_size, name, shuffle_seed=None, data_format="channels_last"):
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        spec = spec[0] if isinstance(spec, (tuple, list)) else spec
        if not isinstance(spec, tf.TensorSpec) or spec.shape.rank not in (3, 4):
            raise ValueError(
                f"`{name}` must yield images (H, W, C) or batches (N, H, W, C), alone or as the "
                f"first element of a tuple. Received: element_spec={data.element_spec}")
        data = data.map(lambda *item: item[0])
        if spec.shape.rank == 3:
            data = data.batch(batch_size)
        return data.map(lambda x: to_channels_last(tf.cast(x, tf.float32), data_format))
    images = np.asarray(data, dtype="float32")
    if images.ndim != 4:
        raise ValueError(f"`{name}` must be images (N, H, W, C). Received: {name}.shape={images.shape}")
    if data_format == "channels_first":
        images = np.transpose(images, (0, 2, 3, 1))
    dataset = tf.data.Dataset.from_tensor_slices(images)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train_inpainter(data, epochs=20, batch_size=64, validation_data=None, validation_split=0.1,
                    model=None, filters=32, depth=2, learning_rate=2e-3, min_area=0.05,
                    max_area=0.6, seed=0, verbose="auto", callbacks=None, data_format=None):
    """Trains an inpainting network on the user's images.

    Every batch gets fresh random holes (`random_masks`: boxes and free-form
    strokes covering 5-60 % of the image), drawn in the compiled train step.
    The loss is the hole's L1 + MSE plus 0.1 * L1 elsewhere; Keras' progress
    bar shows `loss` and `hole_mse`, and `val_loss` / `val_hole_mse` on
    fixed validation holes.

    Args:
        data: images (N, H, W, C) as an array, or a `tf.data.Dataset` of
            images or batches (a tuple's first element is taken, so labelled
            datasets work as they are). Use the classifier's input space.
        epochs: passes over the data.
        batch_size: images per step (arrays and unbatched datasets).
        validation_data: held-out images (array or dataset); `None` splits
            `validation_split` off an array (datasets get no validation).
        validation_split: share of an array held out when
            `validation_data` is `None`; 0 for none.
        model: a network to train further; `None` builds
            `build_inpainter(shape, filters, depth)`.
        filters, depth: size of the built network.
        learning_rate: Adam's learning rate.
        min_area, max_area: range of the hidden share of the image.
        seed: seed of the network's initialisation, the shuffling and the
            holes.
        verbose: Keras' `fit` verbosity.
        callbacks: Keras callbacks for `fit`.
        data_format: layout of the images; defaults to Keras' setting.

    Returns:
        The trained network, a `keras.Model` with inputs `[images, mask]`
        (channels_last); wrap it in `keras_edda.inpainting.Inpainter` to use
        it as a fill, or save it with `model.save("inpainter.keras")`.

    Example:

    ```python
    network = keras_edda.inpainting.train_inpainter(x_train, epochs=20)
    occlusion = keras_edda.explainers.Occlusion(
        classifier, fill=keras_edda.inpainting.Inpainter(network))
    ```
    """
    epochs = _checks.check_positive_int(epochs, "epochs")
    batch_size = _checks.check_positive_int(batch_size, "batch_size")
    data_format = _checks.standardize_data_format(data_format)
    if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
        raise ValueError(f"`validation_split` must lie in [0, 1). Received: validation_split={validation_split!r}")
    keras.utils.set_random_seed(seed)
    if validation_data is None and validation_split > 0 and not isinstance(data, tf.data.Dataset):
        images = np.asarray(data, dtype="float32")
        order = np.random.default_rng(seed).permutation(len(images))
        held_out = max(1, int(round(len(images) * validation_split)))
        data, validation_data = images[order[held_out:]], images[order[:held_out]]
    train = _as_dataset(data, batch_size, "data", shuffle_seed=seed, data_format=data_format)
    validation = None
    if validation_data is not None:
        validation = _as_dataset(validation_data, batch_size, "validation_data", data_format=data_format)
    shape = tuple(train.element_spec.shape[1:])
    if None in shape:
        raise ValueError(f"`data` must have a static image shape. Received: image shape {shape}")
    if model is None:
        model = build_inpainter(shape, filters=filters, depth=depth)
    trainer = InpainterTrainer(model, min_area, max_area, seed)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate))
    trainer.fit(train, epochs=epochs, validation_data=validation, verbose=verbose, callbacks=callbacks,
                shuffle=False)  # the dataset shuffles itself
    return model
