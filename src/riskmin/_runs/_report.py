"""What a person sees: the header that opens a run, its epoch lines, the end-of-run summary and the plots.

Every line is at most 80 columns wide, so that a run reads the same in any terminal; a narrower terminal's
width, where a console has one, is taken instead.
"""

from __future__ import annotations

import math
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Optional

from ..metrics import base_metric, in_words, metrics_where

WIDTH = 80
VALUE = 10  # characters of a number in an epoch line, at least: %.4g of any float fits, "-1.235e+07" included
# each task's one metric beside the loss: an epoch line shows the first one present
HEADLINE = metrics_where(headline=True)
TASK_METRICS = (*(f"val_{name}" for name in HEADLINE), *HEADLINE)  # validation first, else training
# a regression's errors in the target's own units: the console leads with them
UNITS_FIRST = metrics_where(units="target")
NAME = 11  # the columns a metric's name keeps in a table of numbers, "test loss" and "closed form" whole on a line
LOG_LOSS = "loss (log target)"  # the loss's label where it is measured on log(target) (target_transform log)
# the commands a message gives to type or paste (resume, discard, keep both) and the Python calls: each is kept on one
# line, since a command broken over two would run its first half when pasted
WORD = r"(?:'[^']*'|\S+)"  # a path, quoted where it holds a space (shell_word)
COMMAND = re.compile(rf"(?:riskmin [a-z-]+ --resume|rm -r|mv {WORD}) {WORD}(?: --nproc \d+)?|riskmin\.\w+\([^)]*\)")
UNBROKEN = "\x00"  # stands for a space inside a command while the message is wrapped


def columns() -> int:
    """The columns a message takes: WIDTH, or fewer where the terminal has fewer, measured as rich measures its console
    (COLUMNS, else the terminal's own where the output is one), so that rich does not wrap a line again."""
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return min(WIDTH, max(int(given), 20))
    try:
        if sys.stdout is not None and sys.stdout.isatty():
            return min(WIDTH, max(os.get_terminal_size(sys.stdout.fileno()).columns, 20))
    except (OSError, ValueError, AttributeError):  # a stream without a descriptor
        pass
    return WIDTH


def message_lines(text: str, indent: str = "  ") -> str:
    """A message as the console prints it: wrapped at WIDTH columns (`columns`), the lines after the first indented
    by `indent` so
    that it reads as one message (a footnote's paragraph: none); a word longer than a line (a path) is kept whole, and
    so is a line break, and a command to paste (COMMAND).

    >>> print(message_lines("warning: " + "word " * 20))
    warning: word word word word word word word word word word word word word word
      word word word word word word
    >>> print(message_lines("interrupted after 3 of 10 epochs; continue with: riskmin train --resume runs/lab1-mlp"))
    interrupted after 3 of 10 epochs; continue with:
      riskmin train --resume runs/lab1-mlp
    >>> print(message_lines("interrupted in epoch 3; continue with: riskmin train --resume 'runs/my house prices-mlp'"))
    interrupted in epoch 3; continue with:
      riskmin train --resume 'runs/my house prices-mlp'
    """
    whole = COMMAND.sub(lambda command: command[0].replace(" ", UNBROKEN), text)
    return "\n".join(
        textwrap.fill(line, columns(), subsequent_indent=indent, break_on_hyphens=False, break_long_words=False)
        for line in whole.splitlines()
    ).replace(UNBROKEN, " ")


