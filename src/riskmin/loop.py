"""fit(): the training loop, the same whatever the parametrization; evaluate() and predict()."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from . import datasets, distributed, models
from .callbacks import BestModel, EarlyStopping, Progress, State, call
from .checkpoint import Checkpoints, TrainingInterrupted, capture, interruptible, restore, warn
from .config import Config, RiskminError
from .data import Data, LoaderBatches, Splits, Standardizer, TensorBatches, split, tutorial_split
from .losses import LOSS_FROM_SUMS, FusedStep, check_targets, finish_metrics, least_squares_loss, make_loss, make_optimizer, make_scheduler, metric_sums, settled
from .threads import intra_op_threads

EVAL_CHUNK = 65536  # rows per forward pass when evaluating: bounds memory on large splits


@dataclass
class Run:
    """The result of `fit`: the model (best weights restored), its history and its test metrics."""

    model: nn.Module
    config: Config
    history: list
    test: dict
    summary: dict
    preprocessing: Optional[Standardizer] = None
    data_names: dict = field(default_factory=dict)

    @property
    def best_epoch(self) -> int:
        return self.summary["best_epoch"]

    def save(self, directory=None):
        """Write the run directory (config.toml, metrics.csv, model.safetensors, summary.json, curves.png)."""
        from .rundir import save_run

        return save_run(self, directory)

    @classmethod
    def load(cls, directory, model: Optional[nn.Module] = None) -> "Run":
        """Read a run directory back; pass `model` (a fresh instance) when it is not one of riskmin's own."""
        from .rundir import load_run

        return load_run(directory, model)


