"""Batched, graph-compiled explainers with one contract.

`explainer = GradCAM(model)`; `maps = explainer(images, targets=None)`
returns float32 maps (N, H, W, 1) at input resolution, not normalised.
"""

from keras_edda.explainers.base import Explainer
from keras_edda.explainers.decoys import Decoys
from keras_edda.explainers.grad_cam import GradCAM
from keras_edda.explainers.grad_cam_pp import GradCAMPlusPlus
from keras_edda.explainers.integrated_gradients import IntegratedGradients
from keras_edda.explainers.kernel_shap import KernelShap
from keras_edda.explainers.lime import Lime
from keras_edda.explainers.meaningful_perturbation import MeaningfulPerturbation
from keras_edda.explainers.occlusion import Occlusion
from keras_edda.explainers.random import RandomExplainer
from keras_edda.explainers.registry import EXPLAINERS, FunctionExplainer, get, name_of, register
from keras_edda.explainers.rise import Rise
from keras_edda.explainers.saliency import Saliency
from keras_edda.explainers.score_cam import ScoreCAM
from keras_edda.explainers.smoothgrad import SmoothGrad

__all__ = [
    "EXPLAINERS",
    "Decoys",
    "Explainer",
    "FunctionExplainer",
    "GradCAM",
    "GradCAMPlusPlus",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "MeaningfulPerturbation",
    "Occlusion",
    "RandomExplainer",
    "Rise",
    "Saliency",
    "ScoreCAM",
    "SmoothGrad",
    "get",
    "name_of",
    "register",
]
