"""Metrics beside the loss: the one registry of riskmin's metrics, and their sums over batches, finished once.

`METRICS` names every metric riskmin measures, with its task, whether higher is better, how its
sums are finished and its units; `fit`, both Monte-Carlo engines, compare, the console and the
check of the user's own metric names all read it. One implementation serves one run and a stack
of runs: `metric_sums` takes a batch's outputs and targets, with the rows on the second-to-last
axis of the outputs; any axes before it are runs of a stack (the vectorized Monte-Carlo engine).
`finish_metrics` turns the sums of a whole split into the loss and metrics, reading them from
the device in one transfer.

    regression      loss, mse, rmse, mae, r2 (r2 is the mean over outputs, as scikit-learn's default)
    classification  loss, accuracy, f1 (macro, over the classes that occur), log_loss

torch and NumPy are imported where sums are taken, not at the top: the registry answers
`riskmin --help` (the monitor's choices) in the time Python takes to start.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

# fmt: off
__all__ = ["METRICS", "Metric", "accuracy", "log_loss", "macro_f1", "mean_absolute_error", "mean_squared_error",
           "r2_score", "root_mean_squared_error"]
# fmt: on

if TYPE_CHECKING:
    import torch

REGRESSION = ("mse", "l1", "huber")
# losses that are one of the metrics
LOSS_FROM_SUMS = {"mse": "mse", "l1": "mae", "cross_entropy": "log_loss", "bce": "log_loss"}


@dataclass(frozen=True)
class Metric:
    """One metric riskmin measures: its task ("regression", "classification", or "any" for the loss), whether a higher
    value is better, how it is finished from the sums of a split (`finish(sums, rows, scale, loss_name)`, None for the
    loss, which `finish_run` finishes), its units, whether it is its task's headline (the one an epoch line shows),
    and the values it can take."""

    name: str
    task: str
    higher_is_better: bool
    finish: Optional[Callable]
    units: str  # "loss" (the loss's own), "target", "target squared", "fraction" (0 to 1), "nats"
    headline: bool = False
    bounds: tuple = (None, None)  # the lowest and highest value it can take (None: no bound), where intervals stop


def moment_sums(values: dict) -> tuple:
    """The per-output sums of absolute errors, of y, of squared errors and of y squared."""
    sums = values["moments"]
    outputs = len(sums) // 4
    # four slices spelled out: a stack's metrics finish this for every run at every validation, where a generator
    # costs several times as much (benchmarks/montecarlo.py --users)
    return sums[:outputs], sums[outputs : 2 * outputs], sums[2 * outputs : 3 * outputs], sums[3 * outputs :]


def mean_squared_error(values: dict, rows: int, scale: float, loss_name: str) -> float:
    se = moment_sums(values)[2]
    return sum(se) / (rows * len(se)) * scale * scale


def root_mean_squared_error(values: dict, rows: int, scale: float, loss_name: str) -> float:
    return math.sqrt(mean_squared_error(values, rows, scale, loss_name))


def mean_absolute_error(values: dict, rows: int, scale: float, loss_name: str) -> float:
    ae = moment_sums(values)[0]
    return sum(ae) / (rows * len(ae)) * scale


def r2_score(values: dict, rows: int, scale: float, loss_name: str) -> float:
    _, y, se, yy = moment_sums(values)
    spreads = [q - s * s / rows for s, q in zip(y, yy)]  # rows times the variance of each target
    # a constant target's r2 is undefined: left out
    r2 = [1 - e / spread for e, spread in zip(se, spreads) if spread > 0]
    return sum(r2) / len(r2) if r2 else math.nan


def accuracy(values: dict, rows: int, scale: float, loss_name: str) -> float:
    return values["correct"] / rows


def macro_f1(values: dict, rows: int, scale: float, loss_name: str) -> float:
    tp, predicted, actual = values["tp"], values["predicted"], values["actual"]
    if loss_name == "bce" and len(tp) == 1:  # one yes/no column: two classes, the "no" class counted from the rest
        tp, predicted, actual = (
            [values["tn"][0], tp[0]],
            [rows - predicted[0], predicted[0]],
            [rows - actual[0], actual[0]],
        )
    f1 = [2 * t / (p + a) for t, p, a in zip(tp, predicted, actual) if p + a > 0]
    return sum(f1) / len(f1)


def log_loss(values: dict, rows: int, scale: float, loss_name: str) -> float:
    return values["nll"] / rows + 0.0  # every row certain and right sums to -0.0, which a table would print as "-0"


METRIC_PREFIXES = ("train_", "val_", "test_")  # a row's metric columns: where each was measured, then the metric

# every metric riskmin measures, in the order a row, a table and a message list them
METRICS = {
    metric.name: metric
    for metric in (
        Metric("loss", "any", False, None, "loss"),
        Metric("mse", "regression", False, mean_squared_error, "target squared"),
        Metric("rmse", "regression", False, root_mean_squared_error, "target"),
        Metric("mae", "regression", False, mean_absolute_error, "target"),
        Metric("r2", "regression", True, r2_score, "fraction", headline=True, bounds=(None, 1.0)),
        Metric("accuracy", "classification", True, accuracy, "fraction", headline=True, bounds=(0.0, 1.0)),
        Metric("f1", "classification", True, macro_f1, "fraction", bounds=(0.0, 1.0)),
        Metric("log_loss", "classification", False, log_loss, "nats"),
    )
}


@functools.cache  # METRICS never changes, and a stack asks this for every run at every validation
def measured(task: str) -> tuple:
    """The metrics every row of a run on `task` holds, the loss first.

    >>> measured("classification")
    ('loss', 'accuracy', 'f1', 'log_loss')
    """
    return tuple(name for name, metric in METRICS.items() if metric.task in ("any", task))


def base_metric(name: str) -> str:
    """The registry's name of a row's metric column (where it was measured, then the metric); any other name as it is.

    >>> base_metric("val_log_loss"), base_metric("closed_form_test_loss"), base_metric("gap")
    ('log_loss', 'loss', 'gap')
    """
    if name == "closed_form_test_loss":  # the least-squares solution's test loss
        return "loss"
    return name.split("_", 1)[1] if name.startswith(METRIC_PREFIXES) else name


def direction(name: str) -> str:
    """ "max" where riskmin's metric `name` (at any prefix) is better higher, "min" where lower.

    >>> direction("val_accuracy"), direction("test_rmse"), direction("loss")
    ('max', 'min', 'min')
    """
    return "max" if METRICS[base_metric(name)].higher_is_better else "min"


def metrics_where(**facts) -> tuple:
    """The names of the metrics with every fact given, in the registry's order.

    >>> metrics_where(units="target"), metrics_where(headline=True)
    (('rmse', 'mae'), ('r2', 'accuracy'))
    """
    return tuple(name for name, metric in METRICS.items() if all(getattr(metric, k) == v for k, v in facts.items()))


def in_words(names, last: str = "or") -> str:
    """Names as a sentence lists them.

    >>> in_words(metrics_where(units="fraction"), "and")
    'r2, accuracy and f1'
    """
    return f"{', '.join(names[:-1])} {last} {names[-1]}" if len(names) > 1 else "".join(names)


def task_of_loss(loss_name: str) -> str:
    """The task whose metrics a run under riskmin's loss `loss_name` measures."""
    return "classification" if loss_name in ("cross_entropy", "bce") else "regression"


