"""Comparing parametrizations: several candidates trained on the same splits, paired statistics, honest selection.

A candidate is a name and a dict of settings (a model name or a callable that builds one,
and any Config field); _candidates.py makes and checks them. Every candidate runs through `montecarlo` with the same seed, so run r
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
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from torch.utils.data import Dataset

from .config import Config, RiskminError
from ._candidates import candidate_configs, grid_toml, ranking, setting_cells, shared_model_per_candidate
from .data import Data
from ._experiments import STACKABLE, data_frame, data_name, estimate, experiments, html_table, interval, targets_of
from ._optim import per_run_supported
from ._losses import settled
from ._prepare import as_data
from .stats import METRIC_PREFIXES, describe, holm, is_number, paired

LEVEL = 0.05  # a candidate whose Holm-adjusted corrected p against the best is at least this is not told apart from it


@dataclass
class Comparison:
    """The result of `compare`: one row per candidate and split, and the paired statistics in `summary`."""

    table: list
    summary: dict
    config: Config
    candidates: dict
    notes: list = field(default_factory=list)
    names: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        s = self.summary
        best = estimate(s["candidates"][s["best"]]["metrics"].get(s["metric"], {}))
        close = f", {len(s['not_distinguished'])} not told apart from it" if s["not_distinguished"] else ""
        return (f"Comparison({self.names.get('data') or self.config.data}, {len(s['ranking'])} candidates on {s['runs']} splits, "
                f"best {s['best']}: {s['metric'].replace('_', ' ')} {best}{close})")

    def _repr_html_(self) -> str:
        """The candidates ranked, as `riskmin compare` prints them, as a notebook shows the result."""
        s = self.summary
        rows = []
        for rank, name in enumerate(s["ranking"], 1):
            test = s["comparisons"].get(s["metric"], {}).get(name)
            difference = "best" if test is None else "-" if test["mean"] is None else f"{test['mean']:+.3g}"
            p = "" if test is None or test["holm_p_value"] is None else f"{test['holm_p_value']:.2g}"
            mark = "*" if name in s["not_distinguished"] else ""
            rows.append((f"{rank}{mark}", name, estimate(s["candidates"][name]["metrics"].get(s["metric"], {})), difference,
                         "" if test is None else interval(test), p))
        return html_table(repr(self) + "; * not told apart from the best (Holm-adjusted corrected p >= "
                          f"{s['level']:g})", ("", "candidate", "mean +- se", "minus best", "95% corrected", "p Holm"), rows)

    def to_pandas(self, table: str = "runs"):
        """The runs as a pandas DataFrame, one row per candidate and split as in runs.csv; table="summary": one row per
        candidate and metric, its statistics and its paired difference from the best, as in comparison.csv."""
        return data_frame({"runs": self.table, "summary": comparison_rows(self)}, table, "Comparison")

    def plot(self, path=None):
        """Each candidate's per-split metric, ranked, one line per split: a matplotlib Figure, or drawn into `path`
        (compare.png) and the path returned."""
        figure = plot_comparison(self.table, self.summary["ranking"], self.summary["metric"], path)
        return figure if path is None else Path(path)

    def save(self, directory=None) -> Path:
        """Write runs/<name>/ with config.toml (the grid), runs.csv, comparison.csv, compare.png and summary.json."""
        return save_comparison(self, directory)


def stacks(configs: dict) -> list:
    """The candidates' names, grouped where they may train in one stack: the same model, settings equal but for
    lr, weight_decay, momentum and the schedule (scheduler, step_size, gamma), and an optimizer that takes them per run
    (sgd, adam, adamw). A plateau schedule reacts to each run's own validation metric: such a candidate is a stack of
    its own (and trains through fit, as montecarlo trains it)."""
    groups = {}
    for name, (model, candidate) in configs.items():
        if per_run_supported(candidate.optimizer) and candidate.scheduler != "plateau":
            key = (model if isinstance(model, str) else id(model),
                   tuple((name, str(value)) for name, value in candidate.to_dict().items() if name not in STACKABLE))
        else:
            key = (name,)
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def compare(candidates: dict, data, runs: int = 100, config: Optional[Config] = None, select: bool = False,
            metric: Optional[str] = None, **settings) -> Comparison:
    """Train every candidate on the same `runs` splits of `data` and compare each with the best, split by split.

    `candidates` maps a name to its settings; `settings` (and `config`) are shared by all. The
    best candidate has the best mean of `metric` (default: the test counterpart of `monitor`,
    e.g. test_loss). With `select`, each split also chooses the candidate with the best
    validation metric, and the summary reports that nested estimate and how optimistic the
    best candidate's own mean is. Candidates that differ only in lr, weight_decay, momentum,
    scheduler, step_size and gamma train side by side in the same stacks (their own settings
    per run); others, and those on a plateau schedule, form stacks of their own.

    >>> c = compare({"small": {"hidden": 4}, "large": {"hidden": 16}}, "lab1", runs=3, epochs=2, progress=False)
    >>> sorted(c.summary["candidates"]), len(c.table)
    (['large', 'small'], 6)
    """
    candidates, settings = shared_model_per_candidate(candidates, settings)
    config = (config or Config()).replace(runs=runs, **settings)
    configs = candidate_configs(candidates, config)
    base, mode = ranking(metric, config)
    data = comparable_data(data, config, base)
    start = time.perf_counter()
    results = train_candidates(configs, data, config.progress)
    summary = comparison_summary(results, base, mode, config.folds or None)
    table = [{"candidate": name, **setting_cells(candidates, name), **row} for name, mc in results.items() for row in mc.table]
    if select:
        summary["selection"], chosen = selection(table, list(results), base, mode, summary)
        table = [{**row, "selected": (row["candidate"], row["run"]) in chosen} for row in table]
    summary["seconds"] = time.perf_counter() - start
    notes = [f"{name}: {note}" for name, mc in results.items() for note in mc.notes]
    return Comparison(table, summary, config, dict(candidates), notes, {"data": data_name(data)})


def comparable_data(data, config: Config, base: str) -> Data:
    """`data` as in-memory Data, refused when it is not or when its task does not measure the ranking metric `base`."""
    data = as_data(data, config)
    if not isinstance(data, (Data, Dataset)):
        raise RiskminError(f"compare needs data as a name, riskmin.Data, (x, y) or a map-style Dataset, not {type(data).__name__}")
    measured = measured_metrics(settled(config, targets_of(data)).loss)
    if base not in measured:
        raise RiskminError(f"metric {base} is not measured for this task; choose one of {', '.join(measured)}")
    return data


def train_candidates(configs: dict, data: Data, progress: bool) -> dict:
    """name -> Monte-Carlo result of every candidate, in the order of `configs`, trained one stack at a time."""
    results = {}
    for number, group in enumerate(stacks(configs), 1):
        if progress:
            print(f"stack {number}: {', '.join(group)}", flush=True)
        model, first = configs[group[0]]
        # the candidates of a stack differ only in these settings, given to `experiments` as one variant per candidate
        variants = [{key: getattr(configs[name][1], key) for key in STACKABLE} for name in group]
        results.update(zip(group, experiments(model, data, first, variants)))
    return {name: results[name] for name in configs}


def measured_metrics(loss: str) -> tuple:
    """The metrics every row holds under `loss`: those of regression, or those of classification."""
    return ("loss", "accuracy", "f1", "log_loss") if loss in ("cross_entropy", "bce") else ("loss", "mse", "rmse", "mae", "r2")


def metric_values(mc, name: str) -> list:
    """The metric `name` of every run, in run order; None where the run diverged, as the statistics leave it out."""
    return [None if row.get("diverged") else row.get(name) for row in mc.table]


def comparison_summary(results: dict, base: str, mode: str, folds: Optional[int]) -> dict:
    """Each candidate's statistics, the ranking on test_<base>, and every candidate paired with the best on every metric."""
    first = next(iter(results.values())).summary
    n_train, n_test = first["n_train"], first["n_test"]
    ranked_by = f"test_{base}"
    means = {name: mc.summary["metrics"].get(ranked_by, {}).get("mean") for name, mc in results.items()}
    if all(mean is None for mean in means.values()):
        raise RiskminError(f"no candidate has a {ranked_by} to rank by; choose a metric the task reports, such as loss")
    order = sorted(results, key=lambda name: order_key(means[name], mode))
    best = order[0]
    metrics = [m for m in dict.fromkeys(m for mc in results.values() for m in mc.summary["metrics"]) if m.startswith(METRIC_PREFIXES)]
    comparisons = {}
    for name in metrics:
        others = [c for c in order if c != best]
        tests = [paired(metric_values(results[c], name), metric_values(results[best], name), n_train, n_test, folds) for c in others]
        adjusted = holm([t["corrected_p_value"] for t in tests])
        comparisons[name] = {c: {**t, "holm_p_value": p} for c, t, p in zip(others, tests, adjusted)}
    close = [c for c in order[1:] if indistinguishable(comparisons.get(ranked_by, {}).get(c))]
    candidates = {name: {"metrics": mc.summary["metrics"], "engine": mc.summary["engine"], "seconds": mc.summary["seconds"],
                         "diverged": mc.summary["diverged"]} for name, mc in results.items()}
    return {"metric": ranked_by, "mode": mode, "best": best, "ranking": order, "not_distinguished": close, "level": LEVEL,
            "candidates": candidates, "comparisons": comparisons, "runs": len(next(iter(results.values())).table),
            "n_train": n_train, "n_test": n_test, "folds": folds, "correction": first["correction"]}


