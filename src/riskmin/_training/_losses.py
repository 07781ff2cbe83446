"""Losses by name, the checks that a loss fits the targets, and the closed-form least-squares reference."""

from __future__ import annotations

import torch
from torch import nn

from ..config import Config, RiskminError, RiskminNumerics, warn
from ._callables import OwnLoss
from .._data._inputs import forward


class CrossEntropy(nn.CrossEntropyLoss):
    """Cross entropy, with a class label beyond the model's outputs said in one sentence: a Dataset's labels are not all
    read before training (a module of one's own on a Dataset that lists no targets), and torch's IndexError would
    say nothing of the model. Raised on the CPU only; on a GPU the kernel's assertion stops the process."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        try:
            return super().forward(input, target)
        except IndexError:
            if input.ndim != 2 or target.ndim != 1 or not len(target) or int(target.max()) < input.shape[1]:
                raise
            raise RiskminError(
                f"a batch holds class label {int(target.max())}, but the model gives {input.shape[1]} scores per "
                f"sample; give its last layer one output per class, {int(target.max()) + 1} at least"
            ) from None


LOSSES = {
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "huber": nn.HuberLoss,
    "cross_entropy": CrossEntropy,
    "bce": nn.BCEWithLogitsLoss,
}

READ_AS_CLASSES = (
    "target_transform log is for a positive regression target, but the target is read as classes; "
    'pass --task regression (task="regression") if its values are amounts, or drop --target-transform log '
    '(target_transform="none")'
)


def make_loss(name: str, given=None):
    """The loss `name`, or the user's own callable `given` (loss "custom"), checked to return a scalar."""
    if given is not None:
        return OwnLoss(given)
    if name == "custom":
        raise RiskminError(
            "loss custom is a function of your own, which only riskmin.fit takes (loss=my_loss); "
            "use a loss by name here"
        )
    return LOSSES[name]()


def with_concrete_loss(config: Config, y: torch.Tensor) -> Config:
    """`config` with loss "auto" made concrete: mse for real-valued targets, cross_entropy for class labels."""
    if config.loss != "auto":
        return config
    amounts = torch.as_tensor(y).is_floating_point()
    if not amounts and config.target_transform == "log":  # said before the settings with cross_entropy would say less
        raise RiskminError(READ_AS_CLASSES)
    return config.replace(loss="mse" if amounts else "cross_entropy")


def check_targets(loss: str, y: torch.Tensor, n_outputs: int | None = None) -> None:
    """Refuse a loss that cannot fit the targets, before any training starts (a loss of the user's own takes any);
    `n_outputs`: a trained model's, whose class indices the targets must be."""
    if loss == "custom":
        return
    if loss == "cross_entropy" and y.is_floating_point():
        raise RiskminError(
            "loss cross_entropy needs integer class labels but the targets are real numbers; use --loss "
            'mse (loss="mse") for regression'
        )
    if loss == "cross_entropy" and y.ndim != 1:
        raise RiskminError(one_label_per_sample(y))
    if loss == "cross_entropy" and len(y) and int(y.min()) < 0:
        raise RiskminError(
            "class labels must count from 0 (class k is the model's output k) but one is "
            f"{int(y.min())}; map them to 0, 1, ..., or give them as a NumPy array or in a table, whose labels "
            "riskmin maps itself"
        )
    if loss == "cross_entropy" and n_outputs is not None and len(y) and int(y.max()) >= n_outputs:
        raise RiskminError(
            f"class label {int(y.max())} is not one the run knows: its model has {n_outputs} outputs, for the classes "
            f"0 to {n_outputs - 1}"
        )
    if loss != "cross_entropy" and not y.is_floating_point():
        raise RiskminError(
            f"loss {loss} needs real-valued targets but they are class labels; use --loss cross_entropy "
            '(loss="cross_entropy"), or --task regression (task="regression") to fit them as numbers'
        )
    if loss == "bce" and not ((y == 0) | (y == 1)).all():
        raise RiskminError('loss bce needs targets that are 0 or 1; use --loss mse (loss="mse") for other values')


