"""The rules that judge a run, and the one judge that combines them for every engine.

The rules are pure: is this the best value so far, is it time to stop, has it diverged. Each
works on one value (a float: one run) and, element by element, on an array of one value per run.
Arrays are NumPy's: a verdict is a few dozen operations on a handful of numbers, each of which NumPy does
several times faster than torch does on tensors that small.
`Judge` combines them for R runs at once (R = 1 for `fit`): whether there is anything to judge
by, the best value, epoch and step, the patience counter, divergence and its reason, which runs
get their best weights back, and the fields of a run's summary. `fit` and the stacked engine
both call it once per validation, so they cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from . import models
from .config import Config, DefaultMonitor, RiskminError, no_validation

__all__ = ["Best", "EarlyStopChecker", "Judge", "Verdict", "diverged"]


def where(condition, yes, no):
    """`yes` where `condition` holds, else `no`: for a bool and for an array of bools alike."""
    if isinstance(condition, np.ndarray):
        return np.where(condition, yes, no)
    return yes if condition else no


class Best:
    """Decides whether a value beats the best so far by more than `min_delta`: an absolute change, or with
    `threshold_mode` "rel" that fraction of the best value's size (skorch's and ReduceLROnPlateau's threshold_mode,
    measured on |best| so that it asks for progress whatever the sign). NaN never beats the best; the first value does.

    >>> rule = Best("min"); [rule.update(v) for v in [0.4, 0.3, 0.3, 0.5]]
    [True, True, False, False]
    >>> rule = Best("min", runs=2); first = rule.update(np.array([0.4, 0.2]))
    >>> rule.update(np.array([0.3, 0.3])).tolist()
    [True, False]
    >>> rule = Best("min", min_delta=0.1, threshold_mode="rel"); [rule.update(v) for v in [10.0, 9.5, 8.9]]
    [True, False, True]
    """

    def __init__(
        self, mode: str = "min", min_delta: float = 0.0, runs: Optional[int] = None, threshold_mode: str = "abs"
    ):
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta, self.relative = min_delta, threshold_mode == "rel"
        self.value = self.sign * math.inf if runs is None else np.full(runs, self.sign * math.inf)

    def update(self, value):
        # false for NaN, and no infinity minus infinity
        improved = self.sign * value < self.sign * self.value - self.margin()
        self.value = where(improved, value, self.value)
        return improved

    def margin(self):
        """How much a value must beat the best by: min_delta, or that fraction of the best's size; none before a
        best."""
        if not self.relative:
            return self.min_delta
        if isinstance(self.value, np.ndarray):
            return self.min_delta * np.where(np.isfinite(self.value), np.abs(self.value), 0.0)
        return self.min_delta * abs(self.value) if math.isfinite(self.value) else 0.0


class EarlyStopChecker:
    """Says stop once `patience` values in a row have not improved on the best.

    >>> check = EarlyStopChecker(patience=2); [check.update(v) for v in [0.4, 0.3, 0.35, 0.31]]
    [False, False, False, True]
    """

    def __init__(
        self,
        patience: int,
        mode: str = "min",
        min_delta: float = 0.0,
        runs: Optional[int] = None,
        threshold_mode: str = "abs",
    ):
        self.patience = patience
        self.best = Best(mode, min_delta, runs, threshold_mode)
        self.bad = 0 if runs is None else np.zeros(runs, dtype=np.int64)

    def update(self, value):
        return self.count(self.best.update(value))

    def count(self, improved, judged=True):
        """Whether to stop, given whether the latest value `improved` on the best; where `judged` is False (a run with
        no
        value this time, per run for a tensor) the count stays."""
        self.bad = where(improved, 0, self.bad + judged)
        return self.bad >= self.patience


def diverged(loss):
    """Whether a training loss is NaN or infinite: for a float, or per run for an array."""
    if isinstance(loss, np.ndarray):
        return ~np.isfinite(loss)
    return not math.isfinite(loss)


NOT_METRICS = ("epoch", "step", "lr", "seconds")  # columns of a validation's row that no monitor may name


def monitored(metrics: dict, key: str) -> float:
    """The value of the monitored metric `key`; one sentence listing the metrics when a validation reports no such
    one."""
    if key not in metrics or key in NOT_METRICS:
        named = sorted(k for k in metrics if k not in NOT_METRICS)
        raise RiskminError(f"monitor '{key}' is not a reported metric; the metrics are {', '.join(named)}")
    return metrics[key]


def check_monitor(config: Config, has_val: bool, own_metrics=()) -> None:
    """Refuse before the first step, in the words of the first validation, a monitor that names a metric riskmin
    measures for the other task (val_accuracy of a regression, val_r2 of a classification), or a name no row holds
    (neither loss nor val_...), so that the mistake is the one line said, before any line of the run. `own_metrics`:
    the names of the user's metrics, which rows hold too. A validation metric under a loss of one's own, whose task
    riskmin does not know, is left to its first validation.

    >>> check_monitor(Config(loss="mse", monitor="val_accuracy"), True)
    Traceback (most recent call last):
    riskmin.config.RiskminError: monitor 'val_accuracy' is not a reported metric; the metrics are loss, val_loss, \
