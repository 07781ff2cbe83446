"""Statistics over runs: hand-computed cases, scipy for the naive parts, and every refusal's message."""

import json
import math
import random
import statistics

import pytest
import torch
from scipy import stats as scipy_stats

import riskmin
from riskmin import RiskminError
from riskmin.stats import bayesian, describe, describe_metric, detectable, holm, paired, summarize, t_cdf, t_quantile, t_two_sided

T_975_3 = 3.182446305284263  # the 0.975 quantile of t with 3 degrees of freedom, from the tables


def test_describe_by_hand():
    d = describe([2.0, 4.0, 6.0, 8.0], n_train=80, n_test=20)
    # mean 5; squared deviations 9 + 1 + 1 + 9 = 20 over n - 1 = 3; se = sqrt(20/3 / 4)
    assert d["n"] == 4 and d["excluded"] == 0 and d["mean"] == 5.0
    assert d["std"] == pytest.approx(math.sqrt(20 / 3)) and d["naive_se"] == pytest.approx(math.sqrt(5 / 3))
    assert (d["naive_ci_low"], d["naive_ci_high"]) == pytest.approx((5 - T_975_3 * math.sqrt(5 / 3), 5 + T_975_3 * math.sqrt(5 / 3)))
    # Nadeau-Bengio: (1/R + n_test/n_train) s^2 = (1/4 + 20/80) * 20/3 = 10/3
    assert d["corrected_se"] == pytest.approx(math.sqrt(10 / 3))
    assert (d["corrected_ci_low"], d["corrected_ci_high"]) == pytest.approx((5 - T_975_3 * math.sqrt(10 / 3), 5 + T_975_3 * math.sqrt(10 / 3)))


def test_an_errors_intervals_are_taken_on_the_log_scale_of_its_mean():
    """A loss's naive and corrected intervals are mean x exp(+-t se / mean), with the se of the mean unchanged; a
    fraction's, r2's, the gap's and the best epoch's stay mean +- t se."""
    losses, accuracies, r2 = [0.5, 0.9, 0.7, 1.4], [0.6, 0.7, 0.65, 0.55], [0.2, -0.1, 0.3, 0.25]
    rows = [
        {"train_loss": t / 2, "val_mse": v, "test_loss": v, "test_accuracy": a, "test_r2": r, "best_epoch": 3 + i}
        for i, (t, v, a, r) in enumerate(zip(losses[::-1], losses, accuracies, r2))
    ]
    metrics = summarize(rows, n_train=80, n_test=20, n_val=10)["metrics"]
    for name in ("test_loss", "val_mse", "train_loss"):
        d = metrics[name]
        for kind in ("naive", "corrected") if name != "train_loss" else ("naive",):
            reach = T_975_3 * d[f"{kind}_se"] / d["mean"]
            assert (d[f"{kind}_ci_low"], d[f"{kind}_ci_high"]) == pytest.approx(
                (d["mean"] * math.exp(-reach), d["mean"] * math.exp(reach)), rel=1e-12
            ), (name, kind)
        assert d["ci_scale"] == "log" and d["mean"] > 0
    assert metrics["test_loss"]["naive_se"] == pytest.approx(statistics.stdev(losses) / 2, rel=1e-12)
    for name in ("test_accuracy", "test_r2", "gap", "best_epoch"):
        d = metrics[name]
        reach = T_975_3 * (d["corrected_se"] if d["corrected_se"] is not None else d["naive_se"])
        low, high = ("corrected_ci_low", "corrected_ci_high") if d["corrected_se"] is not None else ("naive_ci_low", "naive_ci_high")
        assert (d[low], d[high]) == pytest.approx((d["mean"] - reach, d["mean"] + reach), rel=1e-12), name
        assert d["ci_scale"] == "linear"


