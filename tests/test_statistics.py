"""keras_edda.statistics against scipy and hand-computed references."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from keras_edda import statistics

REFERENCE = [0.981, 0.975, 0.990, 0.970, 0.984]
OTHER = [0.962, 0.970, 0.971, 0.968, 0.950]


def test_summary_uses_the_sample_std():
    result = statistics.summary([1.0, 2.0, 4.0])
    assert result["mean"] == pytest.approx(7 / 3)
    assert result["std"] == pytest.approx(np.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert result["values"] == [1.0, 2.0, 4.0] and result["n"] == 3
    assert statistics.summary([0.5])["std"] is None


def test_paired_t_below_six_seeds_matches_scipy():
    result = statistics.paired_comparison(REFERENCE, OTHER, "higher")
    expected = scipy_stats.ttest_rel(REFERENCE, OTHER)
    assert result["test"] == "paired_t" and result["n"] == 5
    assert result["p_value"] == pytest.approx(expected.pvalue, rel=1e-10)
    differences = np.subtract(REFERENCE, OTHER)
    assert result["difference_mean"] == pytest.approx(differences.mean())
    assert result["difference_std"] == pytest.approx(differences.std(ddof=1))


def test_wilcoxon_from_six_seeds_matches_scipy():
    reference = [0.71, 0.64, 0.80, 0.77, 0.69, 0.73, 0.75, 0.68]
    other = [0.70, 0.61, 0.74, 0.78, 0.60, 0.70, 0.69, 0.66]
    result = statistics.paired_comparison(reference, other, "lower")
    # Lower is better: differences are other - reference.
    expected = scipy_stats.wilcoxon(np.subtract(other, reference))
    assert result["test"] == "wilcoxon"
    assert result["p_value"] == pytest.approx(expected.pvalue, rel=1e-10)
    assert result["difference_mean"] == pytest.approx(np.mean(np.subtract(other, reference)))
    assert result["difference_mean"] < 0


def test_bootstrap_interval_contains_the_mean_and_is_reproducible():
    differences = np.subtract(REFERENCE, OTHER)
    first = statistics.paired_comparison(REFERENCE, OTHER, "higher", seed=3)
    again = statistics.paired_comparison(REFERENCE, OTHER, "higher", seed=3)
    other_seed = statistics.paired_comparison(REFERENCE, OTHER, "higher", seed=4)
    assert first["ci_low"] < differences.mean() < first["ci_high"]
    assert (first["ci_low"], first["ci_high"]) == (again["ci_low"], again["ci_high"])
    assert (first["ci_low"], first["ci_high"]) != (other_seed["ci_low"], other_seed["ci_high"])
    assert first["resamples"] == 10_000 and first["confidence"] == 0.95
    # scipy's percentile bootstrap draws other resamples: agreement to Monte-Carlo error.
    reference = scipy_stats.bootstrap((differences,), np.mean, method="percentile", n_resamples=10_000,
                                      random_state=0).confidence_interval
    spread = differences.std(ddof=1)
    assert first["ci_low"] == pytest.approx(reference.low, abs=0.1 * spread)
    assert first["ci_high"] == pytest.approx(reference.high, abs=0.1 * spread)


def test_degenerate_differences_are_handled():
    zeros = statistics.paired_comparison([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert zeros["p_value"] == 1.0 and zeros["difference_mean"] == 0.0
    assert zeros["ci_low"] == zeros["ci_high"] == 0.0
    zeros_wilcoxon = statistics.paired_comparison([1.0] * 7, [1.0] * 7)
    assert zeros_wilcoxon["p_value"] == 1.0 and zeros_wilcoxon["test"] == "wilcoxon"
    single = statistics.paired_comparison([0.9], [0.8])
    assert single["test"] == "none" and single["p_value"] is None and single["ci_low"] is None
    assert statistics.verdict({**single, "p_holm": None}) == statistics.NO_VERDICT
    # Equal differences: the exact signed-rank (sign-test) p-value 2 / 2**3, not the t-test's 0.
    constant = statistics.paired_comparison([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])
    assert constant["p_value"] == pytest.approx(0.25) and constant["test"] == "wilcoxon"


def test_two_seeds_give_intervals_and_no_verdicts():
    """Issue 25 item 6: 2 seeds, 2 of 450 test images worse on each, were reported 'worse, p=0.000'."""
    edda = [float(np.float32(430 / 450)), float(np.float32(441 / 450))]
    none = [float(np.float32(432 / 450)), float(np.float32(443 / 450))]
    result = statistics.compare_methods({"edda": {"accuracy": edda}, "none": {"accuracy": none}}, "edda",
                                        {"accuracy": "higher"})
    cell = result["accuracy"]["none"]
    assert cell["p_value"] is None and cell["p_holm"] is None and cell["test"] == "none"
    assert cell["verdict"] == statistics.NO_VERDICT
    assert cell["difference_mean"] == pytest.approx(-2 / 450, rel=1e-4)
    assert cell["ci_low"] is not None and cell["ci_low"] <= cell["difference_mean"] <= cell["ci_high"]
    assert statistics.MIN_SEEDS == 3
    assert not statistics.can_decide(2) and statistics.can_decide(3)
    note = statistics.seeds_note(2)
    assert "2 seeds" in note and "at least 3 seeds" in note and statistics.seeds_note(3) is None


@pytest.mark.parametrize("seeds", [3, 5, 8])
def test_a_constant_difference_never_gives_p_zero(seeds):
    # The same 2 of 450 images on every seed, with the float error of float32 accuracies in the differences.
    rng = np.random.default_rng(seeds)
    none = rng.integers(400, 440, seeds)
    edda = [float(np.float32((k - 2) / 450)) for k in none]
    comparison = statistics.paired_comparison(edda, [float(np.float32(k / 450)) for k in none], "higher")
    assert comparison["p_value"] == pytest.approx(2 / 2 ** seeds) and comparison["p_value"] > 0
    assert comparison["test"] == "wilcoxon" and comparison["test_direction"] == -1
    # Holm over one test: a verdict only when the signs alone are significant (8 seeds: p = 0.0078).
    expected = "worse" if 2 / 2 ** seeds < 0.05 else "no significant difference"
    assert statistics.verdict({**comparison, "p_holm": comparison["p_value"]}) == expected


def test_holm_against_a_hand_computed_example():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.06, 0.04*1) = 0.06.
    assert statistics.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert statistics.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    adjusted = statistics.holm([0.02, None, 0.04])
    assert adjusted[1] is None and adjusted == pytest.approx([0.04, None, 0.04])


def test_compare_methods_verdicts_and_holm_across_metrics():
    table = {
        "edda": {"accuracy": REFERENCE, "deletion": [0.10, 0.12, 0.11, 0.09, 0.10],
                 "ece": [0.02, 0.05, 0.01, 0.04, 0.03]},
        "none": {"accuracy": OTHER, "deletion": [0.20, 0.21, 0.23, 0.19, 0.22],
                 "ece": [0.03, 0.02, 0.04, 0.01, 0.05]},
        "random": {"accuracy": [0.99, 0.99, 0.995, 0.985, 0.99], "deletion": [0.11, 0.11, 0.12, 0.09, 0.11],
                   "ece": [0.03, 0.02, 0.04, 0.01, 0.05]},
    }
    directions = {"accuracy": "higher", "deletion": "lower", "ece": "lower"}
    result = statistics.compare_methods(table, "edda", directions)
    assert set(result) == set(directions) and set(result["accuracy"]) == {"none", "random"}
    for other in ("none", "random"):
        raw = [result[m][other]["p_value"] for m in directions]
        assert [result[m][other]["p_holm"] for m in directions] == pytest.approx(statistics.holm(raw))
    assert result["deletion"]["none"]["verdict"] == "better"  # lower deletion than none on every seed
    assert result["deletion"]["none"]["difference_mean"] > 0
    assert result["accuracy"]["random"]["verdict"] == "worse"
    assert result["ece"]["none"]["verdict"] == "no significant difference"
    summaries = {method: {metric: statistics.summary(values) for metric, values in by_metric.items()}
                 for method, by_metric in table.items()}
    assert statistics.compare_methods(summaries, "edda", directions) == result
    whole = statistics.compare_methods(table, "edda", directions.get, family="table")
    raw = [whole[m][o]["p_value"] for m in directions for o in ("none", "random")]
    assert [whole[m][o]["p_holm"] for m in directions for o in ("none", "random")] == pytest.approx(
        statistics.holm(raw))


def test_the_test_is_one_that_can_decide_after_holm():
    # 14 metrics (a compare table with its gains), EDDA better by 0.1 on every seed: with 6-9 seeds the
    # Wilcoxon test could not reach 0.05 after Holm over 14 tests (its smallest p is 2 / 2**n), so the
    # paired t-test decides; from 10 seeds the Wilcoxon test can and does.
    rng = np.random.default_rng(0)
    for seeds, expected_test in ((5, "paired_t"), (6, "paired_t"), (9, "paired_t"), (10, "wilcoxon")):
        other = {f"m{k}": list(rng.uniform(0.4, 0.6, seeds)) for k in range(14)}
        edda = {name: list(np.add(values, 0.1 + rng.normal(0, 0.01, seeds))) for name, values in other.items()}
        result = statistics.compare_methods({"edda": edda, "none": other}, "edda", lambda metric: "higher")
        cells = [by_other["none"] for by_other in result.values()]
        assert {cell["test"] for cell in cells} == {expected_test}, seeds
        assert {cell["verdict"] for cell in cells} == {"better"}, seeds
    assert statistics.wilcoxon_can_decide(6) and not statistics.wilcoxon_can_decide(5)
    assert statistics.wilcoxon_can_decide(10, 14) and not statistics.wilcoxon_can_decide(9, 14)


def test_no_verdict_when_the_rank_test_and_the_mean_disagree():
    # Eleven seeds slightly better, one far worse: the signed-rank test leans to "better" (p < 0.05),
    # the mean difference to "worse"; neither is read as a verdict.
    differences = [0.01, 0.012, 0.011, 0.013, 0.009, 0.014, 0.01, 0.012, 0.015, 0.011, 0.013, -0.5]
    comparison = statistics.paired_comparison(np.add(differences, 1.0), np.ones(12), "higher")
    assert comparison["test"] == "wilcoxon" and comparison["p_value"] < 0.05
    assert comparison["difference_mean"] < 0 and comparison["test_direction"] == 1
    assert statistics.verdict({**comparison, "p_holm": comparison["p_value"]}) == "no significant difference"
    agreeing = statistics.paired_comparison(np.add(np.abs(differences), 1.0), np.ones(12), "higher")
    assert statistics.verdict({**agreeing, "p_holm": agreeing["p_value"]}) == "better"


@pytest.mark.parametrize("call, message", [
    (lambda: statistics.paired_comparison([1, 2], [1]), "one value per seed"),
    (lambda: statistics.paired_comparison([1, 2], [1, 3], "up"), "direction="),
    (lambda: statistics.paired_comparison([1, float("nan")], [1, 3]), "finite"),
    (lambda: statistics.holm([0.2, 1.5]), "pvalues="),
    (lambda: statistics.bootstrap_ci([1, 2], confidence=1.0), "confidence=1.0"),
    (lambda: statistics.compare_methods({"a": {}}, "b", {}), "reference='b'"),
])
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
