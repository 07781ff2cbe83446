"""Comparing parametrizations: several candidates trained on the same splits, paired statistics, honest selection.

A candidate is a name and a dict of settings (a model name or a callable that builds one,
and any Config field); _candidates.py makes and checks them. Every candidate runs through `montecarlo` with the same
seed, so run r
of every candidate trains on the same split; the initialization and the batch order are drawn
per candidate and split from that seed, as `riskmin train --seed <seed + r>` would draw them.
Candidates that differ only in lr, weight_decay, momentum and schedule (not plateau) train
side by side in the same stacks, each with its own settings; the others form stacks of their own.

The statistics are paired: every candidate is compared with the best one split by split
(`stats.paired`, corrected for the training rows the splits share), Holm-adjusted across the
comparisons. Choosing the best candidate by its mean test error and quoting that error is
optimistic; `select=True` also reports the nested estimate, where each split chooses its
candidate on the validation metric and records that candidate's test metric.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from torch.utils.data import Dataset

from ..config import called_with, Config, DefaultBatch, RiskminError, said_given, settings_where
from .._paths import data_label
from ._candidates import candidate_configs, grid_toml, ranking, setting_cells, shared_model_per_candidate
from ..data import Data
from ._montecarlo import (
    Experiment,
    data_frame,
    data_name,
    experiments,
    html_notes,
    html_picture,
    html_table,
    kept_in,
    model_name,
    progress_line,
    targets_of,
    warn_about_runs,
)
from ._kept import fingerprint_settings, holding
from .._training._optim import PER_RUN_SCHEDULES, per_run_supported
from .._training._losses import with_concrete_loss
from ..metrics import METRIC_PREFIXES, base_metric, measured, metrics_where, task_of_loss
from .._training._prepare import as_data, recorded
from ..stats import bayesian, bounds, check_rope, describe, describe_metric, detectable, held_out, holm, is_number
from ..stats import paired, within

LEVEL = 0.05  # a candidate whose Holm-adjusted corrected p against the best is at least this is not told apart from it


@dataclass
class Comparison(Experiment):
    """The result of `compare`: one row per candidate and split, and the paired statistics in `summary`."""

    candidates: dict
    notes: list = field(default_factory=list)
    names: dict = field(default_factory=dict)
    # what it was asked besides its settings (the metric it ranks by, rope, select): config.toml's [comparison]
    asked: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        from .._runs._report import estimate

        s = self.summary
        best = estimate(s["candidates"][s["best"]]["metrics"].get(s["metric"], {}))
        close = f", {len(s['not_distinguished'])} not told apart from it" if s["not_distinguished"] else ""
        return (
            f"Comparison({data_label(self.names, self.config)}, {len(s['ranking'])} candidates on "
            f"{s['runs']} splits, best {s['best']}: {s['metric'].replace('_', ' ')} {best}{close})"
        )

    def _repr_html_(self) -> str:
        """The candidates ranked, as `riskmin compare` prints them, its notes, and the picture, as a notebook shows the
        result."""
        table = html_table(
            repr(self) + f"; * not told apart from the best (Holm-adjusted corrected p >= {self.summary['level']:g})",
            RANKED_COLUMNS,
            ranked_rows(self.summary),
        )
        return table + html_notes(self.notes) + html_picture(self.plot())

    def to_pandas(self, table: str = "runs"):
        """The runs as a pandas DataFrame, one row per candidate and split as in runs.csv; table="summary": one row per
        candidate and metric, its statistics and its paired difference from the best, as in comparison.csv."""
        return data_frame({"runs": self.table, "summary": comparison_rows(self)}, table, "Comparison")

    def plot(self, path=None, overwrite: bool = False):
        """Each candidate's per-split metric, ranked, one line per split: a matplotlib Figure, or drawn into `path`
        (compare.png) and the path returned; an existing file is replaced only with `overwrite` (see LrFinding.plot)."""
        metric = self.summary["metric"]
        return plot_comparison(
            self.table, self.summary["ranking"], metric, path, self.summary["comparisons"].get(metric), overwrite
        )

    def save(self, directory=None, overwrite: bool = False) -> Path:
        """Write runs/<name>/ with config.toml (the grid), runs.csv, comparison.csv, compare.png and summary.json; an
        existing `directory` is replaced only with `overwrite`, and only once the new files are complete."""
        return save_comparison(self, directory, overwrite)


def stacks(configs: dict) -> list:
    """The candidates' names, grouped where they may train in one stack: the same model, settings equal but for
    lr, weight_decay, momentum and the schedule (scheduler, step_size, gamma), and an optimizer that takes them per run
    (sgd, adam, adamw). A schedule a stack cannot draw for each run from its closed form (PER_RUN_SCHEDULES) makes a
    stack of its own: plateau, which reacts to each run's own validation metric, or one_cycle and linear_warmup (and
    trains as montecarlo trains it, through fit where the stack cannot). A batch_size left at its default and the
    same number given are apart too: the default alone fits a small training split (DefaultBatch)."""
    groups = {}
    for name, (model, candidate) in configs.items():
        if per_run_supported(candidate.optimizer) and candidate.scheduler in PER_RUN_SCHEDULES:
            key = (
                model if isinstance(model, str) else id(model),
                isinstance(candidate.batch_size, DefaultBatch),
                tuple(
                    (name, str(value))
                    for name, value in candidate.to_dict().items()
                    if name not in settings_where(stackable=True)
                ),
            )
        else:
            key = (name,)
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def compare(
    candidates: dict,
    data,
    runs: int = 100,
    config: Optional[Config] = None,
    select: bool = False,
    metric: Optional[str] = None,
    rope: Optional[float] = None,
    directory=None,
    resume: bool = False,
    **settings,
) -> Comparison:
    """Train every candidate on the same `runs` splits of `data` and compare each with the best, split by split.

    `candidates` maps a name to its settings; `settings` (and `config`) are shared by all. The
    best candidate has the best mean of `metric` (default: the test counterpart of `monitor`,
    e.g. test_loss). With `select`, each split also chooses the candidate with the best
    validation metric, and the summary reports that nested estimate and how optimistic the
    best candidate's own mean is. Candidates that differ only in lr, weight_decay, momentum,
    scheduler, step_size and gamma train side by side in the same stacks (their own settings
    per run); others, and those on a plateau, one_cycle or linear_warmup schedule, form stacks of their own.
    `directory` and `resume` keep the runs as they finish and continue an interrupted comparison, as for `montecarlo`.

    >>> c = compare({"small": {"hidden": 4}, "large": {"hidden": 16}}, "lab1", runs=3, epochs=2, progress=False)
    >>> sorted(c.summary["candidates"]), len(c.table)
    (['large', 'small'], 6)
    """
    candidates, settings = shared_model_per_candidate(candidates, settings)
    whole = config is not None and not resume  # a Config passed is checked whole, but not a saved one that resumes
    # config.toml names the data given
    config = recorded(called_with("compare", config, {"runs": runs, **settings}, runs=runs), data)
    configs = candidate_configs(candidates, config)
    said_given(config, settings, trained=[each for _, each in configs.values()], whole=whole)
    base, mode = resolved(config, metric, rope, select)
    data = comparable_data(data, config, base, select, configs)
    asked = {"metric": base, "rope": rope, "select": select}
    keeper = kept_in(
        directory, resume, config, grid_settings(configs), grid_toml(config, candidates, asked), kind="compare"
    )
    with holding(keeper):
        comparison = kept_comparison(candidates, configs, data, config, keeper, select, base, mode, rope, settings)
        if keeper is not None:
            keeper.finished(lambda folder: write_comparison(comparison, folder))
    return comparison


def resolved(config: Config, metric: Optional[str], rope, select: bool) -> tuple:
    """(metric, "min" or "max"): what ranks the candidates, once the runs, the rope and select are checked against
    it."""
    base, mode = ranking(metric, config)
    if config.runs < 2 and not config.splits and not config.folds:  # K folds give K splits from one repetition
        raise RiskminError(
            "runs = 1 gives each candidate one split, on which no difference can be tested; set --runs 2 or more "
            "(runs=2 from Python; 20 or more tell differences apart)"
        )
    check_rope(rope, f"the units of test_{base}")
    span = metric_span(base)
    if rope is not None and rope >= span:
        raise RiskminError(
            f"rope = {rope!r} would count any two values of {base}, which lie within {span:g} of each other, as "
            "practically equal; give it in the metric's units: 0.01 for one percentage point"
        )
    if rope is not None and rope >= 1 and base in metrics_where(units="fraction"):  # r2: no lower bound, same units
        raise RiskminError(
            f"rope = {rope!r} would count values of {base} a whole 1 apart, 100 percentage points, as practically "
            "equal; give it in the metric's units: 0.01 for one percentage point"
        )
    if select and config.val == 0 and not config.splits:
        raise RiskminError(
            f"select chooses a candidate in each split by val_{base}, but val = 0 leaves no validation "
            "rows; set --val 0.1 (val=0.1)"
        )
    return base, mode


def check_splits_to_select_by(config: Config, base: str, data) -> None:
    """Refuse `select` over a file of splits with a split that holds no validation rows, before anything trains."""
    from ..splits import read_splits

    empty = [number for number, (_, val, _) in enumerate(read_splits(config.splits, len(data))) if not len(val)]
    if empty:
        raise RiskminError(
            f"select chooses a candidate in each split by val_{base}, but split {empty[0]} of {config.splits} has no "
            "validation rows; give every split a val column, or drop --select"
        )


def grid_settings(configs: dict) -> dict:
    """Every candidate's settings as one flat dict ("small.hidden": [4]), as an experiment's fingerprint holds them."""
    return {
        f"{name}.{key}": value
        for name, (model, candidate) in configs.items()
        for key, value in fingerprint_settings(candidate, model_name(model)).items()
    }


def kept_comparison(
    candidates: dict, configs: dict, data, config: Config, keeper, select: bool, base: str, mode: str, rope, given=()
) -> Comparison:
    """The comparison of `configs` on `data`, its runs kept by `keeper` (or not, when None) as they finish; `given`: the
    shared settings a Python caller gave, noted where the data leaves them unused (the command line notes its
    flags)."""
    start = time.perf_counter()
    check_candidates(configs, data, config)
    results = train_candidates(configs, data, config.progress, keeper, given)
    warn_about_runs(config, {name: mc.summary for name, mc in results.items()})
    summary = comparison_summary(results, base, mode, config.folds or None, rope)
    cells = setting_cells(candidates, config)
    table = [{"candidate": name, **cells[name], **row} for name, mc in results.items() for row in mc.table]
    if select:
        summary["selection"], chosen = selection(table, list(results), base, mode, summary)
        table = [{**row, "selected": (row["candidate"], row["run"]) in chosen} for row in table]
    summary["seconds"] = time.perf_counter() - start
    notes = [f"{name}: {note}" for name, mc in results.items() for note in mc.notes]
    if config.target_transform == "log":  # the loss it ranks by is not in the target's units, as the others are
        from .._runs._report import LOG_NOTE

        notes.append(LOG_NOTE)
    best = summary["candidates"][summary["best"]]["metrics"].get(summary["metric"], {}).get("mean")
    notes += [note] if (note := rope_scale_note(rope, summary["metric"], best)) else []
    asked = {"metric": base, "rope": rope, "select": select}
    return Comparison(table, summary, config, dict(candidates), notes, {"data": data_name(data)}, asked)


def comparable_data(data, config: Config, base: str, select: bool, configs: dict) -> Union[Data, Dataset]:
    """`data` as Data or a map-style Dataset, refused when it is neither, when its task does not measure the ranking
    metric `base`, when that is the loss and the candidates (`configs`) train different ones, whose values are in
    other units (mse beside l1), or, with `select`, when a split of a splits file has no validation rows to choose by
    (from Python and the command line alike, before anything trains)."""
    data = as_data(data, config)
    if not isinstance(data, (Data, Dataset)):
        raise RiskminError(
            f"compare needs data as a name, riskmin.Data, (x, y) or a map-style Dataset, not {type(data).__name__}"
        )
    task = task_of_loss(with_concrete_loss(config, targets_of(data)).loss)
    metrics = measured(task)
    if base not in metrics:
        raise RiskminError(f"metric {base} is not measured for this task; choose one of {', '.join(metrics)}")
    # the losses of the task: one the targets cannot take is refused for itself (check_candidates)
    concrete = (with_concrete_loss(each, targets_of(data)).loss for _, each in configs.values())
    losses = dict.fromkeys(loss for loss in concrete if task_of_loss(loss) == task)
    if base == "loss" and len(losses) > 1:
        shared = [m for m in metrics if m != "loss"]
        raise RiskminError(
            f"the candidates train different losses ({', '.join(losses)}), whose test losses are in other units, so "
            f"ranking them by the loss would compare those units; rank them by a metric they share: --metric "
            f'{shared[0]} (metric="{shared[0]}"), or {", ".join(shared[1:])}'
        )
    if select and config.splits:
        check_splits_to_select_by(config, base, data)
    return data


def check_candidates(configs: dict, data, config: Config) -> None:
    """Refuse, before any stack trains, a candidate that its own stack would refuse once its turn came: a loss the
    targets cannot take, a batch the training splits are too small for (`fitted_batch`: one left at the default fits
    them instead). Named by the candidate where the setting is its own; one every candidate shares is said as
    montecarlo says it."""
    from .._training._losses import check_targets, with_concrete_loss
    from .._training._prepare import fitted_batch
    from ._montecarlo import experiment_splits, targets_of

    if not isinstance(data, Data):  # a Dataset's targets are read as it trains, its batches are its DataLoader's
        return
    rows = min(len(splits.train) for _, _, splits in experiment_splits(data, config))
    for name, (_, candidate) in configs.items():
        own = [key for key in ("loss", "batch_size") if not same(getattr(candidate, key), getattr(config, key))]
        try:
            check_targets(with_concrete_loss(candidate, targets_of(data)).loss, data.y)
            fitted_batch(candidate, rows)
        except RiskminError as error:
            raise RiskminError(f"candidate {name!r}: {error}" if own else str(error)) from None


def same(a, b) -> bool:
    """Whether a candidate's setting is the shared one: equal, and both the default batch or both given."""
    return type(a) is type(b) and a == b