def test_a_loss_that_reaches_zero_or_below_keeps_the_linear_interval():
    for values in ([0.0, 0.4, 0.2], [-0.3, 0.4, 0.2]):  # a perfect fit, a custom loss that can be negative
        d = summarize([{"test_loss": v} for v in values], n_train=80, n_test=20)["metrics"]["test_loss"]
        reach = scipy_stats.t.ppf(0.975, 2) * d["corrected_se"]
        assert d["ci_scale"] == "linear"
        assert (d["corrected_ci_low"], d["corrected_ci_high"]) == pytest.approx((d["mean"] - reach, d["mean"] + reach))


def test_an_interval_stays_within_the_values_its_metric_can_take():
    rows = [{"test_accuracy": a, "test_f1": a, "test_r2": r} for a, r in ((1.0, 0.99), (0.9, 0.2), (1.0, 0.98), (0.95, -0.4))]
    metrics = summarize(rows, n_train=80, n_test=20)["metrics"]
    for name, values in (("test_accuracy", [1.0, 0.9, 1.0, 0.95]), ("test_r2", [0.99, 0.2, 0.98, -0.4])):
        free = describe(values, n_train=80, n_test=20)  # mean +- t se, uncut
        assert free["corrected_ci_high"] > 1 and free["naive_ci_high"] > 1
        d = metrics[name]
        assert d["corrected_ci_high"] == d["naive_ci_high"] == 1.0
        assert (d["corrected_ci_low"], d["naive_ci_low"]) == (free["corrected_ci_low"], free["naive_ci_low"])
    assert metrics["test_f1"] == metrics["test_accuracy"]  # the same values, the same bounds
    assert metrics["test_r2"]["corrected_ci_low"] < 0  # r2 has no floor
    low = summarize([{"test_accuracy": a} for a in (0.0, 0.1, 0.0)], n_train=80, n_test=20)["metrics"]["test_accuracy"]
    assert low["corrected_ci_low"] == 0.0 and low["corrected_ci_high"] > 0


def test_a_spread_too_wide_for_exp_keeps_the_linear_interval():
    d = describe([1e-9, 1.0], n_train=1, n_test=3000, log_scale=True)  # t se / mean about 1,000: exp would overflow
    reach = scipy_stats.t.ppf(0.975, 1) * d["corrected_se"]
    assert d["ci_scale"] == "linear" and d["corrected_ci_high"] == pytest.approx(d["mean"] + reach)


def test_the_console_names_the_metrics_whose_intervals_lie_on_the_log_scale():
    from riskmin._runs._report import correction_note

    rows = [{"train_loss": 0.1 * r, "test_loss": 1.0 + r, "test_rmse": 1.0 + r, "test_r2": 0.5 - 0.1 * r} for r in range(1, 4)]
    note = correction_note({**summarize(rows, n_train=80, n_test=20), "used_runs": [0, 1, 2]})
    assert "The intervals of the loss and rmse are taken on the log scale, mean x exp(+-t se/mean)" in note
    rows[0]["test_loss"] = rows[0]["test_rmse"] = 0.0  # a perfect fit: mean +- t se, and the log scale is the train loss's
    note = correction_note({**summarize(rows, n_train=80, n_test=20), "used_runs": [0, 1, 2]})
    assert "The intervals of the train loss are taken on the log scale" in note
    rows[0]["train_loss"] = -1.0
    assert "log scale" not in correction_note({**summarize(rows, n_train=80, n_test=20), "used_runs": [0, 1, 2]})


def test_on_skewed_errors_the_log_interval_misses_nearer_evenly_and_less():
    """The reason for the log scale, in the paired benchmark's own simulation: the test error of least squares on 80
    rows, measured on 20, is skewed, and a sample whose errors came out low has a small spread too. The interval
    mean +- t se then lies wholly below the true risk several times as often as above it; the log-scale interval's
    misses are nearer even, and it covers more often."""
    import numpy as np

    from benchmarks.paired_tests import held_out_errors, random_splits, true_risk

    generator, features, rows = np.random.default_rng(0), 5, 100
    beta = np.ones(features) / np.sqrt(features)
    misses = {False: [0, 0], True: [0, 0]}  # log scale or not: [below the truth, above it]
    for _ in range(2000):
        x, other = generator.standard_normal((rows, features)), generator.standard_normal((rows, features))
        y = x @ beta + other @ beta + generator.standard_normal(rows)
        errors = held_out_errors(x, y, random_splits(rows, 50, 0.8, 0.2, generator))
        truth = true_risk(features, 80, 2.0)
        for log_scale in misses:
            d = describe(errors, n_train=80, n_test=20, log_scale=log_scale)
            misses[log_scale][0] += d["corrected_ci_high"] < truth
            misses[log_scale][1] += d["corrected_ci_low"] > truth
    (linear_below, linear_above), (log_below, log_above) = misses[False], misses[True]
    assert linear_below > 3 * linear_above and log_below < 2.5 * log_above and log_below < linear_below, misses
    assert sum(misses[True]) < sum(misses[False]), misses


