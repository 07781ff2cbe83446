"""Statistics over Monte-Carlo runs: mean, sample standard deviation, Student-t confidence intervals.

The t quantile is computed exactly, by bisection on the CDF through the regularized
incomplete beta function, so no statistics library is needed for one number.
"""

from __future__ import annotations

import math


def summarize(table: list) -> dict:
    """Mean, sample standard deviation and 95% confidence interval of the mean of every metric."""
    keys = [k for k in table[0] if k.split("_", 1)[0] in ("train", "val", "test", "closed") or k == "best_epoch"]
    columns = {k: [row[k] for row in table if row.get(k) is not None] for k in keys}
    if columns.get("train_loss") and columns.get("test_loss") and len(columns["train_loss"]) == len(columns["test_loss"]):
        columns["gap"] = [t - s for s, t in zip(columns["train_loss"], columns["test_loss"])]
    return {"metrics": {k: describe(v) for k, v in columns.items() if v}}


def describe(values: list, confidence: float = 0.95) -> dict:
    """n, mean, sample std and the Student-t confidence interval of the mean.

    >>> d = describe([9.0, 10.0, 11.0]); round(d["ci_low"], 3), round(d["ci_high"], 3)
    (7.516, 12.484)
    """
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci_low": None, "ci_high": None}
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with `df` degrees of freedom, by bisection on its exact CDF.

    >>> round(t_quantile(0.975, 9), 3), round(t_quantile(0.975, 1), 3)
    (2.262, 12.706)
    """
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for t >= 0: 1 - I_x(df/2, 1/2) / 2 with x = df / (df + t^2)."""
    return 1.0 - 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t))


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1.0 - incomplete_beta(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
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
