"""Vanilla gradient saliency (Simonyan et al., 2014)."""

import tensorflow as tf

from keras_edda.explainers.base import Explainer
from keras_edda.explainers.targets import explained_score
from keras_edda.ops.batching import chunked_loop
from keras_edda.ops.layout import channel_axis, to_channels_last


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
        def body(start, stop, maps):
            batch = images[start:stop]
            with tf.GradientTape() as tape:
                tape.watch(batch)
                scores, _ = self.scores(batch)
                weights = self.target_weights(
                    None if targets is None else targets[start:stop], scores
                )
                score = explained_score(weights, scores)
            gradients = tf.abs(tape.gradient(score, batch))
            saliency = tf.reduce_max(
                gradients, axis=channel_axis(self.data_format), keepdims=True
            )
            indices = tf.range(start, stop)[:, None]
            return tf.tensor_scatter_nd_update(maps, indices, saliency)

        initial = tf.zeros_like(
            tf.reduce_max(images, axis=channel_axis(self.data_format), keepdims=True)
        )
        maps = chunked_loop(body, self._static_count(images), self.batch_size, initial)
        return to_channels_last(maps, self.data_format)