def test_repeated_kfold_uses_one_over_k_minus_one():
    values = [2.0, 4.0, 6.0, 8.0]
    # 5 folds: n_test/n_train = 1/4, the ratio of 80 training rows to 20 test rows above
    by_folds, by_sizes = describe(values, folds=5), describe(values, n_train=80, n_test=20)
    assert by_folds["corrected_ci_low"] == pytest.approx(by_sizes["corrected_ci_low"])
    assert summarize([{"test_loss": v} for v in values], folds=5)["correction"] == "Bouckaert-Frank"


def test_naive_interval_matches_scipy():
    generator = random.Random(3)
    values = [generator.gauss(1.0, 2.0) for _ in range(17)]
    d = describe(values, confidence=0.9)
    low, high = scipy_stats.t.interval(0.9, 16, loc=d["mean"], scale=scipy_stats.sem(values))
    assert (d["naive_ci_low"], d["naive_ci_high"]) == pytest.approx((low, high), rel=1e-9)
    assert d["corrected_ci_low"] is None and d["corrected_se"] is None


def test_missing_and_non_finite_values_are_excluded_and_counted():
    d = describe([1.0, None, float("nan"), 3.0, float("inf")])
    assert (d["n"], d["excluded"], d["mean"]) == (2, 3, 2.0)
    one = describe([4.0, None], n_train=8, n_test=2)
    assert (one["n"], one["mean"], one["std"], one["naive_ci_low"], one["corrected_ci_high"]) == (1, 4.0, None, None, None)
    assert describe([None])["mean"] is None


def test_t_distribution_matches_scipy_for_negative_t_and_large_df():
    for df in (1, 2.5, 7, 30, 1000, 10 ** 6):
        for t in (-40.0, -3.0, -0.5, 0.0, 1.0, 2.5, 12.0):
            assert t_cdf(t, df) == pytest.approx(scipy_stats.t.cdf(t, df), rel=1e-8, abs=1e-300)
            assert t_two_sided(t, df) == pytest.approx(2 * scipy_stats.t.sf(abs(t), df), rel=1e-7)
        for p in (0.001, 0.05, 0.5, 0.975):
            assert t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-8, abs=1e-12)


def test_paired_naive_test_is_scipys_ttest_rel():
    generator = random.Random(7)
    a = [generator.gauss(0.0, 1.0) for _ in range(25)]
    b = [x + generator.gauss(0.3, 1.0) for x in a]
    d = paired(a, b)
    reference = scipy_stats.ttest_rel(a, b)
    assert d["naive_t"] == pytest.approx(reference.statistic, rel=1e-10)
    assert d["naive_p_value"] == pytest.approx(reference.pvalue, rel=1e-8)
    assert d["corrected_p_value"] is None


def test_corrected_paired_test_by_hand():
    d = paired([3.0, 4.0, 5.0, 6.0], [1.0, 3.0, 2.0, 4.0], n_train=90, n_test=10)
    # differences 2, 1, 3, 2: mean 2, s^2 = (0 + 1 + 1 + 0) / 3 = 2/3
    corrected_se = math.sqrt((1 / 4 + 10 / 90) * 2 / 3)
    assert d["mean"] == 2.0 and d["corrected_se"] == pytest.approx(corrected_se)
    assert d["corrected_t"] == pytest.approx(2 / corrected_se)
    assert d["corrected_p_value"] == pytest.approx(2 * scipy_stats.t.sf(2 / corrected_se, 3), rel=1e-9)
    assert d["corrected_p_value"] > d["naive_p_value"]  # the correction only ever widens


