"""Optimizers and learning-rate schedulers by name; the arithmetic of a step (mixed precision) and how batches' losses
are weighed when their gradients accumulate into one step."""

from __future__ import annotations

import contextlib
import inspect
import math
from typing import Optional

import torch

from ..config import Config, RiskminError, warn
from ._callables import user_optimizer, user_scheduler
from ..data import schedule

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


DEFAULT_WEIGHT_DECAY = {"adamw": 0.01}  # torch's default for AdamW, "Adam with better weight decay"; the others' is 0
FUSED = {"sgd", "adam", "adamw"}  # torch has fused kernels for these; rmsprop gets the multi-tensor (foreach) one


def make_optimizer(config: Config, parameters, given=None) -> torch.optim.Optimizer:
    """The optimizer `config.optimizer`, with fused kernels where this torch has them for the device; or the user's
    own, `given` (optimizer "custom"): an Optimizer class or a factory of the parameters.

    Fused kernels update every parameter in one call instead of a Python loop over tensors, which on CPU is much of a
    small model's step (benchmarks/overhead.py measures the step against a hand-written loop).
    """
    parameters = list(parameters)
    if not parameters:
        raise RiskminError(
            "the model has no parameters that require a gradient, so there is nothing to train; unfreeze some"
        )
    if given is not None:
        return user_optimizer(given, config, parameters)
    if config.optimizer == "custom":
        raise RiskminError(
            "optimizer custom is one of your own, which only riskmin.fit takes (optimizer=MyOptimizer); "
            "use an optimizer by name here"
        )
    options: dict = {"lr": config.lr, "weight_decay": weight_decay(config)}  # and each optimizer's own, of any type
    if config.optimizer == "sgd":
        options.update(momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "rmsprop":
        options.update(momentum=config.momentum)
    if config.optimizer in ("adam", "adamw"):
        # a TOML file may give 0, an int
        options.update(betas=(float(config.beta1), float(config.beta2)), eps=float(config.eps))
    kind = OPTIMIZERS[config.optimizer]
    if config.optimizer in FUSED and "fused" in inspect.signature(kind).parameters:
        try:
            return kind(parameters, fused=True, **options)
        except RuntimeError:  # torch's own refusal: a device or dtype without fused kernels in this build
            pass
    return kind(parameters, foreach=True, **options)


AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}  # precision -> the dtype autocast computes in


