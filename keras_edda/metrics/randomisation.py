"""Sanity checks of explainers: do the maps depend on the model at all?

Model-parameter randomisation (Adebayo et al., "Sanity Checks for Saliency
Maps", 2018): re-initialise the model's layers one after the other from
the top and compare each randomised model's maps with the trained model's;
and the random-logit test (Sixt et al., "When Explanations Lie", 2020):
compare the map of the explained class with the map of a random other
class. A map that stays the same (a high rank correlation) does not explain
the model: lower is better for both.

Both run as one compiled TensorFlow graph per model: the randomised copy
is a clone of the user's model (the user's model is never touched) whose
weights are assigned in place layer by layer, so one traced explainer
serves every layer, and the rank correlation is batched TensorFlow ops.
"""

import weakref

import keras
import tensorflow as tf

from keras_edda import _checks
from keras_edda import explainers as explainers_lib
from keras_edda.explainers import targets as targets_lib
from keras_edda.explainers.base import Explainer
from keras_edda.metrics.base import ProbabilityReader

SIMILARITIES = ("spearman", "pearson")
ORDERS = ("top_down", "independent")


def average_ranks(values):
    """Ranks (1-based, float32) of each row of `values` (N, F); ties share their average rank.

    As `scipy.stats.rankdata(method="average")` row by row, with batched
    TensorFlow ops (a sort and two binary searches per row).
    """
    values = tf.convert_to_tensor(values, tf.float32)
    order = tf.argsort(values, axis=-1, stable=True)
    ordered = tf.gather(values, order, batch_dims=1)
    first = tf.searchsorted(ordered, ordered, side="left")
    after = tf.searchsorted(ordered, ordered, side="right")
    ranks = tf.cast(first + after + 1, tf.float32) / 2.0
    return tf.gather(ranks, tf.argsort(order, axis=-1), batch_dims=1)


def pearson_correlation(a, b):
    """Pearson correlation of each row pair of `a` and `b` (N, F) -> (N,).

    Where a row is constant the correlation is undefined (NumPy and SciPy
    give NaN); here it is 0 when one of the two rows is constant (a map
    that became, or was, uniform shares no ranking with the other) and 1
    when both are (the two maps are the same: nothing changed).
    """
    a = tf.convert_to_tensor(a, tf.float32)
    b = tf.convert_to_tensor(b, tf.float32)
    a = a - tf.reduce_mean(a, axis=-1, keepdims=True)
    b = b - tf.reduce_mean(b, axis=-1, keepdims=True)
    squares_a, squares_b = tf.reduce_sum(a * a, axis=-1), tf.reduce_sum(b * b, axis=-1)
    correlation = tf.math.divide_no_nan(tf.reduce_sum(a * b, axis=-1), tf.sqrt(squares_a * squares_b))
    return tf.where((squares_a == 0) & (squares_b == 0), tf.ones_like(correlation), correlation)


def spearman_correlation(a, b):
    """Spearman rank correlation of each row pair of `a` and `b` (N, F) -> (N,).

    The Pearson correlation of the average ranks (as `scipy.stats.spearmanr`
    row by row); for constant rows see `pearson_correlation` (scipy gives
    NaN).

    Example:

    ```python
    rho = keras_edda.metrics.randomisation.spearman_correlation(maps_a, maps_b)  # (N,)
    ```
    """
    return pearson_correlation(average_ranks(a), average_ranks(b))


