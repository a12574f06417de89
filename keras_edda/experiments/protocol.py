"""One run of the comparison: train a model with one method on one seed, score it once.

The protocol, the same for every method:

1. the same architecture, fresh weights seeded by the run's seed;
2. the same recipe (`keras_edda.recipes.Recipe`): optimiser, schedule and a
   budget in optimiser steps (epochs x batches of original images; the
   copies a method adds grow a batch, not the number of steps);
3. `fit` watches the validation split (the alignment callback too); the
   test split is scored once, at the end;
4. scores: accuracy, expected calibration error and mean confidence on the
   test images, and for every explainer every alignment metric under every
   evaluation fill, each next to the same metric on random maps (the
   explanation's gain over random maps), plus the fill-free judges (ROAD,
   the saliency metric, and the pointing games where the data has object
   masks).
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

from keras_edda import callbacks as callbacks_lib
from keras_edda import explainers as explainers_lib
from keras_edda import methods as methods_lib
from keras_edda import metrics as metrics_lib
from keras_edda import recipes
from keras_edda.data import method_map_fn

NONE = "none"
# Methods that are models of their own (`keras_edda.excon.build`), trained
# with int labels; they need the built-in `cnn` architecture (its encoder).
MODEL_METHODS = ("supcon", "excon")
# Which metrics are scored, and where, comes from the metrics registry: each metric's kind
# (`keras_edda.metrics.KINDS`): "fill" metrics under every evaluation fill, "fill_free" ones once,
# "localization" ones where the data has object masks.
FILL_FREE = "fill-free"
# Table names of the decoy judges (decoy datasets) and of the sanity checks, per explainer.
DECOY = "decoy"
SANITY = "sanity"
MODEL_METRICS = ("accuracy", "ece", "mean_confidence", "fgsm_accuracy", "fgsm_ece")
# FGSM as ExCon evaluates: one signed-gradient step of 4/255 in [0, 1] pixel space.
FGSM_EPSILON = 4 / 255
SURFACES = ("map", "layer")


def metric_names(kind, defaults_only=False):
    """The registered metrics of a kind (`keras_edda.metrics.KINDS`); compare's defaults with `defaults_only`."""
    return metrics_lib.names(kind, defaults_only=defaults_only)


def direction(metric):
    """`"higher"` or `"lower"`: which values of a metric are better."""
    if metric.endswith("_gain") or metric in ("accuracy", "fgsm_accuracy"):
        return "higher"
    if metric in ("ece", "fgsm_ece"):
        return "lower"
    if metric == "mean_confidence":
        return "higher"
    return metrics_lib.registry.direction_of(metric)


def fill_label(fill):
    """How a fill is named in tables: its name, or the constant's value."""
    return f"constant {fill:g}" if isinstance(fill, (int, float)) else str(fill)


def training_fill(method_settings):
    """The fill EDDA trains with under `method_settings` (a number for a constant fill)."""
    edda = (method_settings or {}).get("edda", {})
    fill = edda.get("fill", "constant")
    return float(edda.get("fill_value", 0.0)) if fill == "constant" else fill


