"""Statistics of an experiment over seeds: summaries, paired comparisons, Holm.

Every seed trains every method, so two methods are compared by their
per-seed differences on one metric (a paired design). The differences are
signed so that a positive one means the reference method is better in the
metric's direction. The comparison reports the mean difference, its
bootstrap confidence interval and a paired test. p-values of one family
(by default one other method across the metrics of a table) are adjusted
with Holm-Bonferroni before a verdict is read from them.

Which test: the smallest two-sided Wilcoxon signed-rank p-value of n pairs
is 2 / 2**n (0.031 for 6 seeds, 0.0078 for 8), and Holm multiplies the
smallest of k p-values by k, so with k tests in the family the Wilcoxon
test can only give a verdict when 2 * k / 2**n < alpha. It is used where it
can (6 seeds or more, and that bound met: for 14 metrics, 10 seeds), the
paired t-test elsewhere; each comparison records its test. The choice
depends on n and k only, never on the data.

Too few seeds: below `MIN_SEEDS` (3) seeds no test can decide (with 2
pairs the t-test has one degree of freedom and the smallest Wilcoxon or
sign-test p-value is 0.5), so the comparison carries the mean difference
and its interval, no p-value, and the verdict is `NO_VERDICT`;
`seeds_note(n)` is the sentence a report prints to say why. Equal non-zero
differences (the t statistic is infinite: a t-test p-value of 0, though
every seed moved by, say, the same 2 test images) are tested by their signs
alone: the exact Wilcoxon signed-rank p-value, 2 / 2**n.
"""

import math
import numbers

import numpy as np

DIRECTIONS = ("higher", "lower")
VERDICTS = ("better", "worse", "no significant difference")
# Fewest seeds (pairs) for a test, hence for a verdict: with 2 the t-test has one degree of freedom and the
# smallest Wilcoxon / sign-test p-value is 2 / 2**2 = 0.5; below, comparisons give intervals only.
MIN_SEEDS = 3
# The verdict of a comparison of fewer than MIN_SEEDS seeds.
NO_VERDICT = "no verdict"
# Fewest seeds for the Wilcoxon signed-rank test (below, its p-value cannot reach 0.05).
WILCOXON_MIN_N = 6


def wilcoxon_can_decide(n, family_size=1, alpha=0.05):
    """Whether the Wilcoxon test of n pairs can reach `alpha` after Holm over `family_size` tests."""
    return n >= WILCOXON_MIN_N and 2.0 * family_size / 2.0 ** n < alpha


def can_decide(n):
    """Whether n paired seeds are enough for a test and a verdict (n >= `MIN_SEEDS`)."""
    return isinstance(n, numbers.Integral) and n >= MIN_SEEDS


def seeds_note(n):
    """Why a comparison of n seeds has no verdicts, for a report; `None` when it can have them.

    Args:
        n: the number of seeds (paired values) per method.

    Returns:
        A sentence, or `None` when `can_decide(n)`.

    Example:

    ```python
    keras_edda.statistics.seeds_note(2)
    # 'With 2 seeds per method no test can decide: ...'
    ```
    """
    if can_decide(n):
        return None
    return (f"With {n} seed{'s' if n != 1 else ''} per method no test can decide: a paired test needs at least "
            f"{MIN_SEEDS} seeds (with 2, the t-test has one degree of freedom and the smallest Wilcoxon or "
            "sign-test p-value is 0.5), so the comparisons give the mean difference and its bootstrap interval "
            "(with so few seeds, hardly more than the range of the differences), and no p-values or verdicts. "
            f"Run {MIN_SEEDS} seeds or more for verdicts.")


def _values(values, name):
    try:
        array = np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a sequence of numbers. Received: {name}={values!r}") from None
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must be a flat sequence of finite numbers. Received: {name}={values!r}")
    return array


def _number(value):
    return None if value is None or not math.isfinite(value) else float(value)


def summary(values):
    """Mean and sample standard deviation of per-seed values.

    Args:
        values: one number per seed.

    Returns:
        `{"mean", "std", "values", "n"}`; `std` has ddof 1 (`None` for
        fewer than two values; `mean` is `None` for none).

    Example:

    ```python
    keras_edda.statistics.summary([0.97, 0.98, 0.96])
    # {"mean": 0.97, "std": 0.01, "values": [0.97, 0.98, 0.96], "n": 3}
    ```
    """
    array = _values(values, "values")
    return {"mean": _number(array.mean()) if len(array) else None,
            "std": _number(array.std(ddof=1)) if len(array) > 1 else None,
            "values": [float(v) for v in array], "n": len(array)}