def weighted_layers(model):
    """The layers of `model` that hold weights, bottom to top, nested models opened."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(weighted_layers(layer))
        elif layer.weights:
            found.append(layer)
    return found


def initial_value(layer, variable, seed):
    """A fresh value of `variable` drawn by its layer's initializer, seeded.

    The initializer is the layer's `<name>_initializer` (`kernel_initializer`
    for `kernel`, `moving_mean_initializer` for `moving_mean`, ...), with
    `seed` where it takes one. A variable without one gets its own values
    shuffled (a stateless shuffle of the flattened values).
    """
    initializer = getattr(layer, f"{variable.name}_initializer", None)
    if isinstance(initializer, keras.initializers.Initializer):
        config = initializer.get_config()
        if "seed" in config:
            initializer = type(initializer).from_config({**config, "seed": seed})
        return tf.convert_to_tensor(initializer(tuple(variable.shape), dtype=variable.dtype))
    flat = tf.reshape(tf.convert_to_tensor(variable), [-1])
    return tf.reshape(tf.random.experimental.stateless_shuffle(flat, seed=[seed, 0]), variable.shape)


def _clone(model, what):
    try:
        clone = keras.models.clone_model(model)
    except Exception as error:  # clone_model raises several kinds for subclassed models
        raise ValueError(
            f"{what} needs a copy of the model (`keras.models.clone_model`: a Sequential or Functional "
            f"model, layers with `get_config`): {type(error).__name__}: {str(error).splitlines()[0]}. "
            f"Received: model={model.name!r} of type {type(model).__name__}") from None
    if len(clone.weights) != len(model.weights) or any(
            tuple(c.shape) != tuple(m.shape) for c, m in zip(clone.weights, model.weights)):
        raise ValueError(f"{what}: the clone of the model does not hold the model's weights in the same "
                         f"order. Received: model={model.name!r}")
    return clone


class RandomisedCopies:
    """A clone of a model whose layers are randomised in place, from the top.

    Holds `work`, a clone of the model (the model itself is never
    changed), and the seeded fresh initial values of each weighted layer.
    `restore()` assigns the model's current weights to `work`,
    `randomise(k)` assigns the fresh values to its k-th layer from the top.
    Used by `ModelParameterRandomisation` inside its compiled graph and by
    `randomised_models` eagerly: one implementation of what is randomised.

    Args:
        model: the trained `keras.Model`.
        seed: seed of the fresh values (variable `j` of the `i`-th weighted
            layer from the bottom is drawn by `initial_value` with seed
            `10_000 * seed + 100 * i + j`).
    """

    def __init__(self, model, seed=0):
        self.work = _clone(model, "Model-parameter randomisation")
        self._model_weights = list(model.weights)
        layers = weighted_layers(self.work)
        if not layers:
            raise ValueError(
                f"Model-parameter randomisation needs a model with weights. Received: model={model.name!r}")
        self.layer_names = [layer.name for layer in layers][::-1]
        self._layers = layers[::-1]
        self._fresh = []
        for index, layer in enumerate(layers[::-1]):
            # Fresh values as variables: the compiled graph assigns from them without embedding constants.
            bottom = len(layers) - 1 - index
            values = [initial_value(layer, v, 10_000 * seed + 100 * bottom + j) for j, v in enumerate(layer.weights)]
            self._fresh.append([tf.Variable(value, trainable=False) for value in values])

    def restore(self):
        """Assigns the model's current weights to the working clone."""
        for work, trained in zip(self.work.weights, self._model_weights):
            work.assign(trained)

    def randomise(self, index):
        """Assigns fresh values to the `index`-th weighted layer from the top.

        `index` is a Python int, or an int32 scalar tensor inside a compiled
        graph (one `tf.switch_case` branch per layer, so that code after it is
        traced once for every layer).
        """
        if isinstance(index, int):
            for variable, fresh in zip(self._layers[index].weights, self._fresh[index]):
                variable.assign(fresh)
            return

        def branch(layer):
            def assign():
                for variable, fresh in zip(self._layers[layer].weights, self._fresh[layer]):
                    variable.assign(fresh)
                return tf.constant(0)
            return assign

        tf.switch_case(index, [branch(layer) for layer in range(len(self._layers))])

    def __len__(self):
        return len(self._layers)


def randomised_models(model, order="top_down", seed=0):
    """Yields `(layer_name, model_copy)` as model-parameter randomisation goes, from the top layer.

    The copy is one clone, changed in place at each step: with
    `"top_down"` (cascading, Adebayo et al.) step k has the top k weighted
    layers re-initialised, with `"independent"` only the k-th layer from
    the top. The same randomisation `ModelParameterRandomisation` scores.

    Example:

    ```python
    for name, randomised in keras_edda.metrics.randomised_models(model):
        maps = keras_edda.explainers.Saliency(randomised)(images, targets=labels)
    ```
    """
    _checks.check_choice(order, "order", ORDERS)
    copies = RandomisedCopies(_checks.check_model(model), seed)
    copies.restore()
    for index, name in enumerate(copies.layer_names):
        if order == "independent":
            copies.restore()
        copies.randomise(index)
        yield name, copies.work