def read_as(loss_name: str, classification: bool) -> str:
    """The loss whose outputs riskmin's metrics and predictions read a run's as: its own, or for a loss of one's own on
    class labels (`classification`: the targets are class indices) cross entropy's, one score per class.

    >>> read_as("custom", True), read_as("custom", False), read_as("bce", True)
    ('cross_entropy', 'custom', 'bce')
    """
    return "cross_entropy" if loss_name == "custom" and classification else loss_name


def metric_sums(loss_name: str, output: torch.Tensor, y: torch.Tensor) -> dict:
    """Sums over the rows of a batch from which `finish_metrics` makes the metrics; tensors, no host sync.

    Regression: the sums of absolute errors, of y, of squared errors and of y squared, per output.
    Classification: correct answers, per class the true positives, predictions and members
    (for macro F1), and the summed cross entropy (or binary cross entropy) for log loss.

    >>> import torch
    >>> sums = metric_sums("mse", torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [3.0]]))
    >>> sums["moments"].tolist()
    [1.0, 5.0, 1.0, 13.0]
    """
    import torch
    from torch import nn

    loss_name = read_as(loss_name, not y.is_floating_point())  # a loss of the user's own: by the targets
    if loss_name in REGRESSION or loss_name == "custom":
        error, y = (output - y).double(), y.double()  # summed in float64: any order of rows gives the same metrics
        return {"moments": torch.cat([error.abs(), y, error * error, y * y], -1).sum(-2)}
    if loss_name == "cross_entropy":
        predicted, k = output.argmax(-1), output.shape[-1]
        hits = (predicted == y).long()
        per_class = output.new_zeros((*y.shape[:-1], k), dtype=torch.long)
        return {
            "correct": hits.sum(-1),
            "tp": per_class.scatter_add(-1, y, hits),
            "predicted": per_class.scatter_add(-1, predicted, torch.ones_like(hits)),
            "actual": per_class.scatter_add(-1, y, torch.ones_like(hits)),
            "nll": -nn.functional.log_softmax(output.double(), -1).gather(-1, y.unsqueeze(-1)).sum((-2, -1)),
        }
    predicted, actual = output > 0, y > 0.5  # bce: each output column a yes/no label
    nll = nn.functional.binary_cross_entropy_with_logits(output.double(), y.double(), reduction="none").sum((-2, -1))
    return {
        "correct": (predicted == actual).all(-1).sum(-1),
        "tp": (predicted & actual).sum(-2),
        "predicted": predicted.sum(-2),
        "actual": actual.sum(-2),
        "tn": (~predicted & ~actual).sum(-2),
        "nll": nll / y.shape[-1],
    }


