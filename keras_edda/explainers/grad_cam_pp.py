"""Grad-CAM++ (Chattopadhyay et al., WACV 2018), batched and graph-compiled."""

import tensorflow as tf

from keras_edda.explainers.grad_cam import GradCAM
from keras_edda.explainers.registry import register


@register("grad_cam_pp")
class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++: Grad-CAM with pixel-wise weights of the positive gradients.

    With g = dY/dA the gradient of the explained score Y with respect to the
    chosen layer's activations A (h, w, K), and the score taken through
    exp(Y) as in the paper (so that its second and third derivatives are
    powers of g), each position gets the weight

        alpha_kij = g_kij^2 / (2 g_kij^2 + sum_ab A_kab g_kij^3)

    (0 where g_kij = 0), normalised to sum 1 over the positions of each
    channel as the authors' code does; the channel weight is
    w_k = sum_ij alpha_kij ReLU(g_kij) and the map is
    ReLU(sum_k w_k A_k), upsampled bilinearly to the input size. The
    common factor exp(Y) of the paper's weights is left out: it scales each
    image's map by one positive number. Where the gradients are constant
    over the layer and positive, every alpha is 1 / (h w) and the map is
    Grad-CAM's. Cost: one forward and one backward pass (to the layer only)
    per image, as Grad-CAM.

    Args:
        model: the `keras.Model` to explain.
        layer: `None` (the last spatial layer after a convolution, nested
            models included), a layer, its name or a nested path; see
            `GradCAM`.
        batch_size: most images per forward/backward call (`None`: all).
        use_logits: explain the pre-softmax logit (default) or, with `False`,
            the model's output.
        data_format: layout of the images; defaults to Keras' setting.

    Example:

    ```python
    maps = GradCAMPlusPlus(model)(images, targets=labels)   # (N, H, W, 1)
    ```
    """

    def channel_weights(self, activations, gradients):
        squared = tf.square(gradients)
        cubed = squared * gradients
        activation_sums = tf.reduce_sum(activations, axis=(1, 2), keepdims=True)
        denominator = 2.0 * squared + cubed * activation_sums
        alphas = tf.math.divide_no_nan(squared, tf.where(squared == 0.0, 1.0, denominator))
        alphas = tf.math.divide_no_nan(alphas, tf.reduce_sum(alphas, axis=(1, 2), keepdims=True))
        return tf.reduce_sum(alphas * tf.nn.relu(gradients), axis=(1, 2), keepdims=True)