def test_paired_without_spread_claims_nothing_but_no_difference_where_there_is_none():
    assert paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])["naive_p_value"] == 1.0
    # every split one apart: no spread to scale the difference by, so no p, no posterior, no detectable difference
    constant = paired([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], n_train=9, n_test=1)
    assert (constant["naive_t"], constant["naive_p_value"], constant["corrected_p_value"]) == (None, None, None)
    assert (constant["corrected_ci_low"], constant["corrected_ci_high"], constant["corrected_se"]) == (None, None, 0.0)
    assert bayesian(constant, 0.01) == {"p_worse": None, "p_equivalent": None, "p_better": None}
    assert detectable(constant) is None


def test_values_that_all_agree_get_no_interval_and_a_warning_that_says_so():
    d = describe_metric("test_accuracy", [1.0] * 4, n_train=80, n_test=20)
    assert (d["mean"], d["std"], d["corrected_se"]) == (1.0, 0.0, 0.0)
    assert (d["corrected_ci_low"], d["naive_ci_high"], d["ci_scale"]) == (None, None, None)
    x = torch.linspace(-1, 1, 200).reshape(-1, 1)  # two classes a linear model tells apart at once
    with pytest.warns(riskmin.RiskminWarning, match="^test accuracy is 1 in every run, test f1 is 1 in every run: "
                                                    "values that all agree give no interval or test"):
        mc = riskmin.montecarlo("linear", (x, (x[:, 0] > 0).long()), runs=5, epochs=20, progress=False)
    assert mc.summary["metrics"]["test_accuracy"]["corrected_ci_low"] is None


def test_paired_leaves_out_pairs_with_a_missing_side():
    d = paired([1.0, None, 3.0, 5.0], [0.0, 1.0, float("nan"), 2.0])
    assert (d["n"], d["excluded"], d["mean"]) == (2, 2, 2.0)


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1: 0.03, 0.06, 0.04, then made non-decreasing: 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([None, 0.02]) == [None, 0.02] and holm([]) == []


def test_holm_is_monotone_and_never_below_the_raw_p():
    generator = random.Random(1)
    pvalues = [generator.random() ** 3 for _ in range(12)]
    adjusted = holm(pvalues)
    in_order = [adjusted[i] for i in sorted(range(12), key=pvalues.__getitem__)]
    assert in_order == sorted(in_order) and all(p <= q <= 1 for p, q in zip(pvalues, adjusted))


def test_summary_excludes_diverged_runs_and_says_which_it_used():
    table = [
        {"run": 0, "seed": 0, "best_epoch": 3, "stopped_early": True, "diverged": False, "train_loss": 1.0, "test_loss": 1.5,
         "val_loss": None, "split_train": 0.8, "test_accuracy": 0.9},
        {"run": 1, "seed": 1, "best_epoch": 5, "stopped_early": False, "diverged": True, "train_loss": float("nan"),
         "test_loss": float("inf"), "val_loss": None, "split_train": 0.8, "test_accuracy": 0.1},
        {"run": 2, "seed": 2, "best_epoch": 4, "stopped_early": False, "diverged": False, "train_loss": 2.0, "test_loss": 3.5,
         "val_loss": None, "split_train": 0.8, "test_accuracy": 0.7},
    ]
    summary = summarize(table, n_train=80, n_test=20)
    assert summary["used_runs"] == [0, 2] and summary["diverged"] == 1 and summary["diverged_runs"] == [1]
    assert set(summary["metrics"]) == {"best_epoch", "train_loss", "test_loss", "test_accuracy", "gap"}
    assert summary["metrics"]["test_accuracy"]["mean"] == pytest.approx(0.8)  # run 1's 0.1 is left out
    assert summary["metrics"]["gap"]["mean"] == pytest.approx(1.0)  # (0.5 + 1.5) / 2
    assert summary["test_train_ratio"] == 0.25 and summary["correction"] == "Nadeau-Bengio"
    json.dumps(summary, allow_nan=False)  # strict JSON: the NaN and inf of the diverged run are nowhere


