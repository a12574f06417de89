"""One look at a model call: its layers in call order, its output layer and size."""

from keras_edda.explainers import capture as capture_lib


class ModelInspection:
    """What one look at a model call tells: layers in call order, output size.

    Attributes:
        calls: `(path, layer, output_shape)` for every layer call, in order.
        num_classes: size of the model's last output axis.
        output_layer: the last layer called, whose output is the model's.
    """

    def __init__(self, model, images):
        paths = {id(layer): path for path, layer in capture_lib.leaf_layers(model)}
        layers = [layer for _, layer in capture_lib.leaf_layers(model)]
        with capture_lib.Capture(record_all=layers) as capture:
            outputs = model(images[:1], training=False)
        if isinstance(outputs, (list, tuple, dict)):
            raise ValueError(
                "keras_edda explains models with a single output tensor. "
                f"Received: model '{model.name}' with {len(outputs)} outputs"
            )
        if outputs.shape.rank != 2:
            raise ValueError(
                "keras_edda explains classifiers: the model's output must be class "
                "scores (batch, classes), not e.g. a segmentation map. Received: model "
                f"'{model.name}' whose output for one image has shape {tuple(outputs.shape[1:])}"
            )
        self.calls = [
            (paths[id(layer)], layer, getattr(out, "shape", None))
            for layer, out in capture.calls
        ]
        self.num_classes = int(outputs.shape[-1])
        self.output_layer = self.calls[-1][1] if self.calls else None
