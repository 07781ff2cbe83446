"""The learning-rate finder: an exponential sweep of the rate over training steps with a smoothed loss (Smith, 2017,
"Cyclical learning rates"; fastai's lr_find), on a copy of the model so the model given is untouched."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Optional

from torch import nn

from ..config import Config, RiskminError, RiskminNote, RiskminWarning, unused_by_sweep, warn

SMOOTHING = 0.98  # the exponential moving average fastai smooths the loss with
DIVERGED = 4.0  # the sweep stops once the smoothed loss is this many times its lowest value
# weights that moved less than this share of their size over the whole sweep learned little at its rates: the smoothed
# loss then rises and falls with the batches (by 10% on lab1 from 1e-7 to 1e-6, where they moved 0.02%; 2% from 1e-5 to
# 1e-4), and its steepest fall can be their noise; a sweep that reaches the rates that learn moves them far more
STILL = 0.05
RULE = (
    "steepest descent: the rate where the smoothed loss falls fastest against log(rate), on a descent that gets at "
    "least halfway down to its lowest"
)


@dataclass
class LrFinding:
    """The sweep: each step's learning rate and smoothed loss, and the suggested rate with the rule that chose it."""

    rates: list
    losses: list
    suggestion: float
    rule: str = RULE

    def __repr__(self) -> str:
        return (
            f"LrFinding(suggested lr {self.suggestion:.3g}, {len(self.rates)} steps from {self.rates[0]:.3g} to "
            f"{self.rates[-1]:.3g}, {self.rule.split(':')[0]})"
        )

    def plot(self, path=None, overwrite: bool = False):
        """The smoothed loss against the rate (log scale), the suggestion marked: a matplotlib Figure, or drawn into
        `path` (lr_find.png) and the path returned. An existing file is replaced only with `overwrite`; a path inside a
        run or experiment, or one that names no picture format, is refused, and a link there is replaced, never drawn
        through (as `riskmin lr-find --plot`)."""
        from matplotlib.figure import Figure

        from .._runs._rundir import save_picture

        figure = Figure(figsize=(6, 4))
        axis = figure.subplots()
        axis.plot(self.rates, self.losses)
        axis.axvline(self.suggestion, color="tab:red", linestyle="--", label=f"suggested {self.suggestion:.2g}")
        axis.set_xscale("log")
        axis.set_xlabel("learning rate")
        axis.set_ylabel("smoothed training loss")
        axis.legend()
        figure.tight_layout()
        return figure if path is None else save_picture(figure, path, overwrite)


def lr_find(
    model, data, config: Optional[Config] = None, start: float = 1e-7, end: float = 10.0, steps: int = 100, **settings
) -> LrFinding:
    """Train a copy of `model` for `steps` steps while the learning rate grows exponentially from `start` to `end`,
    and suggest a rate. Settings (optimizer, batch_size, loss, clip_grad, ...) are those of `fit`, which trains the
    copy with a `Sweep` callback: torchrun, gradient clipping and a model's own training_step work as in any fit.

    >>> finding = lr_find("linear", "lab1", steps=30, progress=False)
    >>> 1e-7 <= finding.suggestion <= 10 and len(finding.rates) == len(finding.losses)
    True
    """
    from ._loop import swept

    if not 0 < start < end < math.inf or steps < 5:
        raise RiskminError(
            f"lr_find sweeps from start to end over steps: start = {start:g}, end = {end:g} and steps = "
            f"{steps} need 0 < start < end, a finite end and steps of at least 5"
        )
    for note in unused_by_sweep(settings, flags=False):
        warn(note, RiskminNote)
    model = copy.deepcopy(model) if isinstance(model, nn.Module) else model  # the user's model keeps its weights
    sweep = Sweep(start, (end / start) ** (1 / (steps - 1)), steps)
    swept(
        model,
        data,
        config,
        [sweep],
        {**settings, "progress": False, "scheduler": "none", "max_steps": steps, "epochs": None, "patience": 0},
    )
    if len(sweep.losses) < 3:
        raise RiskminError(
            f"the loss diverged within {len(sweep.losses)} steps of the sweep; lower start (now {start:g})"
        )
    if sweep.moved < STILL:
        warn(
            f"the weights moved by {sweep.moved:.2%} of their size over the sweep from {start:g} to "
            f"{sweep.rates[-1]:.3g}: little was learned at these rates and the suggestion may follow the batches' "
            f"noise; raise end (now {end:g}) to sweep larger rates",
            RiskminWarning,
        )
    return LrFinding(sweep.rates, sweep.losses, steepest(sweep.rates, sweep.losses))