class Settings:
    """What `keras-edda compare` runs (see `keras-edda compare -h`).

    Args:
        methods: method names: `"none"` (plain cross-entropy, ExCon's
            `"ce"`), names of `keras_edda.methods.METHODS` (`"random"`,
            `"edda"`, `"sgt"`, `"cutout"`, ...), and `"supcon"` / `"excon"`
            (`keras_edda.excon`, on the built-in CNN's encoder).
        seeds: number of seeds; every seed trains every method.
        recipe: the `keras_edda.recipes.Recipe` every method trains with.
        surface: `"map"` (the methods' map functions in `tf.data`) or
            `"layer"` (the method layer inside the model).
        explainers: explainer names; the first one drives the methods that
            explain (EDDA's `explainer`), all are scored.
        method_settings: `{method: {setting: value}}` passed to the method
            layers (e.g. EDDA's `threshold`, `salient_target`).
        eval_fills: fills the occlusion metrics are scored under; the
            default is the training fill plus `"blur"` and `"noisy_linear"`,
            which no method trains on.
        eval_samples: test images the alignment metrics score.
        monitor_samples: validation images the callback follows per epoch.
        num_images: images of the explanation grid.
        random_maps_seed: seed of the random maps the gains are taken against.
        fill_metrics: the metrics scored under every evaluation fill (kind
            `"fill"`; default: those the registry marks as defaults).
        fill_free_metrics: the metrics scored once (kind `"fill_free"`: ROAD,
            the saliency metric; default as above).
        sanity_metrics: the sanity checks scored once per explainer (kind
            `"sanity"`: model-parameter randomisation, random logit; default
            as above). On a decoy dataset the decoy judges (kinds `"decoy"`,
            `"decoy_model"`) are scored too.
    """

    def __init__(self, methods=(NONE, "random", "edda"), seeds=3, recipe=None, surface="map",
                 explainers=("grad_cam",), method_settings=None, eval_fills=None, eval_samples=128,
                 monitor_samples=32, num_images=6, random_maps_seed=0, fill_metrics=None,
                 fill_free_metrics=None, sanity_metrics=None):
        self.methods = tuple(methods)
        for method in self.methods:
            if method not in (NONE,) + MODEL_METHODS:
                methods_lib.get(method)
        if not self.methods:
            raise ValueError(f"`methods` must name at least one method. Received: methods={methods!r}")
        self.seeds = seeds
        self.recipe = recipe or recipes.DEFAULT
        if surface not in SURFACES:
            raise ValueError(f"`surface` must be one of {list(SURFACES)}. Received: surface={surface!r}")
        self.surface = surface
        self.explainers = tuple(explainers)
        for explainer in self.explainers:
            explainers_lib.name_of(explainer)
        self.method_settings = {m: dict(s) for m, s in (method_settings or {}).items()}
        # The training fill and two fills no method trained on; a fill named twice is scored once.
        defaults = (training_fill(self.method_settings), "blur", "noisy_linear")
        self.eval_fills = tuple({fill_label(f): f for f in (eval_fills or defaults)}.values())
        for fill in self.eval_fills:
            from keras_edda.ops import fills

            fills.get(fill)
        self.eval_samples = eval_samples
        self.monitor_samples = monitor_samples
        self.num_images = num_images
        self.random_maps_seed = random_maps_seed
        self.fill_metrics = tuple(metric_names("fill", True) if fill_metrics is None else fill_metrics)
        self.fill_free_metrics = tuple(metric_names("fill_free", True) if fill_free_metrics is None
                                       else fill_free_metrics)
        self.sanity_metrics = tuple(metric_names("sanity", True) if sanity_metrics is None else sanity_metrics)
        for kind, chosen in (("fill", self.fill_metrics), ("fill_free", self.fill_free_metrics),
                             ("sanity", self.sanity_metrics)):
            for name in chosen:
                if metrics_lib.registry.kind_of(name) != kind:
                    raise ValueError(f"Metric {name!r} is of kind {metrics_lib.registry.kind_of(name)!r}, "
                                     f"not {kind!r}. Received: {kind}_metrics={chosen!r}")

    def to_dict(self):
        """The settings as a JSON-ready dict (for results.json)."""
        return {"methods": list(self.methods), "seeds": self.seeds, "recipe": self.recipe.to_dict(),
                "surface": self.surface, "explainers": list(self.explainers),
                "method_settings": self.method_settings, "eval_fills": [fill_label(f) for f in self.eval_fills],
                "eval_samples": self.eval_samples, "monitor_samples": self.monitor_samples,
                "num_images": self.num_images, "random_maps_seed": self.random_maps_seed,
                "fill_metrics": list(self.fill_metrics), "fill_free_metrics": list(self.fill_free_metrics),
                "sanity_metrics": list(self.sanity_metrics)}


def settings_of(method, method_settings):
    """The settings `method` trains with: its own, and for `"random"` EDDA's under them.

    The random baseline shares EDDA's settings (its fair baseline) except the explainer's: its
    maps are random.
    """
    own = dict(method_settings.get(method, {}))
    if method != "random":
        return own
    inherited = {k: v for k, v in method_settings.get("edda", {}).items()
                 if k not in ("explainer", "explainer_kwargs")}
    return {**inherited, **own}


def method_layer(method, classifier, settings, steps_per_epoch):
    """The method layer of `method` on `classifier`, or `None` for `"none"`.

    `"random"` shares EDDA's settings (its fair baseline) and matches the
    area of the first explainer's masks; a method whose `driven_by` names
    an explainer argument gets the first explainer there.
    """
    if method == NONE:
        return None
    cls = methods_lib.get(method)
    kwargs = settings_of(method, settings.method_settings)
    epochs = kwargs.pop("warmup_epochs", 0)
    if epochs:
        kwargs.update(warmup_epochs=epochs, steps_per_epoch=steps_per_epoch)
    if cls.driven_by is not None:
        kwargs.setdefault(cls.driven_by, settings.explainers[0])
    return cls(classifier, **kwargs)