val_mae, val_mse, val_r2, val_rmse
    """
    from .metrics import METRICS, measured, task_of_loss

    known = config.loss not in ("auto", "custom") and has_val
    names = ["loss", *(f"val_{name}" for name in (*measured(task_of_loss(config.loss)), *own_metrics))] if known else []
    if config.monitor != "loss" and not config.monitor.startswith("val_"):  # no row holds any other: any task
        monitored(dict.fromkeys(names or ["loss (the training loss)", "val_ with a validation metric"]), config.monitor)
    if known and config.monitor.removeprefix("val_") in METRICS:
        monitored(dict.fromkeys(names), config.monitor)


def judged(config: Config, has_val: bool, own_metrics=()) -> bool:
    """Whether runs under `config` have anything to judge by: a validation split, or a monitor that is not a validation
    metric. Patience, a plateau schedule or a validation metric given as the monitor (val_loss too; the default
    alone, DefaultMonitor, then judges nothing) without one is refused in one sentence, whichever engine would train;
    so is a monitor the task does not measure (check_monitor; `own_metrics`: the names of the user's metrics).

    >>> (judged(Config(), True), judged(Config(val=0.0), False),
    ...  judged(Config(val=0.0, monitor="loss", patience=3), False))
    (True, False, True)
    """
    check_monitor(config, has_val, own_metrics)
    if has_val or not config.monitor.startswith("val_"):
        return True
    needs = None
    if config.patience:
        needs = "patience"
    elif config.scheduler == "plateau":
        needs = "scheduler plateau"
    elif not isinstance(config.monitor, DefaultMonitor):  # given, val_loss too: the default alone judges nothing here
        needs = f"monitor {config.monitor}"
    if needs:
        raise RiskminError(no_validation(needs, config.splits))
    return False


def reports_closed_form(config: Config, model, has_test_rows: bool) -> bool:
    """Whether a run's summary and its Monte-Carlo row carry `closed_form_test_loss`, the test mse of the least-squares
    solution on the same training rows: for riskmin's linear model under mse, when it has test rows held in memory.

    >>> (reports_closed_form(Config(loss="mse"), models.Linear(3, 1), True),
    ...  reports_closed_form(Config(loss="mse"), models.Linear(3, 1), False))
    (True, False)
    """
    return config.loss == "mse" and isinstance(model, models.Linear) and has_test_rows


@dataclass
class Verdict:
    """What one validation decided for the runs judged (arrays over those runs): whether each improved on its best,
    left by early stopping, or diverged."""

    improved: np.ndarray
    early: np.ndarray
    diverged: np.ndarray

    @property
    def leaving(self) -> np.ndarray:
        return self.early | self.diverged


class Judge:
    """The verdict on R runs at each validation (R = 1 for `fit`), and what follows from the verdicts: each run's best
    epoch and step, whether it stopped early or diverged, whether its best weights come back, its summary fields.

    >>> judge = Judge(Config(patience=2), runs=1, tracked=True)
    >>> [bool(judge.judge(epoch, 10 * epoch, loss=1.0, value=v).leaving)
    ...  for epoch, v in enumerate([0.4, 0.3, 0.35, 0.31], 1)]
    [False, False, False, True]
    >>> judge.fields(0)["best_epoch"], judge.fields(0)["stopped_early"]
    (2, True)
    """

    def __init__(self, config: Config, runs: int, tracked: bool):
        self.config, self.tracked, self.runs, self.everyone = config, tracked, runs, np.arange(runs)
        self.checker = EarlyStopChecker(
            max(config.patience, 1), config.goal, config.min_delta, runs, config.threshold_mode
        )
        self.best_epoch, self.best_step, self.epochs_run, self.steps = (
            np.zeros(runs, dtype=np.int64) for _ in range(4)
        )
        self.stopped, self.diverged = np.zeros(runs, dtype=bool), np.zeros(runs, dtype=bool)
        self.reasons = [""] * runs

    def judge(self, epoch: int, step: int, loss, value=None, runs=None) -> Verdict:
        """Judge the runs `runs` (indices; all by default) after `epoch` and `step`, given their training `loss` and the
        monitored `value` (None when they are not tracked); losses and values are numbers or arrays over those runs."""
        runs = self.everyone if runs is None else np.asarray(runs)
        loss = np.asarray(loss, dtype=np.float64).reshape(-1)
        self.epochs_run[runs], self.steps[runs] = epoch, step
        bad = diverged(loss)
        if bad.any():
            self.diverged[runs] |= bad
            for r, lost in zip(runs[bad].tolist(), loss[bad].tolist()):
                self.reasons[r] = divergence_reason(lost, epoch, step, kept=bool(self.best_epoch[r] > 0))
        none = np.zeros_like(bad)
        if not self.tracked or value is None:
            return Verdict(none, none, bad)
        full = np.full(self.runs, math.nan)  # NaN never improves: no verdict for runs not judged
        full[runs] = np.where(bad, math.nan, np.asarray(value, dtype=np.float64).reshape(-1))
        improved = self.checker.best.update(full)
        out = self.checker.count(improved, ~np.isnan(full))[runs]
        improved = improved[runs]
        self.best_epoch[runs[improved]], self.best_step[runs[improved]] = epoch, step
        early = out & ~bad if self.config.patience else none
        if early.any():
            self.stopped[runs] |= early
            for r in runs[early].tolist():
                self.reasons[r] = (
                    f"early stop: {self.config.monitor} did not improve for {self.config.patience} validations"
                )
        return Verdict(improved, early, bad)

    def ended(self, run: int, epoch: int, step: int, stopped_by: str = "") -> None:
        """Where `run` ended, whether a validation came there or not; `stopped_by`: the reason of a stop that a callback
        of the user's own asked for (fit's `state.should_stop`), counted as stopping early."""
        self.epochs_run[run], self.steps[run] = epoch, step
        if stopped_by and not self.diverged[run]:
            self.stopped[run] = True
            self.reasons[run] = self.reasons[run] or stopped_by

    def restored(self) -> np.ndarray:
        """Which runs end with their best weights: those asked to (restore_best) or that diverged, where they have
        any."""
        return (self.config.restore_best | self.diverged) & (self.best_epoch > 0)

    def fields(self, run: int) -> dict:
        """The fields of a run's summary and of its row of a Monte-Carlo table that the verdicts decide."""
        # no finite weights came before the divergence: no best epoch
        if self.diverged[run] and not self.best_epoch[run]:
            best_epoch = best_step = None
        elif self.tracked and self.best_epoch[run]:
            best_epoch, best_step = int(self.best_epoch[run]), int(self.best_step[run])
        else:
            best_epoch, best_step = int(self.epochs_run[run]), int(self.steps[run])
        return {
            "best_epoch": best_epoch,
            "best_step": best_step,
            "epochs_run": int(self.epochs_run[run]),
            "steps": int(self.steps[run]),
            "stopped_early": bool(self.stopped[run]),
            "diverged": bool(self.diverged[run]),
            "stop_reason": self.reasons[run],
            "restored_best": bool(self.restored()[run]),
        }

    def state_dict(self) -> tuple:
        """(structure for JSON, tensors for safetensors): what a checkpoint needs to continue judging exactly."""
        # each an array over the runs: a Judge makes its Best and EarlyStopChecker for `runs`, never for one value
        arrays: dict = {
            "best_value": self.checker.best.value,
            "bad": self.checker.bad,
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
            "epochs_run": self.epochs_run,
            "steps": self.steps,
            "stopped": self.stopped,
            "diverged": self.diverged,
        }
        return {"reasons": self.reasons}, {name: torch.from_numpy(array.copy()) for name, array in arrays.items()}

    def load_state_dict(self, values: dict, tensors: dict) -> None:
        self.checker.best.value, self.checker.bad = tensors["best_value"].numpy().copy(), tensors["bad"].numpy().copy()
        self.best_epoch, self.best_step, self.epochs_run, self.steps, self.stopped, self.diverged = (
            tensors[k].numpy().copy() for k in ("best_epoch", "best_step", "epochs_run", "steps", "stopped", "diverged")
        )
        self.reasons = list(values["reasons"])


