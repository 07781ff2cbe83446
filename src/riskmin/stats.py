"""Statistics over runs: mean, sample standard deviation, naive and corrected intervals, paired tests.

Runs over random splits of one finite sample share most of their training rows, so their
test errors are correlated and the naive Student-t interval, which treats them as
independent, is too narrow. Nadeau and Bengio (2003) correct the variance of the mean of R
such runs from s^2 / R to (1/R + n_test/n_train) s^2, with R - 1 degrees of freedom; for R
rows of repeated K-fold cross-validation Bouckaert and Frank (2004) use the same correction
with n_test/n_train = 1/(K - 1). Every function reports both, naive and corrected.

The t distribution is computed here, through the regularized incomplete beta function, so
that no statistics library is needed for a handful of numbers.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Optional

from .config import RiskminError

METRIC_PREFIXES = ("train_", "val_", "test_")
EXTRA_METRICS = ("closed_form_test_loss", "best_epoch")


def describe(values: list, n_train: Optional[int] = None, n_test: Optional[int] = None, folds: Optional[int] = None,
             confidence: float = 0.95) -> dict:
    """n, mean, sample std, standard error and the naive and corrected t intervals of the mean of `values`.

    Values that are None, NaN or infinite are left out and counted in `excluded`. The
    corrected interval needs the split sizes (`n_train`, `n_test`) or, for repeated k-fold,
    `folds`; without them it is None, as is everything but the mean below two values.

    >>> d = describe([9.0, 10.0, 11.0, None], n_train=80, n_test=20)
    >>> d["n"], d["excluded"], round(d["ci_low"], 3), round(d["corrected_ci_low"], 3)
    (3, 1, 7.516, 6.714)
    """
    check_confidence(confidence)
    ratio = correction_ratio(n_train, n_test, folds)
    kept = [float(v) for v in values if is_number(v)]
    n = len(kept)
    result = {"n": n, "excluded": len(values) - n, "mean": math.fsum(kept) / n if n else None, "std": None, "se": None,
              "ci_low": None, "ci_high": None, "corrected_se": None, "corrected_ci_low": None, "corrected_ci_high": None}
    if n < 2:
        return result
    mean = result["mean"]
    variance = math.fsum((v - mean) ** 2 for v in kept) / (n - 1)
    quantile = t_quantile(0.5 + confidence / 2, n - 1)
    result.update(std=math.sqrt(variance), se=math.sqrt(variance / n))
    result.update(ci_low=mean - quantile * result["se"], ci_high=mean + quantile * result["se"])
    if ratio is not None:
        corrected = math.sqrt((1 / n + ratio) * variance)
        result.update(corrected_se=corrected, corrected_ci_low=mean - quantile * corrected, corrected_ci_high=mean + quantile * corrected)
    return result


def summarize(table: list, n_train: Optional[int] = None, n_test: Optional[int] = None, folds: Optional[int] = None,
              confidence: float = 0.95) -> dict:
    """`describe` of every metric column of the run rows, and of the gap test_loss - train_loss.

    Metric columns are the numeric ones named train_*, val_*, test_*, closed_form_test_loss
    and best_epoch. Rows whose `diverged` is true are left out of every statistic; the
    summary lists the runs it used (their `run` value, else their position) and the ones it
    left out. Every number is finite or None, so the summary is strict JSON.

    >>> rows = [{"run": 0, "train_loss": 1.0, "test_loss": 2.0, "diverged": False},
    ...         {"run": 1, "train_loss": 1.0, "test_loss": 4.0, "diverged": False},
    ...         {"run": 2, "train_loss": float("nan"), "test_loss": float("nan"), "diverged": True}]
    >>> s = summarize(rows, n_train=80, n_test=20)
    >>> s["used_runs"], s["diverged_runs"], s["metrics"]["gap"]["mean"], s["correction"]
    ([0, 1], [2], 2.0, 'Nadeau-Bengio')
    """
    ratio = correction_ratio(n_train, n_test, folds)
    used = [row for row in table if not row.get("diverged")]
    columns = {name: [row.get(name) for row in used] for name in metric_names(table)}
    if "train_loss" in columns and "test_loss" in columns:
        columns["gap"] = [loss_gap(row) for row in used]
    described = {name: describe(values, n_train, n_test, folds, confidence) for name, values in columns.items()}
    return {"metrics": {name: d for name, d in described.items() if d["n"]},
            "used_runs": [run_id(row, i) for i, row in enumerate(table) if not row.get("diverged")],
            "diverged": len(table) - len(used),
            "diverged_runs": [run_id(row, i) for i, row in enumerate(table) if row.get("diverged")],
            "confidence": confidence, "correction": correction_name(ratio, folds), "test_train_ratio": ratio}


def metric_names(table: list) -> list:
    """The metric columns of the run rows in order of first appearance: those named train_*, val_*, test_* or
    in EXTRA_METRICS that hold a number in at least one row, diverged or not."""
    names = dict.fromkeys(key for row in table for key in row)
    return [name for name in names if is_metric_name(name) and any(is_numeric_type(row.get(name)) for row in table)]


def is_metric_name(name: str) -> bool:
    return name.startswith(METRIC_PREFIXES) or name in EXTRA_METRICS


def loss_gap(row: dict) -> Optional[float]:
    """test_loss - train_loss of one run row, or None when either is missing or not a number."""
    if is_number(row.get("test_loss")) and is_number(row.get("train_loss")):
        return row["test_loss"] - row["train_loss"]
    return None


def paired(a: list, b: list, n_train: Optional[int] = None, n_test: Optional[int] = None, folds: Optional[int] = None,
           confidence: float = 0.95) -> dict:
    """Compare two candidates scored on the same splits: `describe` of the differences a - b, with two-sided t-tests.

    `p_value` is the ordinary paired t-test (scipy's `ttest_rel`); `corrected_p_value` the
    corrected resampled paired t-test of Nadeau and Bengio (Bouckaert and Frank's for
    repeated k-fold), which holds its level when the splits share training rows. A pair with
    a missing value on either side is left out (`excluded`). When all differences are equal
    there is no spread to test against: t is None and p is 1 if they are all zero, else 0.

    >>> d = paired([3.0, 4.0, 5.0, 6.0], [1.0, 3.0, 2.0, 4.0], n_train=90, n_test=10)
    >>> d["mean"], round(d["p_value"], 4), round(d["corrected_p_value"], 4)
    (2.0, 0.0163, 0.0267)
    """
    if len(a) != len(b):
        raise RiskminError(f"a paired comparison needs one value of each candidate per split, but got {len(a)} and {len(b)} values")
    differences = [x - y if is_number(x) and is_number(y) else None for x, y in zip(a, b)]
    result = describe(differences, n_train, n_test, folds, confidence)
    result.update(t=None, p_value=None, corrected_t=None, corrected_p_value=None)
    if result["n"] < 2:
        return result
    result["t"], result["p_value"] = t_test(result["mean"], result["se"], result["n"] - 1)
    if result["corrected_se"] is not None:
        result["corrected_t"], result["corrected_p_value"] = t_test(result["mean"], result["corrected_se"], result["n"] - 1)
    return result


def holm(pvalues: list) -> list:
    """Holm's step-down adjustment of p-values for testing several hypotheses at once, in their given order.

    The k-th smallest of m p-values is multiplied by m - k + 1; the results are made
    non-decreasing in that order and capped at 1. None stays None and does not count in m.

    >>> holm([0.01, 0.04, 0.03, None])
    [0.03, 0.06, 0.06, None]
    """
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted, running = list(pvalues), 0.0
    for k, (p, i) in enumerate(present):
        running = max(running, min(1.0, (len(present) - k) * p))
        adjusted[i] = running
    return adjusted


def t_test(mean: float, se: float, df: int) -> tuple:
    """(t, two-sided p) of the hypothesis that the true mean is 0, given its standard error."""
    if se == 0:
        return None, 1.0 if mean == 0 else 0.0
    t = mean / se
    return t, t_two_sided(t, df)


def correction_ratio(n_train: Optional[int], n_test: Optional[int], folds: Optional[int]) -> Optional[float]:
    """n_test / n_train of the corrected variance: from the split sizes when given, else 1/(K-1) for K folds."""
    if (n_train is None) != (n_test is None):
        raise RiskminError("a corrected interval needs both n_train and n_test (the rows of one training and one test split)")
    if folds is not None and (not isinstance(folds, numbers.Integral) or folds < 2):
        raise RiskminError(f"folds={folds!r} is not a number of folds; k-fold cross-validation needs an integer of at least 2")
    if n_train is not None:
        if n_train < 1 or n_test < 1:
            raise RiskminError(f"split sizes n_train={n_train}, n_test={n_test} are not allowed; both must be at least 1")
        return n_test / n_train
    return None if folds is None else 1 / (folds - 1)


def correction_name(ratio: Optional[float], folds: Optional[int]) -> Optional[str]:
    if ratio is None:
        return None
    return "Nadeau-Bengio" if folds is None else "Bouckaert-Frank"


def check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise RiskminError(f"confidence={confidence!r} is not allowed; give a level between 0 and 1, such as 0.95")


def is_numeric_type(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite int or float: what a statistic can use (booleans and flags are not metrics)."""
    return is_numeric_type(value) and math.isfinite(value)


def run_id(row: dict, position: int):
    return row.get("run", position)


@functools.lru_cache(maxsize=256)  # an experiment asks for the same few quantiles once per metric
def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom, by bisection on its exact CDF.

    >>> round(t_quantile(0.975, 9), 3), round(t_quantile(0.975, 1), 3), round(t_quantile(0.025, 9), 3)
    (2.262, 12.706, -2.262)
    """
    if not 0 < p < 1:
        raise RiskminError(f"a quantile needs a probability strictly between 0 and 1, not {p!r}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom, for any t.

    >>> round(t_cdf(2.262, 9), 4), round(t_cdf(-2.262, 9), 4), t_cdf(0.0, 5)
    (0.975, 0.025, 0.5)
    """
    tail = t_two_sided(t, df) / 2
    return 1.0 - tail if t > 0 else tail


def t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) = I_x(df/2, 1/2) with x = df / (df + t^2), computed on the tail so that small p keep their digits."""
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2))
    square = t * t
    # both x and 1 - x are formed directly: 1 - x by subtraction would lose the digits of a tiny t^2/df
    return incomplete_beta(df / 2, 0.5, df / (df + square), square / (df + square))


def incomplete_beta(a: float, b: float, x: float, complement: Optional[float] = None) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz).

    `complement` is 1 - x when the caller knows it more precisely than 1 - x computes it.
    """
    complement = 1.0 - x if complement is None else complement
    if x <= 0.0:
        return 0.0
    if complement <= 0.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1.0 - incomplete_beta(b, a, complement, x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(complement)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    # the fraction needs about sqrt(a) terms when a is large (many degrees of freedom)
    for m in range(1, 1000 + int(10 * math.sqrt(a + b))):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * result
