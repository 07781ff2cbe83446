"""The statistics pinned to independent computations: scipy's t and noncentral t, the statistics module and the
formulas by hand, on made-up per-split values (nothing trains), so that a change to a number, a direction or a
column that the tables and files show is told."""

import io
import math
import statistics

import pytest
from rich.console import Console
from scipy import stats as scipy_stats

import riskmin
from riskmin import MonteCarlo
from riskmin._experiments._compare import (
    Comparison,
    bayesian_table,
    comparison_rows,
    comparison_summary,
    comparison_table,
    default_rope,
    indistinguishable,
    ranked_rows,
    selection,
)
from riskmin._experiments._curve import Curve, curve_table, row_of
from riskmin._runs._report import compact
from riskmin.stats import bayesian, summarize, t_two_sided

BEST = [1.0, 2.0, 3.0, 4.0]


def made_up(n_train: int = 80, n_test: int = 20, **columns) -> MonteCarlo:
    """A Monte-Carlo result whose per-split metrics are given (column name -> one value a split), as `montecarlo`
    would return it on splits of n_train training and n_test test rows."""
    runs = len(next(iter(columns.values())))
    table = [{"run": r, "seed": r, "diverged": False, **{k: v[r] for k, v in columns.items()}} for r in range(runs)]
    summary = summarize(table, n_train=n_train, n_test=n_test)
    summary.update(n_train=n_train, n_test=n_test, engine="vectorized", seconds=0.0)
    return MonteCarlo(table, summary, riskmin.Config())


def shifted(values: list, by: list) -> list:
    return [v + b for v, b in zip(values, by)]


def corrected_se(differences: list, ratio: float = 20 / 80) -> float:
    """Nadeau and Bengio's standard error of the mean of the differences: sqrt((1/R + n_test/n_train) s^2)."""
    return math.sqrt((1 / len(differences) + ratio) * statistics.variance(differences))


def printed(show, summary: dict) -> str:
    """What `show` prints of `summary` at 80 columns, with every run of spaces and line breaks made one space (the
    footnotes wrap at spaces)."""
    buffer = io.StringIO()
    show(summary, Console(file=buffer, width=80, color_system=None))
    return buffer.getvalue()


def one_line(text: str) -> str:
    return " ".join(text.split())


# stats.py


def test_the_closed_form_test_loss_gets_the_corrected_standard_error_of_a_test_metric():
    values = (0.5, 0.9, 0.7, 1.4)
    d = summarize([{"closed_form_test_loss": v} for v in values], n_train=80, n_test=20)["metrics"]
    # measured on the test rows, as test_loss is: corrected with n_test/n_train
    assert d["closed_form_test_loss"]["corrected_se"] == pytest.approx(
        math.sqrt((1 / 4 + 20 / 80) * statistics.variance(values)), rel=1e-12
    )


@pytest.mark.parametrize(
    "mean, higher, expected",
    [
        (0.2, False, (1.0, 0.0, 0.0)),  # a loss above the region: worse
        (-0.2, False, (0.0, 0.0, 1.0)),  # a loss below it: better
        (0.2, True, (0.0, 0.0, 1.0)),  # an accuracy above it: better
        (-0.2, True, (1.0, 0.0, 0.0)),  # an accuracy below it: worse
        (0.05, False, (0.0, 1.0, 0.0)),  # within the region: equivalent
        (0.1, False, (0.5, 0.5, 0.0)),  # on its edge: half of the posterior on each side
        (-0.1, True, (0.5, 0.5, 0.0)),
    ],
)
def test_with_a_tiny_spread_the_bayesian_comparison_is_near_certain_on_the_side_the_mean_lies(mean, higher, expected):
    found = bayesian({"n": 3, "mean": mean, "corrected_se": 1e-9}, 0.1, higher_is_better=higher)
    assert (found["p_worse"], found["p_equivalent"], found["p_better"]) == pytest.approx(expected, abs=1e-6)
    # every split differing by the same amount: no spread, no posterior (certainty would rest on nothing)
    assert set(bayesian({"n": 3, "mean": mean, "corrected_se": 0.0}, 0.1, higher_is_better=higher).values()) == {None}


@pytest.mark.parametrize("t, df", [(1e-4, 1e6), (1e-3, 1e8)])
def test_a_p_value_near_one_with_many_degrees_of_freedom_keeps_its_digits(t, df):
    # x = df / (df + t^2) rounds to within an ulp of 1; its complement t^2 / (df + t^2) must be formed directly
    assert t_two_sided(t, df) == pytest.approx(2 * scipy_stats.t.sf(t, df), rel=1e-10)


