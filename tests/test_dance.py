"""DANCE (Decoys): the decoys' constraints, range aggregation against NumPy,
the saturation known answer, batch independence, the contract, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers, metrics
from keras_edda.explainers import capture

FAST = {"steps": 6, "epsilon": 0.05, "batch_size": 64}


@pytest.fixture
def cnn():
    return small_cnn((8, 8, 3), 4)


@pytest.fixture
def tiny():
    return random_images(2, (8, 8, 3))


def layer_values(model, layer, images):
    tap = capture.Tap(layer)
    with capture.Capture([tap]) as recorded:
        model(images, training=False)
    return recorded[tap].numpy().reshape(len(images), -1)


def saturating_model():
    """logits = [c, -c], c = min(relu(sum of a 2x2 evidence block), 3.5).

    On an image with the block at 1 the evidence is 4: c is capped and the
    input gradient is zero everywhere, though the block decides the class.
    """
    evidence = np.zeros((8, 8, 1), "float32")
    evidence[3:5, 3:5] = 1.0
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(),
        keras.layers.Dense(1, use_bias=False, name="evidence"),
        keras.layers.ReLU(max_value=3.5, name="cap"),
        keras.layers.Dense(2, use_bias=False, name="head")])
    model.get_layer("evidence").set_weights([evidence.reshape(-1, 1)])
    model.get_layer("head").set_weights([np.array([[1.0, -1.0]], "float32")])
    return model, evidence


def test_decoys_satisfy_their_constraints(cnn, tiny):
    explainer = explainers.Decoys(cnn, **FAST)
    decoys = explainer.decoys(tiny).numpy()
    masks = explainer.patch_masks(8, 8).numpy()
    assert decoys.shape == (2, len(masks), 2, 8, 8, 3)
    change = decoys - tiny[:, None, None]
    outside = change * (1.0 - masks)[None, :, None, :, :, None]
    assert np.abs(outside).max() == 0.0
    assert decoys.min() >= 0.0 and decoys.max() <= 1.0
    reference = layer_values(cnn, explainer.layer, tiny)
    deviation = np.abs(layer_values(cnn, explainer.layer, decoys.reshape(-1, 8, 8, 3))
                       .reshape(2, len(masks), 2, -1) - reference[:, None, None]).max(axis=-1)
    assert deviation.max() <= 0.05 + 1e-5
    # They move, each in its own direction: the objective of the paper is positive.
    signs = np.array([1.0, -1.0])[None, None, :, None, None, None]
    moved = np.maximum(signs * change, 0.0).sum(axis=(3, 4, 5))
    assert np.mean(moved > 0.1) > 0.9
    assert explainer.layer_path == "conv2"


def test_range_and_mean_against_numpy_on_the_decoys(cnn, tiny):
    settings = dict(FAST, postprocess=("abs", "winsorize", "minmax"))
    decoys = explainers.Decoys(cnn, **FAST).decoys(tiny).numpy()
    predicted = np.argmax(cnn.predict(tiny, verbose=0), axis=-1)
    base = explainers.Saliency(cnn)(
        decoys.reshape(-1, 8, 8, 3), np.repeat(predicted, decoys.shape[1] * 2)).numpy()
    base = base.reshape(2, -1, 8, 8, 1)

    spread = base.max(axis=1) - base.min(axis=1)
    np.testing.assert_allclose(explainers.Decoys(cnn, **FAST)(tiny), spread, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(explainers.Decoys(cnn, aggregation="mean", **FAST)(tiny),
                               base.mean(axis=1), rtol=1e-4, atol=1e-6)

    ceiling = np.percentile(spread.reshape(2, -1), 95, axis=1, method="lower")
    clipped = np.minimum(np.abs(spread), ceiling[:, None, None, None])
    low = clipped.min(axis=(1, 2, 3), keepdims=True)
    high = clipped.max(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(explainers.Decoys(cnn, **settings)(tiny),
                               (clipped - low) / (high - low + 1e-8), rtol=1e-3, atol=1e-5)


def test_saturation_known_answer():
    model, evidence = saturating_model()
    image = evidence[None].copy()
    saliency = explainers.Saliency(model)(image).numpy()
    assert np.all(saliency == 0.0)  # saturated: the gradient sees nothing

    explainer = explainers.Decoys(model, layer="cap", epsilon=0.3, steps=10)
    maps = explainer(image).numpy()[0, ..., 0]
    # A decoy that lowers the block enough leaves the cap (gradient 1 on the
    # block), one that does not keeps it (gradient 0): the range is 1 there.
    np.testing.assert_allclose(maps[3:5, 3:5], 1.0)
    assert np.all(maps[evidence[..., 0] == 0] == 0.0)
    decoys = explainer.decoys(image).numpy()
    kept = np.minimum(decoys.reshape(-1, 64) @ evidence.reshape(-1), 3.5)
    assert np.all(kept >= 3.5 - 0.3 - 1e-5)


def test_batch_equals_single_image_and_order_does_not_matter(cnn):
    images = random_images(4, (8, 8, 3), seed=5)
    explainer = explainers.Decoys(cnn, **FAST)
    whole = explainer(images).numpy()
    np.testing.assert_allclose(explainer(images[2:3])[0], whole[2], rtol=1e-3, atol=1e-5)
    order = np.array([3, 0, 2, 1])
    np.testing.assert_allclose(explainer(images[order]), whole[order], rtol=1e-3, atol=1e-5)
    chunked = explainers.Decoys(cnn, **dict(FAST, batch_size=7))(images)
    np.testing.assert_allclose(chunked, whole, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("base", ["smoothgrad", "integrated_gradients", "instance"])
def test_other_base_explainers(cnn, tiny, base):
    kwargs = {"smoothgrad": {"samples": 2}, "integrated_gradients": {"steps": 3}}.get(base)
    if base == "instance":
        base, kwargs = explainers.GradCAM(cnn), None
    maps = explainers.Decoys(cnn, base=base, base_kwargs=kwargs, **FAST)(tiny, targets=1).numpy()
    assert maps.shape == (2, 8, 8, 1) and np.all(np.isfinite(maps))
    assert np.all(maps >= 0) and maps.max() > 0


def test_contract_graph_contexts_channels_first_mixed_precision(cnn, tiny):
    explainer = explainers.Decoys(cnn, **FAST)
    eager = explainer(tiny, targets=[0, 1]).numpy()
    in_graph = tf.function(lambda x: explainer(x, targets=tf.constant([0, 1])))(tf.constant(tiny))
    np.testing.assert_allclose(in_graph, eager, rtol=1e-4, atol=1e-6)
    dataset = tf.data.Dataset.from_tensor_slices(tiny).batch(2).map(lambda x: explainer(x, targets=1))
    np.testing.assert_allclose(next(iter(dataset)), explainer(tiny, targets=1), rtol=1e-4, atol=1e-6)

    keras.config.set_image_data_format("channels_first")
    first = small_cnn((3, 8, 8), 4, data_format="channels_first")
    first.set_weights(cnn.get_weights())
    maps = explainers.Decoys(first, **FAST)(np.transpose(tiny, (0, 3, 1, 2)), targets=[0, 1])
    np.testing.assert_allclose(np.transpose(maps, (0, 2, 3, 1)), eager, rtol=1e-3, atol=1e-5)
    keras.config.set_image_data_format("channels_last")

    keras.mixed_precision.set_global_policy("mixed_float16")
    half = small_cnn((8, 8, 3), 4)
    maps = explainers.Decoys(half, **FAST)(tiny)
    assert maps.dtype == tf.float32 and np.all(np.isfinite(maps.numpy()))


def test_usable_by_name_in_the_alignment_suite(cnn, tiny):
    explainer = explainers.get("dance", cnn, steps=4)
    assert isinstance(explainer, explainers.Decoys) and explainers.name_of(explainer) == "dance"
    suite = metrics.AlignmentSuite(("dance",), ("deletion_auc",),
                                   explainer_kwargs={"dance": {"steps": 4, "batch_size": 64}})
    scores = suite.evaluate(cnn, tiny)["dance"]["deletion_auc"].numpy()
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


@pytest.mark.parametrize("kwargs, match", [
    ({"epsilon": 0.0}, "epsilon=0.0"),
    ({"epsilon": -1}, "epsilon=-1"),
    ({"steps": 0}, "steps=0"),
    ({"layer": "no_such_layer"}, "no_such_layer"),
    ({"base": "no_such_explainer"}, "no_such_explainer"),
    ({"base": 3}, "base=3"),
    ({"aggregation": "median"}, "aggregation='median'"),
    ({"postprocess": ("abs", "sqrt")}, "sqrt"),
    ({"value_range": (1.0, 0.0)}, r"value_range=\(1.0, 0.0\)"),
])
def test_bad_arguments(cnn, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        explainers.Decoys(cnn, **kwargs)


def test_patch_larger_than_the_image(cnn, tiny):
    with pytest.raises(ValueError, match=r"patch_size=\(9, 9\)"):
        explainers.Decoys(cnn, patch_size=9)(tiny)


def test_nested_model_matches_the_inner_model(cnn, tiny):
    outer = keras.Sequential([keras.Input((8, 8, 3)), cnn])
    explainer = explainers.Decoys(outer, **FAST)
    assert explainer.layer_path == "small_cnn/conv2"
    np.testing.assert_allclose(explainer(tiny, targets=1), explainers.Decoys(cnn, **FAST)(tiny, targets=1),
                               rtol=1e-4, atol=1e-6)
