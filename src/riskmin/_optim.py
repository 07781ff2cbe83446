"""Optimizers and learning-rate schedulers by name."""

from __future__ import annotations

import torch

from .config import Config, RiskminError

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


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


