"""Noisy linear imputation (Rong et al., ICML 2022): the fill of ROAD.

Each removed pixel becomes the weighted mean of its 8 neighbours (weight
1/6 for the 4 direct and 1/12 for the 4 diagonal ones; neighbours outside
the image are dropped and the weights renormalised), where removed
neighbours are unknowns too. That is one sparse linear system per image and
channel, solved here for the whole batch at once by Jacobi-preconditioned
conjugate gradients on the pixel grid (3x3 convolutions, no sparse matrix),
then Gaussian noise is added to the removed pixels.
"""

import tensorflow as tf

from keras_edda import _checks
from keras_edda.ops.layout import from_channels_last, to_channels_last

_NEIGHBOUR_WEIGHTS = ((1 / 12, 1 / 6, 1 / 12),
                      (1 / 6, 0.0, 1 / 6),
                      (1 / 12, 1 / 6, 1 / 12))


def _neighbour_sum(x, kernel):
    # Zero padding drops the neighbours outside the image.
    return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")


def solve_noisy_linear(images, mask, tolerance=1e-5, max_iterations=None):
    """Solves the noisy linear imputation system without the noise.

    Args:
        images: float32 images (N, H, W, C), channels last.
        mask: float32 mask (N, H, W, 1), 1.0 on the pixels to impute.
        tolerance: stop when every system's residual norm is below
            `tolerance` times the norm of its right-hand side.
        max_iterations: most conjugate-gradient iterations (`None`:
            `4 * (H + W)`, at least 64).

    Returns:
        float32 images (N, H, W, C), imputed where `mask` is 1.
    """
    channels = tf.shape(images)[-1]
    kernel = tf.tile(tf.constant(_NEIGHBOUR_WEIGHTS, tf.float32)[:, :, None, None], [1, 1, channels, 1])
    removed = tf.broadcast_to(mask, tf.shape(images))
    known = images * (1.0 - removed)
    # Row i of the system: D_i x_i - sum over removed neighbours w x_j = sum over known neighbours w v_k,
    # D_i = sum of the weights of the neighbours inside the image. D - W is symmetric positive definite
    # whenever some pixel is known.
    diagonal = _neighbour_sum(tf.ones_like(images), kernel)

    def apply(z):
        return removed * (diagonal * z - _neighbour_sum(removed * z, kernel))

    def dot(a, b):
        return tf.reduce_sum(a * b, axis=(1, 2), keepdims=True)

    rhs = removed * _neighbour_sum(known, kernel)
    x = removed * rhs / diagonal
    residual = rhs - apply(x)
    preconditioned = residual / diagonal
    direction = preconditioned
    rho = dot(residual, preconditioned)
    limit = tf.square(tolerance) * dot(rhs, rhs)
    if max_iterations is None:
        height, width = images.shape[1], images.shape[2]
        if height is None or width is None:
            max_iterations = tf.maximum(4 * (tf.shape(images)[1] + tf.shape(images)[2]), 64)
        else:
            max_iterations = max(4 * (height + width), 64)

    def unconverged(i, x, residual, direction, rho):
        return tf.logical_and(i < max_iterations, tf.reduce_any(dot(residual, residual) > limit))

    def step(i, x, residual, direction, rho):
        product = apply(direction)
        alpha = tf.math.divide_no_nan(rho, dot(direction, product))
        x = x + alpha * direction
        residual = residual - alpha * product
        preconditioned = residual / diagonal
        new_rho = dot(residual, preconditioned)
        direction = preconditioned + tf.math.divide_no_nan(new_rho, rho) * direction
        return i + 1, x, residual, direction, new_rho

    _, x, _, _, _ = tf.while_loop(unconverged, step, (tf.constant(0), x, residual, direction, rho))
    return known + removed * x


def noisy_linear_fill(noise=0.01, tolerance=1e-5, max_iterations=None, seed=None, data_format=None):
    """Fills by noisy linear imputation (ROAD, Rong et al., ICML 2022).

    Every pixel to fill becomes the weighted mean of its 8 neighbours (1/6
    for the direct, 1/12 for the diagonal ones; the weights of neighbours
    outside the image are dropped and the rest renormalised). Neighbours
    that are filled too are unknowns, so all filled pixels of an image and
    channel are solved jointly, as Quantus'
    `noisy_linear_imputation` does with a sparse solver; here an in-graph
    conjugate-gradient solver runs on the whole batch until each system's
    residual falls below `tolerance` (relative). Then N(0, noise^2) is
    added to the filled pixels. Only the visible pixels are read. At least
    one pixel of each image must stay visible.

    Args:
        noise: standard deviation of the Gaussian noise (0 for none), in
            the images' units.
        tolerance: relative residual at which the solver stops.
        max_iterations: most solver iterations (`None`: `4 * (H + W)`,
            at least 64).
        seed: seed of the noise.
        data_format: layout of the images.

    Returns:
        A fill function `fill(images, mask) -> images`.

    Example:

    ```python
    fill = keras_edda.ops.fills.noisy_linear_fill(noise=0.0)
    road = keras_edda.ops.fills.fill_masked(images, mask, fill)
    ```
    """
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"`noise` must be a number >= 0. Received: noise={noise!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise ValueError(f"`tolerance` must lie in (0, 1). Received: tolerance={tolerance!r}")
    max_iterations = _checks.check_positive_int(max_iterations, "max_iterations", allow_none=True)
    data_format = _checks.standardize_data_format(data_format)
    noise, tolerance = float(noise), float(tolerance)

    def fill(images, mask):
        x = tf.cast(to_channels_last(images, data_format), tf.float32)
        m = tf.cast(to_channels_last(mask, data_format), tf.float32)[..., :1]
        filled = solve_noisy_linear(x, m, tolerance, max_iterations)
        if noise > 0:
            filled += m * tf.random.normal(tf.shape(filled), stddev=noise, seed=seed)
        return from_channels_last(tf.cast(filled, images.dtype), data_format)

    return fill