# _compare.py: the paired comparisons


def test_a_rope_given_applies_to_the_ranking_metric_only():
    val_best = [0.8, 1.9, 3.3, 3.6]
    results = {
        "best": made_up(test_loss=BEST, val_loss=val_best),
        "other": made_up(test_loss=shifted(BEST, [0.5, 0.6, 0.4, 0.5]), val_loss=shifted(val_best, [0.2, 0.1, 0.3, 0.2])),
    }
    summary = comparison_summary(results, "loss", "min", None, rope=0.05)
    assert summary["comparisons"]["test_loss"]["other"]["rope"] == 0.05
    # every other metric keeps its default: 1% of the best candidate's mean
    assert summary["comparisons"]["val_loss"]["other"]["rope"] == pytest.approx(0.01 * abs(statistics.mean(val_best)))


def test_a_candidate_worse_on_a_loss_is_practically_worse_by_the_posterior_of_the_corrected_t():
    gaps = [0.5, 0.6, 0.4, 0.5]
    results = {"best": made_up(test_loss=BEST), "other": made_up(test_loss=shifted(BEST, gaps))}
    test = comparison_summary(results, "loss", "min", None)["comparisons"]["test_loss"]["other"]
    rope = 0.01 * statistics.mean(BEST)
    posterior = scipy_stats.t(3, loc=statistics.mean(gaps), scale=corrected_se(gaps))
    # a higher loss is worse: the mass above +rope
    assert test["p_worse"] == pytest.approx(posterior.sf(rope), rel=1e-9) and test["p_worse"] > 0.9
    assert test["p_better"] == pytest.approx(posterior.cdf(-rope), rel=1e-6, abs=1e-12)


def test_a_candidate_worse_on_an_accuracy_is_practically_worse_by_the_lower_side_of_the_posterior():
    best = [0.9, 0.8, 0.85, 0.95]
    gaps = [-0.05, -0.06, -0.04, -0.05]
    results = {"best": made_up(test_accuracy=best), "other": made_up(test_accuracy=shifted(best, gaps))}
    summary = comparison_summary(results, "accuracy", "max", None)
    assert summary["best"] == "best"
    test = summary["comparisons"]["test_accuracy"]["other"]
    posterior = scipy_stats.t(3, loc=statistics.mean(gaps), scale=corrected_se(gaps))
    # a lower accuracy is worse: the mass below -rope, with the rope of a fraction, 0.01
    assert test["rope"] == 0.01
    assert test["p_worse"] == pytest.approx(posterior.cdf(-0.01), rel=1e-9) and test["p_worse"] > 0.9
    assert test["p_better"] == pytest.approx(posterior.sf(0.01), rel=1e-6, abs=1e-12)


def test_a_metric_on_the_training_rows_gets_no_corrected_test_and_no_holm_adjustment():
    train = [0.3, 0.5, 0.4, 0.6]
    results = {
        "best": made_up(test_loss=BEST, train_loss=train),
        "other": made_up(test_loss=shifted(BEST, [0.5, 0.6, 0.4, 0.5]), train_loss=shifted(train, [0.1, 0.3, 0.0, 0.2])),
    }
    test = comparison_summary(results, "loss", "min", None)["comparisons"]["train_loss"]["other"]
    # every run trained on those rows: the correction for shared training rows does not apply
    assert test["corrected_p_value"] is None and test["holm_p_value"] is None and test["corrected_se"] is None
    assert test["naive_p_value"] is not None


def test_the_detectable_difference_is_the_one_the_corrected_test_finds_80_percent_of_the_time():
    gaps = [0.5, 0.6, 0.4, 0.5]
    results = {"best": made_up(test_loss=BEST), "other": made_up(test_loss=shifted(BEST, gaps))}
    test = comparison_summary(results, "loss", "min", None)["comparisons"]["test_loss"]["other"]
    se = corrected_se(gaps)
    assert test["corrected_se"] == pytest.approx(se, rel=1e-12)
    critical = scipy_stats.t.ppf(0.975, 3)
    noncentral = scipy_stats.nct(3, test["detectable"] / se)
    assert noncentral.sf(critical) + noncentral.cdf(-critical) == pytest.approx(0.8, abs=1e-6)


def test_the_default_rope_of_a_negative_loss_is_a_hundredth_of_its_size():
    # a custom loss may go below zero; a width is never negative
    assert default_rope("test_loss", {"mean": -0.5}) == pytest.approx(0.005)