def train_candidates(configs: dict, data: Data, progress: bool, keeper=None, given=()) -> dict:
    """name -> Monte-Carlo result of every candidate, in the order of `configs`, trained one stack at a time (each kept
    by `keeper` under its number as its runs finish)."""
    results = {}
    for number, group in enumerate(stacks(configs), 1):
        if progress:
            progress_line(f"stack {number}: {', '.join(group)}")
        model, first = configs[group[0]]
        # the candidates of a stack differ only in these settings, given to `experiments` as one variant per candidate;
        # one whose schedule no stack draws per run is alone, and trains with its own settings as montecarlo's runs do
        variants = [{key: getattr(configs[name][1], key) for key in settings_where(stackable=True)} for name in group]
        variants = variants if first.scheduler in PER_RUN_SCHEDULES else [{}]
        results.update(zip(group, experiments(model, data, first, variants, keeper=keeper, group=number, given=given)))
    return {name: results[name] for name in configs}


def metric_values(mc, name: str) -> list:
    """The metric `name` of every run, in run order; None where the run diverged, as the statistics leave it out."""
    return [None if row.get("diverged") else row.get(name) for row in mc.table]


def comparison_summary(results: dict, base: str, mode: str, folds: Optional[int], rope: Optional[float] = None) -> dict:
    """Each candidate's statistics, the ranking on test_<base>, and every candidate paired with the best on every
    metric:
    the corrected and naive tests, Holm's adjustment, the Bayesian probabilities of being practically worse, equivalent
    or better within a region of practical equivalence (`rope` for the ranking metric, else `default_rope`), and the
    smallest difference the experiment could detect."""
    first = next(iter(results.values())).summary
    n_train, n_test, n_val = first["n_train"], first["n_test"], first.get("n_val")
    ranked_by = f"test_{base}"
    means = {name: mc.summary["metrics"].get(ranked_by, {}).get("mean") for name, mc in results.items()}
    if all(mean is None for mean in means.values()):
        unmeasured = any(ranked_by in mc.summary.get("unmeasured", []) for mc in results.values())
        raise RiskminError(
            f"no candidate has a {ranked_by} to rank by"
            + ("; it is not a number in any run (r2 of a test split of one row, say)" if unmeasured else "")
            + "; choose a metric the task reports, such as loss"
        )
    # a candidate whose runs diverged ranks after every one whose runs all finished, and after one whose runs diverged
    # fewer times: its mean rests on the splits it survived, which flatter it, and a run that diverged failed
    failed = {name: mc.summary["diverged"] for name, mc in results.items()}
    order = sorted(results, key=lambda name: (failed[name], order_key(means[name], mode)))
    best = order[0]
    metrics = [
        m
        for m in dict.fromkeys(m for mc in results.values() for m in mc.summary["metrics"])
        if m.startswith(METRIC_PREFIXES)
    ]
    comparisons = {}
    for name in metrics:
        others = [c for c in order if c != best]
        sizes = held_out(name, n_train, n_test, n_val, folds)  # train metrics: naive tests only
        tests = [
            within_range(name, paired(metric_values(results[c], name), metric_values(results[best], name), *sizes))
            for c in others
        ]
        adjusted = holm([t["corrected_p_value"] for t in tests])
        width = (
            rope
            if rope is not None and name == ranked_by
            else default_rope(name, results[best].summary["metrics"].get(name))
        )
        higher = base_metric(name) in metrics_where(higher_is_better=True)
        comparisons[name] = {
            c: {**t, "holm_p_value": p, "rope": width, **bayesian(t, width, higher), "detectable": detectable(t)}
            for c, t, p in zip(others, tests, adjusted)
        }
    close = [c for c in order[1:] if indistinguishable(comparisons.get(ranked_by, {}).get(c))]
    candidates = {
        name: {
            "metrics": mc.summary["metrics"],
            "engine": mc.summary["engine"],
            "seconds": mc.summary["seconds"],
            "diverged": mc.summary["diverged"],
        }
        for name, mc in results.items()
    }
    return {
        "metric": ranked_by,
        "mode": mode,
        "best": best,
        "ranking": order,
        "not_distinguished": close,
        "level": LEVEL,
        "candidates": candidates,
        "comparisons": comparisons,
        "runs": len(next(iter(results.values())).table),
        "n_train": n_train,
        "n_test": n_test,
        "n_val": n_val,
        "folds": folds,
        "correction": first["correction"],
        "test_train_ratio": first.get("test_train_ratio"),
        "val_train_ratio": first.get("val_train_ratio"),
    }


