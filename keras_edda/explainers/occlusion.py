"""Occlusion sensitivity (Zeiler & Fergus, ECCV 2014), batched."""

import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.explainers.targets import explained_score
from keras_edda.ops import fills
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import spatial_size


def _pair(value, name):
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return tuple(_checks.check_positive_int(v, name) for v in value)
    value = _checks.check_positive_int(value, name)
    return value, value


def patch_masks(height, width, patch_size, stride):
    """All patch positions as masks (P, H, W), 1.0 inside the patch.

    Patches start every `stride` pixels from the top-left corner and are cut
    at the border, so with `stride <= patch_size` every pixel is covered.
    """
    rows = tf.range(height)
    cols = tf.range(width)
    tops = tf.range(0, height, stride[0])
    lefts = tf.range(0, width, stride[1])
    in_rows = (rows[None, :] >= tops[:, None]) & (rows[None, :] < tops[:, None] + patch_size[0])
    in_cols = (cols[None, :] >= lefts[:, None]) & (cols[None, :] < lefts[:, None] + patch_size[1])
    masks = tf.cast(in_rows[:, None, :, None] & in_cols[None, :, None, :], tf.float32)
    return tf.reshape(masks, (-1, height, width))


@register("occlusion")
class Occlusion(Explainer):
    """Occlusion: the drop of the target's score when a patch is filled.

    Every patch position is filled in turn (by default with 0.0) and the drop
    score(x) - score(occluded x) is spread over the pixels of the patch; where
    patches overlap, a pixel gets the mean drop of the patches covering it.
    All occluded copies of all images go through the model in chunks of at
    most `batch_size`. Cost: P + 1 forward passes per image, P = number of
    patch positions.

    Args:
        model: the `keras.Model` to explain.
        patch_size: int or (height, width) of the patch.
        stride: int or (rows, cols) between patch positions; defaults to
            `patch_size` (patches tile the image).
        fill: a number, a fill name (`"constant"`, `"mean"`, `"blur"`,
            `"noise"`, `"inpaint"`) or a callable `fill(images, mask)`; see
            `keras_edda.ops.fills`. Defaults to 0.0.
        batch_size: most occluded images per forward call.
        use_logits: explain the pre-softmax logit (default).
        data_format: layout of the images.

    Example:

    ```python
    maps = Occlusion(model, patch_size=4, batch_size=512)(images)
    ```
    """

    signed_maps = True

    def __init__(self, model, patch_size=4, stride=None, fill=0.0,
                 batch_size=512, use_logits=True, data_format=None):
        self.patch_size = _pair(patch_size, "patch_size")
        self.stride = self.patch_size if stride is None else _pair(stride, "stride")
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=data_format)
        super().__init__(model, batch_size, use_logits, data_format)

    def explain_batch(self, images, targets):
        height, width = spatial_size(images, self.data_format)
        message = ("`patch_size` must not be larger than the image. Received: "
                   f"patch_size={self.patch_size} for images of size ")
        if isinstance(height, int) and isinstance(width, int):
            if self.patch_size[0] > height or self.patch_size[1] > width:
                raise ValueError(message + str((height, width)))
        else:
            message += "smaller than the patch"
            checks = [tf.debugging.assert_less_equal(self.patch_size[0], height, message),
                      tf.debugging.assert_less_equal(self.patch_size[1], width, message)]
            with tf.control_dependencies(checks):
                images = tf.identity(images)
        masks = patch_masks(height, width, self.patch_size, self.stride)
        num_patches = masks.shape[0] if masks.shape[0] is not None else tf.shape(masks)[0]
        mask_axis = 1 if self.data_format == "channels_first" else -1
        channel_masks = tf.expand_dims(masks, mask_axis)

        original_scores = self.predict_scores(images)
        weights = self.target_weights(targets, original_scores)
        original = explained_score(weights, original_scores)
        num_images = tf.shape(images)[0]

        def body(start, stop, drops):
            item = tf.range(start, stop)
            image_index = item // num_patches
            occluded = fills.fill_masked(
                tf.gather(images, image_index),
                tf.gather(channel_masks, item % num_patches),
                self._fill_fn,
            )
            scores, _ = self.scores(occluded)
            score = explained_score(tf.gather(weights, image_index), scores)
            drop = tf.gather(original, image_index) - score
            return tf.tensor_scatter_nd_update(drops, item[:, None], drop)

        drops = chunked_loop(
            body,
            self._static_count(images, num_patches),
            self.batch_size,
            tf.zeros((num_images * num_patches,)),
        )
        drops = tf.reshape(drops, (num_images, num_patches))
        flat_masks = tf.reshape(masks, (num_patches, height * width))
        coverage = tf.maximum(tf.reduce_sum(flat_masks, axis=0), 1.0)
        maps = tf.matmul(drops, flat_masks) / coverage
        return tf.reshape(maps, (num_images, height, width, 1))

    def get_config(self):
        return {
            "patch_size": self.patch_size,
            "stride": self.stride,
            "fill": fills.config_name(self.fill, self._fill_fn),
            **super().get_config(),
        }
