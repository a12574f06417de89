"""Random occlusion of the area an explainer would occlude: EDDA's fair baseline."""

import keras

from keras_edda.methods.edda import EDDA
from keras_edda.methods.registry import register


@register("random")
@keras.saving.register_keras_serializable(package="keras_edda")
class RandomOcclusion(EDDA):
    """EDDA's copies with random maps in place of explanations.

    The non-explanation baseline of the EDDA paper: smooth random maps
    (`keras_edda.explainers.RandomExplainer`) pick the occluded region, and
    with a `threshold` each image's area is the one `area_from`'s mask would
    have (Grad-CAM by default), so the comparison with EDDA is at equal
    occluded area; with a `fraction` the area is that fraction anyway. Every
    other setting and the targets are EDDA's.

    Cost per step: the `area_from` explanation of the batch, which also
    gives the prediction (with a threshold), or one forward pass for the
    prediction (with a `fraction`), plus what EDDA's copies cost (see
    `EDDA`).

    Args:
        model: the classifier.
        area_from: explainer whose mask areas are matched (`"grad_cam"`);
            ignored with `fraction`.
        area_from_kwargs: settings of the `area_from` explainer.
        grid_size: side of the coarse random grid (4).
        seed: seed of the random maps and of the `rate` draws.
        **kwargs: the settings of `EDDA` (`threshold`, `fraction`, `fill`,
            `salient_target`, ...).

    Example:

    ```python
    baseline = keras_edda.methods.RandomOcclusion(classifier, seed=0)
    model = keras.Sequential([baseline, classifier])
    ```
    """

    driven_by = "area_from"

    def __init__(self, model, area_from="grad_cam", grid_size=4, seed=None, **kwargs):
        for name in ("explainer", "explainer_kwargs"):
            if kwargs.get(name) is not None:
                raise ValueError(f"RandomOcclusion's maps are random (`grid_size`, `seed`); it takes no "
                                 f"`{name}`. Received: {name}={kwargs[name]!r}")
            kwargs.pop(name, None)
        self.grid_size = grid_size
        if kwargs.get("fraction") is not None:
            area_from = None
        super().__init__(model, explainer="random", explainer_kwargs={"grid_size": grid_size, "seed": seed},
                         area_from=area_from, seed=seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("explainer")
        config.pop("explainer_kwargs")
        return {**config, "grid_size": self.grid_size}