def header(
    data: str, sizes: dict, model: str, parameters: int, loss: str, optimizer: str, device: str, threads: int = 0
) -> list:
    """The lines that open a training run: what it learns from, what it fits, and how.

    >>> for line in header("lab1", {"train": 800, "val": 100, "test": 100}, "two_layer", 418, "mse", "adam", "cpu", 2):
    ...     print(line)
    data   lab1: 800 train, 100 val, 100 test rows
    model  two_layer, 418 parameters
    train  loss mse, optimizer adam, on cpu with 2 threads
    """
    rows = ", ".join(f"{count:,} {part}" for part, count in sizes.items()) + " rows"
    place = f"on {device} with {threads} thread{'s' if threads != 1 else ''}" if threads else f"on {device}"
    lines = [
        f"data   {data}: {rows}",
        f"model  {model}, {parameters:,} parameters",
        f"train  loss {loss}, optimizer {optimizer}, {place}",
    ]
    return [shortened(line) for line in lines]


def shortened(line: str) -> str:
    """`line` cut to 80 columns, with "..." where it was cut."""
    return line if len(line) <= WIDTH else line[: WIDTH - 3] + "..."


def epoch_columns(metrics: dict, monitor: str = "val_loss") -> list:
    """The metrics an epoch line shows: loss, val loss, the monitored metric, one task metric, lr; those present."""
    task = next((name for name in TASK_METRICS if name in metrics), None)
    wanted = ("loss", "val_loss", monitor, task, "lr")
    return [name for name in dict.fromkeys(wanted) if name is not None and name in metrics]


def epoch_heading(columns: list, epochs: int) -> str:
    """The names above the epoch lines, right-aligned over their values."""
    return f"{'epoch':>{epoch_width(epochs)}}" + "".join(f"  {heading_label(name):>{VALUE}}" for name in columns)


def epoch_line(epoch: int, values: list, columns: list, epochs: int, best: bool = False) -> str:
    """One epoch: its number and the values of `columns`, with `*` when it set a new best; 4 significant digits, and
    no exponent below a million (14790, not 1.479e+04, in a column where 6124 stands).

    >>> epoch_line(7, [0.25, 0.31, 0.875, 0.01], ["loss", "val_loss", "val_accuracy", "lr"], 100, best=True)
    '    7        0.25        0.31         0.875        0.01  *'
    >>> epoch_line(8, [14790.4, 6124.2, 0.5, 0.01], ["loss", "val_loss", "val_r2", "lr"], 100)
    '    8       14790        6124         0.5        0.01'
    """
    numbers = "".join(
        f"  {compact(value, 4):>{max(VALUE, len(heading_label(name)))}}" for value, name in zip(values, columns)
    )
    return f"{epoch:>{epoch_width(epochs)}}" + numbers + ("  *" if best else "")


def heading_label(name: str) -> str:
    return name.replace("_", " ")


def epoch_width(epochs: int) -> int:
    return max(len("epoch"), len(str(epochs)))


def end_summary(summary: dict, directory=None) -> str:
    """The run in one paragraph, wrapped to 80 columns: best epoch, which weights it keeps, why it stopped, test
    metrics.

    >>> print(end_summary({"best_epoch": 12, "epochs_run": 20, "steps": 500, "seconds": 1.5, "restored_best": True,
    ...                    "stop_reason": "", "test_loss": 0.25, "test_mse": 0.25, "test_rmse": 0.5, "test_r2": 0.875},
    ...                   "runs/lab1"))
    best epoch 12 of 20, 500 steps, 1.50 s; the model has the weights of epoch 12
    (restored). test rmse 0.5, r2 0.875.
    run written to runs/lab1
    """
    best, last = summary["best_epoch"], summary["epochs_run"]
    took = f"{summary['steps']} steps, {summary['seconds']:.2f} s"
    if best is None:  # diverged with no finite weights to keep
        sentences = [f"no best epoch in {last} epoch{'s' * (last != 1)}, {took}."]
    else:
        kept = (
            f"the weights of epoch {best} (restored)"
            if summary["restored_best"]
            else f"the final weights, of epoch {last} (not restored)"
        )
        sentences = [f"best epoch {best} of {last}, {took}; the model has {kept}."]
    if summary.get("stop_reason"):
        sentences.append(summary["stop_reason"].rstrip(".") + ".")
    told = (
        [*UNITS_FIRST, *metrics_where(task="regression", headline=True)]
        if summary.get("test_rmse") is not None
        else ["loss", *HEADLINE]
    )
    if summary.get("test_rmse") is not None and summary.get("test_loss") != summary.get("test_mse"):
        told.append("loss")  # a loss other than mse, or of log(target), which the errors above do not say
    test = [
        (loss_label(summary) if name == "loss" else name, summary[f"test_{name}"])
        for name in told
        if summary.get(f"test_{name}") is not None
    ]
    if test:
        sentences.append("test " + ", ".join(f"{name} {value:.6g}" for name, value in test) + ".")
    text = message_lines(" ".join(sentences), indent="")
    return text + (f"\nrun written to {directory}" if directory is not None else "")