def fit(model, data, config: Optional[Config] = None, callbacks=(), directory=None, resume: bool = False, **settings) -> Run:
    """Train `model` on `data` by empirical risk minimization and return a `Run`.

    `model` is any nn.Module or a built-in name ("linear", "two_layer", "mlp");
    `data` is Splits, Data, (x, y), a Dataset or a built-in data set name.
    Settings come from `config` and keyword overrides (see `Config`). With a run
    `directory`, a checkpoint is written every `checkpoint_every` epochs and on SIGINT or
    SIGTERM (then `TrainingInterrupted` is raised), and `resume=True` continues from the
    newest good checkpoint there, exactly as if the run had never stopped.

        for epoch in 1..epochs:
            for x, y in batches:                  # permuted slices, or random draws
                loss = loss_fn(model(x), y); loss.backward(); optimizer.step()
                every val_every steps (or at the end of the epoch):
                    validate -> best weights -> early stopping -> callbacks
        restore the best weights; measure train, val and test metrics

    >>> run = fit("linear", "line", split="tutorial", optimizer="sgd", lr=0.1, epochs=5, progress=False)
    >>> [row["epoch"] for row in run.history]
    [1, 2, 3, 4, 5]
    """
    if isinstance(model, str):
        settings = {"model": model, **settings}
    config = (config or Config()).replace(**settings)
    device = distributed.training_device(resolve_device(config.device))
    team = distributed.team(device)  # None in one process; under torchrun, the processes that train this model
    if team is not None and not team.first:
        config = config.replace(progress=False)  # process 0 alone reports
    splits = as_splits(data, config)
    config = settled(config, splits.data.y if isinstance(splits.data, Data) else splits.data[0][1])
    prepared = Prepared(splits, config, device, team)
    model = as_model(model, prepared, config).to(device)
    loss_fn = make_loss(config.loss)
    optimizer = make_optimizer(config, model.parameters())
    optimizer_step = FusedStep(optimizer)  # optimizer.step(), without torch.optim's per-call bookkeeping where it can
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    scheduler = make_scheduler(config, optimizer)
    batches = prepared.batches(config)
    trained, step_loss = model, loss_fn  # what a training step calls: under torchrun, DDP and this process' share of the loss
    if team is not None:
        batches = distributed.Sharded(batches, team)
        trained, step_loss = team.wrap(model), team.scaled(loss_fn, batches)
    best, chosen = default_callbacks(config, prepared.has_val)
    callbacks = chosen + list(callbacks)
    state = State(model, config.epochs, len(batches))
    step_hooks = [c.on_step_end for c in callbacks if hasattr(c, "on_step_end")]
    total_steps = config.max_steps or config.epochs * len(batches)
    running, unreported, elapsed = torch.zeros((), device=device), 0, 0.0
    saver = Checkpoints(directory) if directory is not None else None
    if resume and saver is None:
        raise RiskminError("resume=True needs the run's directory; pass directory= the folder the run was checkpointing to")
    saving = (state, model, optimizer, scheduler, batches, callbacks, team)
    prepared.switch = not models.mode_free(model)  # a model that computes the same either way is not switched each epoch

    threads = intra_op_threads(config.threads, model, getattr(batches, "batch_size", config.batch_size) or len(splits.train), device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), interruptible(state, saver is not None), threads, \
            distributed.watched(team):
        torch.manual_seed(config.seed)  # dropout and any other randomness inside the model
        if resume:
            running, unreported, elapsed = restore(saver, *saving)
            running = running.to(device)
        start = time.perf_counter() - elapsed
        call(callbacks, "on_fit_start", state)
        while state.epoch < config.epochs and state.step < total_steps and not state.should_stop:
            state.epoch += 1
            if prepared.switch or not model.training:
                model.train()
            stopping = False
            for x, y in batches:
                loss = step_loss(trained(x), y)
                for parameter in parameters:  # zero_grad(set_to_none=True) without its profiler record: a tenth of a small step
                    parameter.grad = None
                loss.backward()
                if config.clip_grad:
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
                optimizer_step()
                running += loss.detach()  # summed on the device; read only when reported
                unreported += 1
                state.step += 1
                state.epoch_step += 1
                for hook in step_hooks:
                    hook(state)
                at_end = state.step == total_steps
                if config.val_every and (state.step % config.val_every == 0 or at_end):
                    report(state, running, unreported, prepared, model, loss_fn, optimizer, scheduler, start, callbacks)
                    unreported = 0
                stopping = state.interrupted if team is None else team.interrupted(state.interrupted, state.step)
                if at_end or state.should_stop or stopping:
                    break
            if stopping:  # the step is done: save where we are and leave
                capture(saver, *saving, running, unreported, time.perf_counter() - start)
                saver.wait()
                raise TrainingInterrupted(f"interrupted in epoch {state.epoch} after step {state.step}; the checkpoint is saved")
            if unreported and (not config.val_every or state.step == total_steps or state.should_stop):
                report(state, running, unreported, prepared, model, loss_fn, optimizer, scheduler, start, callbacks)
                unreported = 0
            call(callbacks, "on_epoch_end", state)
            if scheduler is not None and config.scheduler != "plateau":
                scheduler.step()
            state.epoch_step = 0
            if saver is not None and config.checkpoint_every and state.epoch % config.checkpoint_every == 0:
                capture(saver, *saving, running, unreported, time.perf_counter() - start)
        if saver is not None:
            saver.wait()
        if team is not None:
            team.settle()
        call(callbacks, "on_fit_end", state)

    diverged = state.diverged
    restored = (config.restore_best or diverged) and best is not None and best.restore(model)
    tracked = best is not None and best.weights is not None
    with distributed.watched(team):
        final = prepared.final_metrics(model, loss_fn, config.loss)
    summary = {
        "best_epoch": best.epoch if tracked else state.epoch,
        "best_step": best.step if tracked else state.step,
        "epochs_run": state.epoch, "steps": state.step,
        "stopped_early": state.should_stop and not diverged, "diverged": diverged, "stop_reason": state.stop_reason,
        "restored_best": bool(restored), **final,
        "seconds": time.perf_counter() - start, "device": str(device),
        **({"checkpoint_seconds": saver.seconds} if saver is not None else {}),
        "n_inputs": prepared.n_inputs, "n_outputs": prepared.n_outputs, **{f"n_{k}": v for k, v in splits.sizes().items()},
    }
    if config.loss == "mse" and isinstance(model, models.Linear) and prepared.tensors:
        summary["closed_form_test_loss"] = least_squares_loss(prepared, config.bias)
    test = {k: v for k, v in final.items() if k.startswith("test_")}
    return Run(model, config, state.history, test, summary, prepared.standardizer, prepared.names)


def report(state: State, running, steps: int, prepared, model, loss_fn, optimizer, scheduler, start, callbacks) -> None:
    """Validate, append a history row, and let the callbacks judge it (best model, early stopping).

    `running` is the sum of the training loss over the last `steps` steps; it is read and zeroed.
    """
    team = prepared.team
    total = running if team is None else team.add(running.clone()) / team.world  # each process summed its share
    row = {"epoch": state.epoch, "step": state.step, "loss": float(total) / steps}
    running.zero_()
    if not math.isfinite(row["loss"]):
        state.should_stop = state.diverged = True
        state.stop_reason = (f"the training loss became {row['loss']} in epoch {state.epoch} by step {state.step}; "
                             "lower the learning rate or clip gradients with --clip-grad 1.0 (the best weights so far are kept)")
        return
    if prepared.has_val:
        row.update(evaluate_batches(model, prepared.sources["val"], loss_fn, prepared.loss_name, prefix="val_",
                                    switch=prepared.switch, team=team))
    row["lr"] = optimizer.param_groups[0]["lr"]
    row["seconds"] = time.perf_counter() - start
    state.metrics = row
    state.history.append(row)
    call(callbacks, "on_validation_end", state)
    if team is not None:  # every process judged the same sums alike; process 0's verdict makes sure they stop together
        state.should_stop = team.decided(state.should_stop)
    if scheduler is not None and prepared.config.scheduler == "plateau":
        scheduler.step(row[prepared.config.monitor])


