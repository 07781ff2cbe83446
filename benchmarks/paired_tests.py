"""How often the naive and the corrected paired t-tests call a difference where there is none.

    python -m benchmarks.paired_tests [--experiments 10000] [--rows 100] [--runs 50] [--folds 10 --repetitions 10]

Each experiment draws one finite sample, y = x_A . beta + x_B . beta + noise, with x_A and
x_B two independent blocks of `features` standard normal columns. Candidate A fits least
squares (with intercept) on x_A alone, candidate B on x_B alone: by symmetry their expected
test errors are equal, so every rejection of "equal error" is a false one. Both candidates
are scored on the same R splits of the sample, whose training sets overlap, and
`riskmin.stats.paired` tests the R differences of test MSE. Three split schemes: riskmin's
default fractions (train 0.8, validation 0.1, test 0.1; least squares has no use for the
validation rows, which are left out as a run leaves them out of its training), random 0.8/0.2
splits, and repeated K-fold. The naive paired t-test treats the R differences as independent
and rejects far more often than the level; the corrected tests (Nadeau-Bengio,
Bouckaert-Frank for K-fold) stay near it. With --advantage > 0, B's block carries
(1 - advantage) of A's weight, so A is truly better and the rates are the tests' power instead.

Beside the tests, the correlated Bayesian t-test (`riskmin.stats.bayesian`, with the region of
practical equivalence `riskmin compare` sets by default, 1% of the better candidate's mean
error) counts as deciding when its posterior probability that A is practically better or
practically worse exceeds 0.95. When the region is small beside the corrected standard error
(here about 1/20 of it), P(better) > 0.95 is the one-sided corrected t-test at 5% (Benavoli et
al. 2017 say so), so "better or worse" at 0.95 decides like a two-sided test at 10%: under
equal error a calibrated posterior decides about 10% of the time. The rate at 0.975 is shown
beside it. And the corrected 95% interval of A's mean test error is checked against A's true
risk at that training size (`true_risk`, exact), taken as a summary takes a test loss's: on the
log scale of the mean (`riskmin.stats.log_scaled`), with the interval mean +- t se beside it.

Every rate is printed with its Monte-Carlo standard error, sqrt(p (1 - p) / experiments):
200 experiments leave about 1.5 points on a 95% coverage, more than the 93-97% window's
half-width, and 2,000 still 0.5, so the default is 10,000 (0.2).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from riskmin.stats import bayesian, describe, log_scaled, paired

RATES = ("naive", "corrected", "bayesian", "bayesian_worse", "bayesian_better", "bayesian_975", "coverage", "below",
         "linear_coverage", "linear_below")


def simulate_paired_rejections(experiments: int = 10000, rows: int = 100, features: int = 5, runs: int = 50, train: float = 0.8,
                               test: float = 0.2, folds: int = 0, repetitions: int = 0, advantage: float = 0.0, level: float = 0.05,
                               seed: int = 0) -> dict:
    """Rejection rates of the naive and the corrected paired t-test over `experiments` samples, the Bayesian decisions and
    the coverage of A's corrected interval, each with its Monte-Carlo standard error (`<rate>_se`). `below`: how often
    that interval lay wholly below the true risk; `variance_ratio`: the mean squared error of A's mean about its true
    risk over the mean corrected variance (1 when the corrected variance is right on average).

    Random splits (`runs` of them, `train` and `test` of the rows; rows in neither are held out, as a validation split
    is) unless `folds` is given, then `repetitions` x `folds` K-fold splits.
    """
    generator = np.random.default_rng(seed)
    beta = np.ones(features) / np.sqrt(features)
    counts = dict.fromkeys(RATES, 0)
    squares = []  # per sample: (mean - true risk)^2 and the corrected variance, whose averages should agree
    for _ in range(experiments):
        x_a, x_b = generator.standard_normal((rows, features)), generator.standard_normal((rows, features))
        y = x_a @ beta + (1 - advantage) * x_b @ beta + generator.standard_normal(rows)
        splits = kfold(rows, folds, repetitions, generator) if folds else random_splits(rows, runs, train, test, generator)
        errors_a, errors_b = held_out_errors(x_a, y, splits), held_out_errors(x_b, y, splits)
        n_train, n_test = len(splits[0][0]), len(splits[0][1])
        result = paired(errors_a, errors_b, folds=folds) if folds else paired(errors_a, errors_b, n_train, n_test)
        counts["naive"] += result["naive_p_value"] < level
        counts["corrected"] += result["corrected_p_value"] < level
        posterior = bayesian(result, 0.01 * min(np.mean(errors_a), np.mean(errors_b)))  # compare's default: 1% of the best's mean
        counts["bayesian"] += max(posterior["p_worse"], posterior["p_better"]) > 0.95
        counts["bayesian_worse"] += posterior["p_worse"] > 0.95  # each label alone
        counts["bayesian_better"] += posterior["p_better"] > 0.95
        counts["bayesian_975"] += max(posterior["p_worse"], posterior["p_better"]) > 0.975
        sizes = (None, None, folds) if folds else (n_train, n_test, None)
        own = describe(errors_a, *sizes, log_scale=log_scaled("test_loss"))  # as a summary describes a test loss
        linear = describe(errors_a, *sizes)  # mean +- t se, beside it
        truth = true_risk(features, n_train, 1.0 + (1 - advantage) ** 2)
        for prefix, d in (("", own), ("linear_", linear)):
            counts[f"{prefix}coverage"] += d["corrected_ci_low"] <= truth <= d["corrected_ci_high"]
            counts[f"{prefix}below"] += d["corrected_ci_high"] < truth
        squares.append(((own["mean"] - truth) ** 2, own["corrected_se"] ** 2))
    rates = {name: count / experiments for name, count in counts.items()}
    scheme = f"{repetitions}x{folds}-fold" if folds else f"{runs} random {train:g}/{round(1 - train - test, 6) + 0.0:g}/{test:g}"
    return {**rates, **{f"{name}_se": math.sqrt(rate * (1 - rate) / experiments) for name, rate in rates.items()},
            "variance_ratio": sum(error for error, _ in squares) / sum(variance for _, variance in squares), "experiments": experiments, "rows": rows, "scheme": scheme, "advantage": advantage, "level": level}


def true_risk(features: int, n_train: int, noise: float) -> float:
    """The expected test error of least squares with an intercept fitted on n_train rows of `features` independent standard
    normal columns with residual variance `noise`: noise (1 + 1/n + (1 + 1/n) p / (n - p - 2)).

    The prediction at a new row z is off by noise times 1/n + (z - mean)' S^-1 (z - mean), S the centred
    scatter matrix, Wishart with n - 1 degrees of freedom, so E S^-1 = I / (n - p - 2), independent of the
    training mean, and E |z - mean|^2 = p (1 + 1/n). Exact: a simulated truth would add its own error to
    every coverage.

    >>> round(true_risk(5, 80, 2.0), 6)
    2.163699
    """
    n, p = n_train, features
    return noise * (1 + 1 / n + (1 + 1 / n) * p / (n - p - 2))


def random_splits(rows: int, runs: int, train: float, test: float, generator) -> list:
    n_train, n_test = round(train * rows), round(test * rows)
    orders = [generator.permutation(rows) for _ in range(runs)]
    return [(order[:n_train], order[n_train:n_train + n_test]) for order in orders]


def kfold(rows: int, folds: int, repetitions: int, generator) -> list:
    splits = []
    for _ in range(repetitions):
        order = generator.permutation(rows)
        for fold in range(folds):
            test = order[fold::folds]
            splits.append((np.setdiff1d(order, test), test))
    return splits


def held_out_errors(x, y, splits: list) -> list:
    """Mean squared test error of least squares with an intercept, fitted on each split's training rows.

    All splits at once through their normal equations (np.linalg.lstsq takes one system at a time): the
    designs are a few well-conditioned standard normal columns, where both agree to 1e-12.
    """
    design = np.column_stack([np.ones(len(x)), x])
    train = np.stack([rows for rows, _ in splits])
    test = np.stack([rows for _, rows in splits])
    fitted = design[train]
    weights = np.linalg.solve(fitted.transpose(0, 2, 1) @ fitted, (fitted.transpose(0, 2, 1) @ y[train][..., None]))
    return list(np.mean(((design[test] @ weights)[..., 0] - y[test]) ** 2, axis=1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10000)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--advantage", type=float, default=0.3, help="the power rows' handicap of B")
    args = parser.parse_args(argv)
    print(f"paired t-tests on two least-squares candidates, {args.experiments} samples of {args.rows} rows, each rate +- its "
          "Monte-Carlo se; naive, corrected: rejection rate at p < 0.05 (equal error: should be at most 0.05; A better: the "
          "higher the better); bayes: P(practically better or worse) > 0.95 (each label alone; either at > 0.975); coverage: corrected 95% interval of "
          "A's error (on the log scale, as riskmin gives a loss's) holds its true risk (below: the interval lay below it; "
          "the interval mean +- t se beside it; variance ratio: (mean - true risk)^2 over the corrected variance, averaged)")
    schemes = (dict(train=0.8, test=0.1), dict(train=0.8, test=0.2), dict(folds=args.folds, repetitions=args.repetitions))
    for advantage in (0.0, args.advantage):
        for scheme in schemes:
            r = simulate_paired_rejections(args.experiments, args.rows, runs=args.runs, advantage=advantage, **scheme)
            truth = "equal error" if advantage == 0 else f"A better (B x{1 - advantage:g})"
            rate = lambda name: f"{r[name]:.3f}+-{r[name + '_se']:.3f}"  # noqa: E731
            print(f"  {truth:17} {r['scheme']:20} naive {rate('naive')}  corrected {rate('corrected')}  bayes {rate('bayesian')} "
                  f"(A worse {rate('bayesian_worse')}, A better {rate('bayesian_better')}; > 0.975: {rate('bayesian_975')})  coverage {rate('coverage')} (below {r['below']:.3f}; mean +- t se: {rate('linear_coverage')}, below "
                  f"{r['linear_below']:.3f}; variance ratio {r['variance_ratio']:.2f})",
                  flush=True)


if __name__ == "__main__":
    main()
