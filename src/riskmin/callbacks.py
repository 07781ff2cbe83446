"""Callbacks: small objects the loop calls by event name, and the pure rules they apply.

A callback is any object with some of these methods, each taking the loop's `State`:

    on_fit_start         before the first step (the model is on its device)
    on_batch_end         after every batch's backward pass; with accumulate N, N of them make a step
                         (`state.accumulated` counts the batches of the group so far)
    on_step_end          after every optimizer step (keep it cheap: no host sync)
    on_validation_end    after each validation; `state.metrics` holds the new row and `state.improved` says
                         whether the judge (policy.Judge) found it the best so far
    on_epoch_end         after each epoch
    on_fit_end           after training, before the best weights are restored

Methods that are absent are skipped. A callback stops training by setting
`state.should_stop = True`; it never raises through the loop.
"""

from __future__ import annotations

import csv
import math
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import torch

from .config import RiskminError
from .policy import Best, EarlyStopChecker, monitored  # noqa: F401  the rules, importable from here as before

if TYPE_CHECKING:
    from rich.progress import Progress as Bar  # rich loads when a bar is drawn

    from .distributed import Alone, Team

__all__ = ["Best", "BestModel", "CsvLog", "EarlyStopChecker", "Progress", "SignalAt", "State", "TensorBoard"]

EVENTS = ("on_fit_start", "on_batch_end", "on_step_end", "on_validation_end", "on_epoch_end", "on_fit_end")


@dataclass
class State:
    """What the loop knows at an event: the model, where it is, and the latest metrics; the optimizer, and `lr`, the
    learning rate in force, to read (a schedule of one's own is `scheduler=`, not a callback that sets the rate)."""

    model: torch.nn.Module
    epochs: int
    steps_per_epoch: int
    epoch: int = 0
    step: int = 0
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    should_stop: bool = False
    stop_reason: str = ""
    interrupted: bool = False  # set by SIGINT/SIGTERM when checkpointing: finish the step, save, leave
    diverged: bool = False  # the training loss became NaN or infinite
    improved: bool = False  # whether the latest validation was the best so far, as the judge decided
    # the loss of the step just taken, on the device (reading it waits for the device)
    loss: Optional[torch.Tensor] = None
    epoch_step: int = 0  # batches taken in the current epoch (its steps, unless gradients accumulate)
    accumulated: int = 0  # batches whose gradients add up towards the next step (0 right after a step)
    optimizer: Optional[torch.optim.Optimizer] = None
    # the processes training this model together: team.add(tensor) sums a tensor over them, in place
    team: Union[Alone, Team, None] = None

    @property
    def lr(self) -> Optional[float]:
        """The learning rate of the optimizer's first parameter group, now."""
        return None if self.optimizer is None else self.optimizer.param_groups[0]["lr"]


class BestModel:
    """Keeps a copy of the weights at each validation the judge found the best so far (`state.improved`), to restore at
    the end. Which validation is best is the judge's decision (policy.Judge), not this callback's."""

    def __init__(self):
        self.weights: Optional[dict] = None
        self.epoch, self.step, self.metrics = 0, 0, {}

    def on_validation_end(self, state: State):
        if state.improved:
            # the model's tensors as they are now: a module may assign a buffer anew (self.mean = 0.9 * self.mean ...)
            # rather than change it in place, so they are looked up at each copy, not paired with the copies once
            current = {k: v.detach() for k, v in state.model.state_dict(keep_vars=True).items()}
            if self.weights is None or not all(alike(self.weights.get(k), v) for k, v in current.items()):
                self.weights = {k: v.clone() for k, v in current.items()}
            else:  # copied into the tensors of the last copy: no allocation on the validations that improve
                for k, v in current.items():
                    self.weights[k].copy_(v)
            self.epoch, self.step, self.metrics = state.epoch, state.step, dict(state.metrics)

    def state_dict(self) -> tuple:
        """(structure for JSON, tensors for safetensors): what a checkpoint needs to continue exactly."""
        return {"epoch": self.epoch, "step": self.step, "metrics": self.metrics}, dict(self.weights or {})

    def load_state_dict(self, values: dict, tensors: dict) -> None:
        self.epoch, self.step, self.metrics = values["epoch"], values["step"], values["metrics"]
        self.weights = dict(tensors) or None

    def restore(self, model: torch.nn.Module) -> bool:
        if self.weights is None:
            return False
        model.load_state_dict(self.weights)
        return True


def alike(copy: Optional[torch.Tensor], value: torch.Tensor) -> bool:
    """Whether `value` can be copied into `copy` as it is: same shape, dtype and device."""
    return copy is not None and (copy.shape, copy.dtype, copy.device) == (value.shape, value.dtype, value.device)