def model_method(method, settings, input_shape, num_classes, steps_per_epoch, optimizer=None, seed=None):
    """The compiled model of a method that is a model of its own (`MODEL_METHODS`), untrained.

    `"excon"` gets the first explainer unless its settings name one.
    """
    from keras_edda import excon

    kwargs = dict(settings.method_settings.get(method, {}))
    if method == "excon":
        kwargs.setdefault("explainer", settings.explainers[0])
        epochs = kwargs.pop("warmup_epochs", 0)
        if epochs:
            kwargs.update(warmup_epochs=epochs, steps_per_epoch=steps_per_epoch)
    return excon.build(method, excon.small_encoder, input_shape, num_classes, optimizer=optimizer, seed=seed,
                       **kwargs)


class CopyStatistics(keras.callbacks.Callback):
    """Per epoch: each copy kind's mean replaced area and share of copies used.

    Adds `copies_<name>_area` / `copies_<name>_used` to the epoch's logs (so
    `keras.callbacks.TensorBoard` writes them in the train run) and keeps
    them in `history`.

    Args:
        layer: the method layer.
    """

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.history = []

    def on_epoch_begin(self, epoch, logs=None):
        self.layer.reset_statistics()

    def on_epoch_end(self, epoch, logs=None):
        stats = self.layer.statistics()
        self.history.append(stats)
        if logs is not None:
            logs.update({key if key.startswith("copies_") else f"copies_{key}": value
                         for key, value in stats.items()})


def one_hot(labels, num_classes):
    return keras.utils.to_categorical(labels, num_classes).astype("float32")


def train(method, seed, data, factory, settings, log_dir=None, verbose=2, callbacks=()):
    """Trains one model with `method` on seed `seed`.

    Returns:
        `(classifier, record)`; `record` holds `"copies"` (per-epoch copy
        statistics), `"train_seconds"` and `"optimizer_steps"`.
    """
    if method in MODEL_METHODS:
        return _train_model_method(method, seed, data, factory, settings, log_dir, verbose, callbacks)
    keras.utils.set_random_seed(seed)
    classifier = factory.build()
    recipe = settings.recipe
    num_train = len(data.x_train)
    steps_per_epoch = recipe.steps_per_epoch(num_train)
    layer = method_layer(method, classifier, settings, steps_per_epoch)
    num_classes = data.num_classes
    y_train = one_hot(data.y_train, num_classes)
    validation = (data.x_val, one_hot(data.y_val, num_classes)) if len(data.x_val) else None
    fit_callbacks = []
    if layer is not None:
        fit_callbacks.append(CopyStatistics(layer))
    if log_dir is not None and validation is not None:
        fit_callbacks += [
            callbacks_lib.AlignmentCallback(
                data.x_val, explainers=settings.explainers[:1],
                metrics=("deletion_auc", "insertion_auc"), log_dir=log_dir,
                max_samples=settings.monitor_samples, num_images=4, model=classifier),
            keras.callbacks.TensorBoard(log_dir),
        ]
    elif log_dir is not None:
        fit_callbacks.append(keras.callbacks.TensorBoard(log_dir))
    model = classifier
    if uses_annotations(layer):
        # RRR: the decoy masks ride in the batch as its annotations, on both surfaces into its wrap() model.
        masks = annotation_masks(data, method)
        train_data = tf.data.Dataset.from_tensor_slices((data.x_train, y_train, masks["train"]))
        train_data = train_data.shuffle(num_train, seed=seed).batch(recipe.batch_size)
        if recipe.augmentation is not None:
            raise ValueError(f"Method {method!r} trains on annotation masks, which a crop or flip of the "
                             f"images would misplace; use a recipe without augmentation. "
                             f"Received: augmentation={recipe.augmentation!r}")
        if settings.surface == "map":
            train_data = train_data.map(method_map_fn(layer))
        else:
            train_data = train_data.map(lambda x, y, m: ({"images": x, "masks": m}, y))
        model = layer.wrap()
        if validation is not None:
            validation = ({"images": data.x_val, "masks": masks["val"]}, validation[1])
    else:
        train_data = tf.data.Dataset.from_tensor_slices((data.x_train, y_train))
        train_data = train_data.shuffle(num_train, seed=seed).batch(recipe.batch_size)
        # The recipe's base augmentation (crop + flip) comes first on both surfaces: the method's copies
        # are made from the augmented images.
        if settings.surface == "map" or layer is None:
            train_data = recipe.augment(train_data, seed=seed)
        if layer is not None and settings.surface == "map":
            train_data = train_data.map(method_map_fn(layer))
        elif layer is not None:
            model = keras.Sequential([keras.Input(data.image_shape), *recipe.augmentation_layers(seed), layer,
                                      classifier])
    methods_lib.check_model(model)
    recipe.compile(model, num_train)
    start = time.perf_counter()
    model.fit(train_data.prefetch(1), epochs=recipe.epochs, validation_data=validation,
              callbacks=fit_callbacks + list(callbacks), verbose=verbose, shuffle=False)
    record = {"train_seconds": time.perf_counter() - start,
              "optimizer_steps": int(recipe.epochs * steps_per_epoch),
              "copies": fit_callbacks[0].history if layer is not None else []}
    return classifier, record


