"""Alignment metrics: known answers on a linear model, a slow numpy
reference, independence of batch composition, bad input."""

import keras
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers, metrics

# The metrics called as metric(model, images, maps): the kinds that replace or remove pixels.
NAMES = list(metrics.names("fill") + metrics.names("fill_free"))


def linear_two_class_model(shape=(8, 8, 3), seed=0):
    """softmax(W x) with W_1 = -W_0: the exact share of each pixel in the
    class margin is sum over channels of (W_c - W_other) * x."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(int(np.prod(shape)), 1)).astype("float32")
    model = keras.Sequential([
        keras.Input(shape), keras.layers.Flatten(),
        keras.layers.Dense(2, activation="softmax", use_bias=False)])
    model.layers[-1].set_weights([np.concatenate([weights, -weights], axis=1)])
    return model, weights.reshape(shape)


def true_maps(model, weights, images):
    predicted = np.argmax(model.predict(images, verbose=0), axis=-1)
    sign = np.where(predicted == 0, 1.0, -1.0)[:, None, None, None]
    return np.sum(2.0 * sign * weights[None] * images, axis=-1, keepdims=True).astype("float32")


# Not the saliency metric: the linear model's evidence is spread over the whole image, so every map's box
# is the whole image.
@pytest.mark.parametrize("name", [n for n in NAMES if n != "saliency_metric"])
def test_true_map_beats_random_beats_reversed(name):
    model, weights = linear_two_class_model()
    images = random_images(64, (8, 8, 3), seed=3)
    exact = true_maps(model, weights, images)
    noise = np.random.default_rng(4).normal(size=exact.shape).astype("float32")
    metric = metrics.get(name)
    means = [float(np.mean(metric(model, images, m))) for m in (exact, noise, -exact)]
    if metric.score_direction == "lower":
        means = [-m for m in means]
    assert means[0] > means[1] > means[2], (name, means)


def test_metric_attributes():
    for name, cls in metrics.METRICS.items():
        assert cls.name == name
        assert cls.score_direction in ("higher", "lower")
        assert cls.kind in metrics.KINDS


# A slow, obviously-correct reference: one image and one step at a time.

def probabilities(model, image):
    return model(image[None].astype("float32"), training=False).numpy()[0]


def reference_curve(model, image, saliency, steps, start, end):
    height, width = image.shape[:2]
    order = np.argsort(-saliency.reshape(-1), kind="stable")
    per_step = -(-height * width // steps)
    cls = np.argmax(probabilities(model, image))
    curve = []
    for k in range(steps + 1):
        changed = np.zeros(height * width, bool)
        changed[order[:min(k * per_step, height * width)]] = True
        changed = changed.reshape(height, width, 1)
        curve.append(probabilities(model, np.where(changed, end, start))[cls])
    return np.array(curve)


def reference_auc(curve):
    return (curve.sum() - curve[0] / 2 - curve[-1] / 2) / (len(curve) - 1)


def reference_blur(image):
    # Kernel 11 (radius 5 = truncate 1.0 * sigma 5), mirrored edges.
    return np.stack([scipy.ndimage.gaussian_filter(image[..., c], 5.0, mode="reflect", truncate=1.0)
                     for c in range(image.shape[-1])], axis=-1)


def reference_occluded(model, image, fill_mask, score):
    original = probabilities(model, image)
    occluded = probabilities(model, np.where(fill_mask, 0.0, image))
    return score(original, occluded, np.argmax(original))


def minmax(a):
    return (a - a.min()) / max(a.max() - a.min(), 1e-12)


def top_fraction(saliency, fraction):
    order = np.argsort(-saliency.reshape(-1), kind="stable")
    mask = np.zeros(saliency.size, bool)
    mask[order[:max(int(round(fraction * saliency.size)), 1)]] = True
    return mask.reshape(saliency.shape)


REFERENCE_SCORES = {
    "average_drop": (lambda s: ~top_fraction(s, 0.15),
                     lambda p, q, c: max(p[c] - q[c], 0.0) / p[c]),
    "increase_in_confidence": (lambda s: ~top_fraction(s, 0.15),
                               lambda p, q, c: float(q[c] > p[c])),
    "salient_occlusion_drop": (lambda s: minmax(s) > 0.5, lambda p, q, c: p[c] - q[c]),
    "non_salient_agreement": (lambda s: ~(minmax(s) > 0.5),
                              lambda p, q, c: float(np.argmax(p) == np.argmax(q))),
}


# ROAD, the saliency metric and MuFidelity have their references in test_metrics_road.py,
# test_metrics_saliency.py and test_metrics_mu_fidelity.py.
@pytest.mark.parametrize("name", [n for n in NAMES
                                  if not n.startswith("road") and n not in ("saliency_metric", "mu_fidelity")])
def test_agrees_with_a_slow_reference(name):
    model = small_cnn((16, 16, 3), 5)
    images = random_images(4, (16, 16, 3), seed=5)
    maps = explainers.GradCAM(model)(images).numpy()
    if name in REFERENCE_SCORES:
        fill_mask, score = REFERENCE_SCORES[name]
        expected = [reference_occluded(model, x, fill_mask(m), score) for x, m in zip(images, maps)]
        got = metrics.get(name)(model, images, maps)
    else:
        steps = 6
        expected = []
        for x, m in zip(images, maps):
            deletion = name.startswith("deletion_auc")
            start, end = (x, np.zeros_like(x)) if deletion else (reference_blur(x), x)
            curve = reference_curve(model, x, m, steps, start, end)
            if name.endswith("_normalized"):
                curve = curve / np.max(probabilities(model, x))
            expected.append(reference_auc(curve))
        got = metrics.get(name, steps=steps)(model, images, maps)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_deletion_curve_matches_reference_and_auc():
    model = small_cnn((16, 16, 3), 5)
    images = random_images(3, (16, 16, 3), seed=6)
    maps = explainers.Saliency(model)(images).numpy()
    metric = metrics.DeletionAUC(steps=5)
    curves = metric.curve(model, images, maps)
    assert curves.shape == (3, 6)
    expected = [reference_curve(model, x, m, 5, x, np.zeros_like(x)) for x, m in zip(images, maps)]
    np.testing.assert_allclose(curves, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metric(model, images, maps), metrics.trapezoid_auc(curves), rtol=1e-6)
    # Default steps: one image width of pixels per step -> H steps.
    assert metrics.InsertionAUC().curve(model, images, maps).shape == (3, 17)


# The normalised variants and LeRF share the code of deletion, insertion and MoRF.
@pytest.mark.parametrize("name", [n for n in NAMES if not n.endswith("_normalized") and n != "road_lerf"])
def test_scores_do_not_depend_on_the_batch(name):
    model = small_cnn((16, 16, 3), 5)
    images = random_images(7, (16, 16, 3), seed=7)
    maps = explainers.GradCAM(model)(images)
    settings = {"noise": 0.0} if name.startswith("road") else {}
    metric = metrics.get(name, batch_size=5, **settings)
    whole = metric(model, images, maps).numpy()
    permutation = np.random.default_rng(0).permutation(7)
    permuted = metric(model, tf.gather(images, permutation), tf.gather(maps, permutation))
    np.testing.assert_allclose(permuted, whole[permutation], rtol=1e-5, atol=1e-6)
    single = np.concatenate([metric(model, images[i:i + 1], maps[i:i + 1]) for i in range(7)])
    np.testing.assert_allclose(single, whole, rtol=1e-5, atol=1e-6)
    unchunked = metrics.get(name, batch_size=None, **settings)(model, images, maps)
    np.testing.assert_allclose(unchunked, whole, rtol=1e-5, atol=1e-6)


def test_targets_and_heads():
    softmax_model = small_cnn((16, 16, 3), 5)
    logits_model = small_cnn((16, 16, 3), 5, activation=None)
    logits_model.set_weights(softmax_model.get_weights())
    images = random_images(4, (16, 16, 3))
    maps = explainers.GradCAM(softmax_model)(images)
    metric = metrics.DeletionAUC(steps=4)
    # A logits model gets a softmax: same probabilities, same scores.
    np.testing.assert_allclose(metric(logits_model, images, maps),
                               metric(softmax_model, images, maps), rtol=1e-5)
    # Targets given as ids or one-hot pick the same class.
    np.testing.assert_allclose(metric(softmax_model, images, maps, 2),
                               metric(softmax_model, images, maps, tf.one_hot([2] * 4, 5)),
                               rtol=1e-6)
    # A sigmoid head is read as the two probabilities [1 - p, p].
    binary = small_cnn((16, 16, 3), 1, activation="sigmoid")
    binary_maps = explainers.GradCAM(binary)(images)
    scores = metrics.AverageDrop()(binary, images, binary_maps)
    assert scores.shape == (4,) and bool(tf.reduce_all(tf.math.is_finite(scores)))
    # Its targets as the explainers take them, (N, 1) (a 0/1 label or a -1/+1 weight), pick the class.
    ids = np.array([1, 0, 0, 1], "int32")
    by_ids = metric(binary, images, binary_maps, ids)
    for column in (ids[:, None].astype("float32"), np.where(ids == 1, 1.0, -1.0)[:, None].astype("float32")):
        np.testing.assert_allclose(metric(binary, images, binary_maps, column), by_ids, rtol=1e-6)
    assert not np.allclose(by_ids, metric(binary, images, binary_maps, 1 - ids))


def test_inside_tf_function_and_channels_first():
    model = small_cnn((16, 16, 3), 5)
    images = random_images(4, (16, 16, 3))
    maps = explainers.GradCAM(model)(images)
    metric = metrics.InsertionAUC(steps=4)
    eager = metric(model, images, maps)
    compiled = tf.function(lambda x, m: metric(model, x, m))(tf.constant(images), maps)
    np.testing.assert_allclose(compiled, eager, rtol=1e-6)

    keras.config.set_image_data_format("channels_first")
    first = small_cnn((3, 16, 16), 5, data_format="channels_first")
    first.set_weights(model.get_weights())
    to_first = lambda a: np.transpose(np.asarray(a), (0, 3, 1, 2))  # noqa: E731
    np.testing.assert_allclose(
        metrics.InsertionAUC(steps=4)(first, to_first(images), to_first(maps)), eager,
        rtol=1e-4, atol=1e-6)


def test_bad_input():
    model = small_cnn((16, 16, 3), 5)
    images = random_images(4, (16, 16, 3))
    maps = np.zeros((4, 16, 16, 1), "float32")
    metric = metrics.DeletionAUC()
    with pytest.raises(ValueError, match=r"Received: maps.shape=\(4, 8, 8, 1\)"):
        metric(model, images, maps[:, :8, :8])
    with pytest.raises(ValueError, match=r"Received: maps.shape=\(3, 16, 16, 1\)"):
        metric(model, images, maps[:3])
    with pytest.raises(ValueError, match="rank 4"):
        metric(model, images[0], maps)
    with pytest.raises(TypeError, match="images.dtype=int32"):
        metric(model, images.astype("int32"), maps)
    bad = images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="`images` contains NaN"):
        metric(model, bad, maps)
    with pytest.raises(ValueError, match="Received: metric='iou'"):
        metrics.get("iou")
    with pytest.raises(ValueError, match="Received: steps=0"):
        metrics.DeletionAUC(steps=0)
    with pytest.raises(ValueError, match="Received: fraction=1.5"):
        metrics.AverageDrop(fraction=1.5)
    with pytest.raises(ValueError, match="exactly one"):
        metrics.SalientOcclusionDrop(threshold=0.5, fraction=0.2)
    with pytest.raises(ValueError, match="one entry per image"):
        metric(model, images, maps, targets=[0, 1])


# Per-step fills: the fill sees the current image and the current mask.

def visible_mean_fill(images, mask):
    """A context fill: each image's mean colour over the pixels still visible."""
    visible = 1.0 - mask
    total = tf.reduce_sum(images * visible, axis=(1, 2), keepdims=True)
    count = tf.maximum(tf.reduce_sum(visible, axis=(1, 2), keepdims=True), 1.0)
    return tf.broadcast_to(total / count, tf.shape(images))


