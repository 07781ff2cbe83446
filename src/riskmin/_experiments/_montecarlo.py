"""Monte-Carlo experiments: the same settings trained on many random splits, with statistics over runs.

Run r uses seed `seed + r` for its split, its initialization and its batch order, so it
does exactly what `riskmin train --seed <seed + r>` does. Splits may instead be repeated
k-fold (a row names its repetition and fold) or read from a file of index arrays. Two engines give the same numbers:
vectorized (_vectorized.py: the R runs stacked and trained as one model) and sequential
(`fit` R times, for what the vectorized engine cannot batch).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import torch
from torch import nn
from torch.utils.data import Dataset

from ..config import (
    called_with,
    Config,
    RiskminError,
    RiskminNote,
    Diverged,
    RiskminNumerics,
    check_experiment,
    said_for_task,
    said_given,
    unused_by_experiment,
    warn,
)
from .._paths import data_label
from ..data import Data, Splits, constant_columns, constant_note, rows_at, split
from ..distributed import gathered, join
from .._training._callables import OBJECT_SETTINGS, Callables, missing_callables, user_objects
from .._training._checkpoint import Checkpoints, FinishedThenInterrupted
from .._training._losses import check_log_target, check_targets, with_concrete_loss
from .._training._loop import fit_alone
from .._training._prepare import (
    as_data,
    as_they_are_note,
    constant_target_note,
    fitted_batch,
    recorded,
    resolve_device,
    unequal_targets_note,
)
from ..splits import kfold_splits, read_splits, stratified_split
from ..stats import few_runs, summarize
from .._training._threads import MeasuredThreads, IntraOpThreads, process_cores
from ._vectorized import model_for, refusal, stacks_of, train_stacked
from ._kept import Keeper, fingerprint_settings, holding
from ..policy import judged


@dataclass
class Experiment:
    """What every experiment's result holds: its table, a row per run, the statistics over the runs in `summary`, and
    the settings it ran with."""

    table: list
    summary: dict
    config: Config


@dataclass
class MonteCarlo(Experiment):
    """The result of `montecarlo`: one row per run and statistics over the runs. `names`: the data and the model it
    measured, as they were given (a name, or the class of a module of your own)."""

    notes: list = field(default_factory=list)
    names: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        used = len(self.summary.get("used_runs", self.table))
        runs = f"{used} of {len(self.table)} runs" if used != len(self.table) else f"{len(self.table)} runs"
        from .._runs._report import estimate, interval

        test = self.summary["metrics"].get("test_loss")
        measured = (
            f"test loss {estimate(test)}, 95% corrected {interval(test)}"
            if test
            else "every run diverged"
            if self.table and not used
            else "no test split"
        )
        return (
            f"MonteCarlo({data_label(self.names, self.config)}, "
            f"{self.names.get('model') or self.config.model}, {runs}, {measured})"
        )

    def _repr_html_(self) -> str:
        """The summary table, the notes the command line prints beside it, and the picture, as a notebook shows the
        result."""
        from html import escape

        from .._runs._report import correction_note, montecarlo_rows

        table = html_table(
            repr(self), ("metric", "mean +- se", "95% corrected", "95% naive"), montecarlo_rows(self.summary)
        )
        footnote = f"<p>{escape(correction_note(self.summary))}</p>"
        return table + footnote + html_notes(self.notes) + html_picture(self.plot())

    def to_pandas(self, table: str = "runs"):
        """The runs as a pandas DataFrame, one row per run as in runs.csv; table="summary": one row per metric, its
        mean, standard error and both 95% intervals, as summary.json holds them."""
        tables = {"runs": self.table, "summary": [{"metric": name, **d} for name, d in self.summary["metrics"].items()]}
        return data_frame(tables, table, "MonteCarlo")

    def plot(self, path=None, overwrite: bool = False):
        """The test loss over runs and train against test loss run by run: a matplotlib Figure, or drawn into `path`
        (montecarlo.png), which is returned; an existing file is replaced only with `overwrite` (see LrFinding.plot)."""
        from .._runs._report import plot_montecarlo
        from .._runs._rundir import save_picture

        figure = plot_montecarlo(self.table, summary=self.summary)
        return figure if path is None else save_picture(figure, path, overwrite)

    def save(self, directory=None, overwrite: bool = False):
        """Write runs/<name>/ with config.toml, runs.csv, summary.json and montecarlo.png; an existing `directory` is
        replaced only with `overwrite`, and only once the new files are complete."""
        from .._runs._rundir import save_montecarlo

        return save_montecarlo(self, directory, overwrite)


def html_table(caption: str, columns: tuple, rows: list) -> str:
    """A plain HTML table of text cells, for a notebook's display of a result."""
    from html import escape

    head = "".join(f"<th>{escape(column)}</th>" for column in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_notes(notes: list) -> str:
    """A result's notes (the engine it fell back to, runs left out) as paragraphs, for a notebook's display."""
    from html import escape

    return "".join(f"<p>note: {escape(note)}</p>" for note in notes)


def html_picture(figure) -> str:
    """A Figure as an inline PNG image, so that a notebook shows it whatever its matplotlib backend."""
    import base64
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"/>'


def data_frame(tables: dict, table: str, what: str):
    """The rows (dicts) of tables[table] as a pandas DataFrame, a column for every key any row has."""
    if table not in tables:
        raise RiskminError(f"table={table!r} is not a table of {what}; choose one of {', '.join(map(repr, tables))}")
    try:
        import pandas
    except ImportError:
        raise RiskminError(
            f"{what}.to_pandas needs pandas, which is not installed; "
            "install it with pip install pandas, "
            "or read the rows as a list of dicts from .table"
        ) from None
    rows = tables[table]
    return pandas.DataFrame(rows, columns=list(dict.fromkeys(key for row in rows for key in row)))


def montecarlo(
    model: Union[str, nn.Module, Callable[[], nn.Module]],
    data,
    runs: int = 100,
    config: Optional[Config] = None,
    directory=None,
    resume: bool = False,
    **settings,
) -> MonteCarlo:
    """Train `model` on `runs` random splits of `data` and report, for every metric, the mean, its standard error and
    95% intervals: the naive Student-t one and the one corrected for overlapping training sets (Nadeau-Bengio).

    `model` is a built-in name, a callable that returns a fresh nn.Module (a factory or a class), or a module, of which
    each run trains a deep copy re-initialized under its own seed. Splits are random
    (stratified by class for classification), repeated k-fold (`folds`), or read from a file (`splits`).

    With a `directory`, each run (or stack of runs) is kept there as it finishes and the result is written
    there at the end, as `riskmin montecarlo` writes it; `resume=True` continues an interrupted experiment
    there from the runs it kept, to the table an uninterrupted one gives, and refuses other data or settings.
    A directory that holds a result is replaced only with `overwrite=True`, once the new one is complete.

    >>> mc = montecarlo("linear", "lab1", runs=3, epochs=2, progress=False)
    >>> [row["seed"] for row in mc.table], mc.summary["engine"]
    ([0, 1, 2], 'vectorized')
    """
    if isinstance(model, str):
        settings = {"model": model, **settings}
    # your own loss, optimizer, scheduler, metrics: each run's fit takes them
    callables, settings = user_objects(settings)
    whole = config is not None and not resume  # a Config passed is checked whole, but not a saved one that resumes
    # config.toml names the data given
    config = recorded(called_with("montecarlo", config, {"runs": runs, **settings}, runs=runs), data)
    said_given(config, settings, [model], whole=whole)
    keeper = kept_in(directory, resume, config, fingerprint_settings(config, model_name(model)), config.to_toml())
    with holding(keeper):
        result = kept_montecarlo(model, data, config, callables, keeper, given=settings)
        if keeper is not None:
            from .._runs._rundir import write_montecarlo

            keeper.finished(lambda folder: write_montecarlo(result, folder))
    return result


def kept_montecarlo(
    model, data, config: Config, callables: Callables, keeper: Optional[Keeper], given=()
) -> MonteCarlo:
    """A Monte-Carlo experiment of `config`, kept by `keeper` (or not, when None) as its runs finish; `given`: the
    settings a Python caller gave, noted where the data leaves them unused (the command line notes its flags)."""
    result = experiments(model, data, config, [{}], callables, keeper, given=given)[0]
    warn_about_runs(config, {"": result.summary})
    return result


def kept_in(
    directory, resume: bool, config: Config, settings: dict, config_toml: str, kind: str = "montecarlo"
) -> Optional[Keeper]:
    """From Python: the Keeper of an experiment kept in `directory`, or None (kept in memory alone) without one."""
    if directory is None:
        if resume:
            raise RiskminError(
                "resume=True continues an experiment kept in a directory; pass directory= as when it began"
            )
        return None
    return Keeper(directory, settings, config_toml, resume=resume, overwrite=config.overwrite, kind=kind)


def all_diverged(summary: dict, flags: bool = False) -> str:
    """What an experiment whose runs all diverged says: Python's warning, or with `flags` the command line's error."""
    remedy = "--lr or clip gradients with --clip-grad 1.0" if flags else "lr= or clip gradients with clip_grad=1.0"
    return f"all {summary['runs']} runs diverged, so there are no statistics; lower {remedy}"


def warn_about_runs(config: Config, summaries: dict) -> None:
    """What the runs of one or more experiments (their `summaries`, by the name a message gives them: "" for a
    Monte-Carlo experiment alone) mean for the result: `warn_about_run_count` for the fewest used, and a warning for
    each test metric whose values left runs out or all agree; runs that diverged, as numerics."""
    warn_about_run_count(config, min(len(summary["used_runs"]) for summary in summaries.values()))
    for label, summary in summaries.items():
        if summary["diverged"] and not (summary["used_runs"] or label):  # the command line says it as its error
            warn(all_diverged(summary), Diverged)
        elif summary["diverged"]:
            warn(
                f"{summary['diverged']} of {summary['diverged'] + len(summary['used_runs'])} runs"
                f"{f' of {label}' if label else ''} diverged and are left out of the statistics; lower --lr (lr=) or "
                "clip gradients with --clip-grad 1.0 (clip_grad=1.0)",
                RiskminNumerics,
            )
    for message in value_warnings(summaries):
        warn(message)


def value_warnings(summaries: dict) -> list:
    """Sentences on the test metrics that left runs out (a value not a number: r2 of a test split whose target is
    constant) and on those whose values all agree, which get no interval (stats.describe).

    >>> rows = [{"test_accuracy": 1.0, "test_r2": v} for v in (0.5, float("nan"), 0.7)]
    >>> said = value_warnings({"": summarize(rows, n_train=8, n_test=2)})
    >>> for line in said: print(line)  # doctest: +NORMALIZE_WHITESPACE
    test r2 is not a number in 1 of 3 runs; its statistics use the other 2
    test accuracy is 1 in every run: values that all agree give no interval or test, their spread of 0 saying
    nothing of other splits (more test rows or more splits would show one)
    >>> value_warnings({"": summarize([{"test_r2": float("nan")}] * 2, n_train=8, n_test=1)})
    ['test r2 is not a number in any run; it is left out of the results']
    """
    from .._runs._report import compact

    left_out, agreeing = [], []
    for label, summary in summaries.items():
        of = f" of {label}" if label else ""
        for name in summary.get("unmeasured", []):
            if name.startswith("test_"):
                left_out.append(
                    f"{name.replace('_', ' ')}{of} is not a number in any run; it is left out of the results"
                )
        for name, d in summary["metrics"].items():
            if not name.startswith("test_"):
                continue
            words = name.replace("_", " ")
            if d["excluded"]:
                runs = d["n"] + d["excluded"]
                left_out.append(
                    f"{words}{of} is not a number in {d['excluded']} of {runs} runs; its statistics use "
                    f"the other {d['n']}"
                )
            if d["n"] >= 2 and d["std"] == 0:
                agreeing.append(f"{words}{of} is {compact(d['mean'])} in every run")
    if agreeing:
        left_out.append(
            f"{', '.join(agreeing)}: values that all agree give no interval or test, their spread of "
            "0 saying nothing of other splits (more test rows or more splits would show one)"
        )
    return left_out


def warn_about_run_count(config: Config, used: int) -> None:
    """What the number of runs means for the result: a note when `runs` was rounded up to whole repetitions of K folds,
    a warning when the runs `used` are too few for stable intervals."""
    if config.folds and not config.splits and config.runs % config.folds:
        warn(
            f"runs = {config.runs} is not a whole number of repetitions of {config.folds} folds, so "
            f"{kfold_repetitions(config) * config.folds} runs were trained "
            f"({kfold_repetitions(config)} repetition{'s' * (kfold_repetitions(config) != 1)})",
            RiskminNote,
        )
    message = few_runs(used)
    if message:
        warn(message)


def kfold_repetitions(config: Config) -> int:
    """Repetitions of K-fold cross-validation for `runs`: rounded up, so that at least the runs asked for are
    trained."""
    return max(math.ceil(config.runs / config.folds), 1)


def experiments(
    model,
    data,
    config: Config,
    variants: list,
    callables: Optional[Callables] = None,
    keeper: Optional[Keeper] = None,
    group: int = 0,
    trial: Optional[MeasuredThreads] = None,
    every: Optional[list] = None,
    shared: float = 1.0,
    given=(),
) -> list:
    """One MonteCarlo per variant (what it changes of `config`: nothing, or its stackable settings), all on the same
    splits; their runs train together, in the same stacks, when the vectorized engine can serve. `callables`: the
    user's own loss, optimizer, scheduler or metrics, which each run's `fit` is given (the sequential engine).
    `keeper`: where each stack's or run's rows are kept as they finish (under `group`, a comparison's stack number), and
    where the runs an interrupted experiment kept are read back instead of trained again. `trial`: the thread trial of
    threads="auto" when experiments of the same stacks share one (train_runs). `every`: each run's split, as
    experiment_splits gives them, where the caller drew them (a learning curve's nested sizes); its rows then say no
    split fractions, which would draw other rows. `shared`: the share of a full split's training rows each run trains
    on, which its correction takes (stats.correction_ratio). `given`: the settings a Python caller gave, noted where
    the data's task leaves them unused (said_for_task)."""
    callables = callables or Callables()
    drawn = every is None
    data, config, every = checked_experiment(data, config, callables, every, given)
    reason = engine_reason(model, data, config, callables, len(every) * len(variants))
    start = time.perf_counter()
    rows = trained_rows(model, data, config, variants, every, reason, callables, keeper, group, trial)
    seconds = time.perf_counter() - start
    names = {"data": data_name(data), "model": model_name(model)}
    processes = join(config.device)[1]
    return [
        experiment(
            config.replace(**changes),
            every,
            sorted((row for row in rows if row["variant"] == v), key=lambda row: row["run"]),
            reason,
            seconds,
            processes,
            names,
            drawn,
            shared,
        )
        for v, changes in enumerate(variants)
    ]


def checked_experiment(data, config: Config, callables: Callables, every: Optional[list] = None, given=()) -> tuple:
    """(data, config, every run's split) of an experiment, once every engine's refusals are said: data of a kind it
    takes, settings the data allows (the loss settled for its targets), a batch no training split is too small for;
    then the notes on what the data leaves unused: that batch, and the `given` settings of the other task."""
    check_experiment(config)  # from Python as from the command line
    data = as_data(data, config)
    if not isinstance(data, (Data, Dataset)):
        raise RiskminError(
            f"montecarlo needs data as a name, riskmin.Data, (x, y) or a map-style Dataset, not {type(data).__name__}"
        )
    if config.split == "tutorial":
        raise RiskminError("split tutorial is one fixed split; Monte-Carlo experiments need split random")
    config = with_concrete_loss(config, targets_of(data))
    missing_callables(config, callables)
    if isinstance(data, Data):
        check_log_target(config, data.y, data.target_names)
        check_targets(config.loss, data.y)
    every = every if every is not None else experiment_splits(data, config)
    # patience or plateau without a validation split, or a monitor the task does not measure: refused by every engine
    judged(config, all(len(s.val) for _, _, s in every), tuple(callables.metrics))
    for note in unused_by_experiment(given):  # once the refusals above are past
        warn(note, RiskminNote)
    if isinstance(data, Data):
        config, note = fitted_batch(config, min(len(s.train) for _, _, s in every))
        if note:  # the last of the checks: said once they all passed
            warn(note, RiskminNote)
        said_for_task(config, given, data.task)
        # once for the experiment, whichever engine trains its runs (a run of it says nothing of them)
        trainings = [s.train for _, _, s in every]
        constant = (
            constant_note(data.feature_names, constant_columns(data, trainings)),
            constant_target_note([rows_at(data.y, rows) for rows in trainings], config.loss),
            unequal_targets_note(data.y, data.target_names, config),
        )
        for note in constant:
            if note:
                warn(note)
    unscaled = as_they_are_note(data, config)
    if unscaled:
        warn(unscaled, RiskminNote)
    return data, config, every


def engine_reason(model, data, config: Config, callables: Callables, runs: int) -> str:
    """Why the runs train one by one through `fit` (the sequential engine), or "" when the vectorized engine serves."""
    reason = (
        "asked for" if config.engine == "sequential" else refusal(model, data, config) or user_objects_reason(callables)
    )
    if not reason and config.engine == "auto" and runs == 1:
        # measured by benchmarks/montecarlo.py
        reason = "one run trains faster through fit than as a stack of one"
    if reason and config.engine == "vectorized":
        raise RiskminError(
            f"the vectorized engine cannot run this experiment: {reason}; use --engine sequential or auto (engine=)"
        )
    return reason


def trained_rows(
    model,
    data,
    config: Config,
    variants: list,
    every: list,
    reason: str,
    callables: Callables,
    keeper: Optional[Keeper],
    group: int,
    trial: Optional[MeasuredThreads] = None,
) -> list:
    """Every run's table row: those `keeper` kept before, read back, and the others trained, each kept as its stack or
    its run ends; under torchrun each process trains every processes-th stack or run, and all get every row."""
    rank, processes = join(config.device)
    kept = keeper.open(data, every, rank) and keeper.kept(group) if keeper else {}
    runs = [(v, *run) for v in range(len(variants)) for run in every]
    units = [
        [run for run in unit if run[:2] not in kept]
        for unit in work_units(model, data, config, variants, runs, reason, processes)
    ]
    keep = (lambda rows: keeper.keep(group, rows)) if keeper else (lambda rows: None)
    checkpoints = (lambda v, r: keeper.checkpoints(group, v, r)) if keeper else None
    shown = config if rank == 0 else config.replace(progress=False)
    trained = train_runs(
        model,
        data,
        shown,
        variants,
        [unit for unit in units if unit][rank::processes],
        reason,
        callables,
        keep,
        already=len(kept) if processes == 1 else 0,
        checkpoints=checkpoints,
        trial=trial,
    )
    return gathered(trained) + list(kept.values())


def data_name(data) -> str:
    """The data as a result names it: the data set's name or the file's, else its type."""
    return data.name if isinstance(data, Data) else type(data).__name__


def model_name(model) -> str:
    """The model as a person names it: riskmin's name for it, or the class (or factory) of your own that builds it."""
    if isinstance(model, str):
        return model
    return getattr(model, "__name__", type(model).__name__)  # a class or a function has a name; a module, its class


def experiment(
    config: Config,
    every: list,
    rows: list,
    reason: str,
    seconds: float,
    processes: int,
    names: dict,
    drawn: bool = True,
    shared: float = 1.0,
) -> MonteCarlo:
    """The MonteCarlo of one variant from its table rows: statistics, notes. `drawn`: the splits are the settings' own
    (split, or stratified_split, on each run's seed), not splits the caller gave."""
    table = [{k: v for k, v in row.items() if k != "variant"} for row in rows]
    if drawn and not (config.splits or config.folds):  # with its seed, what `riskmin train` needs to rerun a row
        table = [
            {**row, "split_train": config.train_fraction, "split_val": config.val, "split_test": config.test}
            for row in table
        ]
    sizes = [(len(s.train), len(s.test), len(s.val)) for _, _, s in every]
    n_train, n_test, n_val = (sum(size[i] for size in sizes) / len(sizes) for i in (0, 1, 2))
    summary = summarize(table, n_train, n_test, config.folds or None, n_val=n_val, shared=shared)
    summary.update(
        data=names.get("data"),
        model=names.get("model"),
        runs=len(table),
        engine="sequential" if reason else "vectorized",
        seconds=seconds,
        processes=processes,
        n_train=n_train,
        n_test=n_test,
        n_val=n_val,
    )
    notes = [f"sequential engine: {reason}"] if reason and reason != "asked for" else []
    if notes:
        summary["fallback_reason"] = reason
    # its losses and gap are of log(target), its rmse, mae and r2 in the target's units
    if config.target_transform == "log":
        summary["target_transform"] = "log"
    return MonteCarlo(table, summary, config, notes, dict(names))


def targets_of(data) -> torch.Tensor:
    """The targets that decide the task: a Data's, or a Dataset's first item's (its type alone is read)."""
    return data.y if isinstance(data, Data) else torch.as_tensor(data[0][1])


def threads_trial(config: Config) -> Optional[MeasuredThreads]:
    """The trial of one thread against every core that threads="auto" runs on the CPU; None where there is none."""
    return (
        MeasuredThreads(process_cores())
        if config.threads == "auto" and resolve_device(config.device).type == "cpu"
        else None
    )


def experiment_splits(data, config: Config) -> list:
    """Every run of the experiment as (run number, what its row says of its split, Splits), from the settings."""
    if config.splits:
        given = read_splits(config.splits, len(data))
        return [
            (r, {"seed": config.seed + r}, Splits(data, train, val, test, config.seed + r))
            for r, (train, val, test) in enumerate(given)
        ]
    # a Dataset's rows are not read
    stratify = config.stratify and isinstance(data, Data) and not data.y.is_floating_point()
    if config.folds:
        folds = kfold_splits(data, config.folds, kfold_repetitions(config), config.val, config.seed, stratify)
        return [
            (r, {"seed": config.seed + r, "repetition": rep, "fold": fold}, s) for r, (rep, fold, s) in enumerate(folds)
        ]
    cut = stratified_split if stratify else split
    return [
        (r, {"seed": config.seed + r}, cut(data, config.train, config.val, config.test, config.seed + r))
        for r in range(config.runs)
    ]


def user_objects_reason(callables: Callables) -> str:
    """Why runs given objects of the user's own train one by one ("" when none were given)."""
    given = [key for key in OBJECT_SETTINGS if getattr(callables, key) is not None]
    given += ["metrics"] if callables.metrics else []
    return f"runs given your own {', '.join(given)} train one by one, through fit" if given else ""


def work_units(model, data, config: Config, variants: list, runs: list, reason: str, processes: int) -> list:
    """`runs` (variant, run, about, Splits) as the units that train and are kept together: the vectorized engine's
    stacks, or each run alone where `fit` trains them one by one (`reason`)."""
    if reason:
        return [[run] for run in runs]
    stacks = stacks_of(
        model, data, config, [(about["seed"], splits, variants[v]) for v, _, about, splits in runs], processes
    )
    return [[runs[position] for position in stack] for stack in stacks]


def train_runs(
    model,
    data: Data,
    config: Config,
    variants: list,
    units: list,
    reason: str,
    callables: Callables,
    keep,
    already: int = 0,
    checkpoints=None,
    trial: Optional[MeasuredThreads] = None,
) -> list:
    """The table rows of the runs in `units` (each a list of (variant, run, about, Splits) that train together), by the
    vectorized engine or, where it cannot serve (`reason`), by `fit` one at a time; `keep(rows)` as each unit ends.
    `already`: runs an interrupted experiment finished before, counted as done by the progress line.
    `checkpoints(v, r)`: the folder a run `fit` trains checkpoints in, and resumes from when an interrupted
    experiment left one there. `trial`: the thread trial of threads="auto" when experiments of the same stacks share
    one (a learning curve's sizes), else this experiment's own."""
    if not units:
        return []
    # auto: each fit picks its own; a stack starts on one thread and keeps it, or every core, as its epochs measure
    device = resolve_device(config.device)
    threads = IntraOpThreads("1" if config.threads == "auto" else config.threads, None, 0, device)
    measured = trial or threads_trial(config)
    table, stopping = [], None
    with (
        ProgressBar(config, total=already + sum(map(len, units)), already=already) as finished,
        contextlib.nullcontext() if reason else threads,
    ):
        for unit in units:
            if reason:  # under torchrun each process trains its own runs alone
                ((v, r, about, splits),) = unit
                folder = checkpoints(v, r) if checkpoints else None
                try:
                    run = fit_alone(
                        model_for(model, about["seed"]),
                        splits,
                        config,
                        checkpoints=folder,
                        resume=folder is not None and bool(Checkpoints(folder).complete()),
                        seed=about["seed"],
                        progress=False,
                        **user_object_arguments(callables),
                        **variants[v],
                    )
                except FinishedThenInterrupted as interrupted:  # the run is done: kept below, then the experiment stops
                    run, stopping = interrupted.run, interrupted
                found = [row_of_run(run)]
                finished(1)
            else:
                found = train_stacked(
                    model,
                    data,
                    config,
                    [(about["seed"], splits, variants[v]) for v, _, about, splits in unit],
                    finished,
                    measured,
                )
            rows = [{"variant": v, "run": r, **about, **row} for (v, r, about, _), row in zip(unit, found)]
            keep(rows)
            if reason and checkpoints:
                shutil.rmtree(checkpoints(v, r), ignore_errors=True)  # the run is kept: its checkpoints are done with
            if stopping is not None:
                raise stopping
            table += rows
    return table


def user_object_arguments(callables: Callables) -> dict:
    """The keyword arguments that give `fit` the user's own objects."""
    given = {
        key: getattr(callables, key)
        for key in ("loss", "optimizer", "scheduler")
        if getattr(callables, key) is not None
    }
    return {**given, **({"metrics": callables.metrics} if callables.metrics else {})}


def row_of_run(run) -> dict:
    """The table row of a run trained by `fit`: the same columns the vectorized engine fills."""
    s = run.summary
    row = {
        "best_epoch": s["best_epoch"],
        "epochs_run": s["epochs_run"],
        "stopped_early": s["stopped_early"],
        "diverged": s["diverged"],
    }
    row.update({k: v for k, v in s.items() if k.split("_", 1)[0] in ("train", "val", "test")})
    if "closed_form_test_loss" in s:
        row["closed_form_test_loss"] = s["closed_form_test_loss"]
    return row


def time_left(elapsed: float, done: int, total: int) -> str:
    """The rest of an experiment's time at the pace of its finished runs, as a progress line ends: nothing once all are.

    >>> time_left(30.0, 10, 40), time_left(30.0, 40, 40), time_left(3.0, 0, 40)
    ('; about 90 s left', '', '')
    """
    if not done or done >= total:
        return ""
    return f"; about {elapsed / done * (total - done):.0f} s left"


def progress_line(text: str) -> None:
    """A line that says which experiment the progress below belongs to: beside the bars, on stderr in a terminal and in
    the cell in a notebook, within 80 columns as every message."""
    from rich.console import Console

    from .._runs._report import message_lines

    Console(stderr=True).print(message_lines(text), highlight=False, markup=False, soft_wrap=True)


class ProgressBar:
    """Runs finished out of all, as `finished(n)` reports them: a rich bar with the time left in a terminal, else a
    line at most every LINE_SECONDS, so that a piped or logged experiment is never silent for long.

    The bar counts finished runs, not epochs: a run that stops early is done, and the time left
    is estimated from the runs that are, which early stopping cannot make look nearer than it is.
    """

    LINE_SECONDS = 10.0

    def __init__(self, config: Config, total: int, already: int = 0):
        self.enabled, self.total, self.done, self.already = config.progress, total, already, already

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console = Console(stderr=True)
        self.bar = None
        self.start = self.said = time.monotonic()
        if console.is_interactive:
            self.bar = Progress(
                TextColumn("runs"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                refresh_per_second=10,
                transient=True,
            )
            self.task = self.bar.add_task("runs", total=self.total, completed=self.already)
            self.bar.start()
        return self.finished

    def finished(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.advance(self.task, n)
            return
        now = time.monotonic()
        if now - self.said >= self.LINE_SECONDS or self.done == self.total:
            self.said = now
            self.console.print(
                f"runs finished: {self.done} of {self.total} after {now - self.start:.0f} s"
                + time_left(now - self.start, self.done - self.already, self.total - self.already),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    def __exit__(self, *exc):
        if self.enabled and self.bar is not None:
            self.bar.stop()
