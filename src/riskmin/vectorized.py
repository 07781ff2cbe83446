"""The vectorized Monte-Carlo engine: R runs stacked and trained as one model.

The replicas' weights are stacked (`torch.func.stack_module_state`) and trained through
`vmap(functional_call)`, sharing one copy of the data. Each replica keeps its own index
tensors and its own batch-order generator; elementwise optimizers act on the stacked
parameters exactly as on R separate ones. Best weights, early stopping and freezing are
masks over the replica axis. `refusal` says when this cannot match `fit` exactly.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import models
from .callbacks import monitored
from .config import Config
from .data import Data, Standardizer, draw_order, rows_at, schedule, split
from .losses import FusedStep, batch_metrics, least_squares_test_loss, make_loss, make_optimizer, make_scheduler
from .prepare import order_seed, resolve_device

ACTIVATION_BUDGET = 2 ** 28  # bytes of stacked activations the automatic chunk size aims for
EVAL_FLOATS = 2 ** 22  # floats of input and activations one evaluation pass may gather across all replicas


def model_for(model, seed: int):
    """What `fit` should get for the run on `seed`: the name, or a module built by the callable under that seed."""
    if isinstance(model, str):
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model()


def replica(model, config: Config, seed: int, n_inputs: int, n_outputs: int) -> nn.Module:
    built = model_for(model, seed)
    return models.build(config.replace(seed=seed), n_inputs, n_outputs) if isinstance(built, str) else built


def refusal(model, data: Data, config: Config) -> str:
    """Why the vectorized engine cannot run these settings exactly like `fit` would, or "" when it can."""
    if config.val_every:
        return "validation every N steps is per run"
    if config.scheduler == "plateau":
        return "the plateau scheduler reacts to each run's own validation loss"
    if config.clip_grad:
        return "gradient clipping is per run"
    probe = replica(model, config, config.seed, data.n_features, data.n_targets)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in probe.modules()) or list(probe.buffers()):
        return "the model keeps running statistics in buffers (BatchNorm), which vmap cannot update per run"
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in probe.modules()):
        return "dropout draws its own random numbers in each run"
    try:
        params, buffers = stack_module_state([probe, copy.deepcopy(probe)])
        vmap(stacked_forward(probe))(params, buffers, data.x[:2].expand(2, 2, -1))
    except Exception as error:  # any failure here means vmap cannot batch this module
        return f"vmap cannot batch {type(probe).__name__} ({str(error).splitlines()[0][:120]})"
    return ""


def stacked_forward(module: nn.Module):
    base = copy.deepcopy(module).to("meta")  # structure only; the weights come in through functional_call
    return lambda params, buffers, x: functional_call(base, (params, buffers), (x,))


def chunk_size(config: Config, data: Data, width: int) -> int:
    if config.chunk:
        return config.chunk
    per_replica = 4 * len(data) * (data.n_features + width + data.n_targets)
    return max(1, min(config.runs, ACTIVATION_BUDGET // per_replica))


def vectorized(model, data: Data, config: Config, seeds: list, advance) -> list:
    probe = replica(model, config, seeds[0], data.n_features, data.n_targets)
    width = sum(p.shape[0] for p in probe.parameters() if p.ndim == 2)
    size = chunk_size(config, data, width)
    table = []
    for i in range(0, len(seeds), size):
        table += train_stacked(model, data, config, seeds[i:i + size], advance)
    return table


def train_stacked(model, data: Data, config: Config, seeds: list, advance) -> list:
    """Train one chunk of replicas as a single stacked model; one table row per replica."""
    device = resolve_device(config.device)
    R = len(seeds)
    splits = [split(data, config.train, config.val, config.test, seed) for seed in seeds]
    x, y = data.x.to(device), data.y.to(device)
    scalers = [Standardizer.fit(rows_at(data.x, s.train), data.onehot(), scale=config.standardize) for s in splits]
    mean = torch.stack([s.mean for s in scalers])[:, None].to(device)
    std = torch.stack([s.std for s in scalers])[:, None].to(device)
    # what a missing value (NaN) becomes once scaled: its run's training mean, scaled
    hole = torch.stack([(s.fill - s.mean) / s.std for s in scalers])[:, None].to(device) if scalers[0].fill is not None else None
    rows_of = {part: torch.stack([getattr(s, part) for s in splits]).to(device) for part in ("train", "val", "test")}
    parts = {part: idx for part, idx in rows_of.items() if idx.shape[1]}  # index tensors only: the data stays shared
    replicas = [replica(model, config, seed, data.n_features, data.n_targets) for seed in seeds]
    params, buffers = stack_module_state(replicas)
    params = {k: v.to(device).detach().requires_grad_() for k, v in params.items()}
    template, linear = replicas[0], isinstance(replicas[0], models.Linear)
    del replicas, splits  # the stacked tensors hold all that is needed; keep no second copy per replica
    forward = vmap(stacked_forward(template))
    loss_fn = make_loss(config.loss)
    per_replica_loss = vmap(loss_fn)
    width = sum(p.shape[0] for p in template.parameters() if p.ndim == 2)
    shared = Shared(forward, buffers, x, y, mean, std, hole, loss_fn, config.loss,
                    eval_rows=max(1, EVAL_FLOATS // (R * (data.n_features + width + data.n_targets))))
    optimizer = make_optimizer(config, params.values())
    optimizer_step = FusedStep(optimizer)
    scheduler = make_scheduler(config, optimizer)
    generators = [torch.Generator().manual_seed(order_seed(seed)) for seed in seeds]

    batch, steps_per_epoch = schedule(rows_of["train"].shape[1], config.batch_size, config.sampling, config.drop_last)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    sign = 1.0 if config.mode == "min" else -1.0
    tracked = "val" in parts or not config.monitor.startswith("val_")
    active = torch.ones(R, dtype=torch.bool, device=device)
    best_value = torch.full((R,), sign * math.inf, device=device)
    best_epoch = torch.zeros(R, dtype=torch.long, device=device)
    bad = torch.zeros(R, dtype=torch.long, device=device)
    epochs_run = torch.zeros(R, dtype=torch.long, device=device)
    stopped = torch.zeros(R, dtype=torch.bool, device=device)
    diverged = torch.zeros(R, dtype=torch.bool, device=device)
    best_params = {k: v.detach().clone() for k, v in params.items()}
    step, epoch = 0, 0

    while epoch < config.epochs and step < total_steps and bool(active.any()):
        epoch += 1
        ran = active.clone()
        order = epoch_order(rows_of["train"], generators, config.sampling, batch, steps_per_epoch)
        running, taken = torch.zeros(R, device=device), 0
        for i in range(steps_per_epoch):
            idx = order[:, i * batch:(i + 1) * batch]
            losses = per_replica_loss(forward(params, buffers, scaled(rows_at(x, idx), mean, std, hole)), rows_at(y, idx))
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # each replica's gradient is that of its own loss
            step_unless_frozen(optimizer, list(params.values()), ~active, optimizer_step)
            running += losses.detach()
            taken += 1
            step += 1
            if step == total_steps:
                break
        train_loss = running / taken
        finite = torch.isfinite(train_loss)
        diverged |= active & ~finite
        active &= finite
        epochs_run = torch.where(ran, epoch, epochs_run)
        if tracked and bool(active.any()):
            metrics = {"loss": train_loss}
            if "val" in parts:
                metrics.update(evaluate_stacked(shared, params, parts["val"], "val_"))
            value = monitored(metrics, config.monitor)
            improved = active & (sign * (best_value - value) > config.min_delta)
            best_value = torch.where(improved, value, best_value)
            best_epoch = torch.where(improved, epoch, best_epoch)
            for k, v in params.items():
                best_params[k] = torch.where(improved.view(-1, *[1] * (v.ndim - 1)), v.detach(), best_params[k])
            bad = torch.where(improved, 0, bad + 1)
            if config.patience:
                stop = active & (bad >= config.patience)
                stopped |= stop
                active &= ~stop
        if scheduler is not None:
            scheduler.step()
        advance(R)

    restore = (torch.full((R,), config.restore_best, device=device) | diverged) & (best_epoch > 0)
    final = {k: torch.where(restore.view(-1, *[1] * (v.ndim - 1)), best_params[k], v.detach()) for k, v in params.items()}
    results = {}
    for part, idx in parts.items():
        results.update(evaluate_stacked(shared, final, idx, f"{part}_"))
    table = []
    for r, seed in enumerate(seeds):
        row = {"seed": seed, "best_epoch": int(best_epoch[r]) if tracked and best_epoch[r] > 0 else int(epochs_run[r]),
               "epochs_run": int(epochs_run[r]), "stopped_early": bool(stopped[r]), "diverged": bool(diverged[r])}
        row.update({f"{part}_loss": None for part in ("train", "val", "test")})
        row.update({k: float(v[r]) for k, v in results.items()})
        if config.loss == "mse" and linear and "test" in parts:
            train, test = parts["train"][r], parts["test"][r]
            own = (mean[r], std[r], None if hole is None else hole[r])
            row["closed_form_test_loss"] = least_squares_test_loss(scaled(x[train], *own), y[train], scaled(x[test], *own), y[test], config.bias)
        table.append(row)
    advance(R * (config.epochs - epoch))  # runs that all stopped early skip the epochs left
    return table


def epoch_order(train_rows: torch.Tensor, generators: list, sampling: str, batch: int, steps: int) -> torch.Tensor:
    """Each replica's row order for one epoch, drawn from its own generator exactly as `fit` draws it."""
    draws = [draw_order(train_rows.shape[1], g, sampling, batch, steps) for g in generators]
    if draws[0] is None:
        return train_rows  # full batch
    return train_rows.gather(1, torch.stack(draws).to(train_rows.device))