def uses_annotations(layer):
    """Whether a method layer trains on annotation masks that ride in the batch (RRR)."""
    return layer is not None and layer.uses_annotations


def annotation_masks(data, method):
    """The annotation masks an annotation-using method gets: a decoy dataset's decoy masks.

    Raises:
        ValueError: for data without decoy masks.
    """
    if not getattr(data, "has_decoy_masks", False):
        raise ValueError(f"Method {method!r} trains on annotation masks of the pixels it must not use; "
                         f"compare gives it a decoy dataset's decoy masks (e.g. --dataset digits-decoy). "
                         f"Received: dataset={data.name!r} without decoy masks")
    return {"train": data.decoy_masks_train, "val": data.decoy_masks_val}


def _train_model_method(method, seed, data, factory, settings, log_dir, verbose, callbacks):
    """SupCon or ExCon on the encoder of the built-in CNN, with the same recipe and budget."""
    if factory.spec != "cnn":
        raise ValueError(f"Method {method!r} trains the encoder of the built-in 'cnn' model. "
                         f"Received: model={factory.spec!r}")
    keras.utils.set_random_seed(seed)
    recipe = settings.recipe
    num_train = len(data.x_train)
    steps_per_epoch = recipe.steps_per_epoch(num_train)
    model = model_method(method, settings, data.image_shape, data.num_classes, steps_per_epoch,
                         optimizer=recipe.optimizer(recipe.total_steps(num_train)), seed=seed)
    fit_callbacks = list(callbacks)
    if log_dir is not None:
        fit_callbacks.append(keras.callbacks.TensorBoard(log_dir))
    validation = (data.x_val, data.y_val) if len(data.x_val) else None
    start = time.perf_counter()
    model.fit(data.x_train, data.y_train, batch_size=recipe.batch_size, epochs=recipe.epochs,
              validation_data=validation, callbacks=fit_callbacks, verbose=verbose)
    return model, {"train_seconds": time.perf_counter() - start,
                   "optimizer_steps": int(recipe.epochs * steps_per_epoch), "copies": []}