def order_key(value, mode: str):
    """Sort key that puts the best value first and a missing one last."""
    if value is None:
        return (1, 0.0)
    return (0, value if mode == "min" else -value)


def indistinguishable(test: Optional[dict]) -> bool:
    """Whether a paired test could not tell the candidate apart from the best: Holm-adjusted corrected p at least the level.

    A candidate with fewer than two usable splits (all diverged, say) has no test, and is not claimed to be as good.
    """
    return test is not None and test["holm_p_value"] is not None and test["holm_p_value"] >= LEVEL


def selection(table: list, names: list, base: str, mode: str, summary: dict) -> tuple:
    """Nested selection: in every split the candidate with the best val_<base> is chosen and its test_<base> recorded.

    Returns the summary of it and the set of (candidate, run) chosen. Splits where no candidate has a
    finite validation metric choose nothing. The optimism is how much better the best candidate's
    mean test metric looks than the nested estimate (positive: quoting that mean flatters).
    """
    by_split = {}
    for row in table:
        by_split.setdefault(row["run"], []).append(row)
    chosen_in, values = [], []
    for run, rows in sorted(by_split.items()):
        usable = [row for row in rows if not row.get("diverged") and is_number(row.get(f"val_{base}"))]
        if not usable:
            values.append(None)
            continue
        choice = min(usable, key=lambda row: order_key(row[f"val_{base}"], mode))  # ties: the first candidate
        chosen_in.append((choice["candidate"], run))
        values.append(choice.get(f"test_{base}"))
    estimate = describe(values, summary["n_train"], summary["n_test"], summary.get("folds"))
    best_mean = summary["candidates"][summary["best"]]["metrics"].get(f"test_{base}", {}).get("mean")
    optimism = None
    if estimate["mean"] is not None and best_mean is not None:
        optimism = estimate["mean"] - best_mean if mode == "min" else best_mean - estimate["mean"]
    counts = {name: sum(1 for chosen, _ in chosen_in if chosen == name) for name in names}
    return {"by": f"val_{base}", "metric": f"test_{base}", "estimate": estimate, "chosen": counts, "optimism": optimism}, set(chosen_in)


