"""LIME: parity with the `lime` package, a linear-model reference, fills, graphs, errors."""

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from conftest import small_cnn

from keras_edda import explainers
from keras_edda.explainers.lime import Lime, slic_segments, weighted_ridge
from keras_edda.inpainting import Inpainter, build_inpainter


class LimeWithGivenSamples(Lime):
    """Lime on on/off vectors given from outside (the lime package's)."""

    def __init__(self, model, samples, **kwargs):
        self.given = tf.constant(samples, tf.float32)
        super().__init__(model, **kwargs)

    def _samples(self, num_images, num_features):
        return tf.broadcast_to(self.given[None], tf.stack([num_images, self.num_samples, num_features]))


def smooth_images(n, size=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return tf.image.resize(rng.uniform(size=(n, 8, 8, channels)).astype("float32"), (size, size)).numpy()


def test_parity_with_the_lime_package_same_segmentation_samples_and_random_state():
    from lime import lime_image

    model = small_cnn((32, 32, 3), 5)
    images = smooth_images(2)
    segments = slic_segments(images).numpy()
    num_samples = 300
    for index in range(2):
        num_features = segments[index].max() + 1
        # lime_image draws its on/off vectors as RandomState(seed).randint(0, 2, S * F), first row on.
        samples = np.random.RandomState(0).randint(0, 2, num_samples * num_features).reshape(num_samples, -1)
        samples[0, :] = 1
        ours = LimeWithGivenSamples(
            model, samples, num_samples=num_samples, segments=lambda x, i=index: tf.constant(segments[i:i + 1]),
            fill=0.0, use_logits=False)
        maps = ours(images[index:index + 1], targets=2).numpy()[0, ..., 0]
        reference = lime_image.LimeImageExplainer(random_state=0).explain_instance(
            images[index].astype("float64"), lambda batch: model.predict(batch, verbose=0), labels=(2,),
            top_labels=None, hide_color=0, num_samples=num_samples, random_seed=0,
            segmentation_fn=lambda image, i=index: segments[i], batch_size=num_samples)
        weights = dict(reference.local_exp[2])
        theirs = np.array([weights[k] for k in range(num_features)])
        mine = np.array([maps[segments[index] == k][0] for k in range(num_features)])
        assert scipy.stats.spearmanr(theirs, mine)[0] >= 0.9
        np.testing.assert_allclose(mine, theirs, rtol=1e-2, atol=1e-3 * np.abs(theirs).max())


def test_independent_samples_still_rank_like_the_lime_package():
    from lime import lime_image

    model = small_cnn((32, 32, 3), 5)
    images = smooth_images(1, seed=3)
    segments = slic_segments(images).numpy()
    maps = Lime(model, num_samples=1000, segments=lambda x: tf.constant(segments), use_logits=False,
                seed=1)(images, targets=0).numpy()[0, ..., 0]
    reference = lime_image.LimeImageExplainer(random_state=0).explain_instance(
        images[0].astype("float64"), lambda batch: model.predict(batch, verbose=0), labels=(0,), top_labels=None,
        hide_color=0, num_samples=1000, random_seed=0, segmentation_fn=lambda image: segments[0], batch_size=1000)
    weights = dict(reference.local_exp[0])
    theirs = [weights[k] for k in range(segments.max() + 1)]
    mine = [maps[segments[0] == k][0] for k in range(segments.max() + 1)]
    assert scipy.stats.spearmanr(theirs, mine)[0] >= 0.85


def test_linear_model_coefficients_are_the_superpixel_contributions():
    # f(x) = sum(w * x) with the zero fill is linear in the on/off vector:
    # score = sum_k z_k * c_k with c_k = sum over superpixel k of w * x.
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(8 * 8 * 2, 1)).astype("float32")
    model = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Flatten(), keras.layers.Dense(1)])
    model.layers[-1].set_weights([weights, np.zeros(1, "float32")])
    images = rng.uniform(size=(3, 8, 8, 2)).astype("float32")
    maps = Lime(model, num_samples=200, grid_size=(2, 4), alpha=1e-6, fill=0.0, seed=4)(images, targets=1).numpy()
    contributions = (images * weights.reshape(1, 8, 8, 2)).sum(-1)
    cells = contributions.reshape(3, 2, 4, 4, 2).sum(axis=(2, 4))
    expected = np.repeat(np.repeat(cells, 4, axis=1), 2, axis=2)
    np.testing.assert_allclose(maps[..., 0], expected, rtol=1e-3, atol=1e-3)