class Progress:
    """A rich progress bar over steps, and about 20 aligned epoch lines, drawn at most ten times a second.

        epoch        loss    val loss      val r2          lr
            1       1.234       1.105      0.1234        0.01  *

    A line shows loss, val loss, the monitored metric, one task metric (r2 or accuracy) and lr,
    and ends with `*` when its validation set a new best. Lines are queued and written with the
    next redraw, all at once: a line costs its formatting, not a redraw of the bar. The bar is
    transient: `close()` (idempotent, safe in a `finally`) writes what is queued and removes the
    bar, so that nothing frozen is left where the next output lands, Ctrl-C included.
    """

    def __init__(self, console=None, print_every: int = 0, monitor: str = "val_loss", header: Sequence = ()):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.print_every, self.monitor, self.header = print_every, monitor, list(header)
        self.improved = False
        self.bar: Optional[Bar] = None  # from on_fit_start to close
        self.last = 0.0
        self.lines = []
        self.columns: Optional[list] = None  # the metric names a line shows, chosen from the first row that has metrics

    def on_fit_start(self, state: State):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

        resumed = (
            [f"resume from step {state.step:,}, in epoch {state.epoch + 1} of {state.epochs}"] if state.step else []
        )
        for line in self.header + resumed:  # a resumed run has taken its steps before this call
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)
        self.every = self.print_every or max(1, math.ceil(state.epochs / 20))
        self.bar = Bar(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
            transient=True,
            # into a file, a pipe or a notebook: the epoch lines alone. In a file rich would end a bar with a
            # blank line; in a notebook it draws one only through ipywidgets (else it warns, cell after cell)
            # and leaves an empty output, or a closed widget, where the bar was.
            disable=not self.console.is_interactive,
        )
        self.task = self.bar.add_task("train", total=state.epochs * state.steps_per_epoch, epoch=0)
        self.bar.start()

    def on_step_end(self, state: State):
        now = time.monotonic()
        if now - self.last >= 0.1:
            self.last = now
            self.draw(state)

    def draw(self, state: State):
        self.write()
        if self.bar is not None:
            self.bar.update(self.task, completed=state.step, epoch=state.epoch)
            self.bar.refresh()

    def write(self):
        if self.lines:
            self.console.print("\n".join(self.lines), highlight=False, markup=False, soft_wrap=True)
            self.lines = []

    def on_validation_end(self, state: State):
        self.improved = state.improved

    def on_epoch_end(self, state: State):
        if state.metrics and (
            state.epoch % self.every == 0 or state.epoch == 1 or state.should_stop or state.epoch == state.epochs
        ):
            from ._runs._report import epoch_columns, epoch_heading, epoch_line

            if self.columns is None:
                self.columns = epoch_columns(state.metrics, self.monitor)
                self.lines.append(epoch_heading(self.columns, state.epochs))
            values = [state.metrics.get(name, math.nan) for name in self.columns]
            self.lines.append(epoch_line(state.epoch, values, self.columns, state.epochs, best=self.improved))

    def on_fit_end(self, state: State):
        if self.bar is not None:
            self.draw(state)
        self.close()

    def close(self):
        """Write the queued lines and take the bar off the screen; does nothing the second time."""
        if self.bar is not None:
            bar, self.bar = self.bar, None
            self.write()
            bar.stop()


class CsvLog:
    """metrics.csv in a run's directory, a row written and flushed at each validation, so that `tail -f` or a plotting
    notebook sees a run while it trains. It starts by writing the rows the run already has (those of the checkpoint a
    resumed run continues from, dropping any logged after it), so a resumed run's file is the uninterrupted one's.

    That first part is written to a new file beside the old one, which it then replaces: whatever was at the path, a
    symbolic link above all, is replaced and never written through. A folder inside another run is refused."""

    def __init__(self, path):
        self.path, self.file, self.writer = Path(path), None, None

    def on_fit_start(self, state: State):
        from ._files import check_run_place, create_beside

        check_run_place(self.path.parent, "directory")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary, handle = create_beside(self.path)
        try:
            self.file = open(handle, "w", newline="", encoding="utf-8")
            self.writer = None
            for row in state.history:
                self.write(row)
            self.file.flush()
            os.replace(temporary, self.path)
        except BaseException:
            self.close()
            os.unlink(temporary)
            raise

    def on_validation_end(self, state: State):
        self.write(state.metrics)
        self.file.flush()

    def write(self, row: dict) -> None:
        if self.writer is None:  # the columns of the first row, as Run.save writes them
            self.writer = csv.DictWriter(self.file, fieldnames=list(row), lineterminator="\n", extrasaction="ignore")
            self.writer.writeheader()
        self.writer.writerow(row)

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


class TensorBoard:
    """Every validation's metrics as TensorBoard scalars, by step, with the run directory as log dir (needs the
    tensorboard package: pip install riskmin[tensorboard]). A resumed run purges what was logged after its checkpoint.
    Each writer's file ends in a random suffix, so that no symbolic link waits at its name to be written through."""

    def __init__(self, directory, writer=None):
        if writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise RiskminError(
                    "log tensorboard needs the tensorboard package; pip install riskmin[tensorboard] "
                    '(or pip install tensorboard), or drop --log tensorboard (log="csv")'
                ) from None
            # a file name no one can know in advance: no link can be planted where the events go
            self.make = lambda step: SummaryWriter(
                log_dir=str(directory), purge_step=step or None, filename_suffix=f".{secrets.token_hex(8)}"
            )
        else:
            self.make = lambda step: writer
        self.writer = None

    def on_fit_start(self, state: State):
        self.writer = self.make(state.step)

    def on_validation_end(self, state: State):
        for key, value in state.metrics.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, state.step)
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class SignalAt:
    """Sends this process the signal `name` (SIGINT, SIGTERM, SIGKILL) right after step `step`, or with `batches`, after
    that many batches past it whose gradients accumulate towards the next step: an interruption at a point chosen in
    advance, so that tests of interrupting and resuming do not depend on timing. From Python it is one of fit's
    `callbacks`; the command line takes it from a file: `riskmin train ... --callback stop.py:callback`, where stop.py
    holds `callback = SignalAt(30, "SIGINT")`.
    """

    def __init__(self, step: int, name: str, batches: int = 0):
        import signal

        self.step, self.batches, self.number = step, batches, getattr(signal, name)

    def on_batch_end(self, state: State):
        if self.batches and (state.step, state.accumulated) == (self.step, self.batches):
            os.kill(os.getpid(), self.number)

    def on_step_end(self, state: State):
        if not self.batches and state.step == self.step:
            os.kill(os.getpid(), self.number)
