"""How often the naive and the corrected paired t-tests call a difference where there is none.

    python -m benchmarks.paired_tests [--experiments 200] [--rows 100] [--runs 50] [--folds 10 --repetitions 10]

Each experiment draws one finite sample, y = x_A . beta + x_B . beta + noise, with x_A and
x_B two independent blocks of `features` standard normal columns. Candidate A fits least
squares (with intercept) on x_A alone, candidate B on x_B alone: by symmetry their expected
test errors are equal, so every rejection of "equal error" is a false one. Both candidates
are scored on the same R splits of the sample (random train/test splits, or repeated
K-fold), whose training sets overlap, and `riskmin.stats.paired` tests the R differences of
test MSE. The rejection rates at p < level over the experiments are printed: the naive
paired t-test treats the R differences as independent and rejects far more often than the
level; the corrected tests (Nadeau-Bengio, Bouckaert-Frank for K-fold) stay near or below it.
With --advantage > 0, B's block carries (1 - advantage) of A's weight, so A is truly better
and the rates are the tests' power instead.

Beside the tests, the correlated Bayesian t-test (`riskmin.stats.bayesian`, the region of
practical equivalence 1% of B's mean error as `riskmin compare` sets it by default) is counted
as deciding when its posterior probability that A is practically better or practically worse
exceeds 0.95; and the corrected 95% interval of A's mean test error is checked against A's
true risk at that training size (least squares on n_train rows of this distribution, whose
expected error given fitted weights w is sigma^2 + |w - w_true|^2, averaged over 20,000 draws).
"""

from __future__ import annotations

import argparse

import numpy as np

from riskmin.stats import bayesian, describe, paired


def simulate_paired_rejections(experiments: int = 200, rows: int = 100, features: int = 5, runs: int = 50, train: float = 0.8,
                               folds: int = 0, repetitions: int = 0, advantage: float = 0.0, level: float = 0.05, seed: int = 0) -> dict:
    """Rejection rates of the naive and the corrected paired t-test over `experiments` samples.

    Random splits (`runs` of them, `train` of the rows for training) unless `folds` is given,
    then `repetitions` x `folds` K-fold splits. Returns the rates and the settings used.
    """
    generator = np.random.default_rng(seed)
    naive = corrected = decided = covered = 0
    risks = {}
    for _ in range(experiments):
        x_a, x_b = generator.standard_normal((rows, features)), generator.standard_normal((rows, features))
        beta = np.ones(features) / np.sqrt(features)
        y = x_a @ beta + (1 - advantage) * x_b @ beta + generator.standard_normal(rows)
        splits = kfold(rows, folds, repetitions, generator) if folds else random_splits(rows, runs, train, generator)
        errors_a = [test_error(x_a, y, train_rows, test_rows) for train_rows, test_rows in splits]
        errors_b = [test_error(x_b, y, train_rows, test_rows) for train_rows, test_rows in splits]
        n_train, n_test = len(splits[0][0]), len(splits[0][1])
        result = paired(errors_a, errors_b, folds=folds) if folds else paired(errors_a, errors_b, n_train, n_test)
        naive += result["naive_p_value"] < level
        corrected += result["corrected_p_value"] < level
        posterior = bayesian(result, 0.01 * float(np.mean(errors_b)))
        decided += max(posterior["p_worse"], posterior["p_better"]) > 0.95
        if n_train not in risks:
            risks[n_train] = true_risk(features, n_train, 1.0 + (1 - advantage) ** 2, np.random.default_rng(seed + 1))
        own = describe(errors_a, folds=folds) if folds else describe(errors_a, n_train, n_test)
        covered += own["corrected_ci_low"] <= risks[n_train] <= own["corrected_ci_high"]
    scheme = f"{repetitions}x{folds}-fold" if folds else f"{runs} random {train:g}/{1 - train:g} splits"
    return {"naive": naive / experiments, "corrected": corrected / experiments, "bayesian": decided / experiments,
            "coverage": covered / experiments, "experiments": experiments, "rows": rows, "scheme": scheme,
            "advantage": advantage, "level": level}


def true_risk(features: int, n_train: int, noise: float, generator, draws: int = 20_000) -> float:
    """The expected test error of least squares with an intercept fitted on n_train rows of standard normal features
    with weights 1/sqrt(features) and residual variance `noise`: noise + |fitted - true weights|^2, averaged."""
    beta = np.ones(features) / np.sqrt(features)
    total = 0.0
    for _ in range(draws):
        x = generator.standard_normal((n_train, features))
        y = x @ beta + np.sqrt(noise) * generator.standard_normal(n_train)
        weights = np.linalg.lstsq(np.column_stack([np.ones(n_train), x]), y, rcond=None)[0]
        total += noise + weights[0] ** 2 + float(np.sum((weights[1:] - beta) ** 2))
    return total / draws


def random_splits(rows: int, runs: int, train: float, generator) -> list:
    n_train = round(train * rows)
    orders = [generator.permutation(rows) for _ in range(runs)]
    return [(order[:n_train], order[n_train:]) for order in orders]


def kfold(rows: int, folds: int, repetitions: int, generator) -> list:
    splits = []
    for _ in range(repetitions):
        order = generator.permutation(rows)
        for fold in range(folds):
            test = order[fold::folds]
            splits.append((np.setdiff1d(order, test), test))
    return splits


def test_error(x, y, train_rows, test_rows) -> float:
    """Mean squared test error of least squares with an intercept, fitted on the training rows."""
    design = np.column_stack([np.ones(len(x)), x])
    weights = np.linalg.lstsq(design[train_rows], y[train_rows], rcond=None)[0]
    return float(np.mean((design[test_rows] @ weights - y[test_rows]) ** 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--advantage", type=float, default=0.3, help="the power rows' handicap of B")
    args = parser.parse_args(argv)
    print(f"paired t-tests on two least-squares candidates, {args.experiments} samples of {args.rows} rows; "
          "rejection rate at p < 0.05 (equal error: should be at most 0.05; A better: the higher the better); "
          "bayesian: P(practically better or worse) > 0.95; coverage: corrected 95% interval of A's error holds its true risk")
    for advantage in (0.0, args.advantage):
        for folds in (0, args.folds):
            r = simulate_paired_rejections(args.experiments, args.rows, runs=args.runs, folds=folds,
                                           repetitions=args.repetitions if folds else 0, advantage=advantage)
            truth = "equal error" if advantage == 0 else f"A better (B weight x{1 - advantage:g})"
            print(f"  {truth:28} {r['scheme']:26} naive {r['naive']:.3f}   corrected {r['corrected']:.3f}   "
                  f"bayesian {r['bayesian']:.3f}   coverage {r['coverage']:.3f}")


if __name__ == "__main__":
    main()