def evaluate(classifier, data, settings):
    """Scores a trained classifier on the test split (once).

    Returns:
        `{"accuracy", "ece", "mean_confidence", "fgsm_accuracy", "fgsm_ece",
        explainer: {fill: {metric: value, metric + "_random": value, metric
        + "_gain": value}}}`; the fill-free metrics are under the fill
        `"fill-free"`; a gain is signed so that positive means the explainer
        beats random maps. `fgsm_*` are accuracy and ECE on the test images
        shifted by FGSM (`FGSM_EPSILON` in [0, 1] pixel space; the data's
        pixels are in [0, 1]).
    """
    head = explainers_lib.heads.describe(classifier, data.x_test[:1])
    labels = data.y_test
    scores = {}
    shifted = metrics_lib.fgsm_images(classifier, data.x_test, labels, FGSM_EPSILON, batch_size=256)
    for prefix, images in (("", data.x_test), ("fgsm_", shifted)):
        probabilities = head.probabilities(classifier.predict(images, verbose=0, batch_size=256))
        scores[f"{prefix}accuracy"] = float(np.mean(np.argmax(probabilities, axis=-1) == labels))
        scores[f"{prefix}ece"] = float(metrics_lib.expected_calibration_error(probabilities, labels, num_bins=15))
        if not prefix:
            scores["mean_confidence"] = float(metrics_lib.mean_confidence(probabilities))
    count = min(settings.eval_samples, len(data.x_test))
    images = tf.constant(data.x_test[:count])
    object_masks = None if data.object_masks_test is None else tf.constant(data.object_masks_test[:count])
    random_maps = explainers_lib.RandomExplainer(classifier, seed=settings.random_maps_seed)(images)
    # The explainer's maps and the random maps go through each metric in one
    # call (one trace per metric and model), then are split again.
    both_images = tf.concat([images, images], axis=0)

    def score_both(metric, maps):
        values = metric(classifier, both_images, tf.concat([maps, random_maps], axis=0))
        return values[:count], values[count:]

    for explainer in settings.explainers:
        maps = explainers_lib.get(explainer, classifier)(images)
        by_fill = {}
        for fill in settings.eval_fills:
            by_fill[fill_label(fill)] = _with_gains(
                {name: score_both(metrics_lib.get(name, fill=fill), maps) for name in settings.fill_metrics})
        metrics = {name: score_both(metrics_lib.get(name), maps) for name in settings.fill_free_metrics}
        if object_masks is not None:
            for name in metric_names("localization"):
                metric = metrics_lib.get(name)
                metrics[name] = (metric(maps, object_masks), metric(random_maps, object_masks))
        by_fill[FILL_FREE] = _with_gains(metrics)
        if getattr(data, "has_decoy_masks", False):
            by_fill[DECOY] = _with_gains({
                name: (metric(maps, masks), metric(random_maps, masks))
                for name, metric, masks in _decoy_judges(data, count)})
        if settings.sanity_metrics:
            # Explains copies of the model again (randomised layers, other logits): no random-map baseline.
            by_fill[SANITY] = {name: float(tf.reduce_mean(metrics_lib.get(name, explainer=explainer)(
                classifier, images, maps))) for name in settings.sanity_metrics}
        scores[explainers_lib.name_of(explainer)] = by_fill
    if getattr(data, "has_decoy_masks", False):
        views = {"random": data.x_test, "swapped": data.x_test_swapped}
        for name in metric_names("decoy_model"):
            metric = metrics_lib.get(name, batch_size=256)
            scores[name] = float(tf.reduce_mean(metric(classifier, data.x_test_consistent, views[metric.view],
                                                       data.y_test)))
    return scores


def _decoy_judges(data, count):
    """`(name, metric, masks)` of the decoy kind, each with the test masks its `mask_name` names."""
    for name in metric_names("decoy"):
        metric = metrics_lib.get(name)
        masks = getattr(data, f"{metric.mask_name}_test", None)
        if masks is not None:
            yield name, metric, tf.constant(masks[:count])


def _with_gains(metrics):
    table = {}
    for name, (ours, random) in metrics.items():
        ours, random = float(tf.reduce_mean(ours)), float(tf.reduce_mean(random))
        sign = 1.0 if direction(name) == "higher" else -1.0
        table[name] = ours
        table[f"{name}_random"] = random
        table[f"{name}_gain"] = sign * (ours - random)
    return table


def run(method, seed, data, factory, settings, log_dir=None, verbose=2, callbacks=()):
    """Trains and scores one run: `(classifier, record)` with `record["scores"]`.

    `callbacks` are added to `fit`'s.
    """
    classifier, record = train(method, seed, data, factory, settings, log_dir, verbose, callbacks)
    record = {"method": method, "seed": seed, "scores": evaluate(classifier, data, settings),
              "validation_accuracy": validation_accuracy(classifier, data), **record}
    return classifier, record


def validation_accuracy(classifier, data):
    """Accuracy on the validation split (what the report's "near chance" warning reads)."""
    if not len(data.x_val):
        return None
    head = explainers_lib.heads.describe(classifier, data.x_val[:1])
    probabilities = head.probabilities(classifier.predict(data.x_val, verbose=0, batch_size=256))
    return float(np.mean(np.argmax(probabilities, axis=-1) == data.y_val))


def steps_budget(settings, num_train):
    """The optimiser steps every run takes."""
    return settings.recipe.epochs * math.ceil(num_train / settings.recipe.batch_size)