def divergence_reason(loss: float, epoch: int, step: int, kept: bool = True) -> str:
    """Why a run stopped, and what to do; `kept`: whether it has finite weights from before to fall back on."""
    return (
        f"the training loss became {loss} in epoch {epoch} by step {step}; lower the learning rate or clip "
        "gradients with --clip-grad 1.0 (clip_grad=1.0); "
        + ("the best weights so far are kept" if kept else "no finite weights came before it: the run keeps no model")
    )


# an r2 below this is further from the targets than twice the spread of predicting their mean
WORSE_THAN_THE_MEAN = -1.0
FEW_ROWS = 10  # an r2 on fewer rows than this swings far on one row: it says little about the model


def worse_than_the_mean(metrics: dict) -> str:
    """A warning when the final validation or test r2 is far below 0, what predicting the training mean scores; else "".
    Measured on few rows (`n_val`, `n_test` in `metrics`), it says so rather than that the model did not learn.

    >>> worse_than_the_mean({"val_r2": 0.8, "test_r2": 0.7}), worse_than_the_mean({"test_r2": -3.0})[:40]
    ('', 'the final test r2 is -3, far worse than ')
    >>> worse_than_the_mean({"test_r2": -3.0, "n_test": 2})[-83:]
    'rows, too few for r2 to say much: give it more rows (a larger --test, or more data)'
    """
    bad = {
        part: metrics[f"{part}_r2"]
        for part in ("val", "test")
        if isinstance(metrics.get(f"{part}_r2"), float) and metrics[f"{part}_r2"] < WORSE_THAN_THE_MEAN
    }
    if not bad:
        return ""
    said = " and ".join(f"{part} r2 is {value:.3g}" for part, value in bad.items())
    few = {part: metrics[f"n_{part}"] for part in bad if 0 < (metrics.get(f"n_{part}") or FEW_ROWS) < FEW_ROWS}
    if few:
        rows = " and ".join(f"{count} {part}" for part, count in few.items())
        flags = " and ".join(f"--{part}" for part in few)
        return (
            f"the final {said}, far worse than predicting the training mean (r2 about 0), on only {rows} rows, "
            f"too few for r2 to say much: give it more rows (a larger {flags}, or more data)"
        )
    return (
        f"the final {said}, far worse than predicting the training mean (r2 about 0); the model did not "
        "learn: lower --lr (lr=), rescale the target or train longer"
    )
