"""Vanilla gradient saliency (Simonyan et al., 2014)."""

import tensorflow as tf

from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.explainers.targets import explained_score
from keras_edda.ops.layout import channel_axis, spatial_size, to_channels_last


@register("saliency")
class Saliency(Explainer):
    """Saliency: the largest absolute input gradient over the channels.

    map = max_c |d score / d x_c|. The cheapest explainer: one forward and
    one backward pass per image.

    Args:
        model: the `keras.Model` to explain.
        batch_size: most images per forward/backward call (`None`: all).
        use_logits: explain the pre-softmax logit (default).
        data_format: layout of the images.

    Example:

    ```python
    maps = Saliency(model)(images, targets=labels)
    ```
    """

    def explain_batch(self, images, targets):
        return self.explain_batch_with_scores(images, targets)[0]

    def explain_batch_with_scores(self, images, targets):
        axis = channel_axis(self.data_format)

        def saliency(batch, batch_targets):
            with tf.GradientTape() as tape:
                tape.watch(batch)
                scores, _ = self.scores(batch)
                score = explained_score(self.target_weights(batch_targets, scores), scores)
            gradients = tf.abs(tape.gradient(score, batch))
            maps = to_channels_last(
                tf.reduce_max(gradients, axis=axis, keepdims=True), self.data_format)
            return maps, scores

        height, width = spatial_size(images, self.data_format)
        return self.map_images(saliency, images, targets,
                               ([height, width, 1], [self.num_classes]))