def comparison_rows(comparison: Comparison) -> list:
    """comparison.csv: one row per candidate and metric, ranked: its statistics and its paired difference from the best."""
    summary, rows = comparison.summary, []
    for name in summary["ranking"]:
        for metric, d in summary["candidates"][name]["metrics"].items():
            if not metric.startswith(METRIC_PREFIXES):
                continue
            test = summary["comparisons"].get(metric, {}).get(name) or {}
            rows.append({"candidate": name, **setting_cells(comparison.candidates, name), "metric": metric, "mean": d["mean"], "se": d["se"],
                         "corrected_ci_low": d["corrected_ci_low"], "corrected_ci_high": d["corrected_ci_high"],
                         "difference": test.get("mean"), "difference_corrected_ci_low": test.get("corrected_ci_low"),
                         "difference_corrected_ci_high": test.get("corrected_ci_high"), "p_value": test.get("p_value"),
                         "corrected_p_value": test.get("corrected_p_value"), "holm_p_value": test.get("holm_p_value")})
    return rows


def comparison_directory(config: Config, data_name: str) -> Path:
    """Where a comparison is written: `out/name`, or `out/<data>-compare[-N]` when unnamed."""
    from ._rundir import run_directory

    if config.name:
        return run_directory(config, data_name)
    stem, number = Path(config.out) / f"{Path(data_name).stem}-compare", 2
    target = stem
    while target.exists():
        target, number = stem.with_name(f"{stem.name}-{number}"), number + 1
    return target


def save_comparison(comparison: Comparison, directory=None) -> Path:
    """Write the comparison's files, each atomically; summary.json goes last and marks it finished."""
    from ._files import atomic_write, fsync_directory, json_bytes
    from ._rundir import history_csv, picture

    target = Path(directory) if directory else comparison_directory(comparison.config, str(comparison.config.data))
    target.mkdir(parents=True, exist_ok=True)
    metric = comparison.summary["metric"]
    draw = lambda rows, path: plot_comparison(rows, comparison.summary["ranking"], metric, path)  # noqa: E731
    files = (("config.toml", grid_toml(comparison.config, comparison.candidates)), ("runs.csv", history_csv(comparison.table)),
             ("comparison.csv", history_csv(comparison_rows(comparison))), ("compare.png", picture(draw, comparison.table, target)),
             ("summary.json", json_bytes(comparison.summary)))
    for name, content in files:
        atomic_write(target / name, content if isinstance(content, bytes) else content.encode())
    fsync_directory(target)
    return target


