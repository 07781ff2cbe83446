"""Learning curves: the test risk of a model against the size of its training set, each size a Monte-Carlo experiment.

Empirical risk minimization on n rows has an estimation error that shrinks as n grows; a
curve makes it visible. For each training size, a fraction of the training rows a split would
give, riskmin runs a Monte-Carlo experiment over `runs` random splits (one stack each, as
`montecarlo` trains them) with the validation and test fractions unchanged, so every size is
measured on as many held-out rows; the corrected intervals are those of each experiment.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..config import called_with, Config, ModelName, RiskminError, RiskminNote, check_experiment, said_given, warn
from .._paths import data_label
from ..metrics import METRIC_PREFIXES

# evenly spaced in log n (10^-1 ... 10^0): the estimation error of ERM falls like a power of n, so these show the
# curve's shape; evenly spaced fractions spend most of the rows where the curve is already flat
SIZES = (0.1, 0.18, 0.32, 0.56, 1.0)
# the two curves the console and the picture show: the test risk and the training fit
SHOWN = ("test_loss", "train_loss")
# the table of config.toml that names a curve's models and sizes, after the settings they share, as a comparison's
# config.toml names its candidates in tables of their own: `riskmin curve --config` reads it back
TABLE = "curve"


@dataclass
class Curve:
    """The result of `curve`: for each model and training size, its Monte-Carlo experiment (`results[model][size]`),
    and `table`, one row per model and size with the statistics of every test and train metric."""

    table: list
    results: dict
    config: Config
    notes: list = field(default_factory=list)

    @property
    def data_name(self) -> str:
        """The data as its experiments name it: the data set's name or the file's, else the type of what was given."""
        experiments = [mc for sizes in self.results.values() for mc in sizes.values()]
        return data_label(experiments[0].names if experiments else {}, self.config)

    @property
    def sizes(self) -> list:
        """The training sizes, ascending."""
        return sorted({row["size"] for row in self.table})

    def __repr__(self) -> str:
        parts = []
        for model, rows in by_model(self.table).items():
            first, last = rows[0], rows[-1]
            parts.append(
                f"{model}: test loss {number(first.get('test_loss'))} at n = {first['n_train']:.0f} -> "
                f"{number(last.get('test_loss'))} at n = {last['n_train']:.0f}"
            )
        runs = self.table[0]["runs"] if self.table else 0
        return f"Curve({self.data_name}, {len(self.table)} experiments of {runs} runs; {'; '.join(parts)})"

    def to_pandas(self, table: str = "curve"):
        """curve.csv as a pandas DataFrame, one row per model and size; table="runs": runs.csv, every run with its model
        and size."""
        from ._montecarlo import data_frame

        return data_frame({"curve": self.table, "runs": self.runs()}, table, "Curve")

    def runs(self) -> list:
        """Every run's row, with its model and size first, as runs.csv holds them."""
        return [
            {"model": model, "size": size, **row}
            for model, sizes in self.results.items()
            for size, mc in sizes.items()
            for row in mc.table
        ]

    def plot(self, path=None, overwrite: bool = False):
        """The test loss and the training loss against the training rows, each test mean with its corrected 95%
        interval: a matplotlib Figure, or drawn into `path` (curve.png), which is returned; an existing file is replaced
        only with `overwrite` (see LrFinding.plot)."""
        from .._runs._rundir import save_picture

        figure = plot_curve(self.table)
        return figure if path is None else save_picture(figure, path, overwrite)

    def save(self, directory=None, overwrite: bool = False) -> Path:
        """Write config.toml (the settings, then every model and the sizes: `curve_toml`), curve.csv, runs.csv (every
        run, with its model and size), curve.png and summary.json; an existing `directory` is replaced only with
        `overwrite`, and only once the new files are complete."""
        from .._files import atomic_write, fsync_directory, json_bytes
        from .._runs._rundir import draw, history_csv, run_directory, save_experiment

        runs = self.runs()
        summary = {
            "sizes": self.sizes,
            "models": list(self.results),
            "experiments": [
                {"model": model, "size": size, **mc.summary}
                for model, sizes in self.results.items()
                for size, mc in sizes.items()
            ],
        }

        def write(target: Path) -> None:
            for name, text in (
                ("config.toml", curve_toml(self.config, list(self.results), self.sizes)),
                ("curve.csv", history_csv(self.table)),
                ("runs.csv", history_csv(runs)),
            ):
                atomic_write(target / name, text.encode())
            draw(plot_curve(self.table), target / "curve.png")
            atomic_write(target / "summary.json", json_bytes(summary))  # last: it marks the curve finished
            fsync_directory(target)

        target = (
            Path(directory)
            if directory
            else run_directory(self.config, f"{self.data_name}-curve", python=True, kind="experiment")
        )
        return save_experiment(write, target, overwrite or (directory is None and self.config.overwrite))


