"""What replaces the occluded pixels: one implementation for the EDDA
augmentation, the Occlusion explainer and the alignment metrics.

A fill is a function `fill(images, mask) -> images` on whole batches. Only
the pixels where `mask` is 1 are taken from its result (`fill_masked`), so a
user's fill, for example a learned Keras inpainting model, only has to
produce plausible content there.
"""

import math
import numbers

import keras
import tensorflow as tf

from keras_edda import _checks
from keras_edda.ops.layout import from_channels_last, to_channels_last


def constant_fill(value=0.0):
    """Fills with one value, in the model's input space.

    After mean/std normalisation, 0.0 is the dataset's mean colour; this is
    the EDDA authors' choice.
    """
    value = float(value)

    def fill(images, mask):
        return tf.fill(tf.shape(images), tf.cast(value, images.dtype))

    # `fill_masked` reads it to composite without materialising the constant image.
    fill.constant_value = value
    return fill


def mean_fill(data_format=None):
    """Fills with each image's own mean colour."""
    data_format = _checks.standardize_data_format(data_format)
    axes = (2, 3) if data_format == "channels_first" else (1, 2)

    def fill(images, mask):
        mean = tf.reduce_mean(images, axis=axes, keepdims=True)
        return tf.broadcast_to(mean, tf.shape(images))

    return fill


def _gaussian_kernel_1d(size, sigma):
    radius = (size - 1) / 2.0
    x = tf.range(size, dtype=tf.float32) - radius
    kernel = tf.exp(-0.5 * tf.square(x / sigma))
    return kernel / tf.reduce_sum(kernel)


def gaussian_blur(images, kernel_size=11, sigma=5.0, data_format=None):
    """Separable Gaussian blur with symmetric padding, on whole batches.

    The kernel is clipped to the image size so small images still work.
    """
    data_format = _checks.standardize_data_format(data_format)
    x = to_channels_last(images, data_format)
    dtype = x.dtype
    x = tf.cast(x, tf.float32)
    height, width = x.shape[1], x.shape[2]
    size = kernel_size
    if height is not None and width is not None:
        size = min(kernel_size, 2 * min(height, width) - 1)
    size = max(size, 1)
    # (size - 1) pixels of padding in all, so the output keeps the input's size for even kernels too.
    before, after = (size - 1) // 2, size // 2
    kernel = _gaussian_kernel_1d(size, sigma)
    channels = tf.shape(x)[-1]
    x = tf.pad(x, [[0, 0], [before, after], [before, after], [0, 0]], mode="SYMMETRIC")
    # Blur channel by channel with one shared kernel: fold channels into batch.
    shape = tf.shape(x)
    folded = tf.reshape(tf.transpose(x, (0, 3, 1, 2)), (-1, shape[1], shape[2], 1))
    folded = tf.nn.conv2d(folded, tf.reshape(kernel, (size, 1, 1, 1)), 1, "VALID")
    folded = tf.nn.conv2d(folded, tf.reshape(kernel, (1, size, 1, 1)), 1, "VALID")
    out_shape = tf.shape(folded)
    blurred = tf.transpose(
        tf.reshape(folded, (shape[0], channels, out_shape[1], out_shape[2])),
        (0, 2, 3, 1),
    )
    return from_channels_last(tf.cast(blurred, dtype), data_format)


def blur_fill(kernel_size=11, sigma=5.0, data_format=None):
    """Fills with a Gaussian blur of the image (RISE's insertion start)."""

    def fill(images, mask):
        return gaussian_blur(images, kernel_size, sigma, data_format)

    return fill


def noise_fill(seed=None):
    """Fills with uniform noise in each image's own [min, max] range.

    Args:
        seed: seed of the fill's own `keras.random.SeedGenerator`: two fills
            made with the same seed draw the same sequence of noise (`None`:
            not reproducible).
    """
    generator = keras.random.SeedGenerator(seed)

    def fill(images, mask):
        axes = tf.range(1, tf.rank(images))
        low = tf.reduce_min(images, axis=axes, keepdims=True)
        high = tf.reduce_max(images, axis=axes, keepdims=True)
        noise = tf.cast(keras.random.uniform(tf.shape(images), seed=generator), images.dtype)
        return low + noise * (high - low)

    return fill


