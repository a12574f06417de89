"""SP vs SP-G, LIME vs LIME-G, MP vs MP-G on one trained classifier (Agarwal & Nguyen's evaluation).

    python benchmarks/generative_eval.py [--images 48] [--epochs 40] [--inpainter-epochs 12] [--seeds 0 1 2]
        [--out runs/generative_eval] [--figure docs/images/generative.png] [--docs docs/generative.md]

Data: `keras_edda.datasets.load_digits_canvas(32)` (digits on a cluttered
canvas, with object masks; each seed draws its own canvases). Per seed, the
classifier (`keras_edda.models.small_cnn`, trained with
`keras_edda.recipes.DEFAULT` for `--epochs`) and the inpainter
(`keras_edda.inpainting.train_inpainter`) are trained on the training split;
everything is scored on the first `--images` test images, explaining the true
class. Over the seeds: mean and std (ddof 1) of each score, and each -G
variant against its plain twin (paired differences, 95 % bootstrap interval,
paired t-test, Holm across the scores of the pair; `keras_edda.statistics`).
Each pair differs only in the fill: grey (0.5) for SP and LIME, blur for MP
(the authors' choices), the inpainter for the -G variants. Scores:

- deletion: `metrics.DeletionAUC` under the mean fill (used by no
  explainer), lower is better;
- saliency metric: `metrics.SaliencyMetric` (Dabkowski & Gal), lower is better;
  its two terms are tabled apart: the box's area and log p(class) on the
  resized crop;
- pointing game / energy pointing game on the object masks, higher is better;
- robustness: Spearman rank correlation and SSIM of each image's maps
  across a hyperparameter (SP: patch 6 vs 8 px; LIME: sample seed 0 vs 1;
  MP: mask side 4 vs 8 cells), higher is more robust;
- plausibility: the classifier's probability of the class when the 80 %
  least salient pixels (of the SP-G map) are removed with grey vs with the
  inpainter, and the inpainter's hole MSE vs the mean and diffusion fills
  on boxes of a third of the side.

Writes results.json and table.md in --out, the side-by-side figure (rows:
image, SP, SP-G, LIME, LIME-G, MP, MP-G; first seed) to --figure, and with
--docs replaces the part of that markdown file between
`<!-- generative_eval:begin -->` and `<!-- generative_eval:end -->` with the
tables (no number typed by hand).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_edda import datasets, explainers, metrics, models, recipes, statistics  # noqa: E402
from keras_edda.inpainting import Inpainter, hole_losses, square_holes, train_inpainter  # noqa: E402
from keras_edda.metrics.saliency_metric import salient_boxes  # noqa: E402
from keras_edda.ops import fills, masks, overlay  # noqa: E402
from keras_edda.ops.normalize import minmax_normalize  # noqa: E402

GREY = 0.5


def explainer_pairs(classifier, fill, args):
    """name -> (plain explainer, -G explainer, robustness twin of each)."""
    lime = dict(num_samples=args.lime_samples, grid_size=8, batch_size=256)
    mp = dict(steps=args.mp_steps, batch_size=64)
    return {
        "SP": [explainers.Occlusion(classifier, patch_size=8, stride=4, fill=f, batch_size=256)
               for f in (GREY, fill)],
        "LIME": [explainers.Lime(classifier, fill=f, seed=0, **lime) for f in (GREY, fill)],
        "MP": [explainers.MeaningfulPerturbation(classifier, fill=f, mask_size=4, **mp) for f in ("blur", fill)],
    }, {
        "SP": [explainers.Occlusion(classifier, patch_size=6, stride=4, fill=f, batch_size=256)
               for f in (GREY, fill)],
        "LIME": [explainers.Lime(classifier, fill=f, seed=1, **lime) for f in (GREY, fill)],
        "MP": [explainers.MeaningfulPerturbation(classifier, fill=f, mask_size=8, **mp) for f in ("blur", fill)],
    }


def robustness(first, second):
    """Mean Spearman correlation and SSIM of paired maps (N, H, W, 1)."""
    rho = [scipy.stats.spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(first, second)]
    rho = np.nan_to_num(rho, nan=0.0)
    ssim = tf.image.ssim(minmax_normalize(tf.constant(first)), minmax_normalize(tf.constant(second)), 1.0,
                         filter_size=7).numpy()
    return float(np.mean(rho)), float(np.mean(ssim))


def hole_mse(images, holes, fill):
    """Mean over images of the squared error on the hole (`inpainting.hole_losses`)."""
    filled = fills.fill_masked(tf.constant(images), tf.constant(holes), fills.get(fill))
    return float(tf.reduce_mean(hole_losses(filled, tf.constant(images), tf.constant(holes))[1]))


SCORES = {"deletion_auc": "lower", "saliency_metric": "lower", "pointing_game": "higher",
          "energy_pointing_game": "higher", "robustness_spearman": "higher", "robustness_ssim": "higher",
          "seconds_per_image": "lower"}


def run_seed(seed, args):
    """One seed: data, classifier, inpainter, the six explainers; returns (results, maps, images)."""
    start = time.time()
    keras.utils.set_random_seed(seed)
    data = datasets.load_digits_canvas(32, seed=seed, data_format="channels_last")
    recipe = recipes.Recipe(**{**recipes.DEFAULT.to_dict(), "epochs": args.epochs})
    classifier = models.small_cnn(data.image_shape, data.num_classes)
    recipe.compile(classifier, len(data.x_train), loss="sparse_categorical_crossentropy")
    train = (tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
             .shuffle(len(data.x_train), seed=seed).batch(recipe.batch_size))
    classifier.fit(train, epochs=recipe.epochs, verbose=0)
    accuracy = float(np.mean(classifier.predict(data.x_test, verbose=0).argmax(-1) == data.y_test))
    validation = float(np.mean(classifier.predict(data.x_val, verbose=0).argmax(-1) == data.y_val))
    network = train_inpainter(data.x_train, epochs=args.inpainter_epochs, filters=args.inpainter_filters,
                              validation_data=data.x_val if len(data.x_val) else None, seed=seed, verbose=0)
    fill = Inpainter(network, batch_size=256)
    print(f"seed {seed}: classifier accuracy {accuracy:.3f} test / {validation:.3f} validation; "
          f"trained in {time.time() - start:.0f} s", flush=True)

    images = data.x_test[:args.images]
    labels = data.y_test[:args.images]
    objects = data.object_masks_test[:args.images]
    pairs, twins = explainer_pairs(classifier, fill, args)
    deletion = metrics.DeletionAUC(steps=16, fill="mean", batch_size=512)
    saliency = metrics.SaliencyMetric(batch_size=512)
    pointing, energy = metrics.PointingGame(), metrics.EnergyPointingGame()
    results = {"seed": seed, "classifier_accuracy": accuracy, "classifier_validation_accuracy": validation,
               "methods": {}}
    all_maps = {}
    for name in pairs:
        for variant, explainer, twin in zip((name, f"{name}-G"), pairs[name], twins[name]):
            tick = time.time()
            maps = explainer(images, labels).numpy()
            seconds = time.time() - tick
            twin_maps = twin(images, labels).numpy()
            rho, ssim = robustness(maps, twin_maps)
            saliency_scores = saliency(classifier, images, maps, labels).numpy()
            # The saliency metric's two terms: log(max(box area, min_area)) - log p(class | resized crop).
            box_area = salient_boxes(tf.constant(maps), saliency.threshold)[1].numpy()
            crop_log_p = np.log(np.maximum(box_area, saliency.min_area)) - saliency_scores
            row = {
                "deletion_auc": float(np.mean(deletion(classifier, images, maps, labels))),
                "saliency_metric": float(np.mean(saliency_scores)),
                "pointing_game": float(np.mean(pointing(maps, objects))),
                "energy_pointing_game": float(np.mean(energy(maps, objects))),
                "robustness_spearman": rho,
                "robustness_ssim": ssim,
                "seconds_per_image": seconds / len(images),
                "saliency_box_area": float(np.mean(box_area)),
                "saliency_crop_log_p": float(np.mean(crop_log_p)),
            }
            results["methods"][variant] = row
            all_maps[variant] = maps
            print(f"seed {seed}", variant, {k: round(v, 3) for k, v in row.items()}, flush=True)

    keep = masks.top_fraction_mask(tf.constant(all_maps["SP-G"]), 0.2)
    removed = 1.0 - keep
    probabilities = {}
    for label, removal in (("grey", GREY), ("inpainter", fill)):
        perturbed = fills.fill_masked(tf.constant(images), removed, fills.get(removal))
        scores = classifier(perturbed, training=False)  # small_cnn ends in softmax
        probabilities[label] = float(np.mean(tf.gather(scores, labels, axis=1, batch_dims=1)))
    holes = square_holes(len(data.x_test), 32, 32, 32 // 3, seed)
    results["plausibility"] = {
        "class_probability_non_salient_80pct_removed": probabilities,
        "class_probability_original": float(np.mean(tf.gather(classifier(images, training=False), labels,
                                                               axis=1, batch_dims=1))),
        "hole_mse_boxes_third_of_side": {name: hole_mse(data.x_test, holes, f)
                                         for name, f in (("inpainter", fill), ("inpaint", "inpaint"),
                                                         ("mean", "mean"))},
    }
    print(f"seed {seed}", results["plausibility"], flush=True)
    return results, all_maps, images


def _cell(values):
    s = statistics.summary(values)
    return f"{s['mean']:.3f} ± {s['std']:.3f}" if s["std"] is not None else f"{s['mean']:.3f}"


def tables(runs):
    """Markdown: scores (mean ± std over seeds), -G vs plain (paired), plausibility."""
    methods = list(runs[0]["methods"])
    per_seed = {m: {k: [run["methods"][m][k] for run in runs] for k in SCORES} for m in methods}
    lines = ["| method | " + " | ".join(SCORES) + " |", "|---" * (len(SCORES) + 1) + "|"]
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(_cell(per_seed[method][k]) for k in SCORES) + " |")
    if len(runs) > 1:
        lines += ["", "| -G vs plain | score | difference (positive: -G better) | 95 % CI | p (Holm) | verdict |",
                  "|---|---|---|---|---|---|"]
        for plain in ("SP", "LIME", "MP"):
            # Wall time is not a quality score: left out of the comparison and its Holm family.
            quality = [k for k in SCORES if k != "seconds_per_image"]
            pair = {name: {k: per_seed[name][k] for k in quality} for name in (f"{plain}-G", plain)}
            compared = statistics.compare_methods(pair, f"{plain}-G", SCORES)
            for score in quality:
                cell = compared[score][plain]
                lines.append(f"| {plain}-G vs {plain} | {score} | {cell['difference_mean']:+.3f} | "
                             f"[{cell['ci_low']:+.3f}, {cell['ci_high']:+.3f}] | {cell['p_holm']:.3f} | "
                             f"{cell['verdict']} |")
    if all("saliency_box_area" in run["methods"][m] for run in runs for m in methods):
        lines += ["", "| saliency metric's terms | box area (share of the image) | log p(class) on the resized crop |",
                  "|---|---|---|"]
        for method in methods:
            area, log_p = ([run["methods"][method][k] for run in runs] for k in ("saliency_box_area",
                                                                                  "saliency_crop_log_p"))
            lines.append(f"| {method} | {_cell(area)} | {_cell(log_p)} |")
    plausibility = [run["plausibility"] for run in runs]
    removed = {k: [p["class_probability_non_salient_80pct_removed"][k] for p in plausibility]
               for k in ("grey", "inpainter")}
    holes = {k: [p["hole_mse_boxes_third_of_side"][k] for p in plausibility] for k in ("inpainter", "inpaint", "mean")}
    lines += ["", "| plausibility | value |", "|---|---|",
              f"| classifier test accuracy | {_cell([run['classifier_accuracy'] for run in runs])} |",
              f"| class probability, original images | "
              f"{_cell([p['class_probability_original'] for p in plausibility])} |",
              f"| class probability, 80 % least salient (SP-G) removed with grey | {_cell(removed['grey'])} |",
              f"| class probability, 80 % least salient (SP-G) removed with the inpainter | "
              f"{_cell(removed['inpainter'])} |"]
    lines += [f"| hole MSE, boxes of a third of the side, {name} | {_cell(values)} |"
              for name, values in holes.items()]
    return "\n".join(lines) + "\n"


def write_docs(path, text, command):
    begin, end = "<!-- generative_eval:begin -->", "<!-- generative_eval:end -->"
    with open(path) as handle:
        page = handle.read()
    if begin not in page or end not in page:
        raise SystemExit(f"{path} has no {begin} ... {end} section")
    before, rest = page.split(begin, 1)
    after = rest.split(end, 1)[1]
    generated = f"{begin}\nGenerated by `{command}`.\n\n{text}{end}"
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        handle.write(before + generated + after)
    os.replace(temporary, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=40, help="classifier epochs with recipes.DEFAULT (40)")
    parser.add_argument("--inpainter-epochs", type=int, default=12)
    parser.add_argument("--inpainter-filters", type=int, default=16)
    parser.add_argument("--lime-samples", type=int, default=300)
    parser.add_argument("--mp-steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/generative_eval")
    parser.add_argument("--figure", default="docs/images/generative.png")
    parser.add_argument("--docs", help="a markdown file whose generative_eval section gets the tables")
    parser.add_argument("--tables-from", help="a results.json of an earlier run: only write its tables")
    args = parser.parse_args()
    if args.tables_from:
        with open(args.tables_from) as handle:
            stored = json.load(handle)
        publish(stored["runs"], argparse.Namespace(**{**stored["setting"], "docs": args.docs}))
        return
    start = time.time()
    keras.utils.disable_interactive_logging()
    runs = []
    for index, seed in enumerate(args.seeds):
        results, all_maps, images = run_seed(seed, args)
        runs.append(results)
        if index == 0 and args.figure:
            shown = slice(0, 6)
            rows = [overlay.overlay(images[shown], np.zeros_like(images[shown]), alpha=0.0)]
            rows += [overlay.overlay(images[shown], all_maps[v][shown])
                     for v in ("SP", "SP-G", "LIME", "LIME-G", "MP", "MP-G")]
            os.makedirs(os.path.dirname(args.figure) or ".", exist_ok=True)
            overlay.write_png(args.figure, overlay.image_grid(rows), scale=3)
            print(f"Wrote {args.figure} (rows: image, SP, SP-G, LIME, LIME-G, MP, MP-G)")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump({"setting": vars(args), "runs": runs}, handle, indent=2)
    publish(runs, args)
    print(f"total {time.time() - start:.0f} s")


def publish(runs, args):
    """Writes table.md in --out, prints it, and fills the --docs section."""
    text = tables(runs)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "table.md"), "w") as handle:
        handle.write(text)
    print(text)
    if args.docs:
        command = "python benchmarks/generative_eval.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if k not in ("out", "figure", "docs", "tables_from"))
        write_docs(args.docs, text, command)
        print(f"Wrote the tables into {args.docs}")


if __name__ == "__main__":
    main()