def summary_table(summary: dict, console) -> None:
    """The run at a glance: one row per metric, one column per split, then `end_summary` without the directory.

    A metric equal to the loss in every split (mse under the mse loss, log_loss under cross entropy)
    is not given a row of its own: the loss row names it.
    """
    from rich.table import Table

    parts = ("train", "val", "test")
    shown = [part for part in parts if summary.get(f"{part}_loss") is not None]
    metrics = split_metrics(summary, parts)
    metrics = [m for m in UNITS_FIRST if m in metrics] + [m for m in metrics if m not in UNITS_FIRST]
    same = metrics_equal_to_loss(summary, metrics, shown)
    table = Table(title="riskmin run", show_header=True)
    table.add_column("")
    for part in shown:
        table.add_column(part, justify="right")
    for metric in metrics:
        if metric in same:
            continue
        label = (
            f"loss ({same[0].replace('_', ' ')})"
            if metric == "loss" and same
            else loss_label(summary)
            if metric == "loss"
            else metric.replace("_", " ")
        )
        table.add_row(label, *metric_cells(summary, metric, shown))
    if summary.get("closed_form_test_loss") is not None:
        table.add_row(
            "closed-form least squares",
            *(f"{summary['closed_form_test_loss']:.6g}" if part == "test" else "" for part in shown),
        )
    console.print(table)
    # a paragraph within 80 columns as the table, whatever the terminal's width
    console.print(message_lines(end_summary(summary), indent=""), highlight=False, markup=False)


def loss_label(summary: dict) -> str:
    """What the loss is called beside metrics in the target's units: "loss", or LOG_LOSS where it is of log(target)."""
    return LOG_LOSS if summary.get("target_transform") == "log" else "loss"


def split_metrics(summary: dict, parts: tuple) -> list:
    """The metric names (loss, r2, ...) that have a value under some split prefix (train_, val_, test_), in summary
    order."""
    names = []
    for key, value in summary.items():
        prefix, underscore, metric = key.partition("_")
        if underscore and prefix in parts and value is not None:
            names.append(metric)
    return list(dict.fromkeys(names))


def metrics_equal_to_loss(summary: dict, metrics: list, shown: list) -> list:
    """The metrics other than the loss whose value equals the loss in every shown split."""
    return [
        m
        for m in metrics
        if m != "loss" and all(summary.get(f"{part}_{m}") == summary[f"{part}_loss"] for part in shown)
    ]


def metric_cells(summary: dict, metric: str, shown: list) -> list:
    """One table cell per shown split: the metric's value to six significant digits, or - where it has none."""
    cells = []
    for part in shown:
        value = summary.get(f"{part}_{metric}")
        cells.append(f"{value:.6g}" if value is not None else "-")
    return cells


LOG_NOTE = (
    "target_transform log: the losses and the gap are of log(target), as it trained; rmse, mae and r2 compare "
    "exp(prediction) with the target, in its own units."
)
# what `riskmin evaluate` says under the metrics of a run trained on log(target)
EVALUATE_LOG_NOTE = (
    "loss is of log(target), as the run trained; rmse, mae and r2 compare exp(prediction) with the target"
)
# the printed rows; summary.json has all
MONTECARLO_ROWS = ("test_", "train_loss", "val_loss", "gap", "closed_form_test_loss")


