"""That a model, its data and its loss fit together, checked once before training: a mistake is one sentence saying
what does not fit, never a torch traceback from inside the first step, nor a broadcast that trains on the wrong thing.

    check_pairs(dataset)            a Dataset yields (x, y) pairs; x that is not float32 is converted as it is read
    check_model(model, probe, loss) one forward pass on two training rows (a Probe): it takes the inputs, returns one
                                    tensor, and its outputs have the shape the loss needs for these targets
    check_columns(x, standardizer)  rows given to predict or evaluate have the columns the run was trained on
    gradient_checked(loss_of, loss) a step's loss carries a gradient back to the weights: known only once a step
    computes
                                    it, so checked there, at every step (an attribute read)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from ..config import RiskminError
from ..metrics import read_as
from ..distributed import error_headline
from ._callables import OwnLoss
from .._data._columns import classes_text
from .._data._inputs import each_input, forward, is_several
from ._losses import one_label_per_sample

PAIRS = "riskmin takes (x, y) pairs: return (features, target) from __getitem__"


class Float32Inputs(Dataset):
    """A Dataset whose inputs are read as float32, the precision riskmin's models are built in; targets as they are."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        # torch's Dataset declares no __len__; the ones riskmin splits have one
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index):
        x, y = self.dataset[index]
        return torch.as_tensor(x, dtype=torch.float32), y


def check_pairs(dataset: Dataset) -> Dataset:
    """`dataset` if its first item is an (x, y) pair with float32 x; wrapped to read x as float32 if x is another
    number type (float64, integers); else one RiskminError saying what it yields."""
    item = dataset[0]
    if isinstance(item, dict):
        raise RiskminError(f"the Dataset yields a dict (keys {', '.join(map(str, item))}); {PAIRS}")
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        what = f"{len(item)} items" if isinstance(item, (tuple, list)) else f"a {type(item).__name__}"
        raise RiskminError(f"the Dataset yields {what} per sample; {PAIRS}")
    if is_several(item[0]):  # several inputs, model(*x) or model(**x): each is the model's to read
        return dataset
    x, y = (torch.as_tensor(part) for part in item)
    if y.ndim == 0 and y.is_floating_point():
        raise RiskminError(
            "the Dataset yields each target as a 0-d tensor (a bare number), which batches into a "
            "vector the model's (batch, 1) outputs would be broadcast against; return it as a 1-element "
            "tensor, y.reshape(1)"
        )
    if x.is_complex() or x.dtype == torch.bool:
        raise RiskminError(f"the Dataset yields inputs of type {x.dtype}; give real numbers (float32)")
    return dataset if x.dtype == torch.float32 else Float32Inputs(dataset)


@dataclass
class Probe:
    """Two training rows as a batch of them reaches the model, and what a message about them names: the number of
    features, of outputs the data needs, the target columns' names, and whether the rows come from a Dataset."""

    x: object
    y: torch.Tensor
    n_inputs: int
    n_outputs: int
    target_names: list
    dataset: bool = False
    # the class labels the data names (text, or numbers not 0..k-1); none for class indices
    classes: list = field(default_factory=list)


