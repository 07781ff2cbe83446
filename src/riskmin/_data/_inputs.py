"""A model's inputs: one tensor, or several (a tuple or a dict of tensors with one row per sample each).

One tensor goes to `model(x)`; a tuple to `model(*x)`, a dict to `model(**x)`. Everything that
takes rows (gathering a split, permuting an epoch, slicing a batch, moving to the device) does
the same to every tensor through `each_input`.

>>> x = {"a": torch.zeros(4, 2), "b": torch.arange(4)}
>>> {k: tuple(v.shape) for k, v in each_input(lambda t: t[:3], x).items()}
{'a': (3, 2), 'b': (3,)}
"""

from __future__ import annotations

import torch

from ..config import RiskminError


def is_several(x) -> bool:
    return isinstance(x, (tuple, list, dict))


def each_input(fn, x):
    """`fn` applied to every tensor of the inputs `x`, keeping their form (a tensor, a tuple or a dict)."""
    if isinstance(x, dict):
        return {key: fn(value) for key, value in x.items()}
    if isinstance(x, (tuple, list)):
        return tuple(fn(value) for value in x)
    return fn(x)


def input_tensors(x) -> list:
    """The tensors of the inputs `x`: [x] for one, a tuple's in their order, a dict's in its keys' order."""
    if isinstance(x, dict):
        return list(x.values())
    if isinstance(x, (tuple, list)):
        return list(x)
    return [x]


def first_input(x) -> torch.Tensor:
    return next(iter(x.values())) if isinstance(x, dict) else x[0] if isinstance(x, (tuple, list)) else x


def n_rows(x) -> int:
    return len(first_input(x))


def forward(model, x):
    """The model's outputs for the inputs `x`: model(x), model(*x) for a tuple, model(**x) for a dict."""
    if isinstance(x, dict):
        return model(**x)
    if isinstance(x, (tuple, list)):
        return model(*x)
    return model(x)


class SeveralInputsModel:
    """`model` called on several inputs as `forward` calls it, so that a loop can call it as `model(x)`."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x):
        return forward(self.model, x)


def several_inputs(x, rows_of_y: int | None = None):
    """Several inputs checked and made tensors: at least one, each with one row per sample (`rows_of_y`, or without
    targets as many as the first input has); real numbers as float32, integers (token ids, class indices) as they
    are."""
    names = [f"x[{key!r}]" for key in x] if isinstance(x, dict) else [f"x[{i}]" for i in range(len(x))]
    if not names:
        raise RiskminError("x is an empty tuple or dict; give at least one input tensor")
    tensors = [torch.as_tensor(value) for value in (x.values() if isinstance(x, dict) else x)]
    tensors = [t.float() if t.is_floating_point() else t for t in tensors]
    if rows_of_y is None and tensors[0].ndim == 0:  # rows to predict: the first input tells how many
        raise RiskminError(f"input {names[0]} is a single number, with no rows; give every input one row per sample")
    if rows_of_y is None:
        rows, against = len(tensors[0]), f"{names[0]} has"
    else:
        rows, against = rows_of_y, "y has"
    for name, tensor in zip(names, tensors):
        if tensor.ndim == 0 or len(tensor) != rows:
            given = "no rows" if tensor.ndim == 0 else f"{len(tensor)} rows"
            raise RiskminError(
                f"input {name} has {given} but {against} {rows}; every input "
                "needs one row per sample, on its first dimension"
            )
    return dict(zip(x, tensors)) if isinstance(x, dict) else tuple(tensors)
