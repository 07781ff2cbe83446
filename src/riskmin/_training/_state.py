"""A run in training as one object, `Training`, and what is done to it beside the steps: validate, save, restore.

A checkpoint is a dict of named state (model, optimizer, scheduler, callbacks by name, the
position in the epoch, the losses not yet reported, every random state, the loss scaler, and the gradients of
batches that accumulate towards a step not yet taken); `save` writes it through the
run's checkpointer and `restore_checkpoint` puts it back, so a resumed run continues bitwise exactly.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union, cast

import numpy as np
import torch
from torch import nn

from ..callbacks import BestModel, State, monitored
from ..config import Config, RiskminError
from ..data import Batches
from ..distributed import Alone, Team, shared
from ..metrics import loss_units
from ..policy import Judge, diverged
from .._paths import resume_line
from .._runs._rundir import misfit
from ._callables import Callables
from ._checkpoint import Checkpoints, NoCheckpoints
from ._fingerprint import check_same
from ._prepare import Prepared, evaluate_batches
from ._threads import IntraOpThreads


@dataclass(kw_only=True)
class Training:
    """Everything a run in training holds. The team and the checkpointer always exist: a process on its own has a
    team that shares nothing (`distributed.Alone`), a run without a directory a checkpointer that saves nothing."""

    config: Config
    prepared: Prepared
    model: nn.Module
    # whether to switch the model between train() and eval(): not one that computes the same either way
    switches_mode: bool
    loss_fn: Callable  # a loss module, or the user's own function
    optimizer: torch.optim.Optimizer
    scheduler: Optional[torch.optim.lr_scheduler.LRScheduler]
    batches: Batches  # the global batches: their order is what a checkpoint stores
    callbacks: list
    best: Optional[BestModel]  # the best-model keeper among the callbacks; None when there is nothing to judge by
    judge: Judge  # the verdict at each validation (policy.Judge, for one run)
    state: State
    team: Union[Alone, Team]
    saver: Union[Checkpoints, NoCheckpoints]
    # the folder the run writes in (None: no run directory), and the run it replaces once it succeeds (`fit_folder`)
    directory: Optional[Path] = None
    replacing: Optional[Path] = None
    # whether `directory` is the command line's, which made and locked it and names its own resume command
    commanded: bool = False
    # a run that serves something larger (an experiment's run, lr_find's sweep): one interrupted is not measured
    part: bool = False
    total_steps: int
    # the training loss of each step not yet reported (under accumulation the sum of its batches' shares), float32 on
    # the device: summed at the report in one operation, which a `running += loss` would pay for at every step
    # (riskmin's loop is timed against a bare one, benchmarks/overhead.py)
    losses: list
    unreported: int = 0
    start: float = 0.0  # time.perf_counter() when the run began, earlier by the time it ran before a resume
    last_saved: float = 0.0  # time.perf_counter() at the last checkpoint (or the start)
    threads: IntraOpThreads  # the intra-op thread count the run trains with
    fingerprint: Optional[dict] = None  # the data and settings it trains on (_fingerprint.py), when it checkpoints
    callables: Callables  # the user's own loss, optimizer, scheduler and metrics
    autocast: contextlib.AbstractContextManager  # the forward pass and the loss run in it (_optim.mixed_precision)
    scaler: torch.amp.GradScaler  # scales the loss at 16-mixed; disabled, it passes everything through
    # each batch's share of its accumulated step, by its place in the epoch; None: no accumulation
    shares: Optional[list] = None
    # the loss of the group of batches under way (their shares of it, summed), on the device
    held: Optional[torch.Tensor] = None
    # whether a parameter that requires a gradient and is in no group of the optimizer was said (_loop.say_unfrozen)
    unfrozen_said: bool = False
    frozen: frozenset = frozenset()  # the ids of the parameters that required no gradient when training began

    def hooks(self, event: str) -> list:
        """The callbacks' `event` methods: on_fit_start, on_step_end, called after every optimizer step, on_batch_end
        after every batch's backward pass, on_validation_end, on_epoch_end, on_fit_end. A KeyboardInterrupt that one
        raises is taken as Ctrl-C is (Interruptible): the loop goes on to the next step's end (or the epoch's end, from
        on_epoch_end) and leaves there, with a checkpoint that resumes the run exactly, or, with nowhere to write one,
        the run so far measured (_loop.interrupt)."""
        return [interruptible(getattr(c, event), self.state) for c in self.callbacks if hasattr(c, event)]

    def named_callbacks(self) -> dict:
        """The callbacks that keep state, by name (their class name, numbered when one occurs twice)."""
        named = {}
        for callback in self.callbacks:
            if hasattr(callback, "state_dict"):
                name = type(callback).__name__
                named[name if name not in named else f"{name}-{len(named)}"] = callback
        return named


def interruptible(method: Callable, state: State) -> Callable:
    """A callback's method that, raising KeyboardInterrupt, asks the run to stop as a signal does (`state.interrupted`)
    rather than leaving it mid-step, with neither a checkpoint of where it stood nor its best weights back."""

    def called(state_: State) -> None:
        try:
            method(state_)
        except KeyboardInterrupt:
            state.interrupted = True

    return called


def validate(training: Training) -> None:
    """Report the training loss since the last report, validate, append a history row and let the callbacks judge it."""
    state, team, prepared = training.state, training.team, training.prepared
    # each summed its share
    total = torch.stack(training.losses).sum()
    total = total if team.world == 1 else team.add(total) / team.world
    units = loss_units(training.config.loss, prepared.scale)
    row = {"epoch": state.epoch, "step": state.step, "loss": float(total) / training.unreported * units}
    training.losses = []
    training.unreported = 0
    judge, lost = training.judge, diverged(row["loss"])  # weights already lost to a NaN are not worth validating
    if prepared.has_val and not lost:
        row.update(
            evaluate_batches(
                training.model,
                prepared.sources["val"],
                training.loss_fn,
                training.config.loss,
                prefix="val_",
                switches_mode=training.switches_mode,
                team=team,
                target=prepared.target,
                metrics=prepared.metrics,
            )
        )
    row["lr"] = training.optimizer.param_groups[0]["lr"]
    row["seconds"] = time.perf_counter() - training.start
    judged = judge.tracked and not lost
    verdict = judge.judge(
        state.epoch, state.step, row["loss"], monitored(row, training.config.monitor) if judged else None
    )
    if bool(verdict.diverged):
        state.should_stop = state.diverged = True
        state.stop_reason = judge.reasons[0]
        return
    state.improved = bool(verdict.improved)
    if bool(verdict.early):
        state.should_stop, state.stop_reason = True, judge.reasons[0]
    state.metrics = row
    state.history.append(row)
    for hook in training.hooks("on_validation_end"):
        hook(state)
    state.should_stop = team.decided(state.should_stop)  # process 0's verdict, so that all processes stop together
    if isinstance(training.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        training.scheduler.step(row[training.config.monitor])


def save(saver, training: Training) -> None:
    """Write everything `restore_checkpoint` needs to continue this run exactly where it is.

    Under torchrun every process sends process 0 what is its own (random states, its share
    of the loss sum); the rest is the same in all of them, and process 0 alone writes.
    """
    saver.wait()  # the previous checkpoint is on disk first; waiting counts towards saver.seconds
    began = time.perf_counter()
    state, team = training.state, training.team
    values, tensors = random_states()
    values["processes"] = team.world
    values["length"] = {"epochs": training.config.epochs, "max_steps": training.config.max_steps}
    values["inputs"] = training.fingerprint
    if team.world > 1:
        states = team.to_first((values, tensors, unreported_losses(training).cpu()))
        if not team.first:
            return
        values["ranks"] = {str(rank): rank_values for rank, (rank_values, _, _) in enumerate(states) if rank}
        for rank, (_, rank_tensors, rank_losses) in enumerate(states[1:], 1):
            tensors.update({f"rank/{rank}/{k}": v for k, v in {**rank_tensors, "losses": rank_losses}.items()})
    optimizer_values, optimizer_tensors = optimizer_state(training.optimizer, training.model)
    tensors.update(optimizer_tensors)
    tensors.update({f"model/{k}": v for k, v in training.model.state_dict().items()})
    # inside an epoch: where its order began, so it can be drawn again; at its end: where the next one begins
    began_at = training.batches.epoch_start if state.epoch_step else None
    tensors["rng/order"] = began_at if began_at is not None else training.batches.generator.get_state()
    tensors["losses"] = unreported_losses(training)
    scheduler = training.scheduler
    values.update(
        epoch=state.epoch,
        step=state.step,
        epoch_step=state.epoch_step,
        unreported=training.unreported,
        seconds=time.perf_counter() - training.start,
        history=state.history,
        metrics=state.metrics,
        optimizer=optimizer_values,
        scheduler=scheduler.state_dict() if scheduler is not None else None,
        callbacks={},
    )
    values["judge"], judge_tensors = training.judge.state_dict()
    tensors.update({f"judge/{k}": v for k, v in judge_tensors.items()})
    step_values, step_tensors = step_state(training)
    values.update(step_values)
    tensors.update(step_tensors)
    for name, callback in training.named_callbacks().items():
        callback_values, callback_tensors = callback.state_dict()
        values["callbacks"][name] = callback_values
        tensors.update({f"callbacks/{name}/{k}": v for k, v in callback_tensors.items()})
    saver.save({k: v.detach().cpu() for k, v in tensors.items()}, values)
    saver.seconds += time.perf_counter() - began


def restore_checkpoint(saver, training: Training) -> None:
    """Put the newest good checkpoint back into the run: weights, optimizer, callbacks, position, random states.

    Under torchrun process 0 reads it and sends it to the others, which take their own random
    states and loss sums from it.
    """
    team = training.team
    tensors, values = saver.latest() if team.first else ({}, {})  # the others take process 0's, just below
    if team.world > 1:
        tensors, values = shared((tensors, values))
    try:
        if values.get("processes", 1) != team.world:
            raise RiskminError(
                f"run {saver.root.parent} was checkpointed by {values.get('processes', 1)} process(es) and "
                f"resumed by {team.world}; resume it with as many processes as it began with: "
                f"{resume_line(saver.root.parent, values.get('processes', 1))}"
            )
        # before the weights meet a model of another shape
        assert training.fingerprint is not None  # setup fingerprints every run that checkpoints
        check_same(values.get("inputs"), training.fingerprint, saver.root.parent)
        check_length(values, training.config, len(training.batches), saver.root.parent)
        # checked before any of them is copied: load_state_dict copies the tensors that fit before it raises
        weights = named(tensors, "model/")
        different = misfit(weights, training.model.state_dict())
        if different:
            raise RiskminError(
                f"cannot resume {saver.root.parent}: the model given is not the one the run began with ({different}); "
                "resume with a model built as the run's was, or start a new run"
            )
        if not team.first:
            prefix = f"rank/{team.rank}/"
            values = {**values, **values["ranks"][str(team.rank)]}
            tensors = {**tensors, **{k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}}
        put_back(training, weights, tensors, values, saver.root.parent)
    except RiskminError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:  # a file whose checksum was redone
        raise RiskminError(
            f"the newest checkpoint of {saver.root.parent} does not hold what riskmin writes in one ({error!r}); the "
            "run is damaged: train it again from the start (--overwrite, overwrite=True)"
        ) from None
    states = values.get("callbacks") or {}
    for name, callback in training.named_callbacks().items():  # the user's code, whose errors are its own
        if name in states:
            callback.load_state_dict(states[name], named(tensors, f"callbacks/{name}/"))


def put_back(training: Training, weights: dict, tensors: dict, values: dict, where) -> None:
    """A checkpoint's contents, checked to fit the run, put back into it: weights, optimizer, schedule, judge,
    random states, position, and the losses not yet reported (the callbacks' states come after, their own code).
    `where`: the run's folder, as a message names it."""
    state = training.state
    training.model.load_state_dict(weights)
    load_optimizer_state(training.optimizer, values["optimizer"], tensors, training.model)
    if training.scheduler is not None and values["scheduler"] is not None:
        training.scheduler.load_state_dict(values["scheduler"])
    if "judge" not in values:
        raise RiskminError(
            f"run {where} was checkpointed by an earlier riskmin, whose checkpoints do not "
            "hold the judge's state; train it again from the start (--overwrite, overwrite=True)"
        )
    training.judge.load_state_dict(values["judge"], named(tensors, "judge/"))
    set_random_states(values, tensors)
    load_step_state(training, values, tensors)
    state.step, state.history = values["step"], values["history"]
    state.metrics, state.epoch_step = values["metrics"], values["epoch_step"]
    if state.epoch_step:  # stopped inside an epoch: draw its order again and skip what was done
        state.epoch = values["epoch"] - 1
        training.batches.resume_epoch(tensors["rng/order"], state.epoch_step)
    else:
        state.epoch = values["epoch"]
        training.batches.generator.set_state(tensors["rng/order"])
    # an earlier riskmin's checkpoint holds their sum ("running"), which reports the same loss
    unreported = tensors["losses"] if "losses" in tensors else tensors["running"].reshape(1)
    training.losses = list(unreported.to(training.prepared.device).unbind())
    training.unreported = values["unreported"]
    training.start = time.perf_counter() - values["seconds"]


def check_length(values: dict, config: Config, batches: int, where) -> None:
    """Refuse a resume whose max_steps or epochs end before where the checkpoint stands (`batches`: an epoch's): the
    loop would stop at once and record a run longer than its settings say."""
    step, epoch, partial = values["step"], values["epoch"], 0 < values["epoch_step"] < batches
    if config.max_steps and step > config.max_steps:
        raise RiskminError(
            f"cannot resume {where} with max_steps {config.max_steps:,}: it has already trained {step:,} steps; "
            f"set max_steps to at least {step:,}"
        )
    assert config.epochs is not None  # setup made them final
    if epoch > config.epochs:  # an epoch under way counts as one the run is in
        done = (
            f"{epoch - 1:,} epoch{'s' * (epoch != 2)} and part of epoch {epoch:,}" if partial else f"{epoch:,} epochs"
        )
        raise RiskminError(
            f"cannot resume {where} with epochs {config.epochs:,}: it has already trained {done}; "
            f"set epochs to at least {epoch:,}"
        )


def unreported_losses(training: Training) -> torch.Tensor:
    """The losses of the steps not yet reported, as one tensor that a checkpoint holds (empty at an epoch's end)."""
    return torch.stack(training.losses) if training.losses else torch.zeros(0, device=training.prepared.device)


def step_state(training: Training) -> tuple:
    """What a step holds between batches and steps, as (values, tensors): the loss scaler's state (none at 32 or
    bf16-mixed) and, inside a group of accumulating batches, how many are in and their gradients and loss so far."""
    accumulated = training.state.accumulated
    values = {"scaler": training.scaler.state_dict(), "accumulated": accumulated}
    if not accumulated:
        return values, {}
    tensors = {f"grad/{name}": p.grad for name, p in training.model.named_parameters() if p.grad is not None}
    return values, {**tensors, "held": training.held}


def load_step_state(training: Training, values: dict, tensors: dict) -> None:
    """Put back what `step_state` took: the scaler's state, and the gradients of a group of batches under way."""
    if values.get("scaler"):
        training.scaler.load_state_dict(values["scaler"])
    training.state.accumulated = values.get("accumulated", 0)
    if not training.state.accumulated:
        return
    gradients = named(tensors, "grad/")
    for name, parameter in training.model.named_parameters():
        if name in gradients:
            parameter.grad = gradients[name].to(parameter.device)
    training.held = tensors["held"].to(training.prepared.device)


def named(tensors: dict, prefix: str) -> dict:
    """The tensors whose names start with `prefix`, without it."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def random_states() -> tuple:
    """Every random state a run may touch: (JSON-able values, tensors)."""
    # the legacy MT19937 tuple: numpy's stub also allows the dict that another bit generator gives
    kind, keys, position, has_gauss, cached = cast(tuple, np.random.get_state(legacy=True))
    python_version, python_state, python_gauss = random.getstate()
    values = {"numpy": [kind, position, has_gauss, cached], "python": [python_version, python_gauss]}
    tensors = {
        "rng/torch": torch.get_rng_state(),
        "rng/numpy": torch.from_numpy(keys.astype(np.int64)),
        "rng/python": torch.from_numpy(np.array(python_state, dtype=np.int64)),
    }
    if torch.cuda.is_available():
        tensors.update({f"rng/cuda/{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    return values, tensors


def set_random_states(values: dict, tensors: dict) -> None:
    kind, position, has_gauss, cached = values["numpy"]
    np.random.set_state((kind, tensors["rng/numpy"].numpy().astype(np.uint32), position, has_gauss, cached))
    version, gauss = values["python"]
    random.setstate((version, tuple(tensors["rng/python"].tolist()), gauss))
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def optimizer_state(optimizer, model: torch.nn.Module) -> tuple:
    """An optimizer's state_dict split into JSON structure and named tensors, with the names of the parameters of each
    of its groups and those of `model`'s parameters that train: a callback may have unfrozen a layer and given it a
    group of its own (add_param_group), which a resumed run, its optimizer built afresh, takes back."""
    state = optimizer.state_dict()
    values, tensors = {"param_groups": state["param_groups"], "state": {}}, {}
    values["groups"] = group_names(optimizer, model)
    values["training"] = [name for name, p in model.named_parameters() if p.requires_grad]
    for index, entry in state["state"].items():
        values["state"][str(index)] = {}
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = value
            else:
                values["state"][str(index)][name] = value
    return values, tensors


def group_names(optimizer, model: torch.nn.Module) -> list:
    """The names of the parameters of each of the optimizer's groups, as `model` names them ("" where it does not)."""
    named = {id(p): name for name, p in model.named_parameters()}
    return [[named.get(id(p), "") for p in group["params"]] for group in optimizer.param_groups]


def load_optimizer_state(optimizer, values: dict, tensors: dict, model: torch.nn.Module) -> None:
    """Put a checkpoint's optimizer state back (optimizer_state), with the parameter groups and the parameters that
    train as they were when it was saved."""
    parameters = dict(model.named_parameters())
    # a checkpoint of an earlier riskmin has the groups the optimizer was built with; one whose optimizer holds a
    # parameter the model does not own ("") cannot be regrouped by name, and load_state_dict says whether it fits
    if "groups" in values and all(name in parameters for names in values["groups"] for name in names):
        for name, parameter in parameters.items():
            parameter.requires_grad_(name in values["training"])
        if group_names(optimizer, model) != values["groups"]:
            optimizer.param_groups.clear()  # regrouped as saved; load_state_dict below gives each its settings
            for names in values["groups"]:
                optimizer.add_param_group({"params": [parameters[name] for name in names]})
    if len(optimizer.param_groups) != len(values["param_groups"]):
        raise RiskminError(
            f"the checkpoint's optimizer had {len(values['param_groups'])} parameter groups and the one built now has "
            f"{len(optimizer.param_groups)}; a resume regroups the model's own parameters by name (a layer a callback "
            "unfroze), not others the optimizer holds: resume with the optimizer as it stood at the checkpoint"
        )
    state = {int(index): dict(entry) for index, entry in values["state"].items()}
    for key, tensor in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": values["param_groups"]})