def check_model(model, probe: Probe, loss: str) -> torch.Tensor:
    """Raise one RiskminError if `model` cannot take the training inputs or its outputs do not fit the targets under
    `loss`; else the outputs of the probe's rows, taken in evaluation mode (the check changes nothing)."""
    x, y = probe.x, probe.y
    check_arguments(model, x)
    try:
        output = outputs_of(model, x)
    except RuntimeError as error:
        kinds = {p.dtype for p in model.parameters() if p.is_floating_point()} - {torch.float32}
        if kinds:  # a float64 module, say: riskmin gives it float32 inputs
            raise RiskminError(
                f"the model cannot take the data's inputs ({error_headline(error)}): its weights are "
                f"{', '.join(sorted(str(kind).removeprefix('torch.') for kind in kinds))} and riskmin gives it "
                "float32 inputs; make it float32 with model.float()"
            ) from None
        if "Long, Int" in str(error):  # an embedding's lookup, given real numbers
            fix = (
                "which x as one tensor gives as float32 features; give x as ((x,), y): several inputs reach the model "
                "as they are"
                if isinstance(x, torch.Tensor)
                else "which must be whole numbers; give them as x.long()"  # several inputs reach it as given
            )
            raise RiskminError(
                f"the model cannot take the data's inputs ({error_headline(error)}): it looks up indices, {fix}"
            ) from None
        raise RiskminError(
            f"the model cannot take the data's inputs, {probe.n_inputs} features per sample "
            f"({error_headline(error)}); make its first layer take {probe.n_inputs} inputs"
        ) from None
    if not isinstance(output, torch.Tensor):
        raise RiskminError(
            f"the model returns a {type(output).__name__}, not a tensor; riskmin's losses take the "
            "predictions as one tensor: return them alone from forward"
        )
    if output.ndim == 0 or len(output) != len(y):  # a mean over the batch, say: the loss would broadcast, or fail
        rows = "one number" if output.ndim == 0 else f"{len(output)} row{'s' * (len(output) != 1)}"
        raise RiskminError(
            f"the model gives {rows} of outputs for a batch of {len(y)} samples; return one row of outputs per "
            "sample (leave out a reduction over the batch in forward)"
        )
    reader = loss
    if loss == "custom":  # a loss of one's own takes what it takes, but riskmin's metrics read the outputs as the
        # task's named loss does (metrics.read_as): one score per class, or one column per target
        loss, reader = read_as(loss, not y.is_floating_point()), "riskmin's metrics"
    if loss == "cross_entropy" and y.ndim != 1:  # a Dataset's label as a 1-element tensor batches into (n, 1)
        raise RiskminError(
            one_label_per_sample(
                y,
                fix="plain integers from the Dataset's __getitem__" if probe.dataset else "",
                reader="loss cross_entropy" if reader == loss else reader,
            )
        )
    if loss == "cross_entropy":
        classes = max(probe.n_outputs, int(y.max()) + 1, 2)
        if output.ndim != 2 or output.shape[1] < classes:
            raise RiskminError(
                f"the model gives outputs of shape {tuple(output.shape[1:])} per sample but "
                f"{'cross entropy needs' if reader == loss else reader + ' read'} one score per class ({classes} "
                f"classes); give its last layer {classes} outputs"
                + (', or use --loss bce (loss="bce") with one output for a yes/no target' if classes == 2 else "")
            )
        if probe.classes and output.shape[1] > len(probe.classes):  # named classes: an index beyond them is none
            raise RiskminError(
                f"the model gives {output.shape[1]} scores per sample but the data has {len(probe.classes)} classes "
                f"({classes_text(probe.classes, 6)}), and it could predict an output that is no class; give its "
                f"last layer {len(probe.classes)} outputs"
            )
    else:
        check_shapes(output, y, reader, probe.target_names or [])
    return output


# torch's batch normalizations, which in training normalize each feature over the batch's rows
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def check_one_row_batch(model: nn.Module, first_inputs: Callable, rows: int, config, world: int = 1) -> None:
    """Refuse, before training, a batch of one row where the model normalizes over the batch and cannot take one row in
    training (BatchNorm on rows of features: torch's ValueError in the middle of the first epoch): every batch of one
    row, or an epoch's last, each process's share of it under torchrun (`world` processes). The model is tried on a
    copy, in training mode, with one row of the training inputs, which `first_inputs(rows)` reads (a Dataset's through
    its DataLoader) only then."""
    import copy

    from ..data import schedule

    batch, steps = schedule(rows, config.batch_size, config.sampling, config.drop_last)
    whole = config.sampling == "random" or config.drop_last  # every batch of the same size
    last = batch if whole else rows - batch * (steps - 1)
    if min(batch, last) // world != 1 or not any(isinstance(m, BATCH_NORMS) for m in model.modules()):
        return
    try:
        with torch.no_grad():
            forward(copy.deepcopy(model).train(), each_input(lambda t: t[:1], first_inputs(1)))
    except ValueError:
        share = " in each of its processes" if world > 1 else ""
        if batch // world == 1:
            raise RiskminError(
                f"every batch holds 1 row{share}, which the model's BatchNorm cannot normalize in training; give "
                f"--batch-size (batch_size=) at least {2 * world}"
            ) from None
        raise RiskminError(
            f"the last batch of each epoch holds 1 of the {rows} training rows{share}, which the model's BatchNorm "
            "cannot normalize in training; set --drop-last (drop_last=True), or a batch size that leaves more than one "
            "row"
        ) from None


def check_shapes(output: torch.Tensor, y: torch.Tensor, loss: str, names: list, targets_given: bool = False) -> None:
    """Refuse outputs that `loss` would broadcast against the targets `y` (`names`: their columns' names): a vector
    against a column, from a squeeze in forward, or another number of columns. The remedy is the model's (its last
    layer), or with `targets_given`, rows given to a model that is done (evaluate's), the targets'."""
    if output.ndim == 1 and y.ndim == 2 and y.shape[1] == 1:
        raise RiskminError(
            f"the model gives one number per sample as a vector, outputs of shape (n,), but the targets are a "
            f"column, of shape (n, 1), as every loss gets them, and {loss} would broadcast one against the other; "
            "return the outputs as a column: leave out the squeeze in forward, or return output.unsqueeze(1)"
        )
    if output.shape[1:] == y.shape[1:]:
        return
    columns = (
        f"{y.shape[1]} column{'s' * (y.shape[1] > 1)}"
        + (f" ({', '.join(names)})" if names and not targets_given else "")
        if y.ndim == 2
        else f"shape {tuple(y.shape[1:])}"
    )
    if targets_given:
        width = output.shape[1] if output.ndim == 2 else 1
        named = f" ({', '.join(names)})" if len(names) == width else ""
        fix = f"give the targets {width} column{'s' * (width > 1)}{named}, one for each output"
    else:
        fix = f"give its last layer {y.shape[-1] if y.ndim == 2 else 1} output{'s' * (y.ndim == 2 and y.shape[1] > 1)}"
    raise RiskminError(
        f"the model gives outputs of shape {tuple(output.shape[1:])} per sample but the targets have {columns}, and "
        f"{loss} would broadcast one against the other; {fix}"
    )