def within_range(metric: str, test: dict) -> dict:
    """A paired `test` of `metric` with its intervals cut to the differences the metric can show: two accuracies,
    each within [0, 1], differ by at most 1 (the truth lies there, so the cut leaves the coverage as it was).

    >>> within_range("test_accuracy", {"corrected_ci_low": -1.6, "corrected_ci_high": 0.2})["corrected_ci_low"]
    -1.0
    """
    span = metric_span(metric)
    return test if span == math.inf else within(dict(test), -span, span)


def metric_span(metric: str) -> float:
    """How far apart two values of `metric` can lie (infinite for one without both bounds)."""
    low, high = bounds(metric)
    return math.inf if low is None or high is None else high - low


def default_rope(metric: str, best: Optional[dict]) -> Optional[float]:
    """The region of practical equivalence when none is given: 0.01 for accuracy, f1 and r2 (a point of a percent, the
    width Benavoli and colleagues use for accuracies), else 1% of the best candidate's mean (a loss is in its own
    units; a hundredth of it is rarely worth changing a model for).

    >>> default_rope("test_accuracy", {"mean": 0.9}), default_rope("test_loss", {"mean": 0.25})
    (0.01, 0.0025)
    """
    if base_metric(metric) in metrics_where(units="fraction"):  # a fraction: a point of a percent
        return 0.01
    return None if not best or best.get("mean") is None else 0.01 * abs(best["mean"])


