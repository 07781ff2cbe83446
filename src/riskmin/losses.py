"""Losses, optimizers and learning-rate schedulers by name, and the metrics reported beside the loss."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim import optimizer as torch_optimizer

from .config import Config, RiskminError

LOSSES = {
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "huber": nn.HuberLoss,
    "cross_entropy": nn.CrossEntropyLoss,
    "bce": nn.BCEWithLogitsLoss,
}

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


def make_loss(name: str) -> nn.Module:
    return LOSSES[name]()


def settled(config: Config, y: torch.Tensor) -> Config:
    """`config` with loss "auto" made concrete: mse for real-valued targets, cross_entropy for class labels."""
    if config.loss != "auto":
        return config
    return config.replace(loss="mse" if torch.as_tensor(y).is_floating_point() else "cross_entropy")


def check_targets(loss: str, y: torch.Tensor, n_outputs: int | None = None) -> None:
    """Refuse a loss that cannot fit the targets, before any training starts."""
    if loss == "cross_entropy" and y.is_floating_point():
        raise RiskminError("loss cross_entropy needs integer class labels but the targets are real numbers; use --loss mse for regression")
    if loss != "cross_entropy" and not y.is_floating_point():
        raise RiskminError(f"loss {loss} needs real-valued targets but they are class labels; use --loss cross_entropy")
    if loss == "bce" and not ((y == 0) | (y == 1)).all():
        raise RiskminError("loss bce needs targets that are 0 or 1; use --loss mse for other values")


FUSED = {"sgd", "adam", "adamw"}  # torch has fused kernels for these; rmsprop gets the multi-tensor (foreach) one


def make_optimizer(config: Config, parameters) -> torch.optim.Optimizer:
    """The optimizer `config.optimizer`, with fused kernels where this torch has them for the device.

    Fused kernels update every parameter in one call instead of a Python loop over tensors:
    on CPU they make an Adam step of a small MLP about a fifth faster (benchmarks/overhead.py).
    """
    parameters = list(parameters)
    if not parameters:
        raise RiskminError("the model has no parameters that require a gradient, so there is nothing to train; unfreeze some")
    options = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "sgd":
        options.update(momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "rmsprop":
        options.update(momentum=config.momentum)
    if config.optimizer in FUSED and fused_supported(parameters):
        return OPTIMIZERS[config.optimizer](parameters, fused=True, **options)
    return OPTIMIZERS[config.optimizer](parameters, foreach=True, **options)


class FusedStep:
    """`optimizer.step()` for a fused SGD, Adam or AdamW, calling torch's fused kernel on tensor lists it keeps.

    torch.optim's step gathers its tensors and groups them by device and dtype on every call:
    about 90 us on CPU, a sixth of a step of a 20-64-64-1 MLP at batch 256. This makes the
    same kernel call with the same arguments, so the weights are bitwise those of
    `optimizer.step()` (tested). It goes through `optimizer.step()` itself on its first call
    (which creates the optimizer's state) and whenever a shortcut could differ: a missing
    gradient, a state replaced by `load_state_dict`, step hooks, a tensor learning rate,
    amsgrad, maximize, or more than one parameter group.

    >>> model = nn.Linear(3, 1)
    >>> step = FusedStep(torch.optim.Adam(model.parameters(), fused=True))
    >>> model(torch.ones(2, 3)).sum().backward(); step()
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.kernel = fused_kernel(optimizer)
        self.group, self.state = None, None  # the parameter group and state dict the lists were taken from

    def __call__(self) -> None:
        optimizer = self.optimizer
        if self.kernel is None:  # rmsprop, a foreach or plain optimizer, or settings the shortcut does not cover
            optimizer.step()
            return
        if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks \
                or torch_optimizer._global_optimizer_pre_hooks or torch_optimizer._global_optimizer_post_hooks:
            optimizer.step()  # someone watches the steps: let them see every one
            return
        if optimizer.state is not self.state or optimizer.param_groups[0] is not self.group:
            optimizer.step()
            self.remember()
            return
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):  # not `None in grads`: that compares tensors with None, about 15 us each
            optimizer.step()
            return
        group = self.group
        if self.kernel is torch._fused_sgd_:
            torch._fused_sgd_(self.params, grads, self.buffers, weight_decay=group["weight_decay"], momentum=group["momentum"],
                              lr=group["lr"], dampening=group["dampening"], nesterov=group["nesterov"], maximize=False,
                              is_first_step=False, grad_scale=None, found_inf=None)
            return
        beta1, beta2 = group["betas"]
        self.counts.add_(1)  # every parameter's step count at once
        self.kernel(self.params, grads, self.averages, self.squares, [], self.steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                    beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)

    def remember(self) -> None:
        """Take the tensor lists from the optimizer's state, or leave the shortcut off if its state is not complete."""
        optimizer, self.state = self.optimizer, None
        group = optimizer.param_groups[0]
        self.group, self.params = group, list(group["params"])
        states = [optimizer.state.get(p, {}) for p in self.params]
        if self.kernel is torch._fused_sgd_:
            self.buffers = [s.get("momentum_buffer") for s in states] if group["momentum"] else []
            complete = all(b is not None for b in self.buffers)
        else:
            self.steps, self.averages, self.squares = ([s.get(k) for s in states] for k in ("step", "exp_avg", "exp_avg_sq"))
            complete = all(t is not None for t in self.steps + self.averages + self.squares) and not isinstance(group["betas"][0], torch.Tensor)
            if complete:  # the step counts become views of one tensor: one addition a step instead of torch's foreach over scalars (13 us)
                self.counts = torch.stack(self.steps)
                for i, s in enumerate(states):
                    s["step"] = self.counts[i]
                self.steps = [s["step"] for s in states]
        alike = len({(p.device, p.dtype) for p in self.params}) == 1  # torch.optim calls the kernel once per device and dtype
        if complete and alike and not isinstance(group["lr"], torch.Tensor):
            self.state = optimizer.state