def outputs_of(model, x):
    """The model's outputs for the rows `x`, in evaluation mode (no dropout drawn, no statistics moved), without a
    gradient; its mode as it was after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return forward(model, x)
    finally:
        model.train(was_training)


def check_evaluated_targets(model, x, y: torch.Tensor, loss: str, names: list) -> None:
    """Refuse targets to evaluate that the outputs would be broadcast against (check_shapes; `names`: the target
    columns a run was trained on). Class indices (cross entropy) and a loss of one's own, which takes what it takes,
    are not measured so."""
    if loss not in ("cross_entropy", "custom"):  # two rows, as fit's check takes: a squeeze() leaves one row no axis
        output = outputs_of(model, each_input(lambda t: t[:2], x))
        if isinstance(output, torch.Tensor):
            check_shapes(output, y[:2], loss, names, targets_given=True)


def check_arguments(model, x) -> None:
    """Refuse several inputs (a dict by name, a tuple in order) that the model's forward cannot be called with, in one
    sentence naming both, before the call fails inside torch."""
    import inspect

    if not isinstance(x, (dict, tuple, list)):
        return
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):  # a forward Python cannot read: the call itself says what is wrong
        return
    try:
        signature.bind(**x) if isinstance(x, dict) else signature.bind(*x)
    except TypeError as error:
        given = f"named {', '.join(x)}" if isinstance(x, dict) else "in order"
        raise RiskminError(
            f"the model's forward takes {signature} but the data gives {len(x)} inputs {given} ({error}); "
            + ("name each input after an argument of forward" if isinstance(x, dict) else "give forward one per input")
        ) from None


def probe(prepared) -> Probe:
    """Two training rows of a prepared run, on the training device, as a batch of them reaches the model."""
    if prepared.tensors:
        x, y = prepared.rows["train"]
        x, y = each_input(lambda t: t[:2], x), y[:2]
    else:
        splits = prepared.splits
        x, y = default_collate([splits.data[i] for i in splits.train[:2].tolist()])
        x, y = each_input(lambda t: t.to(prepared.device), x), y.to(prepared.device)
    names = prepared.names
    return Probe(
        x,
        y,
        prepared.n_inputs,
        prepared.n_outputs,
        names.get("targets") or [],
        not prepared.tensors,
        names.get("classes") or [],
    )


def check_columns(x: Union[torch.Tensor, tuple, dict], standardizer) -> None:
    """Refuse rows whose number of columns is not the number of features the run's preprocessing was fitted on."""
    if not isinstance(x, torch.Tensor):  # several inputs are the model's to check
        return
    expected = None if standardizer is None else standardizer.mean.numel()
    if expected == 0:  # the scaling of a run of several inputs, which it took as a tuple or dict
        raise RiskminError(
            f"the run was trained on inputs given as a tuple or dict, not one tensor of shape {tuple(x.shape)}; pass "
            "the rows so, (x,) for one input"
        )
    if expected is not None and (x.ndim != 2 or x.shape[1] != expected):
        given = f"{x.shape[1]} columns" if x.ndim == 2 else f"shape {tuple(x.shape)}"
        raise RiskminError(
            f"the rows have {given} but the run was trained on {expected} features; "
            f"give {expected} columns, in the order it was trained on"
        )


def gradient_checked(loss_of: Callable, loss_fn) -> Callable:
    """`loss_of(x, y)`, a training step's loss, refused in one RiskminError when it carries no gradient: backward would
    otherwise fail inside the step with torch's RuntimeError. `loss_fn` is the run's loss, named in the message."""

    def checked(x, y):
        loss = loss_of(x, y)
        if not loss.requires_grad:
            raise RiskminError(no_gradient(loss_fn))
        return loss

    return checked


def no_gradient(loss_fn) -> str:
    """Why a step's loss has no gradient, as far as riskmin can tell, and what to do."""
    if not torch.is_grad_enabled():
        return (
            "the training loss has no gradient because gradients are switched off: fit was called inside "
            "torch.no_grad() or torch.inference_mode(); call it outside them"
        )
    if isinstance(loss_fn, OwnLoss):
        return (
            f"loss {loss_fn.name} returned a tensor without a gradient (requires_grad is False), so training "
            "cannot follow it back to the weights; compute it from the model's outputs with torch operations, "
            "without .item(), .detach(), NumPy or torch.tensor(...)"
        )
    return (
        "the training loss has no gradient: the model's outputs depend on no trainable parameter (every parameter "
        "has requires_grad False, or forward detaches its result); unfreeze a parameter or keep the outputs "
        "attached"
    )
