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


WORSE_THAN_THE_MEAN = -1.0  # an r2 below this is further from the targets than twice the spread of predicting their mean


def worse_than_the_mean(metrics: dict) -> str:
    """A warning when the final validation or test r2 is far below 0, what predicting the training mean scores; else "".

    >>> worse_than_the_mean({"val_r2": 0.8, "test_r2": 0.7}), worse_than_the_mean({"test_r2": -3.0})[:40]
    ('', 'warning: the final test r2 is -3, far wo')
    """
    bad = {part: metrics[f"{part}_r2"] for part in ("val", "test")
           if isinstance(metrics.get(f"{part}_r2"), float) and metrics[f"{part}_r2"] < WORSE_THAN_THE_MEAN}
    if not bad:
        return ""
    said = " and ".join(f"{part} r2 is {value:.3g}" for part, value in bad.items())
    return (f"warning: the final {said}, far worse than predicting the training mean (r2 about 0); the model did not "
            "learn: lower --lr, rescale the target or train longer")
