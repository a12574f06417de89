"""Score-CAM (Wang et al., CVPR Workshops 2020), batched over images and channels."""

import tensorflow as tf

from keras_edda.explainers import capture as capture_lib
from keras_edda.explainers.grad_cam import GradCAM
from keras_edda.explainers.registry import register
from keras_edda.explainers.targets import explained_score
from keras_edda.ops import fills
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import from_channels_last, spatial_size, to_channels_last


@register("score_cam")
class ScoreCAM(GradCAM):
    """Score-CAM: channels of a spatial layer weighted by the score of the image they mask.

    Each channel A_k (h, w) of the chosen layer is upsampled bilinearly to
    the input size and min-max normalised to [0, 1]; the image multiplied by
    that mask (the rest filled with `fill`, 0.0 by default: the paper's
    X * H_k) goes through the model, and the explained score of the masked
    image is the channel's weight w_k (0 for a constant channel, which
    carries no mask). The map is ReLU(sum_k w_k A_k), upsampled bilinearly
    to the input size, as Grad-CAM's. No gradients are taken.

    The explained score follows `use_logits` as for every explainer: the
    logit by default; `use_logits=False` on a softmax model gives the
    paper's and the authors' weights (the class probability). The baseline
    score f(X_b) of the paper's equation is not subtracted, as in the
    authors' code. All N * K masked images go through the model in chunks of
    at most `batch_size`. Cost: 1 + K forward passes per image, K = the
    layer's channels.

    Args:
        model: the `keras.Model` to explain.
        layer: `None` (the last spatial layer after a convolution, nested
            models included), a layer, its name or a nested path; see
            `GradCAM`.
        fill: what replaces the masked-out part: a number (default 0.0), a
            fill name or a callable `fill(images, mask)`; the masked image is
            `x * H_k + fill * (1 - H_k)`.
        batch_size: most model evaluations per forward call (default 256).
        use_logits: explain the pre-softmax logit (default) or, with `False`,
            the model's output.
        data_format: layout of the images; defaults to Keras' setting.

    Example:

    ```python
    maps = ScoreCAM(model, batch_size=512)(images, targets=labels)
    ```
    """

    def __init__(self, model, layer=None, fill=0.0, batch_size=256, use_logits=True, data_format=None):
        self.fill = fill
        self._fill_fn = fills.get(fill, data_format=data_format)
        super().__init__(model, layer, batch_size, use_logits, data_format)

    def _on_inspected(self, inspection):
        super()._on_inspected(inspection)
        shapes = [shape for _, layer, shape in inspection.calls
                  if layer is self.layer and shape is not None and shape.rank == 4]
        self._layer_shape = to_channels_last(tf.zeros([1, *shapes[-1][1:]]), self._layer_format()).shape[1:]

    def explain_batch_with_scores(self, images, targets):
        tap = capture_lib.Tap(self.layer)
        height, width = spatial_size(images, self.data_format)
        layer_format = self._layer_format()

        def forward(batch, _):
            scores, capture = self.scores(batch, taps=[tap])
            return to_channels_last(tf.cast(capture[tap], tf.float32), layer_format), scores

        activations, scores = self.map_images(
            forward, images, None, (list(self._layer_shape), [self.num_classes]))
        weights = self.target_weights(targets, scores)
        num_channels = int(self._layer_shape[-1])
        by_channel = tf.transpose(activations, (0, 3, 1, 2))  # (N, K, h, w)
        num_images = tf.shape(images)[0]

        def body(start, stop, channel_scores):
            item = tf.range(start, stop)
            image_index = item // num_channels
            channel = tf.gather_nd(by_channel, tf.stack([image_index, item % num_channels], axis=-1))
            upsampled = tf.image.resize(channel[..., None], (height, width), method="bilinear")
            low = tf.reduce_min(upsampled, axis=(1, 2, 3), keepdims=True)
            high = tf.reduce_max(upsampled, axis=(1, 2, 3), keepdims=True)
            mask = tf.math.divide_no_nan(upsampled - low, high - low)
            masked = fills.fill_masked(tf.gather(images, image_index),
                                       from_channels_last(1.0 - mask, self.data_format), self._fill_fn)
            masked_scores, _ = self.scores(masked)
            score = explained_score(tf.gather(weights, image_index), masked_scores)
            score = tf.where(tf.reshape(high > low, [-1]), score, 0.0)
            return tf.tensor_scatter_nd_update(channel_scores, item[:, None], score)

        channel_scores = chunked_loop(body, self._static_count(images, num_channels), self.batch_size,
                                      tf.zeros((num_images * num_channels,)))
        channel_weights = tf.reshape(channel_scores, (num_images, 1, 1, num_channels))
        cam = tf.nn.relu(tf.reduce_sum(channel_weights * activations, axis=-1, keepdims=True))
        return tf.image.resize(cam, (height, width), method="bilinear"), scores

    def get_config(self):
        return {**super().get_config(), "fill": fills.config_name(self.fill, self._fill_fn)}