def narrow_table(title: str, console):
    """A rich table at most 80 columns wide, ruled under its header only: compare's and curve's tables, which keep
    every number whole at 80 columns."""
    from rich import box
    from rich.table import Table

    return Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, width=min(console.width, 80))


def montecarlo_table(summary: dict, console) -> None:
    """Mean +- standard error, the corrected 95% interval and the naive one, of the test metrics and the losses; a
    footnote names the correction and says which rows it does not apply to."""
    used = len(summary["used_runs"]) if "used_runs" in summary else summary["runs"]
    measured = f"{summary['model']} on {summary['data']}, " if summary.get("model") else ""
    title = (
        f"riskmin Monte-Carlo: {measured}{used} of {summary['runs']} runs ({summary['engine']}), "
        f"{summary['seconds']:.1f} s"
    )
    width = min(console.width, WIDTH)
    rows, columns = montecarlo_rows(summary), ("metric", "mean +- se", "95% corrected", "95% naive")
    table = number_table(title, columns, rows, width)
    # narrower still than rich can fold the numbers into whole: the naive interval is left to the files
    narrow = not whole_at(table, width)
    if narrow:
        table = number_table(title, columns[:3], [row[:3] for row in rows], width)
    if narrow and not whole_at(table, width):  # narrower still (40 columns): the names fold too, between their words
        table = number_table(title, columns[:3], [row[:3] for row in rows], width, named=0)
    console.print(table)
    if summary.get("target_transform") == "log":
        console.print(message_lines(LOG_NOTE, indent=""), highlight=False)
    left_out = " This terminal is too narrow for the naive interval; summary.json holds it." if narrow else ""
    console.print(message_lines(correction_note(summary) + left_out, indent=""), highlight=False)


def number_table(title: str, columns: tuple, rows: list, width: int, named: int = NAME):
    """A rich Table of `rows` of numbers under `columns` (the first a metric's name), `width` wide, as at 80 columns
    however wide the terminal. Each number stays on one line where the numbers leave a name its `named` columns (13:
    the borders and the padding of four columns); else an interval folds after its comma, and in a terminal narrower
    than 80 columns a mean before its se too, so that every number stays whole. `named` 0: a name may fold too."""
    from rich.table import Table

    table = Table(title=title, width=width)
    widths = [max(len(text) for text in (column, *(row[i] for row in rows))) for i, column in enumerate(columns)]
    whole = named + sum(widths[1:]) + 13 <= width
    for column in columns:
        left = column == "metric"
        kept = whole or column == "mean +- se" and width >= WIDTH
        table.add_column(
            column,
            justify="left" if left else "right",
            no_wrap=not left and kept,
            min_width=(named or None) if left else None,
        )
    for row in rows:
        table.add_row(*row)
    return table


def whole_at(table, width: int) -> bool:
    """Whether `table`, drawn `width` columns wide, keeps its right border and every number whole (rich crops a cell it
    cannot fit, with an ellipsis): drawn aside to see, rather than foretold from the numbers' lengths."""
    import io

    from rich.console import Console

    drawn = io.StringIO()
    Console(file=drawn, width=width, color_system=None).print(table)
    lines = [line.rstrip() for line in drawn.getvalue().splitlines()]
    boxed = [line for line in lines if line[:1] in "┏┃┡│└"]
    return all(line[-1:] in "┓┃┩│┘" for line in boxed) and "…" not in drawn.getvalue()