def curve(
    model, data, sizes=SIZES, runs: int = 100, config: Optional[Config] = None, directory=None, **settings
) -> Curve:
    """Monte-Carlo experiments of `model` (a name, a module or a factory, or a list of them) on `data` at each training
    size: a fraction of the training rows a split leaves (1.0: all of them). Run r of every size has the validation
    and test rows of the full size's split on seed + r, and the first size x n of its training rows: the sizes are
    told apart by their training rows alone, and a smaller size's rows lie within each larger one's.

    With a `directory`, the curve's files are written there once it is done, as `riskmin curve` writes them
    (`Curve.save`): a link, a file, a folder of your own, a folder inside a run or experiment, or one that holds a
    result is refused before anything trains; a result there is replaced only with `overwrite=True`, once the new one
    is complete, as for `montecarlo` and `compare`. A curve keeps no runs as they finish: it has no `resume`.

    >>> c = curve("linear", "lab1", sizes=(0.5, 1.0), runs=3, epochs=2, progress=False)
    >>> [(row["size"], row["n_train"]) for row in c.table]
    [(0.5, 400.0), (1.0, 800.0)]
    """
    from .._training._prepare import as_data, recorded
    from ._montecarlo import experiment_splits, model_name

    given_config = config is not None  # checked whole, as fit checks a Config passed
    # config.toml names the data given
    config = recorded(called_with("curve", config, {"runs": runs, **settings}, runs=runs, sizes=sizes), data)
    sizes = checked_sizes(sizes)
    if config.folds or config.splits:
        raise RiskminError(
            "a learning curve draws random splits of each training size; leave out --folds and --splits (folds=, "
            "splits=)"
        )
    check_experiment(config)
    if directory is not None:
        check_directory(directory, config.overwrite)
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    said_given(config, settings, models, whole=given_config)
    if models:  # config.toml names the first model, as the command line's does; one of your own as model "custom"
        config = config.replace(model=models[0] if isinstance(models[0], str) else "custom")
    names = [each if isinstance(each, str) else model_name(each) for each in models]
    for each, named in zip(models, names):  # a name riskmin does not know, or a model twice, refused before training
        if isinstance(each, str):
            config.replace(model=each)
        if names.count(named) > 1:
            raise RiskminError(f"model {named} is in the curve twice; give each model once")
    data = as_data(data, config)  # a file read once, not once a size
    full = experiment_splits(data, config)
    given = {size: [(r, about, nested(splits, size)) for r, about, splits in full] for size in sizes}
    check_smallest(sizes[0], len(given[sizes[0]][0][2].train), len(full[0][2].train))
    batches, batch_note = batches_that_fit(config, given)
    results = {}
    for each, named in zip(models, names):
        results[named] = experiments_of(each, named, data, config, given, len(full[0][2].train), batches, settings)
    if batch_note:  # once every experiment passed its checks, as the data's notes are said
        warn(batch_note, RiskminNote)
    table = [row_of(named, size, mc) for named, by_size in results.items() for size, mc in by_size.items()]
    notes = [
        f"{named} at size {size:g}: {note}"
        for named, by_size in results.items()
        for size, mc in by_size.items()
        for note in mc.notes
    ]
    if config.target_transform == "log":  # its test loss is not in the target's units
        from .._runs._report import LOG_NOTE

        notes.append(LOG_NOTE)
    result = Curve(table, results, config, notes)
    if directory is not None:
        result.save(Path(directory), config.overwrite)
    return result