def test_summary_without_sizes_has_no_corrected_interval():
    summary = summarize([{"test_loss": 1.0}, {"test_loss": 2.0}])
    assert summary["used_runs"] == [0, 1] and summary["correction"] is None
    assert summary["metrics"]["test_loss"]["corrected_ci_low"] is None


@pytest.mark.parametrize("call, message", [
    (lambda: describe([1.0, 2.0], n_train=10), "needs both n_train and n_test"),
    (lambda: describe([1.0, 2.0], folds=1), "needs an integer of at least 2"),
    (lambda: describe([1.0, 2.0], n_train=0, n_test=5), "both must be at least 1"),
    (lambda: describe([1.0, 2.0], confidence=95), "between 0 and 1"),
    (lambda: paired([1.0, 2.0], [1.0]), "got 2 and 1 values"),
    (lambda: t_quantile(1.0, 3), "strictly between 0 and 1"),
])
def test_bad_input_is_told_in_one_sentence(call, message):
    with pytest.raises(RiskminError, match=message):
        call()


@pytest.mark.parametrize("differences, rope, higher", [([0.02, 0.05, -0.01, 0.03, 0.04, 0.0, 0.06, 0.01], 0.01, False),
                                                       ([0.02, 0.05, -0.01, 0.03, 0.04, 0.0, 0.06, 0.01], 0.05, True),
                                                       ([-0.3, -0.1, -0.2, -0.25, -0.15], 0.1, False)])
def test_the_bayesian_comparison_is_scipys_student_t_with_the_corrected_scale(differences, rope, higher):
    from riskmin.stats import bayesian

    n, n_train, n_test = len(differences), 800, 200
    test = paired(differences, [0.0] * n, n_train=n_train, n_test=n_test)
    rho = n_test / (n_test + n_train)  # Corani and Benavoli's correlation of overlapping training sets
    scale = math.sqrt((1 / n + rho / (1 - rho)) * statistics.variance(differences))
    posterior = scipy_stats.t(n - 1, loc=statistics.mean(differences), scale=scale)
    above, below = posterior.sf(rope), posterior.cdf(-rope)
    found = bayesian(test, rope, higher)
    worse, better = (below, above) if higher else (above, below)
    assert found["p_worse"] == pytest.approx(worse, rel=1e-9) and found["p_better"] == pytest.approx(better, rel=1e-9, abs=1e-15)
    assert found["p_equivalent"] == pytest.approx(posterior.cdf(rope) - posterior.cdf(-rope), rel=1e-9)


def test_the_bayesian_comparison_gives_plain_floats_for_numpy_input():
    import numpy as np

    from riskmin.stats import bayesian

    test = {"n": np.int64(5), "mean": np.float64(0.2), "corrected_se": np.float32(0.1)}  # a summary read with numpy
    found = bayesian(test, np.float64(0.05))
    assert all(type(p) is float for p in found.values()) and json.dumps(found)  # as comparison.csv and json need


@pytest.mark.parametrize("df", [1, 2, 5, 29, 300])
def test_the_power_of_a_t_test_is_scipys_noncentral_t(df):
    from riskmin.stats import t_power

    critical = scipy_stats.t.ppf(0.975, df)
    for shift in (0.0, 0.5, 2.0, 5.0, 20.0):
        noncentral = scipy_stats.nct(df, shift)
        assert t_power(shift, critical, df) == pytest.approx(noncentral.sf(critical) + noncentral.cdf(-critical), abs=1e-7)


@pytest.mark.parametrize("level, power", [(0.05, 0.05), (0.05, 1.0), (0.0, 0.8), (1.5, 0.8)])
def test_a_detectable_difference_needs_a_power_above_the_level(level, power):
    from riskmin.stats import detectable

    with pytest.raises(RiskminError, match="not allowed; both lie between 0 and 1, the power above the level"):
        detectable({"n": 10, "corrected_se": 0.02}, level, power)


