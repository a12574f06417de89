"""Noisy linear imputation and ROAD against Quantus 0.6 (the reference
implementation of Rong et al.), plus their own invariants."""

import numpy as np
import pytest
import tensorflow as tf

from keras_edda.ops import fills

quantus_perturb = pytest.importorskip("quantus.functions.perturb_func")


def random_mask(rng, height, width, fraction):
    flat = np.zeros(height * width, "float32")
    flat[rng.permutation(height * width)[:int(fraction * height * width)]] = 1.0
    return flat.reshape(height, width)


def quantus_imputation(image, mask):
    """Quantus on one channels-last image; `mask` (H, W) marks the removed pixels."""
    removed = np.flatnonzero(mask.reshape(-1))
    imputed = quantus_perturb.noisy_linear_imputation(np.transpose(image, (2, 0, 1)), removed, noise=0.0)
    return np.transpose(imputed, (1, 2, 0))


def test_noisy_linear_matches_quantus():
    rng = np.random.default_rng(0)
    height, width = 20, 24
    masks = [random_mask(rng, height, width, f) for f in (0.05, 0.3, 0.6, 0.95)]
    block = np.zeros((height, width), "float32")
    block[3:17, 2:22] = 1.0  # a large hole: slow information flow, the hard case for an iterative solver
    border = np.zeros((height, width), "float32")
    border[:, :3] = border[0] = 1.0  # removed pixels on the image border: dropped neighbour weights
    masks += [block, border]
    images = rng.uniform(-1.0, 2.0, size=(len(masks), height, width, 3)).astype("float32")
    batch_masks = np.stack(masks)[..., None]
    fill = fills.noisy_linear_fill(noise=0.0)
    ours = tf.function(lambda x, m: fills.fill_masked(x, m, fill))(images, batch_masks).numpy()
    expected = np.stack([quantus_imputation(x, m) for x, m in zip(images, masks)])
    value_range = images.max() - images.min()
    np.testing.assert_allclose(ours, expected, atol=1e-3 * value_range)
    assert np.abs(ours - expected).max() < 1e-4 * value_range  # the stated tolerance holds with margin
    np.testing.assert_array_equal(ours[batch_masks[..., 0] == 0], images[batch_masks[..., 0] == 0])


def test_noisy_linear_noise_channels_first_and_registry():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(4, 16, 16, 2)).astype("float32")
    masks = np.stack([random_mask(rng, 16, 16, 0.5) for _ in range(4)])[..., None]
    plain = fills.fill_masked(images, masks, fills.noisy_linear_fill(noise=0.0)).numpy()
    noisy = fills.fill_masked(images, masks, fills.get("noisy_linear", seed=3)).numpy()
    difference = (noisy - plain)[np.broadcast_to(masks, images.shape) == 1]
    assert abs(difference.std() - 0.01) < 0.001 and abs(difference.mean()) < 0.001
    np.testing.assert_array_equal(noisy[np.broadcast_to(masks, images.shape) == 0],
                                  images[np.broadcast_to(masks, images.shape) == 0])
    first = fills.fill_masked(np.transpose(images, (0, 3, 1, 2)), np.transpose(masks, (0, 3, 1, 2)),
                              fills.noisy_linear_fill(noise=0.0, data_format="channels_first")).numpy()
    np.testing.assert_allclose(np.transpose(first, (0, 2, 3, 1)), plain, atol=1e-6)
    assert "noisy_linear" in fills.FILLS
    for bad in ({"noise": -0.1}, {"tolerance": 0.0}, {"max_iterations": 0}):
        with pytest.raises(ValueError, match=f"Received: {next(iter(bad))}="):
            fills.noisy_linear_fill(**bad)