def default_callbacks(config: Config, has_val: bool):
    """The best-model tracker (None when there is nothing to judge by) and the callbacks the settings ask for."""
    best, chosen = None, []
    if has_val or not config.monitor.startswith("val_"):
        best = BestModel(config.monitor, config.mode, config.min_delta)
        chosen.append(best)
        if config.patience:
            chosen.append(EarlyStopping(config.patience, config.monitor, config.mode, config.min_delta))
    elif config.patience or config.scheduler == "plateau":
        raise RiskminError(f"{'patience' if config.patience else 'scheduler plateau'} needs a validation split but val = 0; "
                           "set --val 0.1, or --monitor loss to judge by the training loss")
    if config.progress:
        chosen.append(Progress(print_every=config.print_every))
    return best, chosen


class Prepared:
    """The splits made ready for training: rows standardized and on the device once, sources to iterate."""

    def __init__(self, splits: Splits, config: Config, device: torch.device, team=None):
        self.config, self.loss_name, self.device, self.team = config, config.loss, device, team
        self.tensors = isinstance(splits.data, Data)
        self.splits = splits
        self.standardizer = None
        self.names = {}
        self.switch = True  # whether to switch the model between train() and eval(); fit decides once it has the model
        if self.tensors:
            data = splits.data
            self.standardizer = Standardizer.fit(data.x[splits.train], data.onehot(), scale=config.standardize)
            if self.standardizer.constant:
                names = ", ".join(data.feature_names[i] for i in self.standardizer.constant)
                warn(f"warning: feature columns {names} are constant on the training split; they carry no information")
            self.rows = {part: (self.standardizer(data.x[idx], in_place=True).to(device), data.y[idx].to(device))
                         for part, idx in (("train", splits.train), ("val", splits.val), ("test", splits.test)) if len(idx)}
            self.sources = {part: chunks(*self.evaluated(x, y, part)) for part, (x, y) in self.rows.items()}
            self.n_inputs, self.n_outputs = data.n_features, data.n_targets
            self.names = {"features": data.feature_names, "targets": data.target_names, "data": data.name, "task": data.task,
                          "layout": data.layout, "classes": data.classes, "missing": data.missing, "loss": config.loss}
            check_targets(config.loss, data.y)
        else:
            dataset = splits.data
            self.sources = {part: eval_loader(dataset, self.evaluated(idx, None, part)[0], config.batch_size, device)
                            for part, idx in (("train", splits.train), ("val", splits.val), ("test", splits.test)) if len(idx)}
            x0, y0 = dataset[0]
            self.n_inputs, self.n_outputs = torch.as_tensor(x0).numel(), max(torch.as_tensor(y0).numel(), 1)
        self.has_val = "val" in self.sources
        if self.tensors and config.batch_size > len(splits.train):
            raise RiskminError(f"batch_size = {config.batch_size} is larger than the training split ({len(splits.train)} samples); "
                               f"use at most {len(splits.train)}, or 0 for the whole split")

    def evaluated(self, x, y, part: str) -> tuple:
        """The rows of a split this process evaluates: all of them, or under torchrun its share, summed across after."""
        if self.team is None:
            return x, y
        if len(x) < self.team.world:
            raise RiskminError(f"the {part} split has {len(x)} rows, fewer than the {self.team.world} processes; "
                               "use fewer processes or a larger split")
        return self.team.shard(x), None if y is None else self.team.shard(y)

    def batches(self, config: Config):
        generator = torch.Generator().manual_seed(order_seed(config.seed))
        if self.tensors:
            x, y = self.rows["train"]
            return TensorBatches(x, y, config.batch_size, generator, config.sampling, config.drop_last)
        return LoaderBatches(self.splits.data, self.splits.train, config.batch_size, generator, self.device, config.drop_last)

    def final_metrics(self, model, loss_fn, loss_name) -> dict:
        metrics = {}
        for part, source in self.sources.items():
            metrics.update(evaluate_batches(model, source, loss_fn, loss_name, prefix=f"{part}_", team=self.team))
        for part in ("train", "val", "test"):
            metrics.setdefault(f"{part}_loss", None)
        return metrics