def rope_scale_note(rope: Optional[float], metric: str, best: Optional[float]) -> Optional[str]:
    """A note when a `rope` given for a metric in its own units (a loss, rmse, mae) looks given as a fraction of it:
    below a thousandth of the best candidate's mean, or as wide as that mean itself.

    >>> print(rope_scale_note(0.01, "test_loss", 3200.0))  # doctest: +NORMALIZE_WHITESPACE
    rope 0.01 is in test loss's own units: 0.00031% of the best candidate's mean, 3200, so only differences up to
    0.01 count as practically equal; 1% of that mean is 32
    >>> rope_scale_note(0, "test_loss", 3200.0) is None  # no region at all, as asked
    True
    """
    if not rope or not best or base_metric(metric) in metrics_where(units="fraction"):  # 0: no region, as asked
        return None
    share = rope / abs(best)
    if 1e-3 <= share < 1:
        return None
    part = f"{share:.2g}x" if share >= 1 else f"{100 * share:.2g}% of"
    return (
        f"rope {rope:g} is in {metric.replace('_', ' ')}'s own units: {part} the best candidate's mean, {best:.5g}, so "
        f"only differences up to {rope:g} count as practically equal; 1% of that mean is {0.01 * abs(best):.3g}"
    )


def order_key(value, mode: str):
    """Sort key that puts the best value first and a missing one last."""
    if value is None:
        return (1, 0.0)
    return (0, value if mode == "min" else -value)


