"""What a model's outputs mean to its user: values, class names or probabilities, the same in `riskmin.predict`
and in the columns `riskmin predict` writes.

    loss                   "value"                "class"                       "proba"
    cross_entropy          logits (n x k)         class names, argmax           softmax (n x k)
    bce, two named classes logit (n x 1)          class names, p > 0.5          [1 - p, p] (n x 2)
    bce, several targets   logits (n x m)         0/1 per target (n x m)        sigmoid (n x m)
    mse, l1, huber         the target's units     refused                       refused
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from .config import RiskminError

Kind = Literal["value", "class", "proba"]
KINDS = ("value", "class", "proba")


def check_kind(kind: str, loss: str) -> None:
    """Refuse a kind that is not one of KINDS, or class and proba for a model that does not classify."""
    if kind not in KINDS:
        raise RiskminError(f"kind={kind!r} is not a kind of prediction; choose one of {', '.join(KINDS)}")
    if kind != "value" and loss not in ("cross_entropy", "bce"):
        said = "a bare module, whose loss predict does not know" if loss == "auto" else f"a run trained with loss {loss}"
        raise RiskminError(f"kind={kind!r} needs a classifier (loss cross_entropy or bce) but this is {said}; use kind='value'")


def two_classes(loss: str, classes, output: torch.Tensor) -> bool:
    """Whether the outputs are one yes/no logit between two named classes (bce on a text or 0/1 target)."""
    return loss == "bce" and bool(classes) and len(classes) == 2 and output.shape[1] == 1


def probabilities(output: torch.Tensor, loss: str, classes=None) -> torch.Tensor:
    """Class probabilities of the logits `output`: softmax over classes, or each target's sigmoid ([1 - p, p] for two named classes)."""
    if loss == "cross_entropy":
        return torch.softmax(output, 1)
    yes = torch.sigmoid(output)
    return torch.cat([1 - yes, yes], 1) if two_classes(loss, classes, output) else yes


def class_labels(output: torch.Tensor, loss: str, classes=None):
    """The predicted class of every row by name (a NumPy array of str), or for several bce targets 0/1 per target."""
    if loss == "cross_entropy":
        names = np.array(classes or [str(k) for k in range(output.shape[1])])
        return names[output.argmax(1).numpy()]
    if two_classes(loss, classes, output):
        return np.array(classes)[(torch.sigmoid(output[:, 0]) > 0.5).long().numpy()]
    return (torch.sigmoid(output) > 0.5).long()


def as_kind(output: torch.Tensor, kind: str, loss: str, classes=None):
    """`output`, the model's outputs in the target's units, as the `kind` of prediction asked for."""
    if kind == "class":
        return class_labels(output, loss, classes)
    if kind == "proba":
        return probabilities(output, loss, classes)
    return output


def columns(output: torch.Tensor, loss: str, targets: list, classes=None) -> dict:
    """The columns `riskmin predict` writes: predicted_<target> and probability_<class> (or probability_<target>)."""
    if loss == "cross_entropy" or two_classes(loss, classes, output):
        named = classes or [str(k) for k in range(output.shape[1])]
        shares = probabilities(output, loss, classes)
        return {f"predicted_{targets[0]}": class_labels(output, loss, classes).tolist(),
                **{f"probability_{label}": shares[:, k].tolist() for k, label in enumerate(named)}}
    if loss == "bce":
        shares = probabilities(output, loss, classes)
        return {f"probability_{name}": shares[:, i].tolist() for i, name in enumerate(targets)}
    return {f"predicted_{name}": output[:, i].tolist() for i, name in enumerate(targets)}