def order_seed(seed: int) -> int:
    """The seed of the batch-order generator, derived from the run's seed so it differs from the split's."""
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def chunks(x: torch.Tensor, y: torch.Tensor) -> list:
    return [(x[i:i + EVAL_CHUNK], y[i:i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)]


def eval_loader(dataset, rows, batch_size, device):
    loader = DataLoader(Subset(dataset, rows.tolist()), batch_size=max(batch_size, 1024))
    return [(x.to(device), y.to(device)) for x, y in loader] if len(rows) <= EVAL_CHUNK else loader


@torch.no_grad()
def evaluate_batches(model, source, loss_fn, loss_name: str, prefix: str = "", switch: Optional[bool] = None, team=None) -> dict:
    """Mean loss and metrics of `model` over (x, y) batches, read from the device once; under torchrun, over every process' batches."""
    was_training = model.training
    switch = not models.mode_free(model) if switch is None else switch  # whether eval() could change the outputs
    if switch:
        model.eval()
    sums, rows = {}, 0
    for x, y in source:
        output = model(x)
        values = metric_sums(loss_name, output, y)
        if loss_name not in LOSS_FROM_SUMS:
            values["loss"] = loss_fn(output, y) * len(x)
        for key, value in values.items():
            sums[key] = sums[key] + value if key in sums else value
        rows += len(x)
    if switch:
        model.train(was_training)
    if not rows:
        return {}
    return {prefix + k: v for k, v in finish_metrics(loss_name, sums, rows, None if team is None else team.add).items()}


def evaluate(run_or_model, data, loss: Optional[str] = None) -> dict:
    """Loss and metrics on every row of `data`, with the run's preprocessing.

    >>> run = fit("linear", "line", split="tutorial", optimizer="sgd", lr=0.1, epochs=50, progress=False)
    >>> round(evaluate(run, datasets.line())["loss"], 2)
    0.01
    """
    model, standardizer, config = unpack(run_or_model)
    data = data if isinstance(data, Data) else Data(*data)
    loss_name = settled(config.replace(loss=loss or config.loss), data.y).loss
    check_targets(loss_name, data.y)
    device = next(model.parameters()).device
    x = standardizer(data.x).to(device) if standardizer is not None else data.x.to(device)
    return evaluate_batches(model, chunks(x, data.y.to(device)), make_loss(loss_name), loss_name)


@torch.no_grad()
def predict(run_or_model, x) -> torch.Tensor:
    """The model's outputs for the rows of `x`, with the run's preprocessing, on the CPU.

    >>> run = fit("linear", "line", split="tutorial", optimizer="sgd", lr=0.1, epochs=50, progress=False)
    >>> predict(run, torch.tensor([[0.5]])).shape
    torch.Size([1, 1])
    """
    model, standardizer, _ = unpack(run_or_model)
    x = torch.as_tensor(x, dtype=torch.float32)
    x = x[:, None] if x.ndim == 1 else x
    device = next(model.parameters()).device
    x = standardizer(x) if standardizer is not None else x
    was_training = model.training
    model.eval()
    out = torch.cat([model(part.to(device)).cpu() for part in x.split(EVAL_CHUNK)])
    model.train(was_training)
    return out


def unpack(run_or_model):
    if isinstance(run_or_model, Run):
        return run_or_model.model, run_or_model.preprocessing, run_or_model.config
    return run_or_model, None, Config()


def as_data(data, config: Config):
    """A data set name or an (x, y) pair as Data; anything else as it is."""
    if isinstance(data, str):
        return datasets.load(data, config)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return Data(*data)
    return data


def as_splits(data, config: Config) -> Splits:
    """Whatever the user passed as data, as Splits made with the run's seed and fractions."""
    if isinstance(data, Splits):
        return data
    data = as_data(data, config)
    if isinstance(data, Data):
        if config.split == "tutorial":
            return tutorial_split(data)
        return split(data, config.train, config.val, config.test, config.seed)
    if isinstance(data, Dataset):
        return split(data, config.train, config.val, config.test, config.seed)
    raise RiskminError(f"data of type {type(data).__name__} is not supported; pass a data set name, riskmin.Data, (x, y) tensors, Splits or a torch Dataset")


def as_model(model, prepared: Prepared, config: Config) -> nn.Module:
    if isinstance(model, str):
        return models.build(config, prepared.n_inputs, prepared.n_outputs)
    if isinstance(model, nn.Module):
        return model
    raise RiskminError(f"model of type {type(model).__name__} is not supported; pass an nn.Module or one of linear, two_layer, mlp")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RiskminError(f"device = {name} but this machine has no CUDA GPU; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RiskminError("device = mps but MPS is not available here; use --device cpu or auto")
    return torch.device(name)
