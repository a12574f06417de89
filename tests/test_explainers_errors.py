"""Bad input gets an error that names the argument and echoes the value."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images

from keras_edda import explainers, metrics


def test_wrong_rank(model):
    with pytest.raises(ValueError, match=r"`images`.*rank 4.*Received: images.shape=\(16, 16, 3\)"):
        explainers.GradCAM(model)(random_images(1)[0])


def test_integer_images(model):
    with pytest.raises(TypeError, match="`images`.*floating.*Received: images.dtype=uint8"):
        explainers.Saliency(model)(np.zeros((2, 16, 16, 3), "uint8"))


def test_targets_wrong_length(model, images):
    with pytest.raises(ValueError, match=r"`targets`.*one entry per image.*Received"):
        explainers.GradCAM(model)(images, [0, 1, 2])


def test_targets_out_of_range(model, images):
    with pytest.raises(ValueError, match=r"`targets` must be class ids in \[0, 5\).*7"):
        explainers.IntegratedGradients(model, steps=2)(images, 7)
    with pytest.raises(ValueError, match=r"class ids.*-1"):
        explainers.Occlusion(model, patch_size=8)(images, [-1, 0, 0, 0, 0, 0])


def test_targets_wrong_width(model, images):
    with pytest.raises(ValueError, match=r"C=5 columns.*Received: targets.shape=\(6, 3\)"):
        explainers.Saliency(model)(images, np.zeros((6, 3), "float32"))


def test_targets_wrong_type(model, images):
    with pytest.raises(ValueError, match="`targets`"):
        explainers.Saliency(model)(images, np.zeros((6,), "float32"))


def test_targets_checked_at_run_time_inside_a_graph(model, images):
    explainer = explainers.Saliency(model)
    compiled = tf.function(lambda x, y: explainer(x, y))
    with pytest.raises(tf.errors.InvalidArgumentError, match="class ids"):
        compiled(images, tf.constant([9, 0, 0, 0, 0, 0]))


def test_unknown_layer_name(model):
    with pytest.raises(ValueError, match=r"`layer` names no layer.*'nope'.*conv2"):
        explainers.GradCAM(model, layer="nope")
    with pytest.raises(ValueError, match=r"`layer` names no layer.*small_cnn/conv1"):
        explainers.GradCAM(model, layer="small_cnn/conv1")


def test_model_without_spatial_layer():
    dense_only = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    with pytest.raises(ValueError, match="GradCAM needs a layer with a 4-D output"):
        explainers.GradCAM(dense_only)
    rescale_only = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Rescaling(2.0),
         keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    with pytest.raises(ValueError, match="after a convolution"):
        explainers.GradCAM(rescale_only)


def test_steps_below_one(model):
    with pytest.raises(ValueError, match="`steps`.*Received: steps=0"):
        explainers.IntegratedGradients(model, steps=0)


def test_patch_larger_than_image(model, images):
    with pytest.raises(ValueError, match=r"`patch_size`.*Received: patch_size=\(20, 20\)"):
        explainers.Occlusion(model, patch_size=20)(images)


def test_bad_settings(model):
    with pytest.raises(ValueError, match="`batch_size`.*Received: batch_size=0"):
        explainers.GradCAM(model, batch_size=0)
    with pytest.raises(ValueError, match="`method`.*Received: method='simpson'"):
        explainers.IntegratedGradients(model, method="simpson")
    with pytest.raises(ValueError, match="`fill`.*Received: fill='purple'"):
        explainers.Occlusion(model, fill="purple")
    with pytest.raises(ValueError, match="Unknown explainer.*Received: explainer='no_such_explainer'"):
        explainers.get("no_such_explainer", model)
    with pytest.raises(TypeError, match="`model` must be a `keras.Model`"):
        explainers.GradCAM(lambda x: x)
    with pytest.raises(ValueError, match="`data_format`.*Received: data_format='NHWC'"):
        explainers.Saliency(model, data_format="NHWC")


@pytest.mark.parametrize("build", [
    lambda model, seed: explainers.Rise(model, seed=seed),
    lambda model, seed: explainers.KernelShap(model, seed=seed),
    lambda model, seed: explainers.Lime(model, seed=seed),
    lambda model, seed: explainers.SmoothGrad(model, seed=seed),
    lambda model, seed: metrics.MuFidelity(seed=seed),
    lambda model, seed: metrics.ModelParameterRandomisation(seed=seed),
], ids=["rise", "kernel_shap", "lime", "smoothgrad", "mu_fidelity", "randomisation"])
@pytest.mark.parametrize("seed", [True, 1.5, "0"])
def test_seed_must_be_an_int(model, build, seed):
    with pytest.raises(TypeError, match=rf"`seed` must be an int.*Received: seed={seed!r}"):
        build(model, seed)
