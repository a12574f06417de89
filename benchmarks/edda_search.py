"""Chooses EDDA's defaults on the validation split only (issue 11).

Every variant trains with the same recipe (`keras_edda.recipes.DEFAULT`) on
the training split of the embedded digits, over the same seeds, through the
map-function surface with Grad-CAM, threshold 0.5 and the constant fill 0;
it is scored on the VALIDATION split (never the test split): accuracy,
expected calibration error, Deletion AUC under the blur fill (which no
method trains on) and its gain over random maps, ROAD (most relevant first).
The plain model (`none`) is trained alongside for the accuracy gap.

Rule (fixed before the run): among the variants whose mean validation
accuracy is within 1 point of `none`'s and whose ECE is within 0.02 of it,
the one with the largest mean Deletion gain under blur; if none qualifies,
the variant with the smallest accuracy gap.

Run: `python benchmarks/edda_search.py --seeds 3 --out runs/edda_search`
(prints a markdown table; docs/edda_search.md records one run).
"""

import argparse
import copy
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_edda import datasets  # noqa: E402
from keras_edda.experiments import compare, protocol  # noqa: E402
from keras_edda.experiments.factory import ModelFactory  # noqa: E402

VARIANTS = {
    "none": None,
    "uniform+label (authors')": {"salient_target": "uniform", "non_salient_target": "label"},
    "decrease+label": {"salient_target": "decrease", "non_salient_target": "label"},
    "decrease+consistency": {"salient_target": "decrease", "non_salient_target": "consistency"},
    "uniform+consistency": {"salient_target": "uniform", "non_salient_target": "consistency"},
}


def validation_as_test(data):
    """The same data with the validation split in the place of the test split."""
    view = copy.copy(data)
    view.x_test, view.y_test = data.x_val, data.y_val
    view.object_masks_test = data.object_masks_val
    return view


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--eval-samples", type=int, default=128)
    parser.add_argument("--out", default="runs/edda_search")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    data = datasets.load(args.dataset, validation_fraction=0.15, split_seed=0)
    validation = validation_as_test(data)
    factory = ModelFactory("cnn", data.image_shape, data.num_classes)
    rows = {}
    path = os.path.join(args.out, "search.json")
    if os.path.exists(path):
        with open(path) as f:
            rows = json.load(f)
    for name in args.variants.split(","):
        settings_of_edda = VARIANTS[name]
        method = "none" if settings_of_edda is None else "edda"
        settings = protocol.Settings(
            methods=(method,), method_settings={"edda": dict(settings_of_edda or {})}, eval_fills=("blur",),
            eval_samples=args.eval_samples, fill_metrics=("deletion_auc",), fill_free_metrics=("road_morf",))
        finished = {(method, int(seed)) for seed in rows.get(name, {})}
        for method, seed in compare.pending_runs((method,), args.seeds, finished):
            key = f"{seed}"
            start = time.perf_counter()
            classifier, record = protocol.train(method, seed, data, factory, settings, verbose=0)
            scores = protocol.evaluate(classifier, validation, settings)
            rows.setdefault(name, {})[key] = {
                "accuracy": scores["accuracy"], "ece": scores["ece"],
                "deletion_blur": scores["grad_cam"]["blur"]["deletion_auc"],
                "deletion_blur_gain": scores["grad_cam"]["blur"]["deletion_auc_gain"],
                "road_morf": scores["grad_cam"]["fill-free"]["road_morf"],
                "seconds": time.perf_counter() - start}
            print(name, seed, {k: round(v, 4) for k, v in rows[name][key].items()}, flush=True)
            with open(path, "w") as f:
                json.dump(rows, f, indent=2)
    columns = ("accuracy", "ece", "deletion_blur", "deletion_blur_gain", "road_morf")
    print(f"\nValidation split ({len(data.x_val)} images), {args.seeds} seeds, mean ± std (ddof 1):\n")
    print("| variant | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    means = {}
    for name, by_seed in rows.items():
        values = {c: np.array([run[c] for run in by_seed.values()]) for c in columns}
        means[name] = {c: float(v.mean()) for c, v in values.items()}
        print(f"| {name} | " + " | ".join(
            f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}" for v in values.values()) + " |")
    if "none" in means:
        base = means.pop("none")
        qualified = {n: m for n, m in means.items()
                     if base["accuracy"] - m["accuracy"] <= 0.01 and m["ece"] - base["ece"] <= 0.02}
        if qualified:
            chosen = max(qualified, key=lambda n: qualified[n]["deletion_blur_gain"])
            print(f"\nChosen by the rule: {chosen} (qualified: {', '.join(qualified)})")
        else:
            chosen = min(means, key=lambda n: base["accuracy"] - means[n]["accuracy"])
            print(f"\nNo variant is within 1 point of none's accuracy and 0.02 of its ECE; "
                  f"smallest accuracy gap: {chosen}")


if __name__ == "__main__":
    main()
