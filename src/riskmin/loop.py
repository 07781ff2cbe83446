"""fit(): the training loop, the same whatever the parametrization; evaluate() and predict()."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from . import distributed, models
from .callbacks import BestModel, EarlyStopping, Progress, State, call
from .checkpoint import Checkpoints, TrainingInterrupted, capture, interruptible, restore
from .config import Config, RiskminError
from .data import Data, Standardizer
from .losses import FusedStep, check_targets, least_squares_loss, make_loss, make_optimizer, make_scheduler, settled
from .prepare import EVAL_CHUNK, Prepared, as_model, as_splits, chunks, evaluate_batches, resolve_device
from .threads import intra_op_threads

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
    optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad])  # frozen ones never get a gradient
    optimizer_step = FusedStep(optimizer)  # optimizer.step(), without torch.optim's per-call bookkeeping where it can
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    scheduler = make_scheduler(config, optimizer)
    batches = prepared.batches(config)  # the global batches: their order is what a checkpoint stores
    # what a training step takes and calls: under torchrun, this process' share of each batch, DDP and its share of the loss
    steps, trained, step_loss = batches, model, loss_fn
    if team is not None:
        steps = distributed.Sharded(batches, team)
        trained, step_loss = team.wrap(model), team.scaled(loss_fn, steps)
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
            for x, y in steps:
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
    x = y = loss = None  # the last batch is a view of the epoch's permuted copy of the rows: free that before evaluating

    diverged = state.diverged
    restored = (config.restore_best or diverged) and best is not None and best.restore(model)
    tracked = best is not None and best.weights is not None
    # the validation that measured exactly these weights, if any: its val_ metrics need no second pass over the rows
    last = state.history[-1] if state.history and state.history[-1]["step"] == state.step and not diverged else {}
    measured = {} if prepared.switch else best.metrics if restored else last
    with distributed.watched(team):
        final = prepared.final_metrics(model, loss_fn, config.loss, known={k: v for k, v in measured.items() if k.startswith("val_")})
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


def evaluate(run_or_model, data, loss: Optional[str] = None) -> dict:
    """Loss and metrics on every row of `data`, with the run's preprocessing.

    >>> run = fit("linear", "line", split="tutorial", optimizer="sgd", lr=0.1, epochs=50, progress=False)
    >>> from riskmin import datasets
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