def step_unless_frozen(optimizer, params: list, frozen: torch.Tensor, step=None) -> None:
    """optimizer.step() (or `step()`, a FusedStep of it), then put back the weights and optimizer state of frozen replicas."""
    step = step or optimizer.step
    if not bool(frozen.any()):
        step()
        return
    index = frozen.nonzero()[:, 0]
    tensors = [t for p in params for t in [p, *(s for s in optimizer.state[p].values()
                                                  if isinstance(s, torch.Tensor) and s.shape == p.shape)]]
    saved = [t.detach()[index].clone() for t in tensors]
    step()
    with torch.no_grad():
        for t, keep in zip(tensors, saved):
            t.index_copy_(0, index, keep)


@dataclass
class Shared:
    """What every evaluation of a stack needs: the batched forward, the one copy of the data, per-replica scaling."""

    forward: Callable
    buffers: dict
    x: torch.Tensor
    y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    hole: Optional[torch.Tensor]  # per replica, what a missing value becomes once scaled; None: no missing values
    loss_fn: nn.Module
    loss_name: str
    eval_rows: int  # rows per replica gathered at once, so memory stays bounded whatever the split size


@torch.no_grad()
def evaluate_stacked(shared: Shared, params: dict, idx: torch.Tensor, prefix: str) -> dict:
    """Per-replica mean loss and metrics over the rows `idx` (replicas x rows), gathered chunk by chunk."""
    sums = {}
    for start in range(0, idx.shape[1], shared.eval_rows):
        rows = idx[:, start:start + shared.eval_rows]
        output = shared.forward(params, shared.buffers, scaled(rows_at(shared.x, rows), shared.mean, shared.std, shared.hole))
        target = rows_at(shared.y, rows)
        values = {"loss": vmap(shared.loss_fn)(output, target) * rows.shape[1],
                  **vmap(lambda o, t: batch_metrics(shared.loss_name, o, t))(output, target)}
        for key, value in values.items():
            sums[key] = sums[key] + value if key in sums else value
    return {prefix + k: v.float() / idx.shape[1] for k, v in sums.items()}


def scaled(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, hole: Optional[torch.Tensor]) -> torch.Tensor:
    """Rows standardized with their replica's training statistics, missing values filled with its training means."""
    z = (x - mean) / std
    return z if hole is None else torch.where(torch.isnan(x), hole, z)
