"""Masks and fills on hand-built maps and images with known answers."""

import keras
import numpy as np
import pytest

from keras_edda.ops import fills, masks


def ramp_maps():
    return np.arange(16, dtype="float32").reshape(1, 4, 4, 1)


def test_threshold_mask():
    mask = masks.salient_mask(ramp_maps(), threshold=0.5).numpy()
    # normalised value = v / 15 > 0.5  <=>  v >= 8
    np.testing.assert_array_equal(mask.ravel(), (np.arange(16) >= 8).astype("float32"))


def test_fraction_mask_has_exactly_k_pixels_with_ties():
    maps = np.zeros((2, 4, 4, 1), "float32")
    maps[1] = ramp_maps()[0]
    mask = masks.salient_mask(maps, fraction=0.25).numpy()
    assert mask[0].sum() == 4 and mask[1].sum() == 4
    np.testing.assert_array_equal(mask[1].ravel(), (np.arange(16) >= 12).astype("float32"))


def test_mask_settings_errors():
    with pytest.raises(ValueError, match="exactly one.*threshold=0.5, fraction=0.2"):
        masks.salient_mask(ramp_maps(), threshold=0.5, fraction=0.2)
    with pytest.raises(ValueError, match="exactly one"):
        masks.salient_mask(ramp_maps())
    with pytest.raises(ValueError, match=r"`fraction` must lie in \(0, 1\). Received: fraction=1.5"):
        masks.salient_mask(ramp_maps(), fraction=1.5)


def images_and_mask():
    rng = np.random.default_rng(0)
    images = rng.uniform(0.2, 0.8, size=(2, 6, 6, 3)).astype("float32")
    mask = np.zeros((2, 6, 6, 1), "float32")
    mask[:, 2:4, 2:4] = 1.0
    return images, mask


@pytest.mark.parametrize("name", ["constant", "mean", "blur", "noise", "inpaint"])
def test_every_fill_only_changes_masked_pixels(name):
    images, mask = images_and_mask()
    out = fills.fill_masked(images, mask, fills.get(name, value=0.3)).numpy()
    outside = np.broadcast_to(mask == 0, images.shape)
    np.testing.assert_array_equal(out[outside], images[outside])
    assert out.shape == images.shape


def test_fill_values():
    images, mask = images_and_mask()
    inside = np.broadcast_to(mask == 1, images.shape)
    constant = fills.fill_masked(images, mask, fills.get("constant", value=0.3)).numpy()
    np.testing.assert_allclose(constant[inside], 0.3)
    mean = fills.fill_masked(images, mask, fills.get("mean")).numpy()
    np.testing.assert_allclose(mean[0, 2, 2], images[0].mean(axis=(0, 1)), rtol=1e-5)
    noise = fills.fill_masked(images, mask, fills.get("noise")).numpy()
    for i in range(2):
        assert images[i].min() <= noise[i][inside[i]].min()
        assert noise[i][inside[i]].max() <= images[i].max()
    flat = np.full((1, 8, 8, 3), 0.7, "float32")
    hole = np.zeros((1, 8, 8, 1), "float32")
    hole[:, 3:5, 3:5] = 1.0
    blurred = fills.fill_masked(flat, hole, fills.get("blur")).numpy()
    np.testing.assert_allclose(blurred, 0.7, rtol=1e-5)


def test_inpaint_fills_from_the_surroundings():
    """Left half 0, right half 1: a hole across the edge gets a gradient."""
    image = np.zeros((1, 8, 8, 1), "float32")
    image[:, :, 4:] = 1.0
    hole = np.zeros((1, 8, 8, 1), "float32")
    hole[:, 2:6, 2:6] = 1.0
    out = fills.fill_masked(image, hole, fills.get("inpaint")).numpy()[0, :, :, 0]
    assert np.all(out[2:6, 2] < out[2:6, 5])  # values grow toward the bright side
    assert 0.0 < out[4, 3] < 1.0


def test_callable_fill_and_a_keras_model_as_inpainter():
    images, mask = images_and_mask()
    inpainter = keras.Sequential([keras.Input((6, 6, 3)),
                                  keras.layers.Conv2D(3, 3, padding="same")])
    out = fills.fill_masked(images, mask, lambda x, m: inpainter(x * (1 - m))).numpy()
    expected = inpainter(images * (1 - mask)).numpy()
    inside = np.broadcast_to(mask == 1, images.shape)
    np.testing.assert_allclose(out[inside], expected[inside], rtol=1e-5)


def test_unknown_fill():
    with pytest.raises(ValueError, match="Received: fill='smudge'"):
        fills.get("smudge")


def test_channels_first_blur_and_mean():
    images, mask = images_and_mask()
    first = np.transpose(images, (0, 3, 1, 2))
    for name in ("blur", "mean", "inpaint"):
        last = fills.fill_masked(images, mask, fills.get(name, data_format="channels_last"))
        out = fills.fill_masked(first, np.transpose(mask, (0, 3, 1, 2)),
                                fills.get(name, data_format="channels_first"))
        np.testing.assert_allclose(np.transpose(out, (0, 2, 3, 1)), last, rtol=1e-5, atol=1e-6)


def test_blur_keeps_the_size_with_an_even_kernel():
    # An even kernel pads one pixel more after than before; the image keeps its size, and a blur of a
    # linear ramp along the rows stays a ramp away from the borders (reference: scipy's 1-D correlation).
    import scipy.ndimage

    from keras_edda import metrics

    ramp = np.tile(np.arange(8, dtype="float32")[None, :, None, None], (2, 1, 8, 3))
    for size in (4, 5, 10):
        blurred = fills.gaussian_blur(ramp, kernel_size=size, sigma=1.0).numpy()
        assert blurred.shape == ramp.shape, size
    kernel = np.exp(-0.5 * ((np.arange(4) - 1.5) / 1.0) ** 2)
    kernel /= kernel.sum()
    expected = scipy.ndimage.correlate1d(ramp[0, :, 0, 0], kernel, mode="reflect", origin=-1)
    np.testing.assert_allclose(fills.gaussian_blur(ramp, kernel_size=4, sigma=1.0).numpy()[0, :, 0, 0],
                               expected, atol=1e-5)
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    maps = np.random.default_rng(1).uniform(size=(2, 8, 8, 1)).astype("float32")
    assert np.isfinite(metrics.InsertionAUC(kernel_size=10)(model, images, maps).numpy()).all()
