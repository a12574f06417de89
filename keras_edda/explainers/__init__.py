"""Batched, graph-compiled explainers with one contract.

`explainer = GradCAM(model)`; `maps = explainer(images, targets=None)`
returns float32 maps (N, H, W, 1) at input resolution, not normalised.
"""

from keras_edda.explainers.base import Explainer
from keras_edda.explainers.grad_cam import GradCAM
from keras_edda.explainers.integrated_gradients import IntegratedGradients
from keras_edda.explainers.occlusion import Occlusion
from keras_edda.explainers.random import RandomExplainer
from keras_edda.explainers.saliency import Saliency

EXPLAINERS = {
    "grad_cam": GradCAM,
    "integrated_gradients": IntegratedGradients,
    "occlusion": Occlusion,
    "saliency": Saliency,
    "random": RandomExplainer,
}


def name_of(explainer):
    """The registry name of an explainer instance, or a checked name.

    Raises:
        ValueError: for a name that is not in `EXPLAINERS`.
    """
    if isinstance(explainer, Explainer):
        return next(name for name, cls in EXPLAINERS.items() if type(explainer) is cls)
    if explainer not in EXPLAINERS:
        raise ValueError(
            f"Unknown explainer. Expected one of {list(EXPLAINERS)} or an "
            f"Explainer instance. Received: explainer={explainer!r}"
        )
    return explainer


def get(name, model, **kwargs):
    """Returns an explainer by name, or `name` itself if it is an Explainer.

    Args:
        name: one of `"grad_cam"`, `"integrated_gradients"`, `"occlusion"`,
            `"saliency"`, `"random"`, or an `Explainer` instance.
        model: the `keras.Model` to explain.
        **kwargs: passed to the explainer's constructor.

    Returns:
        An `Explainer`.

    Example:

    ```python
    explainer = keras_edda.explainers.get("integrated_gradients", model, steps=16)
    ```
    """
    if isinstance(name, Explainer):
        return name
    return EXPLAINERS[name_of(name)](model, **kwargs)


__all__ = [
    "EXPLAINERS",
    "Explainer",
    "GradCAM",
    "IntegratedGradients",
    "Occlusion",
    "RandomExplainer",
    "Saliency",
    "get",
    "name_of",
]