def mixed_precision(config: Config, device: torch.device) -> tuple:
    """(autocast, scaler) of a run at `config.precision`: the context the forward pass and the loss run in, and the
    torch.amp.GradScaler its gradients go through. At "32" the context does nothing and the scaler is disabled
    (scale, step and update pass straight through); only float16 gradients need the loss scaled up, lest small ones
    round to zero. A precision the device cannot compute in is refused in one sentence.

    >>> autocast, scaler = mixed_precision(Config(precision="bf16-mixed"), torch.device("cpu"))
    >>> with autocast: torch.ones(2, 2) @ torch.ones(2, 2)
    tensor([[2., 2.],
            [2., 2.]], dtype=torch.bfloat16)
    """
    check_precision(config.precision, device)
    scaler = torch.amp.GradScaler(
        device.type if device.type == "cuda" else "cpu", enabled=config.precision == "16-mixed"
    )
    if config.precision == "32":
        return contextlib.nullcontext(), scaler
    return torch.autocast(device.type, dtype=AUTOCAST[config.precision]), scaler


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse, in one sentence, a precision the training device cannot compute in."""
    if precision == "16-mixed" and device.type != "cuda":
        raise RiskminError(
            f"precision 16-mixed needs a CUDA GPU, which scales float16 gradients; on {device.type} use "
            "precision bf16-mixed or 32"
        )
    if precision == "bf16-mixed" and device.type not in ("cpu", "cuda"):
        raise RiskminError(
            f"precision bf16-mixed runs on the CPU or a CUDA GPU, not on {device.type}; use precision 32"
        )
    if precision == "bf16-mixed" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise RiskminError(
            f"this GPU ({torch.cuda.get_device_name(device)}) does not compute in bfloat16; use "
            "precision 16-mixed or 32"
        )


def accumulation_shares(config: Config, rows: int) -> Optional[list]:
    """Each batch's share of the step its gradient accumulates in (group_shares), for an epoch over `rows` training rows
    in batches as `config` says; None when every batch is a step. Both engines weigh the batches by these."""
    if config.accumulate == 1:
        return None
    batch, batches = schedule(rows, config.batch_size, config.sampling, config.drop_last)
    if config.accumulate > batches:
        warn(
            f"accumulate {config.accumulate} is more than the {batches} batch(es) of an epoch, whose last group is "
            f"stepped however short, so each step adds up {batches}; lower accumulate or the batch size"
        )
    return group_shares(rows, batch, batches, config.accumulate)


def group_shares(rows: int, batch: int, batches: int, accumulate: int) -> list:
    """How much each of an epoch's `batches` batches weighs in the step its gradient goes to: its share of the rows of
    its group of `accumulate` batches (the last group of an epoch may hold fewer, the last batch fewer rows). Each
    batch's mean loss times its share adds up to the mean loss over the group's rows, so the summed gradient is that
    of one batch of them all.

    >>> group_shares(rows=104, batch=16, batches=7, accumulate=4)
    [0.25, 0.25, 0.25, 0.25, 0.4, 0.4, 0.2]
    """
    sizes = [batch] * (batches - 1) + [min(batch, rows - (batches - 1) * batch)]
    shares = []
    for start in range(0, batches, accumulate):
        group = sizes[start : start + accumulate]
        shares += [size / sum(group) for size in group]
    return shares


def weight_decay(config: Config) -> float:
    """The weight decay in force: the one set, else the optimizer's own default.

    >>> (weight_decay(Config(optimizer="adamw")), weight_decay(Config(optimizer="adam")),
    ...  weight_decay(Config(optimizer="adamw", weight_decay=0.0)))
    (0.01, 0.0, 0.0)
    """
    return config.weight_decay if config.weight_decay is not None else DEFAULT_WEIGHT_DECAY.get(config.optimizer, 0.0)


def make_scheduler(config: Config, optimizer, given=None, total_steps: int = 0):
    """The schedule `config.scheduler` or the user's own factory `given`, stepped once per epoch or step as
    `config.scheduler_interval` says (plateau: once per validation). The lengths of cosine, one_cycle and linear_warmup
    count in those units: the run's epochs, or its `total_steps`."""
    if given is not None:
        return user_scheduler(given, optimizer)
    if config.scheduler == "custom":
        raise RiskminError(
            "scheduler custom is a factory of your own, which only riskmin.fit takes "
            "(scheduler=make_schedule); use a scheduler by name here"
        )
    schedules = torch.optim.lr_scheduler
    assert config.epochs is not None  # made final before a schedule is built (Config.epochs_for)
    length = max(total_steps if config.scheduler_interval == "step" else config.epochs, 1)
    if config.scheduler == "step":
        return schedules.StepLR(optimizer, config.step_size, config.gamma)
    if config.scheduler == "cosine":
        return schedules.CosineAnnealingLR(optimizer, length)
    if config.scheduler == "plateau":
        return schedules.ReduceLROnPlateau(
            optimizer, mode=config.goal, factor=config.gamma, patience=max(config.patience // 2, 1)
        )
    if config.scheduler == "one_cycle":  # momentum left as set: the cycle is the learning rate's
        return schedules.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=length,
            cycle_momentum=False,
        )
    if config.scheduler == "linear_warmup":
        warmup = config.warmup or max(length // 10, 1)
        return schedules.LinearLR(optimizer, start_factor=1 / warmup, total_iters=warmup - 1) if warmup > 1 else None
    return None


class PerRun:
    """SGD, Adam or AdamW over stacked parameters (runs on the first axis) whose learning rate, weight decay, (sgd)
    momentum and learning-rate schedule may differ by run, in public tensor operations: each of those settings is a
    tensor of one value per run, broadcast over a parameter's other axes, so one operation updates every run.

    Each run's update is that of torch's own single-tensor algorithm (torch.optim with foreach=False) at its settings,
    to float32 rounding (tested against torch). It keeps its own state rather than being a torch.optim.Optimizer: the
    first use of one imports torch's compiler front end (dynamo), seconds that a command training a thousand small
    runs would otherwise spend mostly importing (benchmarks/startup.py).
    Each setting's schedule factor is set per run by PerRunSchedule each epoch (1 at the start).

    >>> w = torch.zeros(2, 3, requires_grad=True); w.grad = torch.ones(2, 3)
    >>> PerRun([w], Config(optimizer="sgd"), torch.tensor([0.5, 1.0]), torch.zeros(2)).step(); w[:, 0].tolist()
    [-0.5, -1.0]
    """

    def __init__(
        self,
        params,
        config: Config,
        rates: torch.Tensor,
        decays: torch.Tensor,
        momenta: Optional[torch.Tensor] = None,
        schedules: Optional[list] = None,
    ):
        self.params, self.config = list(params), config
        runs = len(rates)
        self.state = [{} for _ in self.params]  # per parameter: its buffers and step count, made by its first step
        self.schedules = schedules or [schedule_of(config)] * runs
        momenta = momenta if momenta is not None else torch.full((runs,), config.momentum, dtype=torch.float64)
        # per parameter, each setting as a number where every run shares it (torch's own arithmetic, fewer operations),
        # else as a tensor shaped to broadcast over the parameter; made once here, and for the rate when factors change
        self.rates = per_run(rates)
        self.decays, self.momenta = ([along(per_run(values), p) for p in self.params] for values in (decays, momenta))
        self.factors = 1.0

    @property
    def factors(self):
        """The schedules' factors for the epoch under way: a number, or one per run (PerRunSchedule sets them)."""
        return self._factors

    @factors.setter
    def factors(self, factors) -> None:
        self._factors = factors
        rate = scaled(self.rates, factors)
        self.lrs = [along(rate, p) for p in self.params]

    @classmethod
    def alike(cls, params, config: Config, runs: int) -> "PerRun":
        """Every one of `runs` runs with the settings of `config`."""
        rate, decay = (torch.full((runs,), value, dtype=torch.float64) for value in (config.lr, weight_decay(config)))
        return cls(params, config, rate, decay)

    def state_dict(self) -> dict:
        return {"state": {i: dict(state) for i, state in enumerate(self.state) if state}}

    def load_state_dict(self, state: dict) -> None:
        self.state = [dict(state["state"].get(i, {})) for i in range(len(self.params))]

    @torch.no_grad()
    def step(self) -> None:
        """One update of every run, of each parameter that has a gradient (as torch's optimizers, which skip the
        others)."""
        for param, state, lr, decay, momentum in zip(self.params, self.state, self.lrs, self.decays, self.momenta):
            if param.grad is not None:
                if self.config.optimizer == "sgd":
                    sgd(param, param.grad, state, lr, decay, momentum, self.config.nesterov)
                else:
                    adam(param, param.grad, state, lr, decay, self.config)


def per_run(values: torch.Tensor):
    """A float where every run has the same value, else the float64 tensor of the values."""
    return float(values[0]) if bool((values == values[0]).all()) else values.to(torch.float64)


def along(value, param: torch.Tensor):
    """A per-run setting as `param`'s operations take it: a number as it is, a tensor of one value per run in the
    parameter's dtype and device, shaped to broadcast over its own axes."""
    return value if isinstance(value, float) else value.to(param).view((-1,) + (1,) * (param.ndim - 1))


def scaled(rates, factors):
    """The learning rates times the schedules' factors, a number where both are."""
    if isinstance(rates, float) and isinstance(factors, float):
        return rates * factors
    return torch.as_tensor(rates, dtype=torch.float64) * torch.as_tensor(factors, dtype=torch.float64)


def zero(value) -> bool:
    return value == 0 if isinstance(value, float) else bool((value == 0).all())


def plus(tensor, other, scale):
    """tensor + scale * other: by torch's fused add for a number, broadcast for a per-run tensor."""
    return tensor.add(other, alpha=scale) if isinstance(scale, float) else tensor + scale * other


def sgd(param, grad, state: dict, lr, decay, momentum, nesterov: bool) -> None:
    """torch.optim.SGD's single-tensor update (dampening 0); a momentum of 0 in some runs makes their buffer the
    gradient."""
    if not zero(decay):
        grad = plus(grad, param, decay)
    if not zero(momentum):
        buffer = state.get("momentum_buffer")
        if buffer is None:
            buffer = state["momentum_buffer"] = grad.clone()
        else:
            buffer.mul_(momentum).add_(grad)
        grad = plus(grad, buffer, momentum) if nesterov else buffer
    if isinstance(lr, float):
        param.add_(grad, alpha=-lr)
    else:
        param.sub_(grad * lr)


def adam(param, grad, state: dict, lr, decay, config: Config) -> None:
    """torch.optim.Adam's (and AdamW's, decoupled decay) single-tensor update, without amsgrad."""
    if not state:
        state.update(step=0, exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param))
    state["step"] += 1
    beta1, beta2, step = config.beta1, config.beta2, state["step"]
    if not zero(decay):
        if config.optimizer == "adamw":
            param.mul_(1 - lr * decay)
        else:
            grad = plus(grad, param, decay)
    state["exp_avg"].lerp_(grad, 1 - beta1)
    state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denominator = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2**step)).add_(config.eps)
    step_size = lr / (1 - beta1**step)
    if isinstance(step_size, float):
        param.addcdiv_(state["exp_avg"], denominator, value=-step_size)
    else:
        param.sub_(state["exp_avg"] / denominator * step_size)