def indistinguishable(test: Optional[dict]) -> bool:
    """Whether a paired test could not tell the candidate apart from the best: Holm-adjusted corrected p at least the
    level.

    A candidate with fewer than two usable splits (all diverged, say) has no test, and is not claimed to be as good.
    """
    return test is not None and test["holm_p_value"] is not None and test["holm_p_value"] >= LEVEL


def selection(table: list, names: list, base: str, mode: str, summary: dict) -> tuple:
    """Nested selection: in every split the candidate with the best val_<base> is chosen and its test_<base> recorded.

    Returns the summary of it and the set of (candidate, run) chosen. Splits where no candidate has a
    finite validation metric choose nothing. A tie on the validation metric (an accuracy on a few
    validation rows ties often) goes to the lower validation loss, then to the candidate given first,
    and the ties are counted. The optimism is how much better the best candidate's mean
    test metric looks than the nested estimate (positive: quoting that mean flatters), with the
    corrected standard error of that difference, paired over the splits.
    """
    by_split = {}
    for row in table:
        by_split.setdefault(row["run"], []).append(row)
    best = summary["best"]
    chosen_in, flattery, ties = [], [], 0
    values: list = []  # each split's chosen test value, None where nothing was chosen
    for run, rows in sorted(by_split.items()):
        usable = [row for row in rows if not row.get("diverged") and is_number(row.get(f"val_{base}"))]
        if not usable:
            values.append(None)
            flattery.append(None)
            continue
        # ties: the lower validation loss, then the first candidate given
        choice = min(
            usable, key=lambda row: (order_key(row[f"val_{base}"], mode), order_key(row.get("val_loss"), "min"))
        )
        ties += sum(1 for row in usable if row[f"val_{base}"] == choice[f"val_{base}"]) > 1
        chosen_in.append((choice["candidate"], run))
        values.append(choice.get(f"test_{base}"))
        best_test = next(
            (row.get(f"test_{base}") for row in rows if row["candidate"] == best and not row.get("diverged")), None
        )
        gap = values[-1] - best_test if is_number(values[-1]) and is_number(best_test) else None
        flattery.append(None if gap is None else gap if mode == "min" else -gap)
    sizes = (summary["n_train"], summary["n_test"], summary.get("folds"))
    counts = {name: sum(1 for chosen, _ in chosen_in if chosen == name) for name in names}
    return {
        "by": f"val_{base}",
        "metric": f"test_{base}",
        "estimate": describe_metric(f"test_{base}", values, *sizes),
        "chosen": counts,
        "ties": ties,
        "tie_rule": "the candidate given first"
        if base == "loss"
        else "the lower val loss, then the candidate given first",
        "optimism": describe(flattery, *sizes),
    }, set(chosen_in)


def comparison_rows(comparison: Comparison) -> list:
    """comparison.csv: one row per candidate and metric, ranked: its statistics and its paired difference from the
    best."""
    summary, rows, cells = comparison.summary, [], setting_cells(comparison.candidates, comparison.config)
    for name in summary["ranking"]:
        for metric, d in summary["candidates"][name]["metrics"].items():
            if not metric.startswith(METRIC_PREFIXES):
                continue
            test = summary["comparisons"].get(metric, {}).get(name) or {}
            rows.append(
                {
                    "candidate": name,
                    **cells[name],
                    "metric": metric,
                    "mean": d["mean"],
                    **{key: d[key] for key in ("corrected_se", "corrected_ci_low", "corrected_ci_high", "ci_scale")},
                    "naive_se": d["naive_se"],
                    "difference": test.get("mean"),
                    "difference_corrected_se": test.get("corrected_se"),
                    "difference_corrected_ci_low": test.get("corrected_ci_low"),
                    "difference_corrected_ci_high": test.get("corrected_ci_high"),
                    "corrected_p_value": test.get("corrected_p_value"),
                    "holm_p_value": test.get("holm_p_value"),
                    "naive_p_value": test.get("naive_p_value"),
                    **{key: test.get(key) for key in ("rope", "p_worse", "p_equivalent", "p_better", "detectable")},
                }
            )
    return rows


def comparison_directory(config: Config, data_name: str, python: bool = False) -> Path:
    """Where a comparison is written: `out/name`, or `out/<data>-compare[-N]` when unnamed (`python`: see
    run_directory)."""
    from .._runs._rundir import run_directory

    return run_directory(config, f"{data_name}-compare", python, kind="experiment")