class SanityMetric:
    """Base class of the sanity checks: they explain the model again with an explainer.

    Called as `metric(model, images, maps=None, targets=None)`, one float32
    score per image (a similarity of maps; lower is better). `maps` are the
    trained model's maps by the same explainer (computed when `None`).

    Args:
        explainer: a registered explainer name (`"saliency"`, `"grad_cam"`,
            ...) or an `Explainer` subclass; built on the model (or its
            randomised copy) with `batch_size`, `data_format` and
            `explainer_kwargs`.
        explainer_kwargs: more arguments of the explainer.
        similarity: `"spearman"` (rank correlation, default) or `"pearson"`,
            between the flattened maps of each image.
        absolute: compare the maps' absolute values.
        seed: seed of the randomisation.
        batch_size: most model evaluations in one forward call (passed to
            the explainer; `None`: all at once).
        data_format: layout of images and maps; defaults to Keras' setting.
    """

    name = None
    score_direction = "lower"
    kind = "sanity"
    absolute_default = True

    def __init__(self, explainer="saliency", explainer_kwargs=None, similarity="spearman", absolute=None, seed=0,
                 batch_size=None, data_format=None):
        if isinstance(explainer, type):
            if not issubclass(explainer, Explainer):
                raise TypeError("`explainer` must be a registered name or an Explainer subclass. "
                                f"Received: explainer={explainer!r}")
        elif isinstance(explainer, str):
            explainers_lib.name_of(explainer)  # unknown names raise here
        else:
            raise TypeError("`explainer` must be a registered name or an Explainer subclass (the sanity checks "
                            f"build it on copies of the model). Received: explainer={explainer!r}")
        self.explainer = explainer
        if explainer_kwargs is not None and not isinstance(explainer_kwargs, dict):
            raise TypeError(f"`explainer_kwargs` must be a dict. Received: explainer_kwargs={explainer_kwargs!r}")
        self.explainer_kwargs = dict(explainer_kwargs or {})
        _checks.check_choice(similarity, "similarity", SIMILARITIES)
        self.similarity = similarity
        self.absolute = self.absolute_default if absolute is None else absolute
        if not isinstance(self.absolute, bool):
            raise TypeError(f"`absolute` must be a bool. Received: absolute={absolute!r}")
        self.seed = _checks.check_seed(seed, allow_none=False)
        self.batch_size = _checks.check_positive_int(batch_size, "batch_size", allow_none=True)
        self.data_format = _checks.standardize_data_format(data_format)
        self._states = weakref.WeakKeyDictionary()

    def _build_explainer(self, model):
        kwargs = {"batch_size": self.batch_size, "data_format": self.data_format, **self.explainer_kwargs}
        if isinstance(self.explainer, type):
            return self.explainer(model, **kwargs)
        return explainers_lib.get(self.explainer, model, **kwargs)

    def compare(self, maps, others):
        """Similarity (N,) of two batches of maps, flattened per image."""
        count = tf.shape(maps)[0]
        maps = tf.reshape(tf.cast(maps, tf.float32), [count, -1])
        others = tf.reshape(tf.cast(others, tf.float32), [count, -1])
        if self.absolute:
            maps, others = tf.abs(maps), tf.abs(others)
        similarity = spearman_correlation if self.similarity == "spearman" else pearson_correlation
        return similarity(maps, others)

    @staticmethod
    def _images(model, images):
        images = _checks.assert_all_finite(tf.cast(_checks.check_images(images, "images"), tf.float32), "images")
        return _checks.check_image_shape(images, model, "images")

    def _inputs(self, images, maps, targets, num_classes):
        if maps is not None:
            maps = _checks.assert_all_finite(tf.cast(_checks.check_images(maps, "maps"), tf.float32), "maps")
            channel = 1 if self.data_format == "channels_first" else 3
            spatial = (2, 3) if self.data_format == "channels_first" else (1, 2)
            if maps.shape[channel] != 1 or any(maps.shape[a] != images.shape[a] for a in (0, *spatial)):
                raise ValueError("`maps` must have one channel and the batch size and spatial size of `images`. "
                                 f"Received: maps.shape={maps.shape}, images.shape={images.shape}")
        num_images = images.shape[0] if images.shape[0] is not None else tf.shape(images)[0]
        targets, checks = targets_lib.standardize_targets(targets, num_images, num_classes)
        if targets is not None and not targets.dtype.is_integer:
            targets = tf.argmax(targets, axis=-1, output_type=tf.int32)
        if checks:
            with tf.control_dependencies(checks):
                images = tf.identity(images)
        return images, maps, targets

    def get_config(self):
        explainer = self.explainer if isinstance(self.explainer, str) else self.explainer.__name__
        return {"explainer": explainer, "explainer_kwargs": self.explainer_kwargs, "similarity": self.similarity,
                "absolute": self.absolute, "seed": self.seed, "batch_size": self.batch_size,
                "data_format": self.data_format}

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({settings})"


