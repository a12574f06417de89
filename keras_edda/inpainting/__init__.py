"""Removing features with a learned inpainter (Agarwal & Nguyen, ACCV 2020).

Perturbation explainers (sliding occlusion, LIME, meaningful perturbation)
remove a region by filling it; grey, blur or noise push the image off the
data distribution. A network trained on the user's own images to fill random
holes keeps it on the distribution:

```python
network = keras_edda.inpainting.train_inpainter(x_train, epochs=20)
fill = keras_edda.inpainting.Inpainter(network)      # or fill="inpainter:path.keras"
maps = keras_edda.explainers.Lime(classifier, fill=fill)(images)   # LIME-G
```
"""

from keras_edda.inpainting.fill import Inpainter
from keras_edda.inpainting.network import build_inpainter
from keras_edda.inpainting.training import (
    InpainterTrainer,
    hole_losses,
    random_masks,
    square_holes,
    train_inpainter,
)

__all__ = [
    "Inpainter",
    "InpainterTrainer",
    "build_inpainter",
    "hole_losses",
    "random_masks",
    "square_holes",
    "train_inpainter",
]
