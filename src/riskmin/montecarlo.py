"""Monte-Carlo experiments: the same settings trained on many random splits, with statistics over runs.

Run r uses seed `seed + r` for its split, its initialization and its batch order, so it
does exactly what `riskmin train --seed <seed + r>` does. Two engines give the same numbers:
vectorized (vectorized.py: the R runs stacked and trained as one model) and sequential
(`fit` R times, for what the vectorized engine cannot batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import torch
from torch import nn

from .config import Config, RiskminError
from .data import Data, split
from .distributed import gathered, join
from .losses import check_targets, settled
from .loop import fit
from .prepare import as_data, resolve_device
from .stats import summarize
from .threads import intra_op_threads
from .vectorized import model_for, refusal, vectorized


@dataclass
class MonteCarlo:
    """The result of `montecarlo`: one row per run and statistics over the runs."""

    table: list
    summary: dict
    config: Config
    notes: list = field(default_factory=list)

    def save(self, directory=None):
        """Write runs/<name>/ with config.toml, runs.csv, summary.json and montecarlo.png."""
        from .rundir import save_montecarlo

        return save_montecarlo(self, directory)


def montecarlo(model: Union[str, Callable[[], nn.Module]], data, runs: int = 100, config: Optional[Config] = None, **settings) -> MonteCarlo:
    """Train `model` on `runs` random splits of `data` and report the mean, spread and 95% CI of each metric.

    `model` is a built-in name or a callable that returns a fresh nn.Module.

    >>> mc = montecarlo("linear", "lab1", runs=3, epochs=2, progress=False)
    >>> [row["seed"] for row in mc.table], mc.summary["engine"]
    ([0, 1, 2], 'vectorized')
    """
    if isinstance(model, str):
        settings = {"model": model, **settings}
    config = (config or Config()).replace(runs=runs, **settings)
    data = as_data(data, config)
    if not isinstance(data, Data):
        raise RiskminError(f"montecarlo needs in-memory data (a name, riskmin.Data or (x, y)), not {type(data).__name__}")
    if config.split == "tutorial":
        raise RiskminError("split tutorial is one fixed split; Monte-Carlo experiments need split random")
    config = settled(config, data.y)
    check_targets(config.loss, data.y)
    seeds = [config.seed + r for r in range(config.runs)]
    reason = "asked for" if config.engine == "sequential" else refusal(model, data, config)
    if reason and config.engine == "vectorized":
        raise RiskminError(f"the vectorized engine cannot run this experiment: {reason}; use --engine sequential or auto")
    start = time.perf_counter()
    rank, processes = join(config.device)  # under torchrun, each process trains every processes-th seed
    mine = seeds[rank::processes]
    shown = config if rank == 0 else config.replace(progress=False)
    threads = str(torch.get_num_threads()) if config.threads == "auto" else config.threads
    runs = [(seed, split(data, config.train, config.val, config.test, seed)) for seed in mine]
    with progress_bar(shown, total=len(mine)) as finished, intra_op_threads(threads, None, 0, resolve_device(config.device)):
        if reason:
            table = []
            for seed, splits in runs:
                table.append(row_of_run(seed, fit(model_for(model, seed), splits, config, seed=seed, progress=False)))
                finished(1)
        else:
            table = vectorized(model, data, config, runs, finished) if runs else []
    table = sorted(gathered(table), key=lambda row: row["seed"])
    fractions = {"split_train": config.train_fraction, "split_val": config.val, "split_test": config.test}  # with seed: enough to rerun a row
    table = [{"run": r, **row, **fractions} for r, row in enumerate(table)]
    summary = summarize(table)
    summary.update(runs=config.runs, engine="sequential" if reason else "vectorized", seconds=time.perf_counter() - start, processes=processes)
    notes = [f"sequential engine: {reason}"] if reason and reason != "asked for" else []
    if notes:
        summary["fallback_reason"] = reason
    return MonteCarlo(table, summary, config, notes)


def row_of_run(seed: int, run) -> dict:
    """The table row of a run trained by `fit`: the same columns the vectorized engine fills."""
    s = run.summary
    row = {"seed": seed, "best_epoch": s["best_epoch"], "epochs_run": s["epochs_run"], "stopped_early": s["stopped_early"],
           "diverged": s["diverged"]}
    row.update({k: v for k, v in s.items() if k.split("_", 1)[0] in ("train", "val", "test")})
    if "closed_form_test_loss" in s:
        row["closed_form_test_loss"] = s["closed_form_test_loss"]
    return row


class progress_bar:
    """A rich progress bar over run-epochs; `advance(n)` moves it, refreshed at most ten times a second."""

    def __init__(self, config: Config, total: int):
        self.enabled, self.total = config.progress, total

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), refresh_per_second=10, transient=True)
        task = self.bar.add_task("runs", total=self.total)
        self.bar.start()
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