def check_directory(directory, overwrite: bool) -> None:
    """Refuse, before anything trains, a `directory` that `Curve.save` would refuse once the curve is done (the rules of
    `_rundir.save_experiment`): hours of training should not end in a refusal that was known before them."""
    from .._runs._rundir import check_replaceable, left_empty

    target = Path(directory)
    check_replaceable(target, place="directory", asked="overwrite=True", kind="experiment")
    if os.path.lexists(target) and not overwrite and not left_empty(target):
        raise RiskminError(
            f"directory {target} already exists; pass overwrite=True to replace it, or choose another directory"
        )


def curve_toml(config: Config, models: list, sizes: list) -> str:
    """The curve's settings as TOML that `riskmin curve --config` reads back: those its models share (the first
    model's, as `config` holds them), then the table that names every model and the sizes."""
    return f"{config.to_toml()}\n[{TABLE}]\nmodels = {json.dumps(models)}\nsizes = {json.dumps(sizes)}\n"


def recorded_plan(table: dict, source) -> tuple:
    """(models, sizes) that the curve's `table` of the file of settings `source` names, as a list of names and the
    sizes checked: [] and None for what it leaves out."""
    unknown = [key for key in table if key not in ("models", "sizes")]
    if unknown:
        raise RiskminError(
            f"the [{TABLE}] table of {source} names a curve's models and sizes; {', '.join(unknown)} "
            f'{"is" if len(unknown) == 1 else "are"} neither: give models = ["linear", "two_layer"] and '
            "sizes = [0.1, 0.5, 1.0]"
        )
    models = table.get("models", [])
    if not isinstance(models, list) or not all(isinstance(name, str) for name in models):
        raise RiskminError(
            f"models in the [{TABLE}] table of {source} is not a list of model names; give them as "
            'models = ["linear", "two_layer"]'
        )
    ours = [name for name in typing.get_args(ModelName) if name != "custom"]
    own = [name for name in models if name not in ours]
    if own:  # a model of one's own is recorded by its class's name: the command line has no way to build it
        called = ", ".join(name if name in own else repr(name) for name in models)
        raise RiskminError(
            f"models in the [{TABLE}] table of {source} name {own[0]}, not one of riskmin's ({', '.join(ours)}); a "
            f"model of your own, recorded by its name, is trained again from Python: riskmin.curve([{called}], data, "
            "...)"
        )
    return models, checked_sizes(table["sizes"]) if "sizes" in table else None


def experiments_of(
    model, named: str, data, config: Config, given: dict, full_rows: int, batches: dict, settings=()
) -> dict:
    """size -> the Monte-Carlo experiment of `model` (`named` in the progress lines) on the splits `given` for that
    size, ascending, with that size's batch (`batches`); trained from the largest size down. Each is summarized with
    the share of the `full_rows` training rows of a full split its runs train on (stats.correction_ratio).
    `settings`: those a Python caller gave, noted where the data leaves them unused.

    threads="auto" tries one thread against every core once a model, in its largest experiment, whose epochs are the
    longest to time: every size steps the same stacks (runs x a batch of batch_size rows) and keeps the count found
    there; with batch_size 0 a step is the whole training split, smaller at each size, which tries its own.
    """
    from ._montecarlo import experiments, progress_line, warn_about_runs, threads_trial

    sizes = sorted(given)
    sized = config.replace(model=model) if isinstance(model, str) else config
    trial = threads_trial(config)
    by_size = {}
    for size in reversed(sizes):
        at_size = sized.replace(train=size * config.train_fraction, batch_size=batches[size])
        measured = trial if at_size.batch_size or size == sizes[-1] else None
        if config.progress:  # whose runs the progress below counts
            rows = len(given[size][0][2].train)
            progress_line(f"{named} at size {size:g}: {rows:,} training row{'s' * (rows != 1)}")
        # runs on a share of the full split's training rows hold no more in common: the full split's correction
        share = statistics.mean(len(splits.train) for _, _, splits in given[size]) / full_rows
        noted = settings if size == sizes[-1] else ()  # the notes on them, once a model rather than once a size
        by_size[size] = experiments(
            model, data, at_size, [{}], trial=measured, every=given[size], shared=share, given=noted
        )[0]
    # said once a model, for its size with the fewest runs used, rather than once a size
    warn_about_runs(sized, {f"{named} at size {size:g}": mc.summary for size, mc in by_size.items()})
    return {size: by_size[size] for size in sizes}


