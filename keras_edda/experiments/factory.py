"""Fresh models of one architecture, one per run of a comparison."""

import os
import zipfile

import keras

from keras_edda import _checks, models


class ModelFactory:
    """Fresh, re-initialised models of one architecture, one per run.

    Args:
        spec: a name `keras_edda.models.build` knows (`"cnn"`, `"resnet"`,
            `"resnet20"`, any `keras.applications` constructor such as
            `"mobilenet_v3_small"`, built with `weights=None`), or the path
            of a `.keras` file whose architecture is used with fresh weights
            (its saved weights are not).
        input_shape: shape of one image.
        num_classes: number of classes.

    Example:

    ```python
    factory = ModelFactory("cnn", (32, 32, 1), 10)
    keras.utils.set_random_seed(0)
    model = factory.build()
    ```
    """

    def __init__(self, spec, input_shape, num_classes):
        self.spec = spec
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.template = None
        if models.is_known(spec) and not os.path.exists(spec):
            models.build(spec, self.input_shape, num_classes)  # a bad size or name fails now, not in a run
        else:
            self.template = self._load(spec)

    @property
    def is_file(self):
        """Whether the architecture comes from a user's `.keras` file."""
        return self.template is not None

    def _load(self, path):
        if not os.path.exists(path):
            raise ValueError(f"Model file not found. Received: model={path!r}")
        if not os.path.isfile(path):
            raise ValueError(f"The model must be a .keras file, not a folder. Received: model={path!r}")
        if not zipfile.is_zipfile(path):  # Keras would say "File not found" about a damaged archive
            raise ValueError(f"Cannot load model {path!r}: not a .keras archive (a .keras file is a zip file; "
                             "this one is damaged or of another format)")
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:  # Keras raises many kinds for a bad file
            raise ValueError(
                f"Cannot load model {path!r} (not a readable .keras file: "
                f"{str(error).strip().splitlines()[0][:200]})") from None
        shape = _checks.model_image_shape(model)
        if shape is None or len(model.outputs) != 1:
            raise ValueError(f"The model must have one image input and one output. Received: model={path!r}")
        if shape != self.input_shape:
            raise ValueError(
                f"The model's input shape {shape} does not match the data "
                f"{self.input_shape}; use --image-size / --channels. Received: model={path!r}")
        if len(model.outputs[0].shape) != 2:
            raise ValueError(
                "The model must output class scores (batch, classes); an output of shape "
                f"{tuple(model.outputs[0].shape)} (e.g. a segmentation map) is not a classifier. "
                f"Received: model={path!r}")
        outputs = model.outputs[0].shape[-1]
        if outputs != self.num_classes:
            raise ValueError(
                f"The model has {outputs} outputs but the data has {self.num_classes} classes. "
                f"Received: model={path!r}")
        return model

    def build(self):
        """A new model with fresh weights (seed it with `keras.utils.set_random_seed`)."""
        if self.template is None:
            return models.build(self.spec, self.input_shape, self.num_classes)
        return keras.models.clone_model(self.template)
