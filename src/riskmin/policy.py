"""The rules that judge a run: is this the best value so far, is it time to stop, has it diverged.

Pure rules on numbers. Each works on one value (a float: one run) and, element by element,
on a tensor of one value per run (the vectorized Monte-Carlo engine), so both engines judge
their runs by the same code. The callbacks that plug them into `fit` are in callbacks.py.
"""

from __future__ import annotations

import math

import torch


def where(condition, yes, no):
    """`yes` where `condition` holds, else `no`: for a bool and for a tensor of bools alike."""
    if isinstance(condition, torch.Tensor):
        return torch.where(condition, yes, no)
    return yes if condition else no


class Best:
    """Decides whether a value beats the best so far by more than `min_delta`. NaN never does.

    >>> rule = Best("min"); [rule.update(v) for v in [0.4, 0.3, 0.3, 0.5]]
    [True, True, False, False]
    >>> rule = Best("min"); first = rule.update(torch.tensor([0.4, 0.2])); rule.update(torch.tensor([0.3, 0.3])).tolist()
    [True, False]
    """

    def __init__(self, mode: str = "min", min_delta: float = 0.0):
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta = min_delta
        self.value = self.sign * math.inf

    def update(self, value):
        improved = self.sign * (self.value - value) > self.min_delta
        self.value = where(improved, value, self.value)
        return improved


class EarlyStopChecker:
    """Says stop once `patience` values in a row have not improved on the best.

    >>> check = EarlyStopChecker(patience=2); [check.update(v) for v in [0.4, 0.3, 0.35, 0.31]]
    [False, False, False, True]
    """

    def __init__(self, patience: int, mode: str = "min", min_delta: float = 0.0):
        self.patience = patience
        self.best = Best(mode, min_delta)
        self.bad = 0

    def update(self, value):
        self.bad = where(self.best.update(value), 0, self.bad + 1)
        return self.bad >= self.patience


def diverged(loss):
    """Whether a training loss is NaN or infinite: for a float, or per run for a tensor."""
    if isinstance(loss, torch.Tensor):
        return ~torch.isfinite(loss)
    return not math.isfinite(loss)


def divergence_reason(loss: float, epoch: int, step: int, kept: bool = True) -> str:
    """Why a run stopped, and what to do; `kept`: whether it has finite weights from before to fall back on."""
    return (f"the training loss became {loss} in epoch {epoch} by step {step}; lower the learning rate or clip gradients "
            "with --clip-grad 1.0 " + ("(the best weights so far are kept)" if kept else "(no finite weights came before it: the run keeps no model)"))
