"""What a model's outputs mean to its user: values, classes or probabilities, the same in `riskmin.predict`
and in the columns `riskmin predict` writes.

    loss                   "value"                "class"                       "proba"
    cross_entropy          logits (n x k)         each row's class, argmax      softmax (n x k)
    bce, two named classes logit (n x 1)          each row's class, p > 0.5     [1 - p, p] (n x 2)
    bce, several targets   logits (n x m)         0/1 per target (n x m)        sigmoid (n x m)
    mse, l1, huber         the target's units     refused                       refused

`predict` answers in the type it was given (`like_input`): a tensor for tensors (a class as its index among the
run's classes, since a tensor holds no text), a NumPy array for NumPy (a class by its label, in the type the target
held it: 0 for whole numbers, True for true/false, "yes" for text, so that it compares equal to the target), a
DataFrame for a DataFrame, with the input's row index and a column per target or class. Where a class is written as
text (column headers, `riskmin predict`'s CSV file) it is written as a CSV file spells it (`class_text`).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from ..config import RiskminError
from ._columns import class_text

Kind = Literal["value", "class", "proba"]
KINDS = ("value", "class", "proba")


def check_kind(kind: str, loss: str) -> None:
    """Refuse a kind that is not one of KINDS, or class and proba for a model that does not classify."""
    if kind not in KINDS:
        raise RiskminError(f"kind={kind!r} is not a kind of prediction; choose one of {', '.join(KINDS)}")
    if kind != "value" and loss not in ("cross_entropy", "bce"):
        said = (
            "a bare module, whose loss predict does not know" if loss == "auto" else f"a run trained with loss {loss}"
        )
        raise RiskminError(
            f"kind={kind!r} needs a classifier (loss cross_entropy or bce) but this is {said}; use kind='value'"
        )


def two_classes(loss: str, classes, output: torch.Tensor) -> bool:
    """Whether the outputs are one yes/no logit between two named classes (bce on a text or 0/1 target)."""
    return loss == "bce" and bool(classes) and len(classes) == 2 and output.shape[1] == 1


def probabilities(output: torch.Tensor, loss: str, classes=None) -> torch.Tensor:
    """Class probabilities of the logits `output`: softmax over classes, or each target's sigmoid ([1 - p, p] for two
    named classes)."""
    if loss == "cross_entropy":
        return torch.softmax(output, 1)
    yes = torch.sigmoid(output)
    return torch.cat([1 - yes, yes], 1) if two_classes(loss, classes, output) else yes


def class_indices(output: torch.Tensor, loss: str, classes=None) -> torch.Tensor:
    """The predicted class of every row as its index among the classes (n), or for several bce targets 0/1 per
    target."""
    if loss == "cross_entropy":
        return output.argmax(1)
    if two_classes(loss, classes, output):
        return (torch.sigmoid(output[:, 0]) > 0.5).long()
    return (torch.sigmoid(output) > 0.5).long()


def one_class_per_row(output: torch.Tensor, loss: str, classes=None) -> bool:
    """Whether each row gets one class (cross entropy, or bce between two named classes) rather than 0/1 per target."""
    return loss == "cross_entropy" or two_classes(loss, classes, output)


def class_names(output: torch.Tensor, classes=None) -> list:
    """The classes' names, as column headers take them: their labels as text, else their indices as text (a polars
    DataFrame or a pyarrow Table names its columns by text alone)."""
    return [class_text(label) for label in classes] if classes else [str(k) for k in range(output.shape[1])]


def class_labels(output: torch.Tensor, loss: str, classes=None):
    """The predicted class of every row by name (a NumPy array of str, as a CSV file writes it), or for several bce
    targets 0/1 per target."""
    indices = class_indices(output, loss, classes)
    if not one_class_per_row(output, loss, classes):
        return indices
    return np.array(class_names(output, classes))[indices.numpy()]


def as_kind(output: torch.Tensor, kind: str, loss: str, classes=None) -> torch.Tensor:
    """`output`, the model's outputs in the target's units, as the `kind` of prediction asked for, a tensor."""
    if kind == "class":
        return class_indices(output, loss, classes)
    if kind == "proba":
        return probabilities(output, loss, classes)
    return output


def like_input(prediction: torch.Tensor, output: torch.Tensor, rows, kind: str, loss: str, names: dict):
    """`prediction` (as_kind of the model's `output`) in the type of the `rows` it was made for: a NumPy array for an
    array, where classes have labels, by label, in the target's type (see _columns.class_codes; a run written before
    riskmin kept labels' types holds them as text, and gives text); a DataFrame of the same kind for a DataFrame, with
    its row index; a tensor for anything else. Several inputs (a tuple or dict) answer as their first input would."""
    from ._frames import given_as_several, is_frame
    from ._inputs import input_tensors

    classes = names.get("classes")
    named = kind == "class" and bool(classes) and one_class_per_row(output, loss, classes)
    if is_frame(rows):
        values = np.array(classes)[prediction.numpy()] if named else prediction.numpy()
        # a column per target or class, with rows or without
        columns = values.reshape(len(values), math.prod(values.shape[1:])).T
        return same_frame(rows, dict(zip(headers(prediction, output, kind, loss, names), columns)))
    first = input_tensors(rows)[0] if given_as_several(rows) else rows  # several inputs: as their first
    if isinstance(first, np.ndarray):
        return np.array(classes)[prediction.numpy()] if named else prediction.numpy()
    return prediction


def headers(prediction: torch.Tensor, output: torch.Tensor, kind: str, loss: str, names: dict) -> list:
    """The columns of a prediction as a DataFrame: a column per class for the logits and probabilities of classes, else
    a column per target (one, holding each row's class, for kind="class")."""
    classes, targets = names.get("classes"), names.get("targets") or []
    if (kind == "proba" and one_class_per_row(output, loss, classes)) or (kind == "value" and loss == "cross_entropy"):
        return class_names(output, classes)
    width = prediction.shape[1] if prediction.ndim == 2 else 1
    return targets if len(targets) == width else [str(i) for i in range(width)]


def same_frame(rows, columns: dict):
    """`columns` as a DataFrame of the type of `rows`: pandas with the row index of `rows`, polars, or a pyarrow
    Table."""
    kind = type(rows)
    if kind.__module__.startswith("pandas"):
        return kind(columns, index=rows.index)
    if kind.__module__.startswith("pyarrow"):
        return kind.from_pydict(columns)
    return kind(columns)


def prediction_columns(output: torch.Tensor, loss: str, targets: list, classes=None) -> dict:
    """The columns `riskmin predict` writes, as the cells of its CSV file: predicted_<target> and probability_<class>
    (or probability_<target>). A value keeps the digits of the float32 the model computed (`float32_text`); the
    probabilities are taken in float64 from the logits, so that each row's, read back, sums to 1 (float32's missed it
    by up to 1e-7)."""
    if loss == "cross_entropy" or two_classes(loss, classes, output):
        named = class_names(output, classes)
        shares = probabilities(output.double(), loss, classes)
        return {
            f"predicted_{targets[0]}": class_labels(output, loss, classes).tolist(),
            **{f"probability_{label}": shares[:, k].tolist() for k, label in enumerate(named)},
        }
    if loss == "bce":
        shares = probabilities(output.double(), loss, classes)
        return {f"probability_{name}": shares[:, i].tolist() for i, name in enumerate(targets)}
    return {f"predicted_{name}": float32_text(output[:, i].tolist()) for i, name in enumerate(targets)}


def float32_text(column: list) -> list:
    """A column of numbers the model computed in float32, as text with the digits a float32 holds (231.62039, not
    the float64 231.62039184570312 it widens to).

    >>> float32_text([231.62039184570312, 0.5])
    ['231.62039', '0.5']
    """
    return [str(np.float32(value)) for value in column]