# _compare.py: the nested selection


def test_the_nested_estimate_of_a_loss_is_on_the_log_scale_and_of_an_accuracy_within_its_bounds():
    losses = {"a": [0.5, 0.9, 0.7, 1.4], "b": [0.6, 1.0, 0.8, 1.5]}
    table = [{"candidate": name, "run": r, "val_loss": v, "test_loss": v} for name, values in losses.items()
             for r, v in enumerate(values)]
    summary = {"n_train": 80, "n_test": 20, "best": "a"}
    chosen, _ = selection(table, ["a", "b"], "loss", "min", summary)
    assert chosen["estimate"]["ci_scale"] == "log"  # as a summary's test loss is
    mean, se = statistics.mean(losses["a"]), corrected_se(losses["a"])
    reach = scipy_stats.t.ppf(0.975, 3) * se / mean
    assert chosen["estimate"]["corrected_ci_high"] == pytest.approx(mean * math.exp(reach), rel=1e-9)
    accuracies = [1.0, 0.9, 1.0, 0.95]
    table = [{"candidate": "a", "run": r, "val_accuracy": v, "test_accuracy": v} for r, v in enumerate(accuracies)]
    chosen, _ = selection(table, ["a"], "accuracy", "max", {**summary, "best": "a"})
    # mean + t se would pass 1; an accuracy's interval stops at its bound
    assert statistics.mean(accuracies) + scipy_stats.t.ppf(0.975, 3) * corrected_se(accuracies) > 1
    assert chosen["estimate"]["corrected_ci_high"] <= 1.0


# _compare.py: the tables and the files


def three_candidates() -> tuple:
    """The best and two candidates whose corrected p against it are about 0.03 and 0.04, and those p by hand."""
    results, p_values, differences = {"best": made_up(test_loss=BEST)}, {}, {}
    for name, mean in (("near", 0.28), ("far", 0.32)):
        gaps = [mean + 0.1 * sign for sign in (1, -1, 1, -1)]
        results[name] = made_up(test_loss=shifted(BEST, gaps))
        p_values[name] = 2 * scipy_stats.t.sf(statistics.mean(gaps) / corrected_se(gaps), 3)
        differences[name] = gaps
    return results, p_values, differences


def test_two_candidates_with_raw_p_below_the_level_are_not_told_apart_after_holm():
    results, p, _ = three_candidates()
    assert 0.025 < p["far"] < 0.035 and 0.035 < p["near"] < 0.045
    summary = comparison_summary(results, "loss", "min", None)
    assert summary["ranking"] == ["best", "near", "far"]
    holm = {"far": 2 * p["far"], "near": max(2 * p["far"], p["near"])}  # Holm by hand: the smaller p doubled, then kept
    for name in ("near", "far"):
        test = summary["comparisons"]["test_loss"][name]
        assert test["corrected_p_value"] == pytest.approx(p[name], rel=1e-6)
        assert test["holm_p_value"] == pytest.approx(holm[name], rel=1e-6) and test["holm_p_value"] >= 0.05
    assert summary["not_distinguished"] == ["near", "far"]
    assert [row[0] for row in ranked_rows(summary)] == ["1", "2*", "3*"]


def test_a_candidate_is_told_apart_by_its_holm_adjusted_p_not_its_raw_one():
    assert indistinguishable({"holm_p_value": 0.06, "corrected_p_value": 0.03})
    assert not indistinguishable({"holm_p_value": 0.04, "corrected_p_value": 0.04})


def test_the_ranked_tables_difference_from_the_best_has_the_corrected_interval():
    results, _, differences = three_candidates()
    rows = {row[1]: row for row in ranked_rows(comparison_summary(results, "loss", "min", None))}
    quantile = scipy_stats.t.ppf(0.975, 3)
    for name, gaps in differences.items():
        mean, se = statistics.mean(gaps), corrected_se(gaps)
        low, high = mean - quantile * se, mean + quantile * se
        assert rows[name][4] == f"[{compact(low, 2, sign=True)}, {compact(high, 2, sign=True)}]"
        naive = quantile * statistics.stdev(gaps) / 2
        assert rows[name][4] != f"[{compact(mean - naive, 2, sign=True)}, {compact(mean + naive, 2, sign=True)}]"


def test_the_compare_footnote_names_the_ratio_of_the_correction():
    results, _, _ = three_candidates()
    text = one_line(printed(comparison_table, comparison_summary(results, "loss", "min", None)))
    assert "(Nadeau-Bengio, n_test/n_train = 0.25)" in text


