"""Metrics beside the loss: sums over batches, finished once. One implementation for one run and for a stack of runs.

`metric_sums` takes a batch's outputs and targets, with the rows on the second-to-last axis
of the outputs; any axes before it are runs of a stack (the vectorized Monte-Carlo engine),
so the same code serves one model and R of them. `finish_metrics` turns the sums of a whole
split into the loss and metrics, reading them from the device in one transfer.

    regression      loss, mse, rmse, mae, r2 (r2 is the mean over outputs, as scikit-learn's default)
    classification  loss, accuracy, f1 (macro, over the classes that occur), log_loss
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

REGRESSION = ("mse", "l1", "huber")
LOSS_FROM_SUMS = {"mse": "mse", "l1": "mae", "cross_entropy": "log_loss", "bce": "log_loss"}  # losses that are one of the metrics


def metric_sums(loss_name: str, output: torch.Tensor, y: torch.Tensor) -> dict:
    """Sums over the rows of a batch from which `finish_metrics` makes the metrics; tensors, no host sync.

    Regression: the sums of absolute errors, of y, of squared errors and of y squared, per output.
    Classification: correct answers, per class the true positives, predictions and members
    (for macro F1), and the summed cross entropy (or binary cross entropy) for log loss.

    >>> sums = metric_sums("mse", torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [3.0]]))
    >>> sums["moments"].tolist()
    [1.0, 5.0, 1.0, 13.0]
    """
    if loss_name in REGRESSION:
        error, y = (output - y).double(), y.double()  # summed in float64: any order of rows gives the same metrics
        return {"moments": torch.cat([error.abs(), y, error * error, y * y], -1).sum(-2)}
    if loss_name == "cross_entropy":
        predicted, k = output.argmax(-1), output.shape[-1]
        hits = (predicted == y).long()
        per_class = output.new_zeros((*y.shape[:-1], k), dtype=torch.long)
        return {"correct": hits.sum(-1), "tp": per_class.scatter_add(-1, y, hits),
                "predicted": per_class.scatter_add(-1, predicted, torch.ones_like(hits)),
                "actual": per_class.scatter_add(-1, y, torch.ones_like(hits)),
                "nll": -nn.functional.log_softmax(output.double(), -1).gather(-1, y.unsqueeze(-1)).sum((-2, -1))}
    predicted, actual = output > 0, y > 0.5  # bce: each output column a yes/no label
    nll = nn.functional.binary_cross_entropy_with_logits(output.double(), y.double(), reduction="none").sum((-2, -1))
    return {"correct": (predicted == actual).all(-1).sum(-1), "tp": (predicted & actual).sum(-2), "predicted": predicted.sum(-2),
            "actual": actual.sum(-2), "tn": (~predicted & ~actual).sum(-2), "nll": nll / y.shape[-1]}


def finish_metrics(loss_name: str, sums: dict, rows: int, add=None, runs: int = 0) -> dict:
    """The loss and metrics of an evaluation from the sums of `metric_sums` (and "loss", the summed loss, when the
    loss is not one of the metrics) over `rows` rows, read from the device in one transfer.

    With `runs` > 0 the sums are a stack's (a leading axis of that many runs) and each value is a
    NumPy array of one value per run; otherwise each value is a float. `add`, under torchrun,
    sums the vector of sums and rows over the processes.

    >>> finish_metrics("mse", metric_sums("mse", torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [3.0]])), 2)["rmse"]
    0.7071067811865476
    """
    lead = (runs,) if runs else ()
    sizes = {key: value[0].numel() if runs else value.numel() for key, value in sums.items()}
    flat = torch.cat([value.double().reshape(*lead, -1) for value in sums.values()], -1)
    if add is not None:
        flat = add(torch.cat([flat, flat.new_tensor([rows])]))
        flat, rows = flat[:-1], int(flat[-1])
    flat = flat.cpu().numpy()  # the one host sync
    values, at = {}, 0
    for key, size in sizes.items():
        values[key] = flat[..., at:at + size] if sums[key].dim() > len(lead) else flat[..., at]
        at += size
    with np.errstate(divide="ignore", invalid="ignore"):
        metrics = regression(values, rows) if loss_name in REGRESSION else classification(loss_name, values, rows)
    metrics = {"loss": metrics[LOSS_FROM_SUMS[loss_name]] if loss_name in LOSS_FROM_SUMS else values["loss"] / rows, **metrics}
    return metrics if runs else {key: float(value) for key, value in metrics.items()}


def regression(values: dict, rows: int) -> dict:
    ae, y, se, yy = np.split(values["moments"], 4, axis=-1)
    outputs = ae.shape[-1]
    mse = se.sum(-1) / (rows * outputs)
    spread = yy - y * y / rows  # rows times the variance of each target
    explained = spread > 0  # r2 of a constant target is undefined: it is left out of the mean
    r2 = np.where(explained, 1 - se / np.where(explained, spread, 1), 0).sum(-1) / explained.sum(-1)
    return {"mse": mse, "rmse": np.sqrt(mse), "mae": ae.sum(-1) / (rows * outputs), "r2": r2}


def classification(loss_name: str, values: dict, rows: int) -> dict:
    tp, predicted, actual = values["tp"], values["predicted"], values["actual"]
    if loss_name == "bce" and tp.shape[-1] == 1:  # one yes/no column: two classes, the "no" class counted from the rest
        tp = np.concatenate([values["tn"], tp], -1)
        predicted, actual = np.concatenate([rows - predicted, predicted], -1), np.concatenate([rows - actual, actual], -1)
    occurring = predicted + actual > 0
    f1 = np.where(occurring, 2 * tp / np.where(occurring, predicted + actual, 1), 0).sum(-1) / occurring.sum(-1)
    return {"accuracy": values["correct"] / rows, "f1": f1, "log_loss": values["nll"] / rows}