def per_run_supported(optimizer: str) -> bool:
    """Whether runs of one stack may differ in learning rate, weight decay, momentum and schedule under `optimizer`."""
    return optimizer in ("sgd", "adam", "adamw")


def schedule_of(config: Config) -> tuple:
    """(scheduler, step_size, gamma): what PerRunSchedule needs of a run's settings."""
    return config.scheduler, config.step_size, config.gamma


PER_RUN_SCHEDULES = ("none", "step", "cosine")  # the schedules whose closed form schedule_factor knows


def schedule_factor(schedule: tuple, epoch: int, epochs: int) -> float:
    """The learning rate after `epoch` epochs over the initial one, by the closed form of the schedule make_scheduler
    builds: StepLR's gamma ** (epoch // step_size), CosineAnnealingLR's (1 + cos(pi epoch / epochs)) / 2 (eta_min 0).

    >>> schedule_factor(("step", 10, 0.5), 25, 100), schedule_factor(("cosine", 30, 0.1), 50, 100)
    (0.25, 0.5)
    """
    scheduler, step_size, gamma = schedule
    if scheduler == "step":
        return gamma ** (epoch // step_size)
    if scheduler == "cosine":
        return (1 + math.cos(math.pi * epoch / epochs)) / 2
    assert scheduler == "none", f"{scheduler} is not in PER_RUN_SCHEDULES"  # compare's stacks keep the others apart
    return 1.0


class PerRunSchedule:
    """The schedules of a PerRun's runs, each its own, stepped once per epoch as torch's schedulers are.

    Each factor comes from the closed form of its schedule at the epoch (schedule_factor), so the
    state is the epoch alone: a smaller stack goes on from `state_dict()` where the larger one was.
    torch's CosineAnnealingLR reaches the same values by a recursion; the two agree to rounding.

    >>> w = torch.zeros(2, 1, requires_grad=True)
    >>> optimizer = PerRun([w], Config(optimizer="sgd", epochs=4), torch.tensor([1.0, 1.0]), torch.zeros(2), None,
    ...                    [("step", 1, 0.5), ("cosine", 30, 0.1)])
    >>> schedule = PerRunSchedule(optimizer); schedule.step(); optimizer.factors.tolist()
    [0.5, 0.8535533905932737]
    """

    def __init__(self, optimizer: PerRun):
        self.optimizer, self.last_epoch = optimizer, 0

    def step(self) -> None:
        self.last_epoch += 1
        self._set()

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = state["last_epoch"]
        self._set()

    def _set(self) -> None:
        epochs = self.optimizer.config.epochs  # make_scheduler's T_max for cosine
        assert epochs is not None  # made final before a schedule is built (Config.epochs_for)
        factors = {
            schedule: schedule_factor(schedule, self.last_epoch, epochs) for schedule in set(self.optimizer.schedules)
        }
        self.optimizer.factors = torch.tensor(
            [factors[schedule] for schedule in self.optimizer.schedules], dtype=torch.float64
        )