def montecarlo_rows(summary: dict) -> list:
    """(metric, mean +- se, corrected interval, naive interval) of each metric the console shows: a regression's errors
    in the target's units first, test mse left to the files, and test log loss too where it is the loss (cross
    entropy, bce), the same numbers twice."""
    metrics = summary["metrics"]
    order = [*(f"test_{m}" for m in UNITS_FIRST), "test_", "closed_form_test_loss", "val_loss", "train_loss", "gap"]
    twice = {"test_mse", *(["test_log_loss"] if metrics.get("test_log_loss") == metrics.get("test_loss") else [])}
    shown = sorted(
        (name for name in metrics if name.startswith(MONTECARLO_ROWS) and name not in twice),
        key=lambda name: next(i for i, start in enumerate(order) if name.startswith(start)),
    )
    return [
        (name.replace("_", " "), estimate(metrics[name]), interval(metrics[name]), interval(metrics[name], "naive"))
        for name in shown
    ]


def compact(value: float, digits: int = 3, sign: bool = False, zeros: bool = False) -> str:
    """`value` in about `digits` significant digits, and without an exponent below a million: a regression's errors in
    the target's units (2820, not 2.82e+03) stay as narrow as a table at 80 columns needs. With `zeros`, trailing zeros
    stay, so that a standard error of 2.01 reads 2.0 (its two digits), not 2.

    >>> compact(2820.01), compact(-270.4, 2, sign=True), compact(0.01234), compact(1.7e-05, 2), compact(3.2e7)
    ('2820', '-270', '0.0123', '1.7e-05', '3.2e+07')
    >>> compact(2.01, 2, zeros=True), compact(0.5, 2, zeros=True), compact(10.0, 2, zeros=True)
    ('2.0', '0.50', '10')
    """
    text = f"{value:{'+' if sign else ''}{'#' if zeros else ''}.{digits}g}".removesuffix(".")
    return f"{value:{'+' if sign else ''}.0f}" if "e+" in text and abs(value) < 1e6 else text


def estimate(d: dict) -> str:
    """The mean +- its standard error: the corrected one where the metric has it, else the naive one (marked *).

    >>> estimate({"mean": 5.13, "corrected_se": 2.01}), estimate({"mean": 0.25, "naive_se": 0.1})
    ('5.13 +- 2.0', '0.25 +- 0.10*')
    """
    if d.get("mean") is None:
        return "-"
    if d.get("corrected_se") is not None:
        return f"{compact(d['mean'], 4)} +- {compact(d['corrected_se'], 2, zeros=True)}"
    if d.get("naive_se") is not None:
        return f"{compact(d['mean'], 4)} +- {compact(d['naive_se'], 2, zeros=True)}*"
    return compact(d["mean"], 4)


def interval(d: dict, kind: str = "corrected") -> str:
    low, high = d.get(f"{kind}_ci_low"), d.get(f"{kind}_ci_high")
    return f"[{compact(low, 4)}, {compact(high, 4)}]" if low is not None and high is not None else "-"


def log_scale_note(metrics: dict) -> str:
    """The sentence that names the metrics whose intervals lie on the log scale (`ci_scale`), or "" when none do: a
    metric by its name when all its columns do, else the columns that do.

    >>> note = log_scale_note({"test_loss": {"ci_scale": "log"}, "val_loss": {"ci_scale": "log"},
    ...                        "test_rmse": {"ci_scale": "log"}, "val_rmse": {"ci_scale": "linear"}})
    >>> note[:67]
    ' The intervals of the loss and test rmse are taken on the log scale'
    """
    columns: dict = {}
    for name, d in metrics.items():
        if d.get("ci_scale") is not None:
            columns.setdefault(base_metric(name), []).append((name, d["ci_scale"] == "log"))
    named = []
    for metric, scales in columns.items():
        if all(on_log for _, on_log in scales):
            named.append(metric)
        else:
            named += [name for name, on_log in scales if on_log]
    if not named:
        return ""
    words = in_words([name.replace("_", " ") for name in named], "and")
    return (
        f" The intervals of the {words} are taken on the log scale, mean x exp(+-t se/mean): an error's spread "
        "grows with its level."
    )