def check_log_target(config: Config, y: torch.Tensor, names=()) -> None:
    """Refuse target_transform log on targets it cannot take, before any training starts: class labels (a target that
    loss auto reads as classes), and any target value that is not positive and finite, named by its column."""
    if config.target_transform != "log":
        return
    if not y.is_floating_point():
        raise RiskminError(READ_AS_CLASSES)
    columns = y.reshape(len(y), -1)
    for index in range(columns.shape[1]):
        column = columns[:, index]
        bad = ~(torch.isfinite(column) & (column > 0))
        if bool(bad.any()):
            name = list(names)[index] if index < len(names) else f"y{index}"
            worst, count = column[bad], int(bad.sum())
            shown = (
                "among them a missing value (nan)"
                if bool(worst.isnan().any())
                else f"the smallest {float(worst.min()):g}"
            )
            raise RiskminError(
                f"target_transform log takes finite targets above 0, but target column {name} holds "
                f"{count} value{'s' * (count != 1)} that {'are' if count != 1 else 'is'} not ({shown}); "
                'drop those rows or use --target-transform none (target_transform="none")'
            )


def one_label_per_sample(y: torch.Tensor, fix: str = "", reader: str = "loss cross_entropy") -> str:
    """What to say of class-label targets `y` (rows first) that are not one whole number per sample; `fix`: how to give
    them instead (by default, as a vector); `reader`: what takes them so (riskmin's metrics, beside a loss of one's
    own)."""
    fix = fix or ("a vector, y.squeeze(1)" if y.ndim == 2 and y.shape[1] == 1 else "a vector of one label per sample")
    return (
        f"{reader} {'take' if reader.endswith('metrics') else 'takes'} one class label per sample, but the integer "
        "targets have shape "
        f"{tuple(y.shape[1:])} per sample; give the labels as {fix}, or the targets as real numbers (y.float()) "
        "for regression"
    )


@torch.no_grad()
def check_bce_outputs(model: nn.Module, x) -> None:
    """Warn when a model trained with bce, which takes logits, already gives probabilities: outputs that all lie in
    [0, 1] on the first training rows (a model that ends in a sigmoid) learn slowly or not at all."""
    was_training = model.training
    model.eval()  # no dropout drawn from the random state, no batch-norm statistics updated
    try:
        output = forward(model, x)
    finally:
        model.train(was_training)
    if isinstance(output, torch.Tensor) and output.numel() and bool(((output >= 0) & (output <= 1)).all()):
        warn(
            "every output of the model lies in [0, 1] but loss bce applies a sigmoid itself (it takes logits); "
            "remove the model's final Sigmoid, or train it with loss=torch.nn.BCELoss()",
            RiskminNumerics,
        )


def least_squares_loss(prepared, bias: bool = True):
    """Test MSE of the closed-form least-squares fit on the training rows: what a linear model should reach."""
    if "test" not in prepared.rows:
        return None
    (x, y), (x_test, y_test) = prepared.rows["train"], prepared.rows["test"]
    loss = least_squares_test_loss(x, y, x_test, y_test, bias=bias)
    return loss * (prepared.scale or 1.0) ** 2


def least_squares_test_loss(x, y, x_test, y_test, bias: bool = True) -> float:
    """Solve min_H ||y - H x||^2 on (x, y) in float64 and return the mean squared error on the test rows."""
    x, y, x_test, y_test = (t.detach().cpu().double() for t in (x, y, x_test, y_test))
    if bias:
        x, x_test = (torch.cat([t, torch.ones(len(t), 1, dtype=t.dtype)], 1) for t in (x, x_test))
    solution = torch.linalg.lstsq(x, y, driver="gelsd").solution
    return float(((x_test @ solution - y_test) ** 2).mean())