def test_the_bayesian_table_shows_worse_equal_better_in_that_order_with_scipys_values():
    gaps = [0.08, -0.02, 0.06, 0.0]
    results = {"best": made_up(test_loss=BEST), "other": made_up(test_loss=shifted(BEST, gaps))}
    text = printed(bayesian_table, comparison_summary(results, "loss", "min", None, rope=0.02))
    header = next(line for line in text.splitlines() if "P(worse)" in line)
    assert header.split()[1:4] == ["P(worse)", "P(equal)", "P(better)"]
    posterior = scipy_stats.t(3, loc=statistics.mean(gaps), scale=corrected_se(gaps))
    expected = [posterior.sf(0.02), posterior.cdf(0.02) - posterior.cdf(-0.02), posterior.cdf(-0.02)]
    assert len({f"{p:.2f}" for p in expected}) == 3  # three different numbers, so that their order shows
    [row] = [line.split() for line in text.splitlines() if line.split()[:1] == ["other"]]
    assert row[1:4] == [f"{p:.2f}" for p in expected]


def test_the_bayesian_footnote_counts_the_splits():
    runs = [1.0, 2.0, 3.0, 4.0, 2.5, 3.5]
    results = {name: made_up(test_loss=shifted(runs, [shift + 0.01 * k for k in range(6)]))
               for name, shift in (("best", 0.0), ("b", 0.1), ("c", 0.2))}
    text = one_line(printed(bayesian_table, comparison_summary(results, "loss", "min", None)))
    assert "at p < 0.05 with 6 splits (or those a candidate finished), for that pair alone" in text


def test_comparison_csv_gives_the_corrected_interval_of_the_difference():
    gaps = [0.5, 0.6, 0.4, 0.5]
    results = {"best": made_up(test_loss=BEST), "other": made_up(test_loss=shifted(BEST, gaps))}
    summary = comparison_summary(results, "loss", "min", None)
    table = [{"candidate": name, **row} for name, mc in results.items() for row in mc.table]
    comparison = Comparison(table, summary, riskmin.Config(), {"best": {}, "other": {}})
    [row] = [row for row in comparison_rows(comparison) if row["candidate"] == "other" and row["metric"] == "test_loss"]
    reach = scipy_stats.t.ppf(0.975, 3) * math.sqrt((1 / 4 + 1 / 4) * statistics.variance(gaps))
    assert row["difference"] == pytest.approx(0.5)
    assert row["difference_corrected_ci_low"] == pytest.approx(0.5 - reach, rel=1e-9)
    assert row["difference_corrected_ci_high"] == pytest.approx(0.5 + reach, rel=1e-9)


# _curve.py


def made_up_curve() -> Curve:
    """A curve of one model at two sizes from made-up experiments (80/20 and 40/20 splits)."""
    losses = {0.5: [1.5, 1.1, 1.9, 1.3], 1.0: [0.5, 0.9, 0.7, 1.4]}
    results = {"linear": {size: made_up(n_train=80 * size, n_test=20, test_loss=values, val_loss=values,
                                        train_loss=[v / 2 for v in values])
                          for size, values in losses.items()}}
    table = [row_of("linear", size, mc) for size, mc in results["linear"].items()]
    return Curve(table, results, riskmin.Config())


def test_a_curves_rows_hold_the_corrected_test_statistics_and_no_validation_metric():
    c = made_up_curve()
    assert not [key for row in c.table for key in row if key.startswith("val_")]
    row, d = c.table[1], c.results["linear"][1.0].summary["metrics"]["test_loss"]
    assert row["size"] == 1.0
    assert row["test_loss_se"] == pytest.approx(corrected_se([0.5, 0.9, 0.7, 1.4]), rel=1e-12)
    assert row["test_loss_se"] == d["corrected_se"] and row["test_loss_se"] != d["naive_se"]


def test_the_curve_table_shows_each_corrected_interval_and_says_it_is_on_the_log_scale():
    c = made_up_curve()
    buffer = io.StringIO()
    curve_table(c, Console(file=buffer, width=80, color_system=None))
    text = buffer.getvalue()
    for row in c.table:
        assert row["test_loss_ci_scale"] == "log"
        assert f"[{compact(row['test_loss_ci_low'])}, {compact(row['test_loss_ci_high'])}]" in text
    assert "taken on the log scale" in one_line(text)


def test_the_curve_picture_shades_the_interval_of_the_test_loss():
    figure = made_up_curve().plot()
    assert len(figure.axes[0].collections) > 0
