"""The learning-rate finder: an exponential sweep of the rate over training steps with a smoothed loss (Smith, 2017,
"Cyclical learning rates"; fastai's lr_find), on a copy of the model so the model given is untouched."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .config import Config, RiskminError
from ._inputs import Spread

SMOOTHING = 0.98  # the exponential moving average fastai smooths the loss with
DIVERGED = 4.0  # the sweep stops once the smoothed loss is this many times its lowest value
RULE = "steepest descent: the rate where the smoothed loss falls fastest against log(rate)"


@dataclass
class LrFinding:
    """The sweep: each step's learning rate and smoothed loss, and the suggested rate with the rule that chose it."""

    rates: list
    losses: list
    suggestion: float
    rule: str = RULE

    def plot(self, path) -> Path:
        """Draw the smoothed loss against the rate (log scale), the suggestion marked, into `path` (lr_find.png)."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6, 4))
        axis = figure.subplots()
        axis.plot(self.rates, self.losses)
        axis.axvline(self.suggestion, color="tab:red", linestyle="--", label=f"suggested {self.suggestion:.2g}")
        axis.set_xscale("log")
        axis.set_xlabel("learning rate")
        axis.set_ylabel("smoothed training loss")
        axis.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        return Path(path)


def lr_find(model, data, config: Optional[Config] = None, start: float = 1e-7, end: float = 10.0, steps: int = 100,
            **settings) -> LrFinding:
    """Train a copy of `model` for `steps` steps while the learning rate grows exponentially from `start` to `end`,
    and suggest a rate. Settings (optimizer, batch_size, loss, ...) are those of `fit`.

    >>> finding = lr_find("linear", "lab1", steps=30, progress=False)
    >>> 1e-7 <= finding.suggestion <= 10 and len(finding.rates) == len(finding.losses)
    True
    """
    from ._loop import setup

    if not 0 < start < end or steps < 5:
        raise RiskminError(f"lr_find sweeps from start to end over steps: start = {start:g}, end = {end:g} and steps = {steps} "
                           "need 0 < start < end and steps of at least 5")
    model = copy.deepcopy(model) if isinstance(model, nn.Module) else model  # the user's model keeps its weights
    training = setup(model, data, config, (), None, {**settings, "progress": False, "scheduler": "none", "max_steps": steps})
    factor = (end / start) ** (1 / (steps - 1))
    with torch.random.fork_rng():
        torch.manual_seed(training.config.seed)
        rates, losses = sweep(training, start, factor, steps)
    if len(losses) < 3:
        raise RiskminError(f"the loss diverged within {len(losses)} steps of the sweep; lower start (now {start:g})")
    return LrFinding(rates, losses, steepest(rates, losses))


def sweep(training, start: float, factor: float, steps: int) -> tuple:
    """Each step's rate and debiased smoothed loss, until `steps` or until the loss diverges."""
    model, optimizer = training.model, training.optimizer
    own_step = training.loss_fn if hasattr(model, "training_step") else None
    forward = Spread(model) if training.prepared.several else model
    rates, losses, average, lowest, rate = [], [], 0.0, math.inf, start
    model.train()
    while len(rates) < steps:
        for x, y in training.batches:
            for group in optimizer.param_groups:
                group["lr"] = rate
            loss = own_step((x, y)) if own_step is not None else training.loss_fn(forward(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            average = SMOOTHING * average + (1 - SMOOTHING) * float(loss.detach())
            smoothed = average / (1 - SMOOTHING ** (len(rates) + 1))
            if not math.isfinite(smoothed) or smoothed > DIVERGED * lowest:
                return rates, losses
            rates.append(rate)
            losses.append(smoothed)
            lowest, rate = min(lowest, smoothed), rate * factor
            if len(rates) == steps:
                break
    return rates, losses


def steepest(rates: list, losses: list) -> float:
    """The rate at which the smoothed loss falls fastest per decade of rate: the most negative slope over windows of a
    tenth of the sweep (a slope between neighbours is the batches' noise), the first tenth left out (the average is
    still settling there); the rate in the middle of that window.

    >>> steepest([10.0 ** k for k in range(-10, 10)], [1.0] * 10 + [0.9, 0.6, 0.3, 0.2] + [0.2] * 6)
    10.0
    """
    window = max(len(rates) // 10, 1)
    first = window if len(rates) > 3 * window else 0
    slopes = {i: (losses[i + window] - losses[i]) / (math.log10(rates[i + window]) - math.log10(rates[i]))
              for i in range(first, len(rates) - window)}
    best = min(slopes, key=slopes.__getitem__)
    return rates[best + window // 2]