def inpaint_fill(iterations=None, data_format=None):
    """Fills the hole from its surroundings by iterated diffusion.

    The hole starts at the mean colour of the visible pixels, then each
    iteration replaces every hole pixel by the average of its 3x3
    neighbourhood while the visible pixels stay fixed, so colour flows in from
    the border of the hole. It is the cheap, in-graph stand-in for a learned
    inpainter (Agarwal & Nguyen, ACCV 2020); pass a callable fill to use one.

    Args:
        iterations: diffusion steps; `None` means enough for colour to cross
            half the image (`max(H, W) // 2`, at least 8).
        data_format: layout of the images.
    """
    data_format = _checks.standardize_data_format(data_format)

    def fill(images, mask):
        x = tf.cast(to_channels_last(images, data_format), tf.float32)
        m = tf.cast(to_channels_last(mask, data_format), tf.float32)[..., :1]
        visible = 1.0 - m
        visible_count = tf.reduce_sum(visible, axis=(1, 2), keepdims=True)
        visible_mean = tf.reduce_sum(x * visible, axis=(1, 2), keepdims=True) / (
            tf.maximum(visible_count, 1.0)
        )
        current = x * visible + visible_mean * m
        steps = iterations
        if steps is None:
            side = max(d for d in (x.shape[1], x.shape[2], 16) if d is not None)
            steps = max(side // 2, 8)
        kernel = tf.ones((3, 3, 1, 1), tf.float32) / 9.0
        channels = tf.shape(x)[-1]
        kernel = tf.tile(kernel, [1, 1, channels, 1])

        def step(i, current):
            padded = tf.pad(current, [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC")
            smoothed = tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")
            return i + 1, x * visible + smoothed * m

        _, current = tf.while_loop(
            lambda i, _: i < steps, step, (tf.constant(0), current)
        )
        return from_channels_last(tf.cast(current, images.dtype), data_format)

    return fill


FILLS = {}


def register(name):
    """Decorator: registers a fill factory under `name`.

    A factory is called as `factory(value=..., data_format=..., seed=...)`
    (it takes the keywords it needs and `**kwargs` for the rest) and returns
    a fill function `fill(images, mask) -> images`. Registered names are
    accepted wherever a fill is (`fill="name"`).

    Example:

    ```python
    @keras_edda.ops.fills.register("grey")
    def grey_fill(**kwargs):
        return lambda images, mask: tf.fill(tf.shape(images), 0.5)
    ```
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"`name` must be a non-empty string without ':'. Received: name={name!r}")

    def decorator(factory):
        FILLS[name] = factory
        return factory

    return decorator


register("constant")(lambda value=0.0, **kwargs: constant_fill(value))
register("mean")(lambda data_format=None, **kwargs: mean_fill(data_format))
register("blur")(lambda data_format=None, **kwargs: blur_fill(data_format=data_format))
register("noise")(lambda seed=None, **kwargs: noise_fill(seed))
register("inpaint")(lambda data_format=None, **kwargs: inpaint_fill(data_format=data_format))
# Noisy linear imputation lives in its own module; imported here so that `fills.noisy_linear_fill` exists.
from keras_edda.ops.noisy_linear import noisy_linear_fill  # noqa: E402

register("noisy_linear")(lambda data_format=None, seed=None, **kwargs: noisy_linear_fill(seed=seed,
                                                                                        data_format=data_format))

# "scheme:argument" fills, e.g. "inpainter:path.keras": scheme -> loader(argument, data_format=..., seed=...).
SCHEMES = {}
# The pinned name (`config_name`) of each scheme fill `get` made, by the name it was given: `pin` reads it
# when a config is written (a layer's get_config), where loading the file again would run a model load inside
# Keras' model saving.
_PINNED = {}


def register_scheme(scheme, loader):
    """Registers fills named `"scheme:argument"`, e.g. `"inpainter:path.keras"`.

    The module that provides such fills registers its scheme, so this module
    never imports it (`keras_edda.inpainting` registers `"inpainter"`).

    Args:
        scheme: the name before the colon (non-empty, without ':').
        loader: `loader(argument, data_format=None, seed=None)` returning
            a fill `fill(images, mask) -> images`. A fill that reads a
            file should give itself a `config_name` attribute: the name
            that finds the same fill again, pinned to the file's content
            (`"inpainter:path.keras#sha256=..."`), which configs store.

    Example:

    ```python
    keras_edda.ops.fills.register_scheme("grey", lambda level, **kwargs: constant_fill(float(level)))
    fill = keras_edda.ops.fills.get("grey:0.5")
    ```
    """
    if not isinstance(scheme, str) or not scheme or ":" in scheme:
        raise ValueError(f"`scheme` must be a non-empty string without ':'. Received: scheme={scheme!r}")
    if not callable(loader):
        raise TypeError(f"`loader` must be callable. Received: loader={loader!r}")
    SCHEMES[scheme] = loader
    return loader


def _scheme_of(fill):
    if isinstance(fill, str) and ":" in fill:
        return fill.partition(":")[0]
    return None


def get(fill, value=0.0, data_format=None, seed=None):
    """Returns a fill function from a name, a number or a callable.

    Args:
        fill: a registered name (`"constant"`, `"mean"`, `"blur"`, `"noise"`,
            `"inpaint"`, `"noisy_linear"`, ... see `FILLS`); a
            `"scheme:argument"` name of a registered scheme (`SCHEMES`, e.g.
            `"inpainter:path.keras"`, registered by `keras_edda.inpainting`);
            a number (a constant fill with that value); or a callable
            `fill(images, mask) -> images`.
        value: the value of `"constant"`.
        data_format: image layout for the fills that need it.
        seed: seed of the random fills.

    Returns:
        A callable `fill(images, mask) -> images`.
    """
    if callable(fill):
        return fill
    if isinstance(fill, numbers.Real) and not isinstance(fill, bool):
        if not math.isfinite(fill):
            raise ValueError(f"`fill` must be finite. Received: fill={fill!r}")
        return constant_fill(fill)
    scheme = _scheme_of(fill)
    if scheme is not None:
        if scheme not in SCHEMES:
            raise ValueError(
                f"`fill` names the fill scheme {scheme!r}, which is not registered (registered: "
                f"{sorted(SCHEMES)}; `import keras_edda` registers 'inpainter'). Received: fill={fill!r}")
        resolved = SCHEMES[scheme](fill.partition(":")[2], data_format=data_format, seed=seed)
        if getattr(resolved, "config_name", None) is not None:
            _PINNED[fill] = resolved.config_name
        return resolved
    if isinstance(fill, str) and fill in FILLS:
        if fill == "constant" and not math.isfinite(float(value)):
            raise ValueError(f"`fill_value` must be finite. Received: fill_value={value!r}")
        return FILLS[fill](value=value, data_format=data_format, seed=seed)
    raise ValueError(
        f"`fill` must be a number, a callable `fill(images, mask)` or one of "
        f"{sorted(FILLS)}. Received: fill={fill!r}"
    )


def config_name(fill, resolved=None):
    """A fill as it appears in configs: the name or number, or a callable's name.

    A `"scheme:argument"` name that reads a file is written pinned to the
    file's content (`"inpainter:path.keras#sha256=..."`, see `pin`), so that
    loading the config refuses a file that was replaced since.

    Args:
        fill: the fill as the user gave it.
        resolved: what `get` made of it, if at hand (spares loading it again).
    """
    if _scheme_of(fill) is not None:
        return pin(fill, resolved)
    return getattr(fill, "__name__", "callable") if callable(fill) else fill


def pin(fill, resolved=None):
    """`fill` as configs store it: a scheme name pinned to what it reads, anything else unchanged.

    `"inpainter:path.keras"` becomes `"inpainter:path.keras#sha256=<digest of
    the network's weights>"`; `get` of the pinned name refuses a file whose
    weights differ.

    Args:
        fill: a fill as `get` takes it.
        resolved: `get(fill)` if already made; else the pin of the last
            `get(fill)`, else `get(fill)` made here.
    """
    if _scheme_of(fill) is None:
        return fill
    if resolved is None:
        if fill in _PINNED:
            return _PINNED[fill]
        resolved = get(fill)
    return getattr(resolved, "config_name", fill)


def fill_masked(images, mask, fill):
    """Replaces the pixels where `mask` is 1 by `fill(images, mask)`.

    Args:
        images: (N, H, W, C) or (N, C, H, W).
        mask: float mask broadcastable to `images` (one channel).
        fill: a fill function (see `get`).

    Returns:
        Images of the same shape and dtype.
    """
    mask = tf.cast(mask, images.dtype)
    constant = getattr(fill, "constant_value", None)
    if constant is not None:
        # The general formula's values without building the constant image (and, for 0, without a second
        # broadcast over the channels): on CPU about half the time for 0, a third less for other values.
        kept = images * (1 - mask)
        return kept if constant == 0.0 else kept + tf.cast(constant, images.dtype) * mask
    filled = tf.cast(fill(images, mask), images.dtype)
    return images * (1 - mask) + filled * mask