def plot_comparison(table: list, ranking: list, metric: str, path: Optional[Path] = None):
    """Each candidate's per-split `metric`, ranked left to right, with the values of one split joined by a line: the
    Figure, also written to `path` when one is given."""
    from matplotlib.figure import Figure

    by_split = {}
    for row in table:
        value = row.get(metric)
        by_split.setdefault(row["run"], {})[row["candidate"]] = value if is_number(value) and not row.get("diverged") else math.nan
    figure = Figure(figsize=(max(6, 1.2 * len(ranking)), 4.5))
    axis = figure.subplots()
    positions = range(len(ranking))
    for values in by_split.values():
        axis.plot(positions, [values.get(name, math.nan) for name in ranking], color="gray", alpha=0.3, linewidth=0.8, marker="o", markersize=3)
    means = [sum(v for v in column if math.isfinite(v)) / max(1, sum(math.isfinite(v) for v in column))
             for column in ([values.get(name, math.nan) for values in by_split.values()] for name in ranking)]
    axis.plot(positions, means, color="tab:red", marker="D", linestyle="none", label="mean")
    axis.set_xticks(list(positions), ranking, rotation=30, ha="right", fontsize=8)
    axis.set_ylabel(metric.replace("_", " "))
    axis.set_title("one line per split, candidates ranked best first")
    axis.legend()
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def comparison_table(summary: dict, console) -> None:
    """The candidates ranked on the metric, each with its mean and its paired difference from the best; at most 80 columns."""
    from rich import box
    from rich.table import Table

    metric = summary["metric"]
    table = Table(title=f"riskmin compare: {summary['runs']} splits, ranked on {metric.replace('_', ' ')} ({summary['mode']})",
                  box=box.SIMPLE_HEAD, pad_edge=False, width=min(console.width, 80))
    for column in ("", "candidate", "mean +- se", "minus best", "95% corrected", "p Holm"):
        left = column == "candidate"  # the one column that wraps, so that the numbers stay on one line
        table.add_column(column, justify="left" if left else "right", overflow="fold", no_wrap=not left, min_width=14 if left else None)
    for rank, name in enumerate(summary["ranking"], 1):
        d = summary["candidates"][name]["metrics"].get(metric, {})
        mean = f"{d['mean']:.4g} +- {d['se']:.2g}" if d.get("se") is not None else f"{d['mean']:.4g}" if d else "-"
        test = summary["comparisons"].get(metric, {}).get(name)
        mark = "*" if name in summary["not_distinguished"] else ""
        if test is None:
            table.add_row(f"{rank}", name, mean, "best", "", "")
        else:
            interval = f"[{test['corrected_ci_low']:+.2g}, {test['corrected_ci_high']:+.2g}]" if test["corrected_ci_low"] is not None else "-"
            p = f"{test['holm_p_value']:.2g}" if test["holm_p_value"] is not None else "-"
            table.add_row(f"{rank}{mark}", name, mean, f"{test['mean']:+.3g}" if test["mean"] is not None else "-", interval, p)
    console.print(table)
    footnote = (f"* not told apart from the best: Holm-adjusted corrected p >= {summary['level']:g} (difference: candidate "
                f"minus best, paired over the same splits, {summary['correction']} corrected)")
    for text in (footnote, selection_text(summary) if "selection" in summary else ""):
        if text:
            console.print(textwrap.fill(text, 80, break_on_hyphens=False), highlight=False, markup=False)


def selection_text(summary: dict) -> str:
    s = summary["selection"]
    e = s["estimate"]
    interval = f", 95% corrected [{e['corrected_ci_low']:.4g}, {e['corrected_ci_high']:.4g}]" if e["corrected_ci_low"] is not None else ""
    chosen = ", ".join(f"{name} {count}" for name, count in sorted(s["chosen"].items(), key=lambda item: -item[1]) if count)
    optimism = f"{s['optimism']:+.3g}" if s["optimism"] is not None else "-"
    estimate = f"{e['mean']:.4g} +- {e['se']:.2g}" if e["se"] is not None else f"{e['mean']}"
    return (f"Chosen by {s['by'].replace('_', ' ')} in each split, {s['metric'].replace('_', ' ')} = {estimate}{interval} "
            f"(nested estimate). Times chosen: {chosen}. Optimism of quoting the best candidate's own mean: {optimism}.")