@pytest.mark.parametrize("power", [0.3, 0.8, 0.999])
@pytest.mark.parametrize("n", [2, 3, 5, 9, 10, 30, 100])
def test_the_detectable_difference_is_found_as_often_as_asked(n, power):
    from riskmin.stats import detectable

    difference = detectable({"n": n, "corrected_se": 0.02}, power=power)
    critical = scipy_stats.t.ppf(0.975, n - 1)
    shifted = scipy_stats.nct(n - 1, difference / 0.02)  # the corrected t statistic when the true difference is that
    assert shifted.sf(critical) + shifted.cdf(-critical) == pytest.approx(power, abs=1e-6)


@pytest.mark.parametrize("n_train, noise", [(80, 2.0), (20, 1.0)])
def test_the_paired_benchmarks_true_risk_is_that_of_least_squares_fitted_on_n_rows(n_train, noise):
    """benchmarks.paired_tests checks the corrected interval's coverage against this closed form: a simulation of what
    it states, the expected error of least squares with an intercept on n_train standard normal rows, agrees."""
    import numpy as np

    from benchmarks.paired_tests import true_risk

    features, draws = 5, 4000
    generator = np.random.default_rng(0)
    beta = np.ones(features) / np.sqrt(features)
    x = generator.standard_normal((draws, n_train, features))
    y = x @ beta + math.sqrt(noise) * generator.standard_normal((draws, n_train))
    design = np.concatenate([np.ones((draws, n_train, 1)), x], axis=2)
    weights = np.linalg.solve(design.transpose(0, 2, 1) @ design, design.transpose(0, 2, 1) @ y[..., None])[..., 0]
    risks = noise + weights[:, 0] ** 2 + np.sum((weights[:, 1:] - beta) ** 2, axis=1)  # error on a new row, given the fit
    assert true_risk(features, n_train, noise) == pytest.approx(risks.mean(), abs=4 * risks.std() / math.sqrt(draws))


def test_numbers_of_every_kind_count_and_text_or_a_meaningless_rope_is_refused(tmp_path):
    """NumPy's scalars and a tensor's elements were each left out as no number, with every statistic None; a runs.csv
    read by csv.DictReader summarized as eight diverged runs ("False" is true); holm let a NaN count and raised the
    others; bayesian took a rope of -1 (probabilities summing above 1), NaN and True."""
    import csv

    import numpy as np
    import pandas as pd
    import torch

    from riskmin import RiskminError
    from riskmin.stats import bayesian, describe, holm, paired, summarize

    plain = describe([2.0, 3.0, 4.5], n_train=80, n_test=20)
    for values in (np.array([2.0, 3.0, 4.5], dtype=np.float32), np.array([2.0, 3.0, 4.5]), torch.tensor([2.0, 3.0, 4.5])):
        d = describe(values, n_train=80, n_test=20)
        assert d["n"] == 3 and d["corrected_se"] == pytest.approx(plain["corrected_se"])
    assert describe(np.array([True, False, True]))["n"] == 0  # flags are no metric
    assert holm([0.01, float("nan"), 0.03])[::2] == [0.02, 0.03] and math.isnan(holm([0.01, float("nan"), 0.03])[1])
    test = paired([3.0, 4.0, 5.0, 6.0], [1.0, 3.0, 2.0, 4.0], n_train=90, n_test=10)
    for rope in (-1.0, float("nan"), True):
        with pytest.raises(RiskminError, match="^rope = .* is not allowed; give the half-width"):
            bayesian(test, rope)
    rows = [{"run": i, "test_loss": 1.0 + i, "train_loss": 0.5, "diverged": False} for i in range(4)]
    with open(tmp_path / "runs.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(RiskminError, match=r"^the runs hold text where numbers belong \(test_loss = '1.0'\)"):
        summarize(list(csv.DictReader(open(tmp_path / "runs.csv"))), n_train=80, n_test=20)
    read = summarize(pd.read_csv(tmp_path / "runs.csv"), n_train=80, n_test=20)
    assert read == summarize(rows, n_train=80, n_test=20) and read["used_runs"] == [0, 1, 2, 3]