class Sweep:
    """The callback of the sweep: before each step every parameter group gets the next rate; after it, the debiased
    smoothed loss of the whole batch is recorded, and the fit stops once that loss is not finite or DIVERGED times its
    lowest. Under torchrun every process adds up the same shares, so all of them stop at the same step."""

    def __init__(self, start: float, factor: float, steps: int):
        self.rate, self.factor, self.steps = start, factor, steps
        self.rates, self.losses, self.average, self.lowest = [], [], 0.0, math.inf
        self.weights: list = []
        self.moved = math.inf  # how far the weights moved over the sweep, as a share of their size (on_fit_end)

    def on_fit_start(self, state) -> None:
        self.weights = [p.detach().clone() for p in state.model.parameters() if p.requires_grad]
        self.set(state.optimizer)

    def on_fit_end(self, state) -> None:
        trained = [p.detach() for p in state.model.parameters() if p.requires_grad]
        size = math.sqrt(sum(float(w.double().square().sum()) for w in self.weights))
        change = math.sqrt(sum(float((p.double() - w.double()).square().sum()) for p, w in zip(trained, self.weights)))
        self.moved = change / size if size else math.inf  # weights of zero: any step is a move

    def on_step_end(self, state) -> None:
        if state.should_stop:
            return
        # under torchrun each process holds its share of the batch's loss
        loss = state.team.add(state.loss.detach().clone())
        self.average = SMOOTHING * self.average + (1 - SMOOTHING) * float(loss)
        smoothed = self.average / (1 - SMOOTHING ** (len(self.rates) + 1))
        if diverged(smoothed, self.lowest, self.losses[0] if self.losses else smoothed):
            state.should_stop, state.stop_reason = True, "the sweep's loss diverged"
            return
        self.rates.append(self.rate)
        self.losses.append(smoothed)
        self.lowest, self.rate = min(self.lowest, smoothed), self.rate * self.factor
        self.set(state.optimizer)

    def set(self, optimizer) -> None:
        for group in optimizer.param_groups:
            group["lr"] = self.rate


def diverged(smoothed: float, lowest: float, first: float) -> bool:
    """Whether the sweep's smoothed loss has left its lowest for good: not finite, or DIVERGED times its lowest; a
    loss of one's own that reaches 0 or below (a log-likelihood, an offset) has no such multiple, and diverges once it
    has risen from its lowest by DIVERGED - 1 times the larger of that lowest's size and the descent from the first.

    >>> diverged(4.1, 1.0, 3.0), diverged(-4.0, -5.0, -3.0), diverged(11.0, -5.0, -3.0)
    (True, False, True)
    """
    if not math.isfinite(smoothed):
        return True
    if lowest > 0 or math.isinf(lowest):
        return smoothed > DIVERGED * lowest
    return smoothed - lowest > (DIVERGED - 1) * max(-lowest, first - lowest)


def steepest(rates: list, losses: list) -> float:
    """The rate at which the smoothed loss falls fastest per decade of rate: the most negative slope over windows of a
    tenth of the sweep (a slope between neighbours is the batches' noise), the first tenth left out (the average is
    still settling there), among the windows that end at least halfway down from where the sweep starts to its lowest
    loss (a noisy loss dips as steeply where nothing is learned yet); the rate in the middle of that window.

    >>> steepest([10.0 ** k for k in range(-10, 10)], [1.0] * 10 + [0.9, 0.6, 0.3, 0.2] + [0.2] * 6)
    10.0
    >>> steepest([10.0 ** k for k in range(-10, 10)], [1.0] * 4 + [0.78] + [1.0] * 2 + [0.9, 0.8, 0.7, 0.6] + [0.5] * 9)
    0.01
    """
    window = max(len(rates) // 10, 1)
    first = window if len(rates) > 3 * window else 0
    halfway = (losses[first] + min(losses)) / 2
    slopes = {
        i: (losses[i + window] - losses[i]) / (math.log10(rates[i + window]) - math.log10(rates[i]))
        for i in range(first, len(rates) - window)
    }
    down = {i: slope for i, slope in slopes.items() if losses[i + window] <= halfway} or slopes
    best = min(down, key=down.__getitem__)
    return rates[best + window // 2]
