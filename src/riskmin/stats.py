"""Statistics over runs: mean, sample standard deviation, naive and corrected intervals, paired tests.

Runs over random splits of one finite sample share most of their training rows, so their
test errors are correlated and the naive Student-t interval, which treats them as
independent, is too narrow. Nadeau and Bengio (2003) correct the variance of the mean of R
such runs from s^2 / R to (1/R + n_test/n_train) s^2, with R - 1 degrees of freedom; for R
rows of repeated K-fold cross-validation Bouckaert and Frank (2004) use the same correction
with n_test/n_train = 1/(K - 1). Every function reports both, the naive statistics under
naive_ names; the correction applies to metrics on held-out rows only.

A loss is positive and skewed to the right, and its spread grows with its level: a sample whose
errors came out low has a small spread too, so an interval symmetric about the mean lies wholly
below the true risk far more often than above it. The intervals of an error metric (a loss,
mse, rmse, mae, log_loss) are therefore taken on the log scale of the mean, mean x exp(+-t se /
mean), the delta method's interval for log(mean); the standard errors stay those of the mean.
Fractions, r2, the best epoch, the gap and paired differences keep the interval mean +- t se.

The t distribution is computed here, through the regularized incomplete beta function, so
that no statistics library is needed for a handful of numbers.
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
from typing import Optional

from .config import RiskminError
from .metrics import METRIC_PREFIXES, METRICS, base_metric, metrics_where

__all__ = ["bayesian", "describe", "describe_metric", "detectable", "holm", "log_scaled", "paired", "summarize"]

EXTRA_METRICS = ("closed_form_test_loss", "best_epoch")


# describe and summarize take the same split sizes; laid out one argument a line, the formatter's way, their
# signatures would be two copies of one table (fmt: skip)
def describe(values: list, n_train: Optional[float] = None, n_test: Optional[float] = None,
             folds: Optional[int] = None, confidence: float = 0.95, log_scale: bool = False,
             shared: float = 1.0) -> dict:  # fmt: skip
    """n, mean, sample std, and the naive and corrected standard errors and t intervals of the mean of `values`.

    Values that are None, NaN or infinite are left out and counted in `excluded`. The
    corrected statistics need the split sizes (`n_train`, `n_test`: for a val_ metric, the
    validation rows in place of the test rows) or, for repeated k-fold, `folds`; without them
    they are None, as is everything but the mean below two values. The naive ones treat the runs
    as independent and are named so. With `log_scale` (an error metric: see `log_scaled`) and every
    value above 0, both intervals are mean x exp(+-t se / mean) (unless its upper end would overflow a
    float); else mean +- t se. `ci_scale` says which ("log" or "linear"; None without an interval). Values that all
    agree (every run's accuracy 1) give no interval: a spread of 0 says nothing of how the mean would vary with other
    splits, and [1, 1] would claim certainty. `shared`: the share of a full split's training rows each run trains on
    (`correction_ratio`), 1 but in a learning curve.

    >>> d = describe([9.0, 10.0, 11.0, None], n_train=80, n_test=20)
    >>> d["n"], d["excluded"], round(d["naive_ci_low"], 3), round(d["corrected_ci_low"], 3), d["ci_scale"]
    (3, 1, 7.516, 6.714, 'linear')
    >>> d = describe([9.0, 10.0, 11.0], n_train=80, n_test=20, log_scale=True)
    >>> round(d["corrected_ci_low"], 3), round(d["corrected_ci_high"], 3), d["ci_scale"]
    (7.199, 13.891, 'log')
    >>> d = describe([1.0, 1.0, 1.0], n_train=80, n_test=20)
    >>> d["std"], d["corrected_se"], d["corrected_ci_low"], d["ci_scale"]
    (0.0, 0.0, None, None)
    """
    check_confidence(confidence)
    ratio = correction_ratio(n_train, n_test, folds, shared)
    kept = [float(v) for v in values if is_number(v)]
    n = len(kept)
    result: dict = {
        "n": n,
        "excluded": len(values) - n,
        "mean": math.fsum(kept) / n if n else None,
        "std": None,
        "corrected_se": None,
        "corrected_ci_low": None,
        "corrected_ci_high": None,
        "naive_se": None,
        "naive_ci_low": None,
        "naive_ci_high": None,
        "ci_scale": None,
    }
    if n < 2:
        return result
    mean = result["mean"]
    variance = math.fsum((v - mean) ** 2 for v in kept) / (n - 1)
    quantile = t_quantile(0.5 + confidence / 2, n - 1)
    result.update(std=math.sqrt(variance), naive_se=math.sqrt(variance / n))
    kinds = ("naive",) if ratio is None else ("naive", "corrected")
    if ratio is not None:
        result["corrected_se"] = math.sqrt((1 / n + ratio) * variance)
    if variance == 0:  # no interval from values that all agree
        return result
    widest = quantile * max(result[f"{kind}_se"] for kind in kinds)
    # a spread so wide beside the mean that its upper end would overflow a float keeps the linear interval
    on_log = log_scale and min(kept) > 0 and math.log(mean) + widest / mean < math.log(sys.float_info.max)
    result["ci_scale"] = "log" if on_log else "linear"
    for kind in kinds:
        reach = quantile * result[f"{kind}_se"]
        if on_log:  # the delta method's interval for log(mean), taken back: mean x exp(+-t se / mean)
            low, high = mean * math.exp(-reach / mean), mean * math.exp(reach / mean)
        else:
            low, high = mean - reach, mean + reach
        result.update({f"{kind}_ci_low": low, f"{kind}_ci_high": high})
    return result


def describe_metric(name: str, values: list, n_train: Optional[float] = None, n_test: Optional[float] = None,
                    folds: Optional[int] = None, confidence: float = 0.95, shared: float = 1.0) -> dict:  # fmt: skip
    """`describe` of the values of metric `name` as a summary gives them: an error's intervals on the log scale
    (`log_scaled`), and every interval kept within the values the metric can take (accuracy and f1 within [0, 1], r2
    at most 1: the truth lies there, so cutting an interval at the bound leaves its coverage as it was).

    >>> d = describe_metric("test_accuracy", [0.9, 1.0, 1.0, 0.95], n_train=80, n_test=20)
    >>> round(d["corrected_ci_low"], 3), d["corrected_ci_high"], d["ci_scale"]
    (0.855, 1.0, 'linear')
    """
    d = describe(values, n_train, n_test, folds, confidence, log_scaled(name), shared)
    return within(d, *bounds(name))


def bounds(name: str) -> tuple:
    """(lowest, highest) value metric `name` can take, None where it has none: (0, 1) for accuracy, (None, 1) for r2.

    >>> bounds("test_accuracy"), bounds("val_r2"), bounds("test_loss")
    ((0.0, 1.0), (None, 1.0), (None, None))
    """
    return getattr(METRICS.get(base_metric(name)), "bounds", (None, None))


def within(d: dict, low: Optional[float], high: Optional[float]) -> dict:
    """`d` (as `describe` or `paired` gives it) with its naive and corrected intervals cut at `low` and `high` (None:
    no bound there): the truth lies within them, so the cut leaves the coverage as it was."""
    for kind in ("naive", "corrected"):
        if d.get(f"{kind}_ci_low") is not None:
            d[f"{kind}_ci_low"] = d[f"{kind}_ci_low"] if low is None else max(low, d[f"{kind}_ci_low"])
            d[f"{kind}_ci_high"] = d[f"{kind}_ci_high"] if high is None else min(high, d[f"{kind}_ci_high"])
    return d


def log_scaled(name: str) -> bool:
    """Whether the intervals of metric `name` (test_loss, val_mse, closed_form_test_loss, ...) are taken on the log
    scale: those of an error, which is positive and whose spread grows with its level (the module's docstring says
    why).

    >>> log_scaled("test_loss"), log_scaled("val_log_loss"), log_scaled("test_accuracy"), log_scaled("gap")
    (True, True, False, False)
    """
    return base_metric(name) in metrics_where(higher_is_better=False)


def held_out(
    name: str, n_train: Optional[float], n_test: Optional[float], n_val: Optional[float], folds: Optional[int]
) -> tuple[Optional[float], Optional[float], Optional[int]]:
    """(n_train, n_held_out, folds) that correct metric `name`: its test rows (or K folds) for test metrics, its
    validation rows for val_ ones; Nones where the correction does not apply: train_ metrics are measured on the rows
    each run trained on, and best_epoch and the gap are not estimates of a risk on new data."""
    if name.startswith("test_") or name == "closed_form_test_loss":
        return n_train, n_test, folds
    if name.startswith("val_") and n_val and n_train:
        return n_train, n_val, None
    return None, None, None


def summarize(table: list, n_train: Optional[float] = None, n_test: Optional[float] = None,
              folds: Optional[int] = None, confidence: float = 0.95,
              n_val: Optional[float] = None, shared: float = 1.0) -> dict:  # fmt: skip
    """`describe` of every metric column of the run rows, and of the gap test_loss - train_loss.

    Metric columns are the numeric ones named train_*, val_*, test_*, closed_form_test_loss
    and best_epoch. Test metrics are corrected with n_test/n_train (1/(K-1) for K folds when no
    sizes are given), val_ metrics with n_val/n_train; train metrics, best_epoch and the gap get
    naive statistics only (see `held_out`). Rows whose `diverged` is true are left out of every
    statistic; the summary lists the runs it used (their `run` value, else their position) and
    the ones it left out. Every number is finite or None, so the summary is strict JSON. `shared`: the share of a
    full split's training rows each run trains on, below 1 in a learning curve (`correction_ratio`).

    >>> rows = [{"run": 0, "train_loss": 1.0, "test_loss": 2.0, "diverged": False},
    ...         {"run": 1, "train_loss": 1.0, "test_loss": 4.0, "diverged": False},
    ...         {"run": 2, "train_loss": float("nan"), "test_loss": float("nan"), "diverged": True}]
    >>> s = summarize(rows, n_train=80, n_test=20)
    >>> (s["used_runs"], s["diverged_runs"], s["metrics"]["gap"]["mean"], s["correction"],
    ...  s["metrics"]["gap"]["corrected_se"])
    ([0, 1], [2], 2.0, 'Nadeau-Bengio', None)
    """
    table = checked_rows(table)
    ratio = correction_ratio(n_train, n_test, folds, shared)
    used = [row for row in table if not row.get("diverged")]
    columns = {name: [row.get(name) for row in used] for name in metric_names(table)}
    if "train_loss" in columns and "test_loss" in columns:
        columns["gap"] = [loss_gap(row) for row in used]
    described = {}
    for name, values in columns.items():
        described[name] = describe_metric(
            name, values, *held_out(name, n_train, n_test, n_val, folds), confidence, shared
        )
    return {
        "metrics": {name: d for name, d in described.items() if d["n"]},
        # a metric no run measured as a number (r2 of one test row): left out of `metrics`, and named here
        "unmeasured": [name for name, d in described.items() if not d["n"] and d["excluded"]],
        "used_runs": [run_id(row, i) for i, row in enumerate(table) if not row.get("diverged")],
        "diverged": len(table) - len(used),
        "diverged_runs": [run_id(row, i) for i, row in enumerate(table) if row.get("diverged")],
        "confidence": confidence,
        "correction": correction_name(ratio, folds),
        "test_train_ratio": ratio,
        "val_train_ratio": correction_ratio(n_train, n_val, None, shared) if n_val and n_train else None,
        "shared_training": shared,
    }


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


def paired(
    a: list,
    b: list,
    n_train: Optional[float] = None,
    n_test: Optional[float] = None,
    folds: Optional[int] = None,
    confidence: float = 0.95,
) -> dict:
    """Compare two candidates scored on the same splits: `describe` of the differences a - b, with two-sided t-tests.

    `naive_p_value` is the ordinary paired t-test (scipy's `ttest_rel`); `corrected_p_value` the
    corrected resampled paired t-test of Nadeau and Bengio (Bouckaert and Frank's for
    repeated k-fold), which holds its level when the splits share training rows. A pair with
    a missing value on either side is left out (`excluded`). When all differences are equal
    there is no spread to test against: t is None and p is 1 if they are all zero, else None.

    >>> d = paired([3.0, 4.0, 5.0, 6.0], [1.0, 3.0, 2.0, 4.0], n_train=90, n_test=10)
    >>> d["mean"], round(d["naive_p_value"], 4), round(d["corrected_p_value"], 4)
    (2.0, 0.0163, 0.0267)
    """
    if len(a) != len(b):
        raise RiskminError(
            f"a paired comparison needs one value of each candidate per split, but got {len(a)} and {len(b)} values"
        )
    differences = [x - y if is_number(x) and is_number(y) else None for x, y in zip(a, b)]
    result = describe(differences, n_train, n_test, folds, confidence)
    result.update(corrected_t=None, corrected_p_value=None, naive_t=None, naive_p_value=None)
    if result["n"] < 2:
        return result
    result["naive_t"], result["naive_p_value"] = t_test(result["mean"], result["naive_se"], result["n"] - 1)
    if result["corrected_se"] is not None:
        result["corrected_t"], result["corrected_p_value"] = t_test(
            result["mean"], result["corrected_se"], result["n"] - 1
        )
    return result


def bayesian(test: dict, rope: Optional[float], higher_is_better: bool = False) -> dict:
    """The correlated Bayesian t-test (Corani and Benavoli, 2015; Benavoli, Corani, Demsar and Zaffalon, JMLR 2017) of
    the paired differences `test` (candidate minus best, as `paired` gives them), with a region of practical equivalence
    of half-width `rope` in the metric's units.

    The posterior of the mean difference is Student's t with n - 1 degrees of freedom, centred on
    the mean difference, scaled by the corrected standard error: the correlation of overlapping
    training sets, rho = n_test / (n_test + n_train), enters as rho / (1 - rho) = n_test/n_train,
    the same correction as Nadeau and Bengio's. Returned: the probabilities that the candidate
    is practically worse, practically equivalent or practically better than the best (None
    without a corrected standard error or with one of 0, or without a `rope`).

    >>> d = paired([3.0, 4.0, 5.0, 6.0], [1.0, 3.0, 2.0, 4.0], n_train=90, n_test=10)
    >>> {k: round(v, 3) for k, v in bayesian(d, 0.5).items()}
    {'p_worse': 0.972, 'p_equivalent': 0.02, 'p_better': 0.007}
    """
    check_rope(rope)
    se, mean = test.get("corrected_se"), test.get("mean")
    if se is None or mean is None or rope is None or se == 0:  # no spread: no posterior of any width
        return {"p_worse": None, "p_equivalent": None, "p_better": None}
    se, mean, rope, df = float(se), float(mean), float(rope), int(test["n"]) - 1  # plain floats out, numpy's in or not
    below, above = t_cdf((-rope - mean) / se, df), 1.0 - t_cdf((rope - mean) / se, df)
    worse, better = (below, above) if higher_is_better else (above, below)
    return {"p_worse": worse, "p_equivalent": max(0.0, 1.0 - worse - better), "p_better": better}


def detectable(test: dict, level: float = 0.05, power: float = 0.8) -> Optional[float]:
    """The smallest true mean difference the corrected paired t-test of `test` would detect with probability `power` at
    `level` (two-sided), with n - 1 degrees of freedom: the noncentrality of the t statistic that gives that power
    (`t_power`) times the corrected standard error. The usual shortcut, (t_{1 - level/2} + t_{power}) times it,
    undershoots with few splits (power 0.73 at 2 splits, 0.77 at 3); it is where the search starts.
    What the experiment could have told apart, before reading "not told apart" as "as good".

    >>> round(detectable({"n": 30, "corrected_se": 0.01}), 4), round(detectable({"n": 3, "corrected_se": 0.01}), 4)
    (0.029, 0.0565)
    """
    if not (0 < level < power < 1):
        raise RiskminError(
            f"level = {level!r} and power = {power!r} are not allowed; both lie between 0 and 1, the power above the "
            "level"
        )
    se = test.get("corrected_se")
    if not se or test.get("n", 0) < 2:  # no spread (se 0): nothing to scale a difference by
        return None
    return detectable_shift(test["n"] - 1, level, power) * se


@functools.cache  # the same for every candidate and metric of an experiment: its splits, the level and the power
def detectable_shift(df: int, level: float, power: float) -> float:
    """The noncentrality (in standard errors) at which a two-sided t-test at `level` with df degrees of freedom has
    power `power`."""
    critical = t_quantile(1 - level / 2, df)
    short = lambda shift: t_power(shift, critical, df) - power  # noqa: E731  (below 0 while the shift is too small)
    low, high = 0.0, critical + t_quantile(power, df)
    below, above = short(low), short(high)
    while above < 0:
        low, below, high = high, above, 2 * high
        above = short(high)
    # the Illinois method: regula falsi that halves the end kept twice, bracketing the root all the while
    kept = 0
    while high - low > 1e-10 * high:
        middle = high - above * (high - low) / (above - below)
        value = short(middle)
        if value == 0:
            return middle
        if value < 0:
            low, below = middle, value
            above, kept = (above / 2, kept + 1) if kept > 0 else (above, 1)  # the high end kept again: halve it
        else:
            high, above = middle, value
            below, kept = (below / 2, kept - 1) if kept < 0 else (below, -1)
    return high


def t_power(shift: float, critical: float, df: int, points: int = 400) -> float:
    """P(|T| > critical) for T = (Z + shift) / sqrt(V / df), Z standard normal, V chi-squared with df degrees of
    freedom: the power of a two-sided t-test when the true difference is `shift` standard errors. Simpson's rule
    over u = sqrt(V), whose density is u^(df-1) exp(-u^2/2) / (2^(df/2-1) Gamma(df/2)), up to where either the
    density or the chance of passing the critical value has fallen below 1e-18.

    >>> round(t_power(0.0, 12.7062047361747, 1), 6)  # no difference: the level
    0.05
    """
    # T passes the critical value only while critical u / sqrt(df) - shift is a few standard normals at most
    top = min(math.sqrt(df) + 10.0, (shift + 9.0) * math.sqrt(df) / critical)
    step = top / points
    total = 0.0
    for i in range(points + 1):
        u = i * step
        weight = 1 if i in (0, points) else 4 if i % 2 else 2
        if u > 0:
            density = math.exp((df - 1) * math.log(u) - u * u / 2 - (df / 2 - 1) * math.log(2) - math.lgamma(df / 2))
        else:  # u^(df - 1) at 0: 1 for one degree of freedom, else 0
            density = math.sqrt(2 / math.pi) if df == 1 else 0.0
        scaled = critical * u / math.sqrt(df)
        beyond = 0.5 * math.erfc((scaled - shift) / math.sqrt(2)) + 0.5 * math.erfc((scaled + shift) / math.sqrt(2))
        total += weight * density * beyond
    return total * step / 3


def holm(pvalues: list) -> list:
    """Holm's step-down adjustment of p-values for testing several hypotheses at once, in their given order.

    The k-th smallest of m p-values is multiplied by m - k + 1; the results are made
    non-decreasing in that order and capped at 1. None or NaN (pandas' missing value) stays as it is and does not
    count in m.

    >>> holm([0.01, 0.04, 0.03, None])
    [0.03, 0.06, 0.06, None]
    """
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p))
    adjusted, running = list(pvalues), 0.0
    for k, (p, i) in enumerate(present):
        running = max(running, min(1.0, (len(present) - k) * p))
        adjusted[i] = running
    return adjusted


def t_test(mean: float, se: float, df: int) -> tuple:
    """(t, two-sided p) of the hypothesis that the true mean is 0, given its standard error. Without a spread (se 0) a
    mean of 0 is not told apart from 0 (p 1), and any other mean cannot be tested (p None): differences that all agree
    say nothing of how they would vary with other splits."""
    if se == 0:
        return None, 1.0 if mean == 0 else None
    t = mean / se
    return t, t_two_sided(t, df)


def correction_ratio(
    n_train: Optional[float], n_test: Optional[float], folds: Optional[int], shared: float = 1.0
) -> Optional[float]:
    """n_test / n_train of the corrected variance: from the split sizes when given, else 1/(K-1) for K folds.

    Nadeau and Bengio's ratio stands for rho / (1 - rho), rho = n_test / (n_test + n_train) the correlation that
    the rows two runs share give their errors. Runs that each train on a share `shared` of a full split's training
    rows (a learning curve's smaller sizes, nested in the full split's, with the same test rows) hold no more rows in
    common than the full split's runs, whose ratio, n_test / (n_train / shared), is taken: at 80 of lab1's 800
    training rows 0.125, not 1.25, which made the interval several times too wide (README, Learning curves).

    >>> correction_ratio(800, 100, None), correction_ratio(80, 100, None, shared=0.1)
    (0.125, 0.125)
    """
    if (n_train is None) != (n_test is None):
        raise RiskminError(
            "a corrected interval needs both n_train and n_test (the rows of one training and one test split)"
        )
    if folds is not None and (not isinstance(folds, numbers.Integral) or folds < 2):
        raise RiskminError(
            f"folds={folds!r} is not a number of folds; k-fold cross-validation needs an integer of at least 2"
        )
    if not 0 < shared <= 1:
        raise RiskminError(f"shared = {shared!r} is not a share of the training rows; it lies in (0, 1]")
    if n_train is not None and n_test is not None:  # both or neither, as just checked
        if n_train < 1 or n_test < 1:
            raise RiskminError(
                f"split sizes n_train={n_train}, n_test={n_test} are not allowed; both must be at least 1"
            )
        return n_test / (n_train / shared)
    return None if folds is None else 1 / (folds - 1)


def correction_name(ratio: Optional[float], folds: Optional[int]) -> Optional[str]:
    """Bouckaert-Frank for K folds whose test/train ratio is 1/(K-1) (no validation rows carved out of the training
    folds), else Nadeau-Bengio: the correction is named for the ratio it used."""
    if ratio is None:
        return None
    return "Bouckaert-Frank" if folds and math.isclose(ratio, 1 / (folds - 1)) else "Nadeau-Bengio"


FEW_RUNS = 5  # below this many runs a t interval rests on a standard deviation of a handful of values


def few_runs(n: int, confidence: float = 0.95) -> Optional[str]:
    """A sentence saying that intervals over `n` runs are wide and unstable, or that one run gives none, when n is below
    FEW_RUNS; else None (and None for no run at all, which is said where it happens).

    >>> few_runs(2)  # doctest: +NORMALIZE_WHITESPACE
    'intervals from 2 runs are wide and unstable (the 95% t quantile is 12.71 at 2 runs, 2.78 at 5): run at least 5,
    better 20 or more'
    >>> few_runs(1)
    'one run gives no interval, since the spread of the runs is unknown: run at least 5, better 20 or more'
    """
    if n >= FEW_RUNS or n < 1:
        return None
    if n == 1:
        unknown = "one run gives no interval, since the spread of the runs is unknown"
        return f"{unknown}: run at least {FEW_RUNS}, better 20 or more"
    quantile = lambda runs: t_quantile(0.5 + confidence / 2, runs - 1)  # noqa: E731
    return (
        f"intervals from {n} runs are wide and unstable (the {confidence:.0%} t quantile is {quantile(n):.2f} at "
        f"{n} runs, {quantile(FEW_RUNS):.2f} at {FEW_RUNS}): run at least {FEW_RUNS}, better 20 or more"
    )


def check_rope(rope, units: str = "the metric's units") -> None:
    """Refuse a rope that is not a number of at least 0 (a boolean, NaN, a negative one), in `units`' words."""
    if rope is not None and not (is_number(rope) and rope >= 0):
        raise RiskminError(
            f"rope = {rope!r} is not allowed; give the half-width of the region of practical equivalence in {units}, "
            "a number of at least 0 (for example 0.01)"
        )


def check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise RiskminError(f"confidence={confidence!r} is not allowed; give a level between 0 and 1, such as 0.95")


def is_numeric_type(value) -> bool:
    """A number of any kind: an int or a float, NumPy's scalars, a tensor of one element; not a boolean (a flag, not a
    metric), nor text, even text of a number (a CSV file's cell, which `summarize` refuses)."""
    if isinstance(value, (bool, str, bytes)) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool"):
        return False  # NumPy's and torch's booleans too
    if isinstance(value, numbers.Real):
        return True
    try:
        float(value)  # a tensor or an array of one element
    except (TypeError, ValueError, RuntimeError):
        return False
    return True


def is_number(value) -> bool:
    """A finite number of any kind (is_numeric_type): what a statistic can use (booleans and flags are not metrics)."""
    return is_numeric_type(value) and math.isfinite(float(value))


def checked_rows(table) -> list:
    """The run rows of `table`: a list of dicts as given, a DataFrame's records; refused, in one sentence, where they
    hold text (a CSV file read by csv.DictReader, whose "False" would read as a run that diverged)."""
    if hasattr(table, "to_dict") and not isinstance(table, dict):  # a pandas DataFrame
        table = table.to_dict("records")
    if not isinstance(table, (list, tuple)) or not all(isinstance(row, dict) for row in table):
        raise RiskminError(
            f"table is a {type(table).__name__}; give the runs as a list of dicts, one a run (MonteCarlo.table), or a "
            "DataFrame"
        )
    text = next(((name, value) for row in table for name, value in row.items() if isinstance(value, str)
                 and (name == "diverged" or is_metric_name(name))), None)  # fmt: skip
    if text:
        raise RiskminError(
            f"the runs hold text where numbers belong ({text[0]} = {text[1]!r}), as csv.DictReader reads runs.csv; "
            "read it with pandas.read_csv, whose DataFrame summarize takes"
        )
    return list(table)


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
    """P(|T| >= |t|) = I_x(df/2, 1/2) with x = df / (df + t^2), computed on the tail so that small p keep their
    digits."""
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
    front = (
        math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(complement)) / a
    )
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    # the fraction needs about sqrt(a) terms when a is large (many degrees of freedom)
    for m in range(1, 1000 + int(10 * math.sqrt(a + b))):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * result
