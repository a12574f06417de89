"""Smooth random maps: the non-explanation baseline of the EDDA paper."""

import keras
import tensorflow as tf

from keras_edda import _checks
from keras_edda.explainers.base import Explainer
from keras_edda.explainers.registry import register
from keras_edda.ops.layout import spatial_size


@register("random")
class RandomExplainer(Explainer):
    """Smooth random maps that ignore the model.

    Uniform noise on a coarse `grid_size` x `grid_size` grid, upsampled
    bilinearly to the image size: blobs of about the size of the objects a
    real explainer highlights. Used with the same mask settings as a real
    explainer, it gives random occlusion of the same area, the fair baseline
    the EDDA paper compares against. The model is never called.

    Args:
        model: the model (only its data format and class count are used).
        grid_size: side of the coarse noise grid (default 4).
        seed: seed of the random draws: two explainers with the same seed
            give the same sequence of maps (`None`: not reproducible).
        data_format: layout of the images.

    Example:

    ```python
    maps = RandomExplainer(model, seed=0)(images)
    ```
    """

    def __init__(self, model, grid_size=4, seed=None, batch_size=None,
                 use_logits=True, data_format=None):
        self.grid_size = _checks.check_positive_int(grid_size, "grid_size")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        super().__init__(model, batch_size, use_logits, data_format)

    def explain_batch(self, images, targets):
        height, width = spatial_size(images, self.data_format)
        num_images = tf.shape(images)[0]
        noise = keras.random.uniform(
            tf.stack([num_images, self.grid_size, self.grid_size, 1]), seed=self.seed_generator
        )
        return tf.image.resize(noise, (height, width), method="bilinear")

    def get_config(self):
        return {"grid_size": self.grid_size, "seed": self.seed, **super().get_config()}