def save_comparison(comparison: Comparison, directory=None, overwrite: bool = False) -> Path:
    """Write the comparison's files, each atomically, where `_rundir.save_experiment` allows; summary.json goes last and
    marks it finished. Without `directory`, where its settings name (their overwrite asks to replace)."""
    from .._runs._rundir import save_experiment

    target = (
        Path(directory)
        if directory
        else comparison_directory(comparison.config, data_label(comparison.names, comparison.config), python=True)
    )
    return save_experiment(
        lambda folder: write_comparison(comparison, folder),
        target,
        overwrite or (directory is None and comparison.config.overwrite),
    )


def write_comparison(comparison: Comparison, target: Path) -> None:
    """The files of a comparison in the folder `target`, each atomically, summary.json last."""
    from .._files import atomic_write, fsync_directory, json_bytes
    from .._runs._rundir import draw, history_csv

    tables = (
        ("config.toml", grid_toml(comparison.config, comparison.candidates, comparison.asked)),
        ("runs.csv", history_csv(comparison.table)),
        ("comparison.csv", history_csv(comparison_rows(comparison))),
    )
    for name, text in tables:
        atomic_write(target / name, text.encode())
    metric = comparison.summary["metric"]
    figure = plot_comparison(
        comparison.table, comparison.summary["ranking"], metric, tests=comparison.summary["comparisons"].get(metric)
    )
    draw(figure, target / "compare.png")
    atomic_write(target / "summary.json", json_bytes(comparison.summary))  # last: it marks the comparison finished
    fsync_directory(target)


DRAWN = 30  # candidates a picture shows legibly; the others are in the tables


def plot_comparison(
    table: list,
    ranking: list,
    metric: str,
    path: Optional[Path] = None,
    tests: Optional[dict] = None,
    overwrite: bool = False,
):
    """Each candidate's per-split `metric`, ranked left to right, with the values of one split joined by a line, and
    under
    each name its posterior probability of being practically equal to the best (`tests`: the comparison's paired tests
    on `metric`): the Figure, or drawn into `path` and the path returned (`_rundir.save_picture`: a file there is
    replaced only with `overwrite`)."""
    from matplotlib.figure import Figure

    shown = set(ranking[:DRAWN])
    by_split = {}
    for row in table:
        if row["candidate"] in shown:
            value = row.get(metric)
            usable = is_number(value) and not row.get("diverged")
            by_split.setdefault(row["run"], {})[row["candidate"]] = value if usable else math.nan
    left_out = len(ranking) - len(shown)
    ranking = ranking[:DRAWN]
    figure = Figure(figsize=(min(19.2, max(6, 0.6 * len(ranking))), 4.5))  # at most 1920 pixels wide at 100 dpi
    axis = figure.subplots()
    positions = range(len(ranking))
    for values in by_split.values():
        axis.plot(
            positions,
            [values.get(name, math.nan) for name in ranking],
            color="gray",
            alpha=0.3,
            linewidth=0.8,
            marker="o",
            markersize=3,
        )
    means = [
        sum(v for v in column if math.isfinite(v)) / max(1, sum(math.isfinite(v) for v in column))
        for column in ([values.get(name, math.nan) for values in by_split.values()] for name in ranking)
    ]
    axis.plot(positions, means, color="tab:red", marker="D", linestyle="none", label="mean")
    labels = [posterior_label(name, (tests or {}).get(name, {})) for name in ranking]
    axis.set_xticks(list(positions), labels, rotation=30, ha="right", fontsize=8)
    rope = next((t["rope"] for t in (tests or {}).values() if t.get("p_equivalent") is not None), None)
    if rope is not None:
        # two lines: one would run past the edges of a figure of a few candidates
        axis.set_xlabel(
            f"under each name: P(worse/equal/better) against the best,\npractically equal within +-{rope:.3g}",
            fontsize=9,
        )
    axis.set_ylabel(metric.replace("_", " "))
    axis.set_title(
        "one line per split, candidates ranked best first"
        + (f"; the best {DRAWN} of {DRAWN + left_out} (the rest in comparison.csv)" if left_out else "")
    )
    axis.legend()
    figure.tight_layout()
    if path is None:
        return figure
    from .._runs._rundir import save_picture

    return save_picture(figure, path, overwrite)


def posterior_label(name: str, test: dict) -> str:
    """A candidate's name on compare.png's axis, with its posterior against the best (the axis's label says which).

    >>> print(posterior_label("b", {"p_worse": 0.9, "p_equivalent": 0.1, "p_better": 0.0, "rope": 0.01}))
    b
    0.90/0.10/0.00
    """
    if test.get("p_equivalent") is None:
        return name
    return name + "\n" + "/".join(f"{test[key]:.2f}" for key in ("p_worse", "p_equivalent", "p_better"))


RANKED_COLUMNS = ("", "candidate", "mean [95% CI]", "vs best", "[95% CI]", "p Holm")  # CI: the corrected interval


