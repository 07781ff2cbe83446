"""Optimizers and learning-rate schedulers by name."""

from __future__ import annotations

import math
from typing import Optional

import torch

from .config import Config, RiskminError
from ._callables import own_optimizer, own_scheduler

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

    Fused kernels update every parameter in one call instead of a Python loop over tensors:
    on CPU they make an Adam step of a small MLP about a fifth faster (benchmarks/overhead.py).
    """
    parameters = list(parameters)
    if not parameters:
        raise RiskminError("the model has no parameters that require a gradient, so there is nothing to train; unfreeze some")
    if given is not None:
        return own_optimizer(given, config, parameters)
    if config.optimizer == "custom":
        raise RiskminError("optimizer custom is one of your own, which only riskmin.fit takes (optimizer=MyOptimizer); "
                           "use an optimizer by name here")
    options = {"lr": config.lr, "weight_decay": weight_decay(config)}
    if config.optimizer == "sgd":
        options.update(momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "rmsprop":
        options.update(momentum=config.momentum)
    if config.optimizer in FUSED and fused_supported(parameters):
        return OPTIMIZERS[config.optimizer](parameters, fused=True, **options)
    return OPTIMIZERS[config.optimizer](parameters, foreach=True, **options)


def weight_decay(config: Config) -> float:
    """The weight decay in force: the one set, else the optimizer's own default.

    >>> weight_decay(Config(optimizer="adamw")), weight_decay(Config(optimizer="adam")), weight_decay(Config(optimizer="adamw", weight_decay=0.0))
    (0.01, 0.0, 0.0)
    """
    return config.weight_decay if config.weight_decay is not None else DEFAULT_WEIGHT_DECAY.get(config.optimizer, 0.0)


def fused_supported(parameters) -> bool:
    try:  # torch's own list of devices with fused optimizer kernels; older versions lack it
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:
        return False
    devices = {p.device.type for p in parameters}
    return len(devices) == 1 and devices <= set(_get_fused_kernels_supported_devices()) and all(p.is_floating_point() for p in parameters)


def make_scheduler(config: Config, optimizer, given=None, total_steps: int = 0):
    """The schedule `config.scheduler` or the user's own factory `given`, stepped once per epoch or step as
    `config.scheduler_interval` says (plateau: once per validation). The lengths of cosine, one_cycle and linear_warmup
    count in those units: the run's epochs, or its `total_steps`."""
    if given is not None:
        return own_scheduler(given, optimizer)
    if config.scheduler == "custom":
        raise RiskminError("scheduler custom is a factory of your own, which only riskmin.fit takes (scheduler=make_schedule); "
                           "use a scheduler by name here")
    schedules = torch.optim.lr_scheduler
    length = max(total_steps if config.scheduler_interval == "step" else config.epochs, 1)
    if config.scheduler == "step":
        return schedules.StepLR(optimizer, config.step_size, config.gamma)
    if config.scheduler == "cosine":
        return schedules.CosineAnnealingLR(optimizer, length)
    if config.scheduler == "plateau":
        return schedules.ReduceLROnPlateau(optimizer, mode=config.mode, factor=config.gamma, patience=max(config.patience // 2, 1))
    if config.scheduler == "one_cycle":  # momentum left as set: the cycle is the learning rate's
        return schedules.OneCycleLR(optimizer, max_lr=[group["lr"] for group in optimizer.param_groups], total_steps=length,
                                    cycle_momentum=False)
    if config.scheduler == "linear_warmup":
        warmup = config.warmup or max(length // 10, 1)
        return schedules.LinearLR(optimizer, start_factor=1 / warmup, total_iters=warmup - 1) if warmup > 1 else None
    return None


class PerRun:
    """SGD, Adam or AdamW over stacked parameters (runs on the first axis) whose learning rate, weight decay, (sgd)
    momentum and learning-rate schedule may differ by run, through torch's fused kernels: bitwise the update each run's
    own optimizer makes at the same learning rate.

    Runs with the same settings lie next to each other in a stack (a candidate's runs), so
    each such block is one call of the kernel on views of the stacked tensors. A block steps
    with its rate times its schedule's factor, which PerRunSchedule sets each epoch (1 at the start).
    It keeps its own state rather than being a torch.optim.Optimizer: the first use of one
    imports torch._dynamo, about 1.5 s of a command that trains a thousand runs in three.

    >>> w = torch.zeros(2, 3, requires_grad=True); w.grad = torch.ones(2, 3)
    >>> PerRun([w], Config(optimizer="sgd"), torch.tensor([0.5, 1.0]), torch.zeros(2)).step(); w[:, 0].tolist()
    [-0.5, -1.0]
    """

    def __init__(self, params, config: Config, rates: torch.Tensor, decays: torch.Tensor, momenta: Optional[torch.Tensor] = None,
                 schedules: Optional[list] = None):
        self.params, self.config = list(params), config
        self.state = [{} for _ in self.params]  # per parameter: its buffers, made by the first step
        self.kernel = {"sgd": "_fused_sgd_", "adam": "_fused_adam_", "adamw": "_fused_adamw_"}[config.optimizer]
        momenta = momenta.tolist() if momenta is not None else [config.momentum] * len(rates)
        schedules = schedules or [schedule_of(config)] * len(rates)
        self.blocks = []  # [first run, end, (rate, decay, momentum, schedule)] of each run of equal settings
        for run, settings in enumerate(zip(rates.tolist(), decays.tolist(), momenta, schedules)):
            if self.blocks and self.blocks[-1][2] == settings:
                self.blocks[-1][1] = run + 1
            else:
                self.blocks.append([run, run + 1, settings])
        self.factors = [1.0] * len(self.blocks)  # each block's schedule factor, for the epoch under way
        self.chosen, self.lists = None, None  # the parameters stepped last, and what each block's kernel call takes of them

    @classmethod
    def alike(cls, params, config: Config, runs: int) -> "PerRun":
        """Every one of `runs` runs with the settings of `config`."""
        rate, decay = (torch.full((runs,), value, dtype=torch.float64) for value in (config.lr, weight_decay(config)))
        return cls(params, config, rate, decay)

    def state_dict(self) -> dict:
        return {"state": {i: dict(state) for i, state in enumerate(self.state) if state}}

    def load_state_dict(self, state: dict) -> None:
        self.state = [dict(state["state"].get(i, {})) for i in range(len(self.params))]
        self.lists = None

    def step(self) -> None:
        """One update of every run, of each parameter that has a gradient (as torch's optimizers, which skip the others).
        The tensor lists each block's kernel call takes are made once and kept, not sliced again at every step, and
        the fused kernels need no torch.no_grad, as FusedStep calls them."""
        chosen = [i for i, p in enumerate(self.params) if p.grad is not None]
        states = [self.state[i] for i in chosen]
        first = not states[0]
        if first:
            self._fill_state([self.params[i] for i in chosen], states)
        if self.lists is None or chosen != self.chosen or (first and states[0]):  # new parameters or new buffers to take
            self.chosen, self.lists = chosen, self._block_lists(chosen)
        if self.config.optimizer != "sgd":
            self.counts.add_(1)  # every stepped parameter's count at once: they are views of one tensor
        grads, whole = [self.params[i].grad for i in chosen], len(self.blocks) == 1
        kernel = getattr(torch, self.kernel)
        for (start, end, (rate, decay, momentum, _)), factor, lists in zip(self.blocks, self.factors, self.lists):
            own = grads if whole else [g[start:end] for g in grads]
            if self.config.optimizer == "sgd":
                kernel(lists[0], own, lists[1] if momentum else [], weight_decay=decay, momentum=momentum, lr=rate * factor,
                       dampening=0.0, nesterov=self.config.nesterov, maximize=False, is_first_step=first, grad_scale=None, found_inf=None)
            else:
                kernel(lists[0], own, lists[1], lists[2], [], self.steps, amsgrad=False, lr=rate * factor, beta1=0.9,
                       beta2=0.999, weight_decay=decay, eps=1e-8, maximize=False, grad_scale=None, found_inf=None)

    def _block_lists(self, chosen: list) -> list:
        """Per block, its views of the parameters `chosen` and of their buffers; their step counts made views of one tensor."""
        params, states = [self.params[i] for i in chosen], [self.state[i] for i in chosen]
        sgd, whole = self.config.optimizer == "sgd", len(self.blocks) == 1
        if not sgd:
            self.counts = torch.stack([state["step"] for state in states])
            for i, state in enumerate(states):
                state["step"] = self.counts[i]
            self.steps = [state["step"] for state in states]
        names = [name for name in (("momentum_buffer",) if sgd else ("exp_avg", "exp_avg_sq")) if name in states[0]]
        tensors = [params, *([state[name] for state in states] for name in names)]
        return [[each if whole else [t[start:end] for t in each] for each in tensors] for start, end, _ in self.blocks]

    def _fill_state(self, params: list, states: list) -> None:
        """Zero buffers before the first step, as torch's own optimizers start: sgd's momentum buffer (only with
        momentum), adam's and adamw's moments and step count."""
        sgd = self.config.optimizer == "sgd"
        names = ("momentum_buffer",) if sgd else ("exp_avg", "exp_avg_sq")
        for p, state in zip(params, states):
            state.update({name: torch.zeros_like(p) for name in names if not sgd or any(block[2][2] for block in self.blocks)})
            if not sgd:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)


def per_run_supported(optimizer: str) -> bool:
    """Whether runs of one stack may differ in learning rate, weight decay, momentum and schedule under `optimizer`."""
    return optimizer in ("sgd", "adam", "adamw") and hasattr(torch, "_fused_adam_")


def schedule_of(config: Config) -> tuple:
    """(scheduler, step_size, gamma): what PerRunSchedule needs of a run's settings."""
    return config.scheduler, config.step_size, config.gamma


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
    if scheduler == "none":
        return 1.0
    raise RiskminError(f"scheduler {scheduler} cannot differ by run in one stack; it reacts to each run's own metric")


class PerRunSchedule:
    """The schedules of a PerRun's blocks, each its own, stepped once per epoch as torch's schedulers are.

    Each factor comes from the closed form of its schedule at the epoch (schedule_factor), so the
    state is the epoch alone: a smaller stack goes on from `state_dict()` where the larger one was.
    torch's CosineAnnealingLR reaches the same values by a recursion; the two agree to rounding.

    >>> w = torch.zeros(2, 1, requires_grad=True)
    >>> optimizer = PerRun([w], Config(optimizer="sgd", epochs=4), torch.tensor([1.0, 1.0]), torch.zeros(2), None,
    ...                    [("step", 1, 0.5), ("cosine", 30, 0.1)])
    >>> schedule = PerRunSchedule(optimizer); schedule.step(); optimizer.factors
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
        self.optimizer.factors = [schedule_factor(settings[3], self.last_epoch, epochs) for _, _, settings in self.optimizer.blocks]