def nested(splits, size: float):
    """`splits` with the first size x n of its training rows, drawn in random order: the rows of a smaller size lie
    within those of a larger one, and validation and test rows are the same at every size."""
    from ..data import Splits

    kept = max(1, round(size * len(splits.train)))
    return Splits(splits.data, splits.train[:kept], splits.val, splits.test, splits.seed)


def batches_that_fit(config: Config, given: dict) -> tuple:
    """(size -> the batch its training rows hold, the note that says where it is not config's or ""): the default
    batch, larger than a size's training rows, takes them all at that size alone, as a Monte-Carlo experiment of that
    size would (a whole split at every size would train the larger ones in fewer, longer steps than at their own);
    a larger batch set on purpose is refused before anything trains."""
    from .._training._prepare import fitted_batch

    batches, whole = {}, []
    for size in sorted(given):
        rows = min(len(splits.train) for _, _, splits in given[size])
        fitted, note = fitted_batch(config, rows, f"the training split of size {size:g}")
        batches[size] = fitted.batch_size
        if note:
            whole.append((size, rows))
    if not whole:
        return batches, ""
    named = ", ".join(f"{size:g} ({rows} rows)" for size, rows in whole)
    return batches, (
        f"the training split{'s' * (len(whole) > 1)} of size {named} hold{'s' * (len(whole) == 1)} fewer rows than the "
        f"default batch of {config.batch_size}; batch_size 0 is used there: each step takes its whole training split"
    )


def checked_sizes(sizes) -> tuple:
    """The training sizes, ascending: fractions in (0, 1], at least two, each once."""
    try:
        values = sorted(float(size) for size in sizes)
    except (TypeError, ValueError):
        raise RiskminError(
            f"sizes = {given_text(sizes)} are not all numbers; give fractions of the training rows such as 0.1,0.5,1.0"
        ) from None
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice and len(set(values)) >= 2 and all(0 < v <= 1 for v in values):
        raise RiskminError(
            f"sizes = {','.join(f'{v:g}' for v in values)} names {','.join(f'{v:g}' for v in twice)} twice; give "
            "each size once"
        )
    if len(values) < 2 or len(set(values)) != len(values) or not all(0 < v <= 1 for v in values):
        raise RiskminError(
            f"sizes = {','.join(f'{v:g}' for v in values)} is not allowed; give at least two different "
            "fractions of the training rows, each above 0 and at most 1, such as 0.1,0.5,1.0"
        )
    return tuple(values)


def check_smallest(size: float, rows: int, full: int) -> None:
    """Refuse a smallest size that leaves fewer than two training rows of the `full` split's: nothing to learn from."""
    if rows < 2:
        raise RiskminError(
            f"size {size:g} leaves {rows} training row{'s' * (rows != 1)} of {full}, too few to learn from; give "
            f"sizes of at least {2 / full:.2g}"
        )


def given_text(sizes) -> str:
    """The sizes as a user wrote them: 0.1,abc from the command line, the value itself from Python."""
    if isinstance(sizes, (list, tuple)) and all(isinstance(size, str) for size in sizes):
        return ",".join(sizes)
    return repr(sizes)


def row_of(model: str, size: float, mc) -> dict:
    """One row of the curve: the model, the size, the rows and runs it measured, and every test and train metric's mean
    with its corrected se and interval (test: `test_loss_se`, `test_loss_ci_low`, ...) or, where no correction applies
    (train), its naive ones, named so (`train_loss_naive_se`, `train_loss_naive_ci_low`, ...), and the scale of its
    intervals (`test_loss_ci_scale`: log or linear)."""
    s = mc.summary
    row = {"model": model, "size": size, "n_train": s["n_train"], "n_test": s["n_test"], "runs": len(s["used_runs"])}
    for name, d in s["metrics"].items():
        if name.startswith(METRIC_PREFIXES) and not name.startswith("val_"):
            kind, named = ("corrected", name) if d.get("corrected_se") is not None else ("naive", f"{name}_naive")
            row.update(
                {
                    name: d["mean"],
                    f"{named}_se": d[f"{kind}_se"],
                    f"{named}_ci_low": d[f"{kind}_ci_low"],
                    f"{named}_ci_high": d[f"{kind}_ci_high"],
                    f"{name}_ci_scale": d["ci_scale"],
                }
            )
    return row