def bootstrap_ci(differences, confidence=0.95, resamples=10_000, seed=0):
    """Percentile bootstrap confidence interval of the mean.

    Args:
        differences: the sample (e.g. per-seed paired differences).
        confidence: coverage of the interval, in (0, 1).
        resamples: bootstrap resamples (with replacement, of the sample's size).
        seed: seed of the resampling; the same seed gives the same interval.

    Returns:
        `(low, high)`; `(None, None)` for fewer than two values.
    """
    array = _values(differences, "differences")
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"`confidence` must lie in (0, 1). Received: confidence={confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral) or resamples < 1:
        raise ValueError(f"`resamples` must be a positive integer. Received: resamples={resamples!r}")
    if len(array) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, len(array), (int(resamples), len(array)))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_test(differences, family_size=1, alpha=0.05, scale=None):
    """Two-sided paired test of "the mean (median) difference is 0".

    Wilcoxon signed-rank (`scipy.stats.wilcoxon`, zero differences
    dropped) where it can decide after Holm over `family_size` tests
    (`wilcoxon_can_decide`: 6 pairs or more, and 2 * family_size / 2**n <
    alpha), else the paired t-test (`scipy.stats.ttest_1samp` of the
    differences, the same as `ttest_rel`). All-zero differences give
    p = 1; fewer than `MIN_SEEDS` (3) pairs give no test; equal non-zero
    differences (the t statistic would be infinite, p = 0) are tested by
    their signs: the exact Wilcoxon signed-rank p-value 2 / 2**n (test
    `"wilcoxon"`). Differences count as equal when their spread is within
    1e-6 of `scale` (the float32 rounding of the values they are
    differences of: accuracies of 2 of 450 images fewer on every seed differ
    by some 1e-8), else within 1e-9 of their own size.

    Args:
        differences: paired differences, one per seed.
        family_size: how many tests Holm will adjust this one with.
        alpha: the level the verdicts use.
        scale: the size of the values the differences come from (their
            largest absolute value), for the equality above; `None`: the
            differences' own.

    Returns:
        `(p_value, test)`: `test` is `"wilcoxon"`, `"paired_t"` or `"none"`
        (then `p_value` is `None`).
    """
    from scipy import stats

    array = _values(differences, "differences")
    if not can_decide(len(array)):
        return None, "none"
    test = "wilcoxon" if wilcoxon_can_decide(len(array), family_size, alpha) else "paired_t"
    if not np.any(array):
        return 1.0, test
    tolerance = max(1e-9 * np.max(np.abs(array)), 0.0 if scale is None else 1e-6 * float(scale))
    if np.ptp(array) <= tolerance:
        # All n differences of one sign and one size: every signed-rank statistic but the two extremes is
        # excluded, so the exact two-sided p-value is 2 / 2**n (the sign test's), never 0.
        return min(1.0, 2.0 / 2.0 ** len(array)), "wilcoxon"
    if test == "wilcoxon":
        return float(stats.wilcoxon(array).pvalue), test
    return float(stats.ttest_1samp(array, 0.0).pvalue), test


def _test_direction(differences, test):
    """+1 / -1 / 0: the side the test leans to (the signed-rank sum for Wilcoxon, the mean for t)."""
    from scipy import stats

    array = np.asarray(differences, "float64")
    if test == "wilcoxon":
        nonzero = array[array != 0]
        return int(np.sign(np.sum(np.sign(nonzero) * stats.rankdata(np.abs(nonzero))))) if len(nonzero) else 0
    return int(np.sign(array.mean())) if len(array) else 0


def paired_comparison(reference_values, other_values, direction="higher", confidence=0.95,
                      resamples=10_000, seed=0, family_size=1, alpha=0.05):
    """Compares two methods on one metric by their per-seed differences.

    Args:
        reference_values: the reference method's value on each seed.
        other_values: the other method's value on the same seeds, in the
            same order.
        direction: `"higher"` or `"lower"`: which values of the metric are
            better. The differences are signed so that positive means the
            reference is better.
        confidence: coverage of the bootstrap interval.
        resamples: bootstrap resamples.
        seed: seed of the bootstrap.
        family_size, alpha: passed to `paired_test` (they pick the test).

    Returns:
        A dict: `difference_mean`, `difference_std` (ddof 1), `differences`,
        `ci_low`, `ci_high` (percentile bootstrap interval of the mean
        difference), `confidence`, `resamples`, `p_value`, `test`
        (`"wilcoxon"`, `"paired_t"` or `"none"`: fewer than `MIN_SEEDS`
        seeds, `p_value` is `None`), `test_direction` (+1 when
        the test leans to the reference, -1 against, 0 neither), `n`,
        `direction`.

    Example:

    ```python
    keras_edda.statistics.paired_comparison([0.98, 0.97, 0.99], [0.95, 0.96, 0.95], "higher")
    ```
    """
    reference = _values(reference_values, "reference_values")
    other = _values(other_values, "other_values")
    if len(reference) != len(other):
        raise ValueError("`reference_values` and `other_values` must have one value per seed each. "
                         f"Received: {len(reference)} and {len(other)} values")
    if direction not in DIRECTIONS:
        raise ValueError(f"`direction` must be one of {list(DIRECTIONS)}. Received: direction={direction!r}")
    differences = (reference - other) * (1.0 if direction == "higher" else -1.0)
    low, high = bootstrap_ci(differences, confidence, resamples, seed)
    scale = max(np.max(np.abs(reference)), np.max(np.abs(other))) if len(reference) else None
    p_value, test = paired_test(differences, family_size, alpha, scale)
    stats = summary(differences)
    return {"difference_mean": stats["mean"], "difference_std": stats["std"], "differences": stats["values"],
            "ci_low": low, "ci_high": high, "confidence": float(confidence), "resamples": int(resamples),
            "p_value": p_value, "test": test, "test_direction": _test_direction(differences, test),
            "n": len(differences), "direction": direction}