def fused_kernel(optimizer: torch.optim.Optimizer):
    """torch's fused kernel that `optimizer.step()` calls, or None where FusedStep should not stand in for it."""
    kinds = {torch.optim.SGD: torch._fused_sgd_, torch.optim.Adam: torch._fused_adam_, torch.optim.AdamW: torch._fused_adamw_}
    kernel = kinds.get(type(optimizer))
    if kernel is None or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if not group.get("fused") or group.get("maximize") or group.get("amsgrad") or group.get("differentiable") or group.get("capturable"):
        return None
    if kernel is torch._fused_adam_ and group.get("decoupled_weight_decay"):
        return torch._fused_adamw_  # AdamW is Adam with decoupled weight decay
    return kernel


def fused_supported(parameters) -> bool:
    try:  # torch's own list of devices with fused optimizer kernels; older versions lack it
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:
        return False
    devices = {p.device.type for p in parameters}
    return len(devices) == 1 and devices <= set(_get_fused_kernels_supported_devices()) and all(p.is_floating_point() for p in parameters)


def make_scheduler(config: Config, optimizer):
    """The schedule `config.scheduler`, stepped once per epoch (plateau: once per validation)."""
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs)
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=config.mode, factor=config.gamma, patience=max(config.patience // 2, 1))
    return None


def batch_metrics(loss_name: str, output: torch.Tensor, y: torch.Tensor) -> dict:
    """Sums over the batch of the metrics besides the loss, as 0-dim tensors (no host sync)."""
    if loss_name == "cross_entropy":
        return {"accuracy": (output.argmax(1) == y).sum()}
    if loss_name == "bce":
        return {"accuracy": ((output > 0) == (y > 0.5)).all(1).sum()}
    return {}


REGRESSION = ("mse", "l1", "huber")
LOSS_FROM_SUMS = {"mse": "mse", "l1": "mae", "cross_entropy": "log_loss", "bce": "log_loss"}  # losses that are one of the metrics


def metric_sums(loss_name: str, output: torch.Tensor, y: torch.Tensor) -> dict:
    """Sums over a batch from which `finish_metrics` makes the metrics besides the loss; tensors, no host sync.

    Regression: one vector of the sums of absolute errors and of y, and of their squares, per output.
    Classification: correct answers, and per class the true positives, predictions and
    actual members for macro F1; log loss is the cross entropy (or binary cross entropy).
    """
    if loss_name in REGRESSION:
        columns = torch.cat([(output - y).abs(), y], 1).double()  # summed in float64: any order of rows gives the same metrics
        return {"moments": torch.cat([columns, columns * columns], 1).sum(0)}  # sums of |e|, y, e^2, y^2 per output
    if loss_name == "cross_entropy":
        predicted, k = output.argmax(1), output.shape[1]
        return {"correct": (predicted == y).sum(), "tp": torch.bincount(y[predicted == y], minlength=k),
                "predicted": torch.bincount(predicted, minlength=k), "actual": torch.bincount(y, minlength=k),
                "nll": nn.functional.cross_entropy(output.double(), y, reduction="sum")}
    predicted, actual = output > 0, y > 0.5  # bce: each output column a yes/no label
    return {"correct": (predicted == actual).all(1).sum(), "tp": (predicted & actual).sum(0), "predicted": predicted.sum(0),
            "actual": actual.sum(0), "tn": (~predicted & ~actual).sum(0),
            "nll": nn.functional.binary_cross_entropy_with_logits(output.double(), y.double(), reduction="sum") / y.shape[1]}


def finish_metrics(loss_name: str, sums: dict, rows: int, add=None) -> dict:
    """The loss and metrics of an evaluation from the sums of `metric_sums` over `rows` rows, read in one transfer.

    Regression: loss, mse, rmse, mae, r2 (the mean over outputs, as scikit-learn's default).
    Classification: loss, accuracy, f1 (macro over the classes that occur), log_loss.
    `add`, under torchrun, sums the vector of sums and rows over the processes in place.
    """
    keys = list(sums)
    flat = torch.cat([(v if v.dtype == torch.float64 else v.double()).reshape(-1) for v in sums.values()]) if len(sums) > 1 else sums[keys[0]]
    if add is not None:
        flat = add(torch.cat([flat, flat.new_tensor([rows])]))
        rows = int(flat[-1])
    flat = flat.tolist()  # the one host sync
    values, at = {}, 0
    for key in keys:
        size = sums[key].numel()
        values[key] = flat[at:at + size] if sums[key].ndim else flat[at]
        at += size
    if loss_name in REGRESSION:
        m = len(values["moments"]) // 4
        ae, y, se, yy = (values["moments"][i * m:(i + 1) * m] for i in range(4))
        mse = sum(se) / (rows * m)
        r2 = [1 - e / (q - s * s / rows) for e, s, q in zip(se, y, yy) if q - s * s / rows > 0]
        metrics = {"mse": mse, "rmse": math.sqrt(mse), "mae": sum(ae) / (rows * m), "r2": sum(r2) / len(r2) if r2 else float("nan")}
    else:
        tp, predicted, actual = values["tp"], values["predicted"], values["actual"]
        if loss_name == "bce" and len(tp) == 1:  # one yes/no column: two classes, the no class counted from the rest
            tp, predicted, actual = [values["tn"][0], tp[0]], [rows - predicted[0], predicted[0]], [rows - actual[0], actual[0]]
        f1 = [2 * t / (p + a) for t, p, a in zip(tp, predicted, actual) if p + a > 0]
        metrics = {"accuracy": values["correct"] / rows, "f1": sum(f1) / len(f1), "log_loss": values["nll"] / rows}
    loss = metrics[LOSS_FROM_SUMS[loss_name]] if loss_name in LOSS_FROM_SUMS else values["loss"] / rows
    return {"loss": loss, **metrics}


def least_squares_loss(prepared, bias: bool = True):
    """Test MSE of the closed-form least-squares fit on the training rows: what a linear model should reach."""
    if "test" not in prepared.rows:
        return None
    return least_squares_test_loss(*prepared.rows["train"], *prepared.rows["test"], bias=bias)


def least_squares_test_loss(x, y, x_test, y_test, bias: bool = True) -> float:
    """Solve min_H ||y - H x||^2 on (x, y) in float64 and return the mean squared error on the test rows."""
    x, y, x_test, y_test = (t.detach().cpu().double() for t in (x, y, x_test, y_test))
    if bias:
        x, x_test = (torch.cat([t, torch.ones(len(t), 1, dtype=t.dtype)], 1) for t in (x, x_test))
    solution = torch.linalg.lstsq(x, y, driver="gelsd").solution
    return float(((x_test @ solution - y_test) ** 2).mean())