def by_model(table: list) -> dict:
    models = {}
    for row in table:
        models.setdefault(row["model"], []).append(row)
    return models


def number(value) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def runs_a_size(runs) -> str:
    """How many runs each training size has, as the table and the picture title it.

    >>> runs_a_size(1), runs_a_size(50)
    ('1 run a size', '50 runs a size')
    """
    return f"{runs} run{'s' * (int(runs) != 1)} a size"


def curve_table(curve: Curve, console) -> None:
    """Each model's test loss with its corrected interval, and its training loss, at each training size."""
    from .._runs._report import compact, log_scale_note, message_lines, narrow_table
    from ._compare import column_widths

    table = narrow_table(
        f"riskmin curve: test risk against training rows, {runs_a_size(curve.table[0]['runs'])}", console
    )
    columns = ("model", "size", "n train", "test loss [95% CI]", "train loss")
    rows = [
        (
            row["model"],
            f"{row['size']:g}",
            f"{row['n_train']:.0f}",
            number(row.get("test_loss"))
            + (
                f" [{compact(row['test_loss_ci_low'])}, {compact(row['test_loss_ci_high'])}]"
                if row.get("test_loss_ci_low") is not None
                else ""
            ),
            number(row.get("train_loss")),
        )
        for row in curve.table
    ]
    # between two columns, a space of padding either side and a divider (a space in this box); no edges
    table.show_edge, spacing = False, 3 * (len(columns) - 1)
    # as compare's ranking: where a line cannot hold them, or the names whole, each loss above its interval, then each
    # interval folded after its comma; a model's name folds only where the numbers leave it too little still
    named = max(len(row[0]) for row in rows)
    for fold in ((" [", "\n["), (", ", ",\n")):
        widths = column_widths(columns, rows, table.width - spacing)
        if sum(widths) + spacing > table.width or widths[0] < named:
            rows = [(*first, loss.replace(*fold), train) for *first, loss, train in rows]
    for column, width in zip(columns, column_widths(columns, rows, table.width - spacing)):
        left = column == "model"
        table.add_column(column, justify="left" if left else "right", no_wrap=not left, overflow="fold", width=width)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    scales = (
        {"test_loss": {"ci_scale": "log"}} if any(row.get("test_loss_ci_scale") == "log" for row in curve.table) else {}
    )
    ratio = next((mc.summary["test_train_ratio"] for sizes in curve.results.values() for mc in sizes.values()), None)
    console.print(  # within 80 columns as the table, whatever the terminal's width
        message_lines(
            "CI: the corrected 95% interval of each experiment (its splits share training rows; every size is "
            f"corrected with the full split's n_test/n_train{f' = {ratio:.3g}' if ratio else ''}, as its runs share no "
            "more rows than the full split's do). Every size trains the same epochs, so a smaller one takes fewer "
            "steps: where its runs stopped short of converging (its training loss above a larger size's), its risk "
            "counts that too; more epochs, with --patience, leave the data's share alone."
            f"{log_scale_note(scales)}",
            indent="",
        ),
        highlight=False,
    )


def plot_curve(table: list):
    """The test loss (with its corrected interval, shaded) and the training loss against the training rows, per
    model."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    axis = figure.subplots()
    for index, (model, rows) in enumerate(by_model(table).items()):
        colour = f"C{index}"
        n = [row["n_train"] for row in rows]
        axis.plot(n, [row.get("test_loss", math.nan) for row in rows], color=colour, marker="o", label=f"{model} test")
        low, high = ([row.get(f"test_loss_ci_{end}") for row in rows] for end in ("low", "high"))
        if all(v is not None for v in low + high):
            axis.fill_between(n, low, high, color=colour, alpha=0.2)
        axis.plot(
            n, [row.get("train_loss", math.nan) for row in rows], color=colour, linestyle="--", label=f"{model} train"
        )
    rows_drawn = [row["n_train"] for row in table]
    if max(rows_drawn) >= 10 * min(rows_drawn):  # sizes a decade or more apart, as the default 0.1 to 1: evenly spread
        axis.set_xscale("log")
    axis.set_xlabel("training rows")
    axis.set_ylabel("loss")
    axis.set_title(f"learning curve, {runs_a_size(table[0]['runs'])}; shaded: corrected 95% interval")
    axis.legend()
    figure.tight_layout()
    return figure