def holm(pvalues):
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    With m p-values sorted ascending, the k-th smallest (k = 1..m) becomes
    `max over j <= k of min(1, (m - j + 1) * p_(j))`. Rejecting where the
    adjusted value is below alpha controls the family-wise error rate at
    alpha. `None` entries (no test) stay `None` and do not count in m.

    Args:
        pvalues: a sequence of p-values in [0, 1] (or `None`).

    Returns:
        A list of adjusted p-values in the input order.

    Example:

    ```python
    keras_edda.statistics.holm([0.01, 0.04, 0.03])  # [0.03, 0.06, 0.06]
    ```
    """
    pvalues = list(pvalues)
    tested = [i for i, p in enumerate(pvalues) if p is not None]
    for i in tested:
        p = pvalues[i]
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"p-values must lie in [0, 1]. Received: pvalues={pvalues!r}")
    adjusted = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(tested, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (len(tested) - rank) * float(pvalues[i])))
        adjusted[i] = running
    return adjusted


def verdict(comparison, alpha=0.05):
    """`"better"` / `"worse"` when the Holm-adjusted p-value is below `alpha`, else no difference.

    The side is the mean difference's; it must be the side the test leans to (a Wilcoxon test can
    favour the reference's ranks while one outlying seed turns the mean against it: no verdict then).
    A comparison of fewer than `MIN_SEEDS` seeds gets `NO_VERDICT` (see `seeds_note`).
    """
    if not can_decide(comparison.get("n", MIN_SEEDS)):
        return NO_VERDICT
    p = comparison.get("p_holm")
    side = int(np.sign(comparison["difference_mean"] or 0.0))
    if p is None or p >= alpha or side == 0 or side != comparison.get("test_direction", side):
        return VERDICTS[2]
    return VERDICTS[0] if side > 0 else VERDICTS[1]


def compare_methods(table, reference, direction_of, family="metrics", alpha=0.05, confidence=0.95,
                    resamples=10_000, seed=0):
    """The reference method against each other method, metric by metric.

    Args:
        table: `{method: {metric: [one value per seed]}}` (or
            `{method: {metric: {"values": [...], ...}}}`, as `summary` and
            the experiment's summaries give); every method's values come
            from the same seeds in the same order.
        reference: the method compared against the others (e.g. `"edda"`).
        direction_of: `metric -> "higher" | "lower"` (a callable or a dict).
        family: which p-values are adjusted together by Holm: `"metrics"`
            (those of one other method across the metrics of the table) or
            `"table"` (all metrics of all other methods).
        alpha: level of the verdict.
        confidence, resamples, seed: of the bootstrap interval.

    Returns:
        `{metric: {other_method: comparison}}`: each comparison is the dict of
        `paired_comparison` (differences positive when `reference` is
        better) plus `p_holm` and `verdict` (`"better"`, `"worse"` or
        `"no significant difference"`, for the reference; `NO_VERDICT` with
        fewer than `MIN_SEEDS` seeds: then print `seeds_note(n)`).

    Example:

    ```python
    table = {"edda": {"accuracy": [0.97, 0.98, 0.97]}, "none": {"accuracy": [0.96, 0.97, 0.95]}}
    keras_edda.statistics.compare_methods(table, "edda", {"accuracy": "higher"})
    ```
    """
    if reference not in table:
        raise ValueError(f"`reference` must be a method of the table {sorted(table)}. "
                         f"Received: reference={reference!r}")
    if family not in ("metrics", "table"):
        raise ValueError(f"`family` must be 'metrics' or 'table'. Received: family={family!r}")
    lookup = direction_of.__getitem__ if isinstance(direction_of, dict) else direction_of
    table = {method: {metric: cell["values"] if isinstance(cell, dict) else cell for metric, cell in by_metric.items()}
             for method, by_metric in table.items()}
    pairs = [(metric, other) for metric in table[reference] for other in table
             if other != reference and metric in table[other]]
    others = sorted({other for _, other in pairs})
    families = [others] if family == "table" else [[other] for other in others]
    family_size = {other: sum(o in members for _, o in pairs) for members in families for other in members}
    result = {}
    for metric, other in pairs:
        result.setdefault(metric, {})[other] = paired_comparison(
            table[reference][metric], table[other][metric], lookup(metric), confidence, resamples, seed,
            family_size[other], alpha)
    for members in families:
        cells = [by_other[o] for by_other in result.values() for o in members if o in by_other]
        for cell, adjusted in zip(cells, holm([cell["p_value"] for cell in cells])):
            cell["p_holm"] = adjusted
            cell["verdict"] = verdict(cell, alpha)
    return result