def reference_context_curve(model, image, saliency, steps, deletion):
    height, width = image.shape[:2]
    order = np.argsort(-saliency.reshape(-1), kind="stable")
    per_step = -(-height * width // steps)
    cls = np.argmax(probabilities(model, image))
    curve = []
    for k in range(steps + 1):
        changed = np.zeros(height * width, bool)
        changed[order[:min(k * per_step, height * width)]] = True
        filled = changed if deletion else ~changed
        filled = filled.reshape(height, width, 1)
        visible = image[~filled[..., 0]]
        colour = visible.mean(axis=0) if len(visible) else np.zeros(image.shape[-1])
        curve.append(probabilities(model, np.where(filled, colour, image))[cls])
    return np.array(curve)


@pytest.mark.parametrize("metric_class", [metrics.DeletionAUC, metrics.InsertionAUC])
def test_context_fill_runs_at_every_step(metric_class):
    model = small_cnn((16, 16, 3), 5)
    images = random_images(3, (16, 16, 3), seed=8)
    maps = explainers.GradCAM(model)(images).numpy()
    metric = metric_class(steps=5, fill=visible_mean_fill, batch_size=7)
    deletion = metric_class is metrics.DeletionAUC
    expected = [reference_context_curve(model, x, m, 5, deletion) for x, m in zip(images, maps)]
    np.testing.assert_allclose(metric.curve(model, images, maps), expected, rtol=1e-5, atol=1e-6)


def test_inpaint_fill_differs_from_zero():
    # With one fill of the whole image the inpainter saw no pixel and gave the scores of fill=0.0.
    model = small_cnn((16, 16, 3), 5)
    images = random_images(4, (16, 16, 3), seed=9)
    maps = explainers.GradCAM(model)(images)
    zero = metrics.DeletionAUC(steps=4, fill=0.0).curve(model, images, maps).numpy()
    inpaint = metrics.DeletionAUC(steps=4, fill="inpaint").curve(model, images, maps).numpy()
    np.testing.assert_allclose(inpaint[:, 0], zero[:, 0], rtol=1e-6)
    assert np.abs(inpaint[:, 1:-1] - zero[:, 1:-1]).max() > 1e-4


@pytest.mark.parametrize("name", ["deletion_auc", "insertion_auc"])
def test_normalize_start(name):
    model = small_cnn((16, 16, 3), 5)
    images = random_images(4, (16, 16, 3), seed=10)
    maps = explainers.GradCAM(model)(images)
    raw = metrics.get(name, steps=4)
    normalized = metrics.get(f"{name}_normalized", steps=4)
    assert normalized.name == f"{name}_normalized" and normalized.normalize == "start"
    assert metrics.get(name, steps=4, normalize="start").name == normalized.name
    p = np.max(model.predict(images, verbose=0), axis=-1)
    np.testing.assert_allclose(normalized.curve(model, images, maps), raw.curve(model, images, maps) / p[:, None],
                               rtol=1e-5)
    np.testing.assert_allclose(normalized(model, images, maps), raw(model, images, maps) / p, rtol=1e-5)
    with pytest.raises(ValueError, match="Received: normalize='end'"):
        metrics.get(name, normalize="end")


@pytest.mark.parametrize("name", ["deletion_auc", "road_morf"])
def test_one_metric_scores_many_models_without_keeping_them(name):
    # A metric compiles its work once per model and caches it; scoring a model and dropping it
    # (as a loop over checkpoints does) must free the model.
    import gc
    import weakref

    metric = metrics.get(name, steps=4) if name == "deletion_auc" else metrics.get(name, percentages=[20, 60])
    images = random_images(4, (8, 8, 3), seed=3)
    alive = []
    for seed in range(2):
        model, _ = linear_two_class_model(seed=seed)
        maps = tf.random.uniform((4, 8, 8, 1), seed=seed)
        assert metric(model, images, maps).shape == (4,)
        alive.append(weakref.ref(model))
        del model
    gc.collect()
    assert [ref() for ref in alive] == [None, None]


def test_suite_reuses_its_explainers_and_keeps_only_the_last_model():
    import gc
    import weakref

    suite = metrics.AlignmentSuite(("grad_cam",), ("deletion_auc",))
    images = random_images(3, (8, 8, 3), seed=5)
    first = small_cnn((8, 8, 3), 2)
    built = suite.explainers_for(first)
    scores = suite.evaluate(first, images)
    assert scores["grad_cam"]["deletion_auc"].shape == (3,)
    assert suite.explainers_for(first) is built          # every epoch: no new explainers, no new tracing
    second = small_cnn((8, 8, 3), 2)
    assert suite.evaluate(second, images)["grad_cam"]["deletion_auc"].shape == (3,)
    assert suite.explainers_for(second)["grad_cam"].model is second
    alive = weakref.ref(first)
    del first, built
    gc.collect()
    assert alive() is None


@pytest.mark.parametrize("name", ["deletion_auc", "insertion_auc", "road_morf", "average_drop"])
def test_one_metric_on_two_image_sizes(name):
    # A fully convolutional model takes any size; the metric's pixel counts follow each size.
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    settings = {"noise": 0.0} if name.startswith("road") else {}
    metric = metrics.get(name, **settings)
    for size in (8, 12, 8):
        images = random_images(3, (size, size, 3), seed=size)
        maps = explainers.GradCAM(model)(images)
        fresh = metrics.get(name, **settings)(model, images, maps)
        np.testing.assert_allclose(metric(model, images, maps), fresh, rtol=1e-5, atol=1e-6)


def test_suite_refuses_metrics_that_need_object_masks():
    for given in (("pointing_game",), metrics.get("energy_pointing_game")):
        with pytest.raises(ValueError, match="judges maps against object masks"):
            metrics.AlignmentSuite(("grad_cam",), given)
    assert metrics.AlignmentSuite(("grad_cam",), metrics.get("deletion_auc")).metric_names == ["deletion_auc"]