def test_weighted_ridge_matches_the_normal_equations_in_numpy():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, (2, 40, 5)).astype("float64")
    y = rng.normal(size=(2, 40))
    w = rng.uniform(size=(2, 40))
    coefficients = weighted_ridge(x, y, w, 0.5).numpy()
    for n in range(2):
        design = np.hstack([x[n], np.ones((40, 1))])
        penalty = np.diag([0.5] * 5 + [0.0])
        solution = np.linalg.solve(design.T @ (w[n, :, None] * design) + penalty, design.T @ (w[n] * y[n]))
        np.testing.assert_allclose(coefficients[n], solution[:5], rtol=1e-4, atol=1e-5)


FILLS = ["constant", "mean", "blur", "noise", "inpaint", 0.5, "inpainter"]


@pytest.mark.parametrize("fill", FILLS)
def test_every_fill_inside_tf_function_on_a_nested_model(fill):
    inner = small_cnn((16, 16, 3), 4)
    model = keras.Sequential([keras.Input((16, 16, 3)), inner, keras.layers.Activation("linear")])
    if fill == "inpainter":
        fill = Inpainter(build_inpainter((16, 16, 3), filters=4))
    explainer = explainers.get("lime", model, num_samples=24, grid_size=4, fill=fill, batch_size=20)
    images = smooth_images(2, size=16)
    maps = tf.function(lambda x: explainer(x, targets=1))(tf.constant(images)).numpy()
    assert maps.shape == (2, 16, 16, 1) and np.isfinite(maps).all()
    # One value per grid cell.
    cells = maps[..., 0].reshape(2, 4, 4, 4, 4)
    np.testing.assert_allclose(cells, cells[:, :, :1, :, :1].repeat(4, 2).repeat(4, 4), atol=1e-6)
    assert np.abs(maps).max() > 0
    eager = explainer(images, targets=1).numpy()
    if fill != "noise":
        np.testing.assert_allclose(eager, maps, rtol=1e-4, atol=1e-6)


def test_seed_fixes_the_samples_and_chunks_do_not_change_the_maps(model, images):
    first = Lime(model, num_samples=30, grid_size=4, seed=3, batch_size=None)(images)
    chunked = Lime(model, num_samples=30, grid_size=4, seed=3, batch_size=7)(images)
    other = Lime(model, num_samples=30, grid_size=4, seed=4)(images)
    np.testing.assert_allclose(first.numpy(), chunked.numpy(), rtol=1e-4, atol=1e-6)
    assert not np.allclose(first.numpy(), other.numpy())


@pytest.mark.parametrize("size, grid_size", [(16, 4), (16, (4, 8)), (15, 4)])
def test_grid_cells_without_a_gather_give_the_maps_of_the_per_pixel_gather(size, grid_size):
    # Equal cells take a broadcast instead of the per-pixel gather (15 px over 4 cells does not divide: the
    # gather path both times); the same segmentation given as a callable always takes the gather.
    model = small_cnn((size, size, 3), 4)
    images = tf.constant(smooth_images(3, size))
    grid = Lime(model, num_samples=40, grid_size=grid_size, batch_size=17)
    cells = grid.segment(images)
    gathered = Lime(model, num_samples=40, segments=lambda x: cells, batch_size=17)
    np.testing.assert_allclose(grid(images, targets=1).numpy(), gathered(images, targets=1).numpy(),
                               rtol=1e-5, atol=1e-7)


def test_bad_input_gets_clear_errors(model, images):
    with pytest.raises(ValueError, match="num_samples=0"):
        Lime(model, num_samples=0)
    with pytest.raises(ValueError, match="segments='quickshift'"):
        Lime(model, segments="quickshift")
    with pytest.raises(ValueError, match="kernel_width=-1"):
        Lime(model, kernel_width=-1)
    with pytest.raises(ValueError, match="grid_size"):
        Lime(model, grid_size=32)(images)
    with pytest.raises(ValueError, match="integer ids"):
        Lime(model, segments=lambda x: tf.zeros(tf.shape(x)[:3]))(images)


def test_channels_first_gives_the_channels_last_maps(model, images):
    last = Lime(model, num_samples=40, grid_size=4, seed=2)(images, targets=1).numpy()
    keras.config.set_image_data_format("channels_first")
    first_model = small_cnn((3, 16, 16), 5)
    first_model.set_weights(model.get_weights())
    first = Lime(first_model, num_samples=40, grid_size=4, seed=2)(np.transpose(images, (0, 3, 1, 2)), targets=1)
    np.testing.assert_allclose(np.transpose(first.numpy(), (0, 2, 3, 1)), last, rtol=1e-3, atol=1e-4)