def ranked_rows(summary: dict) -> list:
    """The candidates ranked on the metric: rank (* where not told apart from the best), name, mean with its corrected
    interval, the paired difference from the best with its corrected interval, and the Holm-adjusted corrected p."""
    from .._runs._report import compact

    metric, rows = summary["metric"], []
    best_mean = summary["candidates"][summary["best"]]["metrics"].get(metric, {}).get("mean") or 0.0
    for rank, name in enumerate(summary["ranking"], 1):
        d = summary["candidates"][name]["metrics"].get(metric, {})
        mean = (
            "-"
            if d.get("mean") is None
            else compact(d["mean"])
            + (
                f" [{compact(d['corrected_ci_low'])}, {compact(d['corrected_ci_high'])}]"
                if d.get("corrected_ci_low") is not None
                else ""
            )
        )
        test = summary["comparisons"].get(metric, {}).get(name)
        mark = "*" if name in summary["not_distinguished"] else ""
        diverged = summary["candidates"][name].get("diverged", 0)
        if diverged:  # the splits its statistics rest on
            name = f"{name} ({summary['runs'] - diverged} of {summary['runs']} splits)"
        if test is None:
            rows.append((f"{rank}", name, mean, "best", "", ""))
            continue
        interval = (
            f"[{compact(test['corrected_ci_low'], 2, sign=True)}, {compact(test['corrected_ci_high'], 2, sign=True)}]"
            if test["corrected_ci_low"] is not None
            else "-"
        )
        p = f"{test['holm_p_value']:.2g}" if test["holm_p_value"] is not None else "-"
        rows.append(
            (
                f"{rank}{mark}",
                name,
                mean,
                compact(settled(test["mean"], best_mean), sign=True) if test["mean"] is not None else "-",
                interval,
                p,
            )
        )
    return rows


def settled(difference: float, scale: float) -> float:
    """A mean difference with the rounding of its sum left out: 0 where it is within a few float steps of the values'
    size (equal means whose splits differ both ways sum to 1e-17, which would print as +1.11e-17).

    >>> settled(1.11e-17, 0.95), settled(-0.004, 0.95)
    (0.0, -0.004)
    """
    return 0.0 if abs(difference) <= 1e-12 * max(abs(scale), 1.0) else difference


SETTING = 24  # the longest setting=value the ranking keeps whole on a line, after its rank's three columns


def column_widths(columns: tuple, rows: list, room: int) -> list:
    """The widths of the ranking's columns: every number column as wide as its widest line; the candidate, the one
    column that folds, takes what `room` leaves, at least its header."""
    widths = [
        max(len(line) for text in (column, *(row[i] for row in rows)) for line in text.split("\n"))
        for i, column in enumerate(columns)
    ]
    widths[0] = max(len(columns[0]), min(widths[0], room - sum(widths[1:])))
    return widths


def folded(text: str, width: int, indent: int = 0) -> str:
    """`text` in lines of at most `width`, broken at its spaces (a grid's names are settings, such as
    weight_decay=0.0001); a setting longer than a line broken after its "=", and a piece longer still cut; the lines
    after the first indented by `indent`.

    >>> print(folded("2* lr=0.01 weight_decay=0.0001", 16, indent=3))
    2* lr=0.01
       weight_decay=
       0.0001
    >>> print(folded("1  hidden=64,64 lr=0.01", 19, indent=3))
    1  hidden=64,64
       lr=0.01
    """
    lines, room = [""], max(1, width - indent)
    for word in text.split(" "):
        pieces = [word] if len(word) <= room else re.findall(r"[^=]*=|[^=]+", word) or [word]
        for k, piece in enumerate(pieces):
            glue = " " if k == 0 and lines[-1].strip() else ""
            if len(lines[-1]) + len(glue) + len(piece) <= width:
                lines[-1] += glue + piece
                continue
            lines.append(" " * indent)
            while len(piece) > room:  # a piece longer than a line: cut
                lines[-1] += piece[:room]
                lines.append(" " * indent)
                piece = piece[room:]
            lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines if line.strip())