class ModelParameterRandomisation(SanityMetric):
    """Model-parameter randomisation test (Adebayo et al., 2018), cascading from the top layer.

    The weighted layers of a clone of the model are re-initialised one
    after the other from the top (each weight drawn by its layer's own
    initializer, seeded; nested models are opened layer by layer); after
    each step the explainer explains the randomised model for the same
    classes, and the score is the rank correlation of its maps with the
    trained model's maps. `__call__` returns the mean over the layers per
    image (Quantus' `return_average_correlation`); `layer_scores` one
    score per layer. Lower is better: a faithful explainer's maps change
    when the model does. The user's model is never changed.

    Args:
        order: `"top_down"` (cascading, default) or `"independent"` (one
            layer at a time, the others trained).
        explainer, explainer_kwargs, similarity, absolute, seed, batch_size,
            data_format: see `SanityMetric`; `absolute` defaults to `True`
            (Quantus' default).

    Call arguments:
        model: the trained `keras.Model` (Sequential or Functional: it is
            cloned with `keras.models.clone_model`).
        images: float images (N, H, W, C) (or (N, C, H, W)).
        maps: the trained model's maps by the same explainer, (N, H, W, 1)
            (or (N, 1, H, W)); `None`: computed.
        targets: the explained classes (`None`: the trained model's top-1),
            kept for every randomised model.

    Returns:
        float32 scores (N,).

    Example:

    ```python
    mprt = keras_edda.metrics.ModelParameterRandomisation("saliency")
    scores = mprt(model, images)                      # (N,), mean over the layers
    per_layer = mprt.layer_scores(model, images)      # {layer name: (N,)}, top layer first
    ```
    """

    name = "model_parameter_randomisation"

    def __init__(self, explainer="saliency", explainer_kwargs=None, order="top_down", similarity="spearman",
                 absolute=None, seed=0, batch_size=None, data_format=None):
        super().__init__(explainer, explainer_kwargs, similarity, absolute, seed, batch_size, data_format)
        _checks.check_choice(order, "order", ORDERS)
        self.order = order

    def _state(self, model, images):
        if model not in self._states:
            copies = RandomisedCopies(model, self.seed)
            copies.restore()
            explainer = self._build_explainer(copies.work)
            reader = ProbabilityReader(model, images[:1], self.batch_size)

            def run(images, maps, classes):
                copies.restore()
                if classes is None:
                    classes = tf.argmax(reader(images), axis=-1, output_type=tf.int32)
                if maps is None:
                    maps = explainer(images, classes)
                # One explainer in the graph, run once per layer: the trace does not grow with the depth.
                def step(index, scores):
                    if self.order == "independent":
                        copies.restore()
                    copies.randomise(index)
                    return index + 1, scores.write(index, self.compare(maps, explainer(images, classes)))

                _, scores = tf.while_loop(
                    lambda index, _: index < len(copies), step,
                    (tf.constant(0), tf.TensorArray(tf.float32, size=len(copies))), parallel_iterations=1)
                return tf.transpose(scores.stack())

            self._states[model] = {"copies": copies, "reader": reader,
                                   "run": tf.function(run, reduce_retracing=True, autograph=False)}
        return self._states[model]

    def scores_per_layer(self, model, images, maps=None, targets=None):
        """float32 scores (N, L): one column per weighted layer, the top layer first (see `layer_names`)."""
        model = _checks.check_model(model)
        images = self._images(model, images)
        state = self._state(model, images)
        images, maps, targets = self._inputs(images, maps, targets, state["reader"].num_classes)
        return state["run"](images, maps, targets)

    def layer_names(self, model):
        """Names of the weighted layers in the order they are randomised (top first)."""
        return [layer.name for layer in weighted_layers(model)][::-1]

    def layer_scores(self, model, images, maps=None, targets=None):
        """`{layer name: scores (N,)}` in the order of randomisation, the top layer first."""
        scores = self.scores_per_layer(model, images, maps, targets)
        return {name: scores[:, index] for index, name in enumerate(self.layer_names(model))}

    def __call__(self, model, images, maps=None, targets=None):
        return tf.reduce_mean(self.scores_per_layer(model, images, maps, targets), axis=1)

    def get_config(self):
        return {**super().get_config(), "order": self.order}