# said of the val_ metrics where there are some
VAL_FLATTER = " (the val_ ones are those of the epoch each run chose by them, so they flatter)"


def correction_note(summary: dict) -> str:
    """What the corrected interval allows for, named with the ratio it used, where it does not apply, and which
    intervals lie on the log scale."""
    ratio = summary.get("test_train_ratio")
    if len(summary.get("used_runs", (0, 0))) < 2:
        return "No interval: it needs the spread of at least two runs."
    on_log = log_scale_note(summary.get("metrics", {}))
    if ratio is None:
        return (
            "No corrected interval: the split sizes are unknown. The naive one treats the runs as independent "
            f"and is too narrow.{on_log}"
        )
    val = summary.get("val_train_ratio")
    return (
        f"The corrected interval ({summary['correction']}, n_test/n_train = {ratio:.3g}"
        f"{f'; val_ metrics n_val/n_train = {val:.3g}' if val else ''}) allows for the training rows the runs "
        "share: report the test metrics' for how this model, trained on this much data, would do on new data"
        f"{VAL_FLATTER if val else ''}. The naive one "
        f"treats the runs as independent and is too narrow.{on_log} gap: test loss minus train loss, run by run, "
        "how much better the model fits its own training rows than new ones. * train metrics, best epoch and the "
        "gap get no correction (they are not risks on held-out rows): their se is the naive one."
    )


def finite(values) -> list:
    return [v for v in values if v is not None and math.isfinite(v)]


def plot_montecarlo(table: list, path: Optional[Path] = None, summary: Optional[dict] = None):
    """The distribution of the test loss over runs, with its mean and corrected 95% interval marked when the `summary`
    is given, and train against test loss run by run (diverged runs left out): the Figure, titled with the data, the
    model and the runs, saved into `path` when one is given."""
    from matplotlib.figure import Figure

    pairs = [
        (row["train_loss"], row["test_loss"])
        for row in table
        if len(finite([row.get("train_loss"), row.get("test_loss")])) == 2
    ]
    train, test = [p[0] for p in pairs], [p[1] for p in pairs]
    figure = Figure(figsize=(10, 4))
    left, right = figure.subplots(1, 2)
    left.hist(test, bins=min(30, max(5, len(test) // 3)))
    d = (summary or {}).get("metrics", {}).get("test_loss", {})
    if d.get("mean") is not None:
        left.axvline(d["mean"], color="tab:red", label=f"mean {d['mean']:.4g}")
        if d.get("corrected_ci_low") is not None:
            left.axvspan(
                d["corrected_ci_low"],
                d["corrected_ci_high"],
                color="tab:red",
                alpha=0.15,
                label=f"corrected 95% {interval(d)}",  # as the console writes it
            )
        left.legend(fontsize=8)
    if summary and summary.get("model"):
        figure.suptitle(f"{summary['model']} on {summary['data']}, {len(test)} runs")
    left.set_xlabel("test loss")
    left.set_ylabel("runs")
    right.scatter(train, test, s=12)
    if test:
        low, high = min(train + test), max(train + test)
        right.plot([low, high], [low, high], color="gray", linewidth=1, label="test = train")
        right.legend()
    right.set_xlabel("train loss")
    right.set_ylabel("test loss")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100)
    return figure


def plot_curves(history: list, path: Path) -> None:
    """Training and validation loss against epoch, on a log scale when they span a wide range."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    epochs = [row["epoch"] for row in history]
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        values = [row.get(key) for row in history]
        if finite(values):
            axis.plot(epochs, [v if v is not None and math.isfinite(v) else math.nan for v in values], label=label)
    positive = [v for v in finite(row.get(k) for row in history for k in ("loss", "val_loss")) if v > 0]
    if positive and max(positive) / min(positive) > 100:
        axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    if axis.get_legend_handles_labels()[0]:
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