def comparison_table(summary: dict, console) -> None:
    """The candidates ranked on the metric, each with its mean and its paired difference from the best; at most 80
    columns."""
    from .._runs._report import log_scale_note, message_lines, narrow_table

    metric = summary["metric"]
    table = narrow_table(
        f"riskmin compare: {summary['runs']} splits, ranked on {metric.replace('_', ' ')} ({summary['mode']})", console
    )
    ranked = ranked_rows(summary)
    indent = max(len(rank) for rank, *_ in ranked) + 1  # the rank and its mark, then a space: "3* ", "10* "
    rows = [(f"{rank:<{indent}}{name}", *numbers) for rank, name, *numbers in ranked]
    columns = ("candidate", *RANKED_COLUMNS[2:])
    # between two columns, a space of padding either side and a divider (a space in this box); no edges
    table.show_edge, spacing = False, 3 * (len(columns) - 1)
    # a name folds between its settings, so its column holds its longest setting whole, where the numbers leave room
    setting = indent + max(
        len(piece) for row in rows for piece in re.findall(r"[^= ]*=|[^= ]+", row[0][indent:]) or [""]
    )
    widths = column_widths(columns, rows, table.width - spacing)
    if widths[0] < min(setting, SETTING):  # too narrow for one: each mean goes above its interval, a line each
        rows = [(first, mean.replace(" [", "\n["), *rest) for first, mean, *rest in rows]
        widths = column_widths(columns, rows, table.width - spacing)
    # a terminal narrower still, or names still too narrow for a setting: each difference goes above its interval too
    if sum(widths) + spacing > table.width or widths[0] < min(setting, SETTING):
        columns, spacing = (columns[0], columns[1], f"{columns[2]} {columns[3]}", columns[4]), spacing - 3
        rows = [(first, mean, f"{vs}\n{ci}", holm) for first, mean, vs, ci, holm in rows]
        widths = column_widths(columns, rows, table.width - spacing)
    if sum(widths) + spacing > table.width:  # numbers long still (2.36e+09): each interval folds after its comma
        rows = [(first, *(text.replace(", ", ",\n") for text in numbers)) for first, *numbers in rows]
        widths = column_widths(columns, rows, table.width - spacing)
    for column, width in zip(columns, widths):
        left = column == "candidate"
        table.add_column(column, justify="left" if left else "right", overflow="fold", no_wrap=not left, width=width)
    for first, *numbers in rows:
        table.add_row(folded(first, widths[0], indent=indent), *numbers)
    console.print(table)
    ratio = summary.get("test_train_ratio")
    ranked = {metric: summary["candidates"].get(summary["best"], {}).get("metrics", {}).get(metric, {})}
    comparisons = len(summary["ranking"]) - 1
    footnote = (
        f"CI: 95% interval corrected for the training rows the splits share ({summary['correction']}"
        f"{f', n_test/n_train = {ratio:.3g}' if ratio else ''}); vs best: the candidate minus the best, paired "
        "over the same splits, its interval mean +- t se for that pair alone. * not told apart from the best: "
        f"Holm-adjusted corrected p >= {summary['level']:g}"
        + (
            f", adjusted for the {comparisons} comparisons, so a * can stand beside an interval that leaves out 0."
            if comparisons > 1
            else "."
        )
        + log_scale_note(ranked)
        + (
            " A candidate whose runs diverged ranks after those whose runs all finished: its statistics rest on the "
            "splits it survived."
            if any(c.get("diverged") for c in summary["candidates"].values())
            else ""
        )
    )
    console.print(message_lines(footnote, indent=""), highlight=False, markup=False)
    bayesian_table(summary, console)
    if "selection" in summary:
        console.print(message_lines(selection_text(summary), indent=""), highlight=False, markup=False)


def bayesian_table(summary: dict, console) -> None:
    """Each candidate against the best: the posterior probabilities of being practically worse, equivalent or better
    (correlated Bayesian t-test) and the smallest difference the corrected test would detect at 80% power."""
    from .._runs._report import message_lines, narrow_table

    metric = summary["metric"]
    tests = summary["comparisons"].get(metric, {})
    rope = next((t["rope"] for t in tests.values() if t.get("rope") is not None), None)
    if rope is None:
        return
    table = narrow_table(f"against the best, practically equal within +-{rope:.3g} {metric.replace('_', ' ')}", console)
    for column in ("candidate", "P(worse)", "P(equal)", "P(better)", "detectable"):
        table.add_column(
            column,
            justify="left" if column == "candidate" else "right",
            overflow="fold",
            no_wrap=column != "candidate",
            min_width=12 if column == "candidate" else None,
        )
    number = lambda value, spec: "-" if value is None else format(value, spec)  # noqa: E731
    span = metric_span(metric)
    beyond = False  # a detectable difference wider than the metric's range: none it can show
    for name in summary["ranking"][1:]:
        t = tests.get(name, {})
        wide = t.get("detectable") is not None and t["detectable"] >= span
        beyond = beyond or wide
        table.add_row(
            name,
            number(t.get("p_worse"), ".2f"),
            number(t.get("p_equivalent"), ".2f"),
            number(t.get("p_better"), ".2f"),
            "none" if wide else number(t.get("detectable"), ".3g"),
        )
    console.print(table)
    footnote = (
        "P: posterior probability (correlated Bayesian t-test, same correction). Each candidate is set against the "
        "best these splits picked, so one truly as good shows P(worse) > 0.95 up to about 10% of the time, > 0.975 "
        "about 5% (python -m benchmarks.paired_tests). detectable: the difference the corrected test finds 80% of "
        f"the time at p < {summary['level']:g} with {summary['runs']} splits (or those a candidate finished), for that "
        "pair alone (Holm's adjustment over several candidates needs a larger one); smaller true differences may go "
        "unseen."
        + (
            f" none: not even a difference of {span:g}, the widest {metric.replace('_', ' ')} can show."
            if beyond
            else ""
        )
    )
    console.print(message_lines(footnote, indent=""), highlight=False, markup=False)


def selection_text(summary: dict) -> str:
    from .._runs._report import estimate, interval

    s = summary["selection"]
    e, optimism = s["estimate"], s["optimism"]
    if e["mean"] is None:
        return f"Chosen by {s['by'].replace('_', ' ')}: no split had a validation metric to choose by."
    chosen = ", ".join(
        f"{name} {count}" for name, count in sorted(s["chosen"].items(), key=lambda item: -item[1]) if count
    )
    ties = f" Ties on the validation metric in {s['ties']} split(s), each to {s['tie_rule']}." if s["ties"] else ""
    return (
        f"Chosen by {s['by'].replace('_', ' ')} in each split, {s['metric'].replace('_', ' ')} = {estimate(e)}, "
        f"95% corrected {interval(e)} (nested estimate). Times chosen: {chosen}.{ties} Optimism of quoting the "
        f"best candidate's own mean: {estimate(optimism)}."
    )