class RandomLogit(SanityMetric):
    """Random-logit test (Sixt et al., 2020): the map of the class against the map of another class.

    For each image an other class is drawn uniformly among the classes
    but the explained one (stateless, from `seed`), explained with the same
    explainer, and the score is the similarity of the two maps. Lower is
    better: a map that is the same whichever class is explained does not
    explain the class. `absolute` defaults to `False` (Quantus' default).

    Args:
        explainer, explainer_kwargs, similarity, absolute, seed, batch_size,
            data_format: see `SanityMetric`.

    Call arguments:
        model: the `keras.Model`.
        images: float images (N, H, W, C) (or (N, C, H, W)).
        maps: the maps of the explained classes by the same explainer
            (`None`: computed).
        targets: the explained classes (`None`: the model's top-1).
        off_targets: int classes (N,) to compare with instead of the drawn
            ones (each must differ from its explained class).

    Returns:
        float32 scores (N,).

    Example:

    ```python
    scores = keras_edda.metrics.RandomLogit("grad_cam")(model, images, maps)
    ```
    """

    name = "random_logit"
    absolute_default = False

    def _state(self, model, images):
        if model not in self._states:
            explainer = self._build_explainer(model)
            reader = ProbabilityReader(model, images[:1], self.batch_size)
            num_classes = reader.num_classes

            def run(images, maps, classes, off):
                if classes is None:
                    classes = tf.argmax(reader(images), axis=-1, output_type=tf.int32)
                if off is None:
                    off = self.off_classes(classes, num_classes)
                if maps is None:
                    maps = explainer(images, classes)
                return self.compare(maps, explainer(images, off))

            self._states[model] = {"reader": reader, "run": tf.function(run, reduce_retracing=True, autograph=False)}
        return self._states[model]

    def off_classes(self, classes, num_classes):
        """The drawn other classes (N,): r uniform in [0, K-2] (stateless, `seed`), r + (r >= class)."""
        draws = tf.random.stateless_uniform(tf.shape(classes), seed=[self.seed, 1], minval=0,
                                            maxval=num_classes - 1, dtype=tf.int32)
        return draws + tf.cast(draws >= classes, tf.int32)

    def __call__(self, model, images, maps=None, targets=None, off_targets=None):
        model = _checks.check_model(model)
        images = self._images(model, images)
        state = self._state(model, images)
        num_classes = state["reader"].num_classes
        images, maps, targets = self._inputs(images, maps, targets, num_classes)
        if off_targets is not None:
            off_targets = _checks.check_class_ids(off_targets, images, "images", per="image")
            off_targets = tf.cast(off_targets, tf.int32)
            if tf.executing_eagerly():
                if bool(tf.reduce_any((off_targets < 0) | (off_targets >= num_classes))):
                    raise ValueError(f"`off_targets` must be class ids in [0, {num_classes}). "
                                     f"Received: off_targets={off_targets.numpy().tolist()}")
                if targets is not None and bool(tf.reduce_any(tf.equal(off_targets, targets))):
                    raise ValueError("`off_targets` must differ from the explained classes. "
                                     f"Received: off_targets={off_targets.numpy().tolist()}")
        return state["run"](images, maps, targets, off_targets)
