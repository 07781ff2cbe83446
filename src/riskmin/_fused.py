"""FusedStep: torch's fused SGD, Adam and AdamW kernels called directly on tensor lists it keeps.

Tested on torch 2.13 (see pyproject.toml); on a torch without the private kernels it names,
FusedStep steps through `optimizer.step()` itself.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim import optimizer as torch_optimizer
SGD_KERNEL = getattr(torch, "_fused_sgd_", None)


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
        if self.kernel is SGD_KERNEL:
            SGD_KERNEL(self.params, grads, self.buffers, weight_decay=group["weight_decay"], momentum=group["momentum"],
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
        if self.kernel is SGD_KERNEL:
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
    kinds = {torch.optim.SGD: "_fused_sgd_", torch.optim.Adam: "_fused_adam_", torch.optim.AdamW: "_fused_adamw_"}
    kernel = getattr(torch, kinds.get(type(optimizer), ""), None)  # private kernels: a torch without them steps as usual
    if kernel is None or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if not group.get("fused") or group.get("maximize") or group.get("amsgrad") or group.get("differentiable") or group.get("capturable"):
        return None
    if kernel is getattr(torch, "_fused_adam_", None) and group.get("decoupled_weight_decay"):
        return getattr(torch, "_fused_adamw_", None)  # AdamW is Adam with decoupled weight decay
    return kernel