def evaluation_sums(
    loss_name: str, output: torch.Tensor, y: torch.Tensor, loss: Callable, rows: int, restore: Optional[Callable] = None
) -> dict:
    """The sums one evaluated batch adds, as both engines take them: `metric_sums` of the outputs, and the loss summed
    apart (`loss(output, y)` times the `rows`) when the metrics do not give it. `restore`: a log target's way back to
    its own units, where the metrics are measured; its loss stays as trained, in log units.

    >>> import torch
    >>> out, y = torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [3.0]])
    >>> sorted(evaluation_sums("mse", out, y, torch.nn.MSELoss(), 2)), sorted(evaluation_sums("huber", out, y,
    ...     torch.nn.HuberLoss(), 2))
    (['moments'], ['loss', 'moments'])
    """
    measured = (output, y) if restore is None else (restore(output), restore(y))
    values = metric_sums(loss_name, *measured)
    if loss_name not in LOSS_FROM_SUMS or restore is not None:
        values["loss"] = loss(output, y) * rows
    return values


def finish_metrics(
    loss_name: str,
    sums: dict,
    rows: int,
    add=None,
    runs: int = 0,
    scale=None,
    restored: bool = False,
    only: Optional[str] = None,
) -> dict:
    """The loss and metrics of an evaluation from the sums of `metric_sums` (and "loss", the summed loss, when the
    loss is not one of the metrics) over `rows` rows, read from the device in one transfer.

    With `runs` > 0 the sums are a stack's (a leading axis of that many runs) and each value is a
    NumPy array of one value per run; otherwise each value is a float. `add`, under torchrun,
    sums the vector of sums and rows over the processes. `scale` (one number, or one per run) is
    that of a standardized regression target (data.TargetScale): the sums are in standardized
    units and the metrics come back in the target's own. `restored`: the regression sums are of outputs and targets
    already restored to the target's own units (a log target, trained on log y); `scale` then converts the loss alone,
    which is summed apart ("loss") and stays on the scale it was trained on. `only` names the one metric wanted (a
    stack's validation, which judges by one): finishing each run's every metric in Python is most of what validating
    a stack of small runs costs.

    >>> import torch
    >>> finish_metrics("mse", metric_sums("mse", torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [3.0]])), 2)["rmse"]
    0.7071067811865476
    """
    import numpy as np
    import torch

    lead = (runs,) if runs else ()
    sizes = {key: (value[0] if runs else value).numel() for key, value in sums.items()}
    parts = [value.double().reshape(*lead, -1) for value in sums.values()]
    flat = torch.cat(parts, -1) if len(parts) > 1 else parts[0]
    if add is not None:
        flat = add(torch.cat([flat, flat.new_tensor([rows])]))
        flat, rows = flat[:-1], int(flat[-1])
    table = flat.tolist()  # the one host sync; small Python arithmetic then beats NumPy's per-call cost tenfold
    scales = scale if runs and scale is not None else [scale] * max(runs, 1)
    finished = [
        finish_run(loss_name, values_of(row, sizes, sums, len(lead)), rows, run_scale, restored, only)
        for row, run_scale in zip(table if runs else [table], scales)
    ]
    if not runs:
        return finished[0]
    return {key: np.array([metrics[key] for metrics in finished]) for key in finished[0]}


def values_of(row: list, sizes: dict, sums: dict, lead: int) -> dict:
    """One run's sums by name: a list for a per-class or per-output sum, a float for a single one."""
    values, at = {}, 0
    for key, size in sizes.items():
        values[key] = row[at : at + size] if sums[key].dim() > lead else row[at]
        at += size
    return values


def finish_run(
    loss_name: str, values: dict, rows: int, scale=None, restored: bool = False, only: Optional[str] = None
) -> dict:
    task = "regression" if "moments" in values else "classification" if "correct" in values else None
    units = 1.0 if restored else scale or 1.0  # restored sums are in the target's units already
    from_sums = LOSS_FROM_SUMS.get(loss_name) if not restored else None  # the metric that is also the loss
    # a model's own step sums its loss alone, and its own metrics: no metric of riskmin's then
    names = measured(task)[1:] if task else ()
    if only is not None:
        names = tuple(name for name in names if name == only or (only == "loss" and name == from_sums))
    # after the loss (first) every metric measured has a finish, which the type of Metric.finish cannot say
    metrics = {name: METRICS[name].finish(values, rows, units, loss_name) for name in names}  # type: ignore[misc]
    # the user's own metrics: means over each batch, summed weighted by its rows ("own:<name>")
    metrics.update(
        {key[4:]: value / rows for key, value in values.items() if key.startswith("own:") and only in (None, key[4:])}
    )
    if only not in (None, "loss"):
        return metrics
    if from_sums:
        return {"loss": metrics[LOSS_FROM_SUMS[loss_name]], **metrics}
    return {"loss": values["loss"] / rows * loss_units(loss_name, scale), **metrics}


def loss_units(loss_name: str, scale=None):
    """What turns a loss on a target standardized by `scale` into the target's units: scale for l1, scale² for mse
    and huber (huber's threshold of 1 then lies at one scale of the target), 1 when the target is not standardized.
    `scale` is a number, or a NumPy array of one per run."""
    if scale is None or loss_name not in REGRESSION:
        return 1.0
    return scale if loss_name == "l1" else scale * scale
