"""Writes docs/api.md, the API reference, from the code's signatures and
docstring summaries.

    python docs/make_api.py
"""

import inspect
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_edda  # noqa: E402
from keras_edda import (  # noqa: E402
    callbacks,
    cifar10,
    crop_flip,
    data,
    datasets,
    decoy_data,
    excon,
    explainers,
    inpainting,
    losses,
    methods,
    metrics,
    models,
    recipes,
    statistics,
)
from keras_edda.experiments import compare, executors, factory, protocol, report, results  # noqa: E402
from keras_edda.explainers import heads  # noqa: E402
from keras_edda.ops import batching, fills, layout, masks, noisy_linear, normalize, overlay  # noqa: E402

SECTIONS = [
    ("keras_edda.explainers", explainers, explainers.__all__),
    ("keras_edda.explainers.heads", heads, ["describe", "activation_kind", "OutputHead"]),
    ("keras_edda.methods", methods, methods.__all__),
    ("keras_edda.data", data, ["method_map_fn", "edda_map_fn", "MethodMapFunction"]),
    ("keras_edda.losses", losses, ["SupConLoss"]),
    ("keras_edda.excon", excon, ["ExCon", "build", "small_encoder", "RandomResizedCrop"]),
    ("keras_edda.inpainting", inpainting, inpainting.__all__),
    ("keras_edda.metrics", metrics, metrics.__all__),
    ("keras_edda.callbacks", callbacks, ["AlignmentCallback", "take_images"]),
    ("keras_edda.datasets", datasets, ["load", "load_digits", "load_digits_canvas", "load_tfds", "load_folder",
                                       "split_indices", "stratified_subset", "subset_train", "load_cifar10",
                                       "load_decoy", "load_digits_decoy", "Dataset"]),
    ("keras_edda.decoy_data", decoy_data, ["add_decoys", "with_ink_masks", "require_decoys",
                                           "plant_decoys", "decoy_masks", "decoy_shades", "ink_box_masks"]),
    ("keras_edda.metrics.randomisation", metrics.randomisation, ["average_ranks", "pearson_correlation",
                                                                 "weighted_layers", "initial_value",
                                                                 "RandomisedCopies"]),
    ("keras_edda.cifar10", cifar10, ["load_arrays", "find_source", "cache_path",
                                     "keras_cache_dir"]),
    ("keras_edda.models", models, ["build", "small_cnn", "small_resnet", "resnet20", "application",
                                   "application_names", "is_known"]),
    ("keras_edda.recipes", recipes, ["Recipe", "get"]),
    ("keras_edda.crop_flip", crop_flip, ["CropFlip", "crop_flip_map_fn", "CropFlipMapFunction"]),
    ("keras_edda.statistics", statistics, ["summary", "paired_comparison", "bootstrap_ci", "paired_test",
                                           "wilcoxon_can_decide", "can_decide", "seeds_note", "holm", "verdict",
                                           "compare_methods"]),
    ("keras_edda.experiments.protocol", protocol, ["Settings", "run", "train", "evaluate", "method_layer",
                                                   "model_method", "settings_of", "training_fill", "CopyStatistics",
                                                   "direction", "metric_names", "steps_budget",
                                                   "validation_accuracy"]),
    ("keras_edda.experiments.report", report, ["load", "tables", "comparisons", "markdown", "markdown_table",
                                               "targets", "warnings_of", "plot", "write"]),
    ("keras_edda.experiments.compare", compare, ["Job", "DataSpec", "run", "prepare", "run_one", "record",
                                                 "finish", "pending_runs", "summary_lines"]),
    ("keras_edda.experiments.executors", executors, ["LocalExecutor", "ProcessExecutor", "RayExecutor", "get"]),
    ("keras_edda.experiments.results", results, ["write_results", "read_results", "config_difference",
                                                 "data_fingerprint", "file_fingerprint", "remove_outputs",
                                                 "format_table"]),
    ("keras_edda.experiments.factory", factory, ["ModelFactory"]),
    ("keras_edda.ops.masks", masks, ["salient_mask", "top_fraction_mask", "threshold_mask",
                                     "pixel_ranks", "count_for_fraction", "check_mask_settings"]),
    ("keras_edda.ops.fills", fills, ["get", "register", "fill_masked", "constant_fill", "mean_fill",
                                     "blur_fill", "noise_fill", "inpaint_fill", "gaussian_blur", "config_name",
                                     "register_scheme", "pin"]),
    ("keras_edda.ops.noisy_linear", noisy_linear, ["noisy_linear_fill", "solve_noisy_linear"]),
    ("keras_edda.ops.normalize", normalize, ["minmax_normalize"]),
    ("keras_edda.ops.batching", batching, ["chunked_loop", "map_rows"]),
    ("keras_edda.ops.layout", layout, ["to_channels_last", "from_channels_last",
                                       "channel_axis", "spatial_axes", "spatial_size"]),
    ("keras_edda.ops.overlay", overlay, ["overlay", "jet", "diverging", "scale_signed", "image_grid", "write_png"]),
]


def summary(obj):
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def signature(name, obj):
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def main():
    lines = [
        "# API reference",
        "",
        f"keras_edda {keras_edda.__version__}. Generated by `python docs/make_api.py` from the "
        "signatures and docstring summaries; each docstring has the full Args, Returns and "
        "an Example (`help(keras_edda.methods.EDDA)`).",
        "",
    ]
    for title, module, names in SECTIONS:
        lines += [f"## `{title}`", "", summary(module), ""]
        for name in names:
            obj = getattr(module, name)
            if not callable(obj):
                lines.append(f"- `{name}`: {type(obj).__name__} of {', '.join(map(repr, obj))}")
                continue
            lines.append(f"- `{signature(name, obj)}`: {summary(obj)}")
            if inspect.isclass(obj):
                for method_name, method in inspect.getmembers(obj, inspect.isfunction):
                    if method_name.startswith("_") or method.__qualname__.split(".")[0] != obj.__name__:
                        continue
                    if method_name in ("get_config", "from_config", "call", "compute_output_shape"):
                        continue
                    if method.__doc__ is None:  # an override documented in the base class
                        continue
                    lines.append(f"    - `.{signature(method_name, method)}`: {summary(method)}")
        lines.append("")
    lines += ["## Command line", "", "`keras-edda compare`, `keras-edda report`, `keras-edda explain`, "
              "`keras-edda train-inpainter`, `keras-edda demo` (also `python -m keras_edda`); see "
              "[getting_started.md](getting_started.md) and `keras-edda compare -h`.", ""]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
