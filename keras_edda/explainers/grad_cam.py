"""Grad-CAM (Selvaraju et al., ICCV 2017), batched and graph-compiled."""

import tensorflow as tf

from keras_edda.explainers import capture as capture_lib
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.explainers.targets import explained_score
from keras_edda.ops.layout import spatial_size, to_channels_last


def _has_convolution_kernel(layer):
    return any(len(weight.shape) == 4 for weight in layer.weights)


def last_spatial_layer(inspection, data_format, model_name):
    """Grad-CAM's default layer: the last with a 4-D output of spatial size above 1 after a convolution.

    Args:
        inspection: a `ModelInspection` of the model.
        data_format: the images' layout.
        model_name: for the error message.

    Returns:
        `(path, layer)`.

    Raises:
        ValueError: when the model has no such layer.
    """
    seen_convolution = False
    chosen = None
    for path, layer, shape in inspection.calls:
        seen_convolution = seen_convolution or _has_convolution_kernel(layer)
        if shape is None or shape.rank != 4 or not seen_convolution:
            continue
        height, width = (shape[2], shape[3]) if data_format == "channels_first" else (shape[1], shape[2])
        if (height or 2) * (width or 2) > 1:
            chosen = (path, layer)
    if chosen is None:
        raise ValueError(
            "GradCAM needs a layer with a 4-D output of spatial size above 1 after a convolution, and model "
            f"'{model_name}' has none. Received: layer=None; layers called: "
            f"{[(p, str(s)) for p, _, s in inspection.calls]}")
    return chosen


@register("grad_cam")
class GradCAM(Explainer):
    """Grad-CAM: activations of a spatial layer weighted by their gradients.

    For each image, the gradient of the explained score with respect to the
    chosen layer's activations A (h, w, K) is averaged over space to give one
    weight per channel; the map is ReLU(sum_k weight_k * A_k), upsampled
    bilinearly to the input size. Cost: one forward and one backward pass (to
    the layer only) per image.

    The layer is read inside the model call (no sub-model is built), so
    Sequential, Functional, subclassed and nested models (a
    `keras.applications` backbone inside a Sequential) all work.

    Args:
        model: the `keras.Model` to explain.
        layer: `None` finds the last layer, nested models included, whose
            output is 4-D with a spatial size above 1 and which comes after a
            convolution. Otherwise a layer, its name, or a nested path such as
            `"mobilenetv2_1.00_96/Conv_1"` (or a tuple of names).
        batch_size: most images per forward/backward call (`None`: all).
        use_logits: explain the pre-softmax logit (default) or, with `False`,
            the model's output.
        data_format: layout of the images; defaults to Keras' setting.

    Example:

    ```python
    explainer = GradCAM(model)
    maps = explainer(images, targets=labels)   # (N, H, W, 1) float32
    ```
    """

    def __init__(self, model, layer=None, batch_size=None, use_logits=True,
                 data_format=None):
        self._requested_layer = layer
        self.layer_path, self.layer = None, None
        if layer is not None:
            self.layer_path, self.layer = capture_lib.find_layer(model, layer)
        super().__init__(model, batch_size, use_logits, data_format)

    def _on_inspected(self, inspection):
        if self.layer is not None:
            self._check_layer(inspection)
            return
        self.layer_path, self.layer = last_spatial_layer(inspection, self.data_format, self.model.name)

    def _check_layer(self, inspection):
        shapes = [shape for _, layer, shape in inspection.calls if layer is self.layer]
        spatial = [shape for shape in shapes if shape is not None and shape.rank == 4]
        if spatial:
            size = spatial[-1][2:] if self.data_format == "channels_first" else spatial[-1][1:3]
            if (size[0] or 2) * (size[1] or 2) > 1:
                return
        raise ValueError(
            "GradCAM needs a layer with a 4-D output of spatial size above 1 "
            f"(batch, height, width, channels); layer '{self.layer_path}' of model "
            f"'{self.model.name}' outputs {[str(s) for s in shapes] or 'nothing in a model call'}. "
            f"Received: layer={self._requested_layer!r}"
        )

    def explain_batch(self, images, targets):
        return self.explain_batch_with_scores(images, targets)[0]

    def explain_batch_with_scores(self, images, targets):
        tap = capture_lib.Tap(self.layer)
        height, width = spatial_size(images, self.data_format)
        layer_format = self._layer_format()

        def grad_cam(batch, batch_targets):
            with tf.GradientTape() as tape:
                tape.watch(batch)
                scores, capture = self.scores(batch, taps=[tap])
                activations = capture[tap]
                score = explained_score(self.target_weights(batch_targets, scores), scores)
            gradients = tape.gradient(score, activations)
            activations = to_channels_last(tf.cast(activations, tf.float32), layer_format)
            gradients = to_channels_last(tf.cast(gradients, tf.float32), layer_format)
            cam = tf.nn.relu(tf.reduce_sum(
                self.channel_weights(activations, gradients) * activations, axis=-1, keepdims=True))
            return tf.image.resize(cam, (height, width), method="bilinear"), scores

        return self.map_images(grad_cam, images, targets,
                               ([height, width, 1], [self.num_classes]))

    def channel_weights(self, activations, gradients):
        """Weights (N, 1, 1, K) of the channels from channels_last activations and gradients (N, h, w, K).

        Grad-CAM: the gradients' spatial mean. Subclasses (Grad-CAM++) override this.
        """
        return tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)

    def _layer_format(self):
        return getattr(self.layer, "data_format", None) or self.data_format

    def get_config(self):
        return {"layer": self.layer_path, **super().get_config()}
