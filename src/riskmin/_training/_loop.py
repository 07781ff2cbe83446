"""fit(): the training loop, the same whatever the parametrization; evaluate() and predict()."""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Optional

import torch
from torch import nn

from .._data import _frames as frames, _outputs as outputs
from .. import distributed, models
from ..callbacks import BestModel, CsvLog, Progress, State, TensorBoard
from ._callables import (
    Callables,
    checked_callbacks,
    in_target_units,
    indexed,
    loss_object,
    missing_callables,
    model_step,
    user_objects,
    user_metric,
    takes_index,
)
from ._checks import (
    check_arguments,
    check_columns,
    check_evaluated_targets,
    check_model,
    check_one_row_batch,
    gradient_checked,
    probe,
)
from ._checkpoint import (
    Checkpoints,
    FinishedThenInterrupted,
    NoCheckpoints,
    TrainingInterrupted,
    Interruptible,
    checkpointed_length,
)
from ..config import (
    called_with,
    Diverged,
    FIELDS,
    Config,
    RiskminError,
    RiskminNote,
    RiskminNumerics,
    said_for_task,
    said_given,
    warn,
)
from .._paths import data_label, stopped_run
from ..data import Data, Splits, to_device
from .._data._inputs import SeveralInputsModel, each_input, forward, is_several, n_rows, several_inputs
from ..metrics import REGRESSION, in_words, read_as
from ._fingerprint import fingerprint
from ._losses import (
    check_bce_outputs,
    check_log_target,
    check_targets,
    least_squares_loss,
    make_loss,
    with_concrete_loss,
)
from ._optim import accumulation_shares, make_optimizer, make_scheduler, mixed_precision
from ._prepare import (
    EVAL_CHUNK,
    Prepared,
    as_model,
    as_splits,
    as_they_are_note,
    batches_per_epoch,
    chunks,
    evaluate_batches,
    fitted_batch,
    recorded,
    resolve_device,
)
from .._runs._report import header
from .._runs._rundir import (
    Attempt,
    Run,
    Replacement,
    attempts,
    check_not_a_link,
    fit_folder,
    save_run,
    worth_keeping,
    written_by_a_run,
)
from .._files import RunLock, held_elsewhere, held_here, holds_run, this_process
from .._paths import holds_experiment
from ._threads import IntraOpThreads
from ..policy import Judge, judged, reports_closed_form, worse_than_the_mean
from ._state import Training, restore_checkpoint, save, validate

CHECKPOINT_SECONDS = 30.0  # by default a checkpoint at the end of the first epoch this long after the last one


WRITES = "the riskmin train command (fit writes where directory= or run.save(path) says)"
# settings fit refuses: they belong to one command
COMMAND_SETTINGS = {
    **{name: "riskmin.montecarlo" for name, f in FIELDS.items() if f.metadata["command"] == "montecarlo"},
    "out": WRITES,
    "name": WRITES,
}
# the modules a fit has trained: a second fit of one starts from its trained weights, and says so
TRAINED = weakref.WeakSet()


def fit(
    model, data, config: Optional[Config] = None, callbacks=(), directory=None, resume: bool = False, **settings
) -> Run:
    """Train `model` on `data` by empirical risk minimization and return a `Run`.

    `model` is any nn.Module or a built-in name ("linear", "two_layer", "mlp");
    `data` is Splits, Data, (x, y), a Dataset or a built-in data set name.
    Settings come from `config` and keyword overrides (see `Config`); `loss`, `optimizer`, `scheduler` and `metrics`
    also take objects of your own (see `Callables`), recorded in the config by name. With a run
    `directory`, checkpoints are written as `checkpoint_every` says and on SIGINT or
    SIGTERM (then `TrainingInterrupted` is raised), `resume=True` continues from the
    newest good checkpoint there, exactly as if the run had never stopped, and the
    finished run's files are written there as `riskmin train` writes them; a directory
    that holds a finished run is replaced only with `overwrite=True`, and only by a run that succeeds: the new one
    trains in a hidden folder beside it, as `riskmin train --overwrite` does. A module trains
    in place: a second fit of it continues from its trained weights (with a warning).
    Under torchrun the processes train the model together (DistributedDataParallel); `training_loop` is the loop.

    >>> run = fit("linear", "line", split="tutorial", optimizer="sgd", lr=0.1, epochs=5, progress=False)
    >>> [row["epoch"] for row in run.history]
    [1, 2, 3, 4, 5]
    """
    training = setup(model, data, config, callbacks, directory, resume, settings)
    run = training_loop(training, resume)
    if not training.team.first:
        return run
    worse = worse_than_the_mean(run.summary)
    if run.summary["diverged"]:  # the console says it; Python would else hear nothing
        warn(run.summary["stop_reason"], Diverged)
    elif worse:  # an experiment says it of its runs as a whole
        warn(worse, RiskminNumerics)
    return run


def fixed_by_splits(settings: dict) -> str:
    """The note on the keywords of a split that Splits given as the data leave unused ("" when none was given).

    >>> fixed_by_splits({"val": 0.3, "test": 0.3, "lr": 0.1})
    'val=0.3 and test=0.3 are not used: the Splits given fix the rows of each split (riskmin.split makes others)'
    """
    given = [f"{name}={settings[name]!r}" for name in ("train", "val", "test", "split") if name in settings]
    if not given:
        return ""
    fixed = "the Splits given fix the rows of each split (riskmin.split makes others)"
    return f"{in_words(given, 'and')} {'are' if len(given) > 1 else 'is'} not used: {fixed}"


def swept(model, data, config: Optional[Config], callbacks, settings: dict) -> Run:
    """`fit` for lr_find's sweep, which trains to divergence on purpose and is judged by its curve: nothing said of the
    run's numbers."""
    return training_loop(setup(model, data, config, callbacks, None, False, settings, part=True), False)


def fit_alone(model, data, config: Config, callbacks=(), checkpoints=None, resume: bool = False, **settings) -> Run:
    """`fit` in this process alone, even under torchrun: a Monte-Carlo experiment deals whole runs to the processes.
    `checkpoints`: a folder the run checkpoints in, as `fit` in a run directory does, but writing no run files;
    `resume=True` continues from its newest good checkpoint."""
    training = setup(
        model,
        data,
        config,
        callbacks,
        None,
        resume,
        settings,
        team=distributed.Alone(),
        checkpoints=checkpoints,
        experiment=True,
        part=True,
    )
    return training_loop(training, resume)


def training_loop(training: Training, resume: bool) -> Run:
    """`trained` (the loop), and when the run replaces another (`fit_folder`), that run replaced only by a success
    (`Replacement`): one that diverged, failed or was interrupted stays beside it, and says where. Under torchrun
    the processes return together once a finished run is in its place."""
    building, target, team = training.directory, training.replacing, training.team
    if building is None or target is None:
        if building is None or not team.first or training.commanded:  # the command line locked its folder itself
            return trained(training, resume)
        return trained_alone(training, building, resume)
    if not team.first:  # process 0 writes the run and renames it; the others wait for it, then return
        try:
            run = trained(training, resume)
        except FinishedThenInterrupted:
            team.wait_for_first()
            raise
        team.wait_for_first()
        return run
    with Replacement(building, target, resume_call(building), None if resume else Attempt.at(building)) as replacement:
        try:
            run = trained(training, resume)
        except FinishedThenInterrupted as stop:  # the run whole: it takes the place it was for, and the stop goes on
            try:
                written = target if replacement.settle(stop.run) else building
            finally:  # renamed or not, the others go on: none waits for a process 0 that failed here
                team.wait_for_first()
            raise FinishedThenInterrupted(
                f"interrupted after the last step, once the run was finished and written to {written}", stop.run
            ) from None
        except (TrainingInterrupted, RiskminError) as error:
            if replacement.kept():
                raise type(error)(f"{error}; {replacement.left()}") from None
            raise
        except BaseException:  # a bug in a callback, a second Ctrl-C while finishing: raised as it is
            if replacement.kept():
                warn(replacement.left(), RiskminNote)
            raise
        try:
            if not replacement.settle(run):
                warn(f"the run diverged, so it does not replace the run; {replacement.left()}", RiskminNote)
        finally:
            team.wait_for_first()
    return run


def trained_alone(training: Training, building: Path, resume: bool) -> Run:
    """`trained` in the run folder `building` under its lock, as the command line trains: another fit or command there
    meanwhile is refused. A new run that fails with nothing to resume or use (a checkpoint, its final files) leaves
    nothing of its own behind, which a later fit there would take for a run that stopped; one refused by the lock
    removes nothing, whoever made the folder."""
    attempt = None if resume else Attempt.at(building)  # before the lock's file makes the folder
    try:
        building.mkdir(parents=True, exist_ok=attempt is None or attempt.made is None)
    except FileExistsError:  # another fit made it since: not this one's to remove
        attempt = Attempt.at(building)
    except OSError as error:
        raise RiskminError(
            f"directory {building} cannot be made ({error.strerror}); fix its permissions or choose another"
        ) from None
    with RunLock(building, place="directory", holder=f"a fit in {this_process()}"):
        try:
            return trained(training, resume)
        except BaseException:
            if attempt is not None:
                attempt.undone()
            raise


def resume_call(directory: Path) -> str:
    """The call of fit that continues the run in `directory`."""
    return f"riskmin.fit(model, data, ..., directory={str(directory)!r}, resume=True)"


def trained(training: Training, resume: bool) -> Run:
    """The training loop over a run that `setup` made ready; with a run directory, the finished run's files written
    there.

    Its shape:

        for epoch in 1..epochs:
            for x, y in batches:                  # permuted slices, or random draws
                with autocast:                     # precision bf16-mixed or 16-mixed; nothing at 32
                    loss = loss_fn(model(x), y)    # or the model's own training_step((x, y))
                scaler.scale(loss).backward()      # the gradients of `accumulate` batches add up, then:
                clip; scaler.step(optimizer); zero the gradients; scheduler.step() when it steps per step
                every val_every steps (or at the end of the epoch): validate -> best weights -> early stopping
            checkpoint when due
        restore the best weights; measure train, val and test metrics
    """
    state, model, optimizer, clip = training.state, training.model, training.optimizer, training.config.clip_grad
    autocast, scaler = training.autocast, training.scaler
    step = step_calls(training)
    loss_of = gradient_checked(step.loss_of, training.loss_fn)  # no gradient: one sentence, not backward's error
    hooks, batch_hooks = training.hooks("on_step_end"), training.hooks("on_batch_end")
    directory = training.directory
    with session(training, resume):
        while going_on(training):
            state.epoch += 1
            if training.switches_mode or not model.training:
                model.train()
            # a run resumed from its last step has only this epoch's end left: no batch more
            for x, y in step.batches if steps_left(training) else ():
                with autocast:  # at precision 32 a context that does nothing
                    loss = loss_of(x, y)
                scaler.scale(loss).backward()  # scaled up at 16-mixed alone, lest small float16 gradients round to zero
                if accumulating(training, loss, batch_hooks):
                    continue  # this batch's gradients wait for the rest of its group
                if clip:  # the groups as they are now: a callback may have added one
                    scaler.unscale_(optimizer)  # clip the gradients themselves, not their scaled-up values
                    nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], clip)
                scaler.step(optimizer)
                scaler.update()
                # flush the gradients as soon as we can: the next group starts afresh
                optimizer.zero_grad(set_to_none=True)
                if after_step(training, hooks):
                    break
            end_epoch(training)
    # the last batch is a view of the epoch's permuted copy of the rows: free that before evaluating
    x = y = loss = None
    # once the steps are done, a Ctrl-C waits for the trained run to be measured and written: it would be lost, or
    # left to resume from a checkpoint for nothing; a second one stops at once
    with Interruptible(training.state, second_stops=True, defaults_only=not training.saver.enabled):
        run = finish(training)
        if directory is not None and training.team.first:  # the run directory complete, as `riskmin train` leaves it
            save_run(run, directory)
    # a signal while finishing, or after the last step's look at the flag: the interruption goes on, and a loop of
    # runs stops here, as it asked
    if training.state.interrupted:
        written = f" and written to {directory}" if directory is not None else ""
        raise FinishedThenInterrupted(f"interrupted after the last step, once the run was finished{written}", run)
    return run


class Step(NamedTuple):
    """What a training step calls: `batches` to iterate, and `loss_of(x, y)`, the loss whose gradient the step takes."""

    batches: Iterable
    loss_of: Callable


def step_calls(training: Training) -> Step:
    """What a training step calls: the batches (under torchrun, this process' share of each), and loss_of(x, y): the
    model's own training_step((x, y)) when it has one, else the loss (under torchrun, this process' share of it) of
    the model (wrapped by DDP; given several inputs as model(*x) or model(**x))."""
    team, model = training.team, training.model
    steps, trained = team.steps(training.batches), team.wrap(model)
    trained = SeveralInputsModel(trained) if training.prepared.several else trained
    if hasattr(model, "training_step"):
        model_loss = training.loss_fn
        return Step(steps, weighed(lambda x, y: model_loss((x, y)), training))
    step_loss = team.scaled(training.loss_fn, steps)
    return Step(steps, weighed(lambda x, y: step_loss(trained(x), y), training))


def weighed(loss_of, training: Training):
    """`loss_of`, its loss times the batch's share of the group its gradient accumulates in (_optim.group_shares), so
    that a group's summed gradient is that of one batch of all its rows; `loss_of` itself when every batch is a step."""
    shares, state = training.shares, training.state
    if shares is None:
        return loss_of
    return lambda x, y: loss_of(x, y) * shares[state.epoch_step]


def accumulating(training: Training, loss: torch.Tensor, hooks: list) -> bool:
    """What follows a batch's backward pass: its loss added to the step's (training.held), the callbacks'
    on_batch_end; whether its gradients wait for more batches before a step (with accumulate N, a step follows every
    N-th batch of an epoch, and its last). Interrupted there, a run alone saves its held gradients and leaves."""
    state = training.state
    held = loss.detach()
    training.held = held if not state.accumulated or training.held is None else training.held + held
    state.epoch_step += 1
    state.accumulated += 1
    for hook in hooks:
        hook(state)
    if state.accumulated == training.config.accumulate or state.epoch_step == len(training.batches):
        state.accumulated = 0
        return False
    # under torchrun the processes agree to stop at a step, in leaving()
    if state.interrupted and training.team.world == 1:
        interrupt(training)
    return True


def after_step(training: Training, hooks: list) -> bool:
    """What follows an optimizer step: the schedule's step when it steps per step, the step's loss kept on the device
    (read only when reported), the callbacks' on_step_end, a validation when due; whether the epoch's steps end here."""
    state, config = training.state, training.config
    if training.scheduler is not None and config.scheduler_interval == "step":
        training.scheduler.step()
    state.loss = held = training.held
    assert held is not None  # accumulating() set it at the step's first batch
    training.losses.append(held.float())  # summed in float32 whatever the precision: float16 overflows at 65504
    if len(training.losses) == 1024:  # a long stretch between reports holds one tensor, not a list that grows
        training.losses = [torch.stack(training.losses).sum()]
    training.unreported += 1
    state.step += 1
    for hook in hooks:
        hook(state)
    if validation_due(training):
        validate(training)
    return leaving(training)


def setup(
    model,
    data,
    config: Optional[Config],
    callbacks,
    directory,
    resume: bool,
    settings: dict,
    team=None,
    checkpoints=None,
    experiment: bool = False,
    part: bool = False,
) -> Training:
    """Everything a run needs before its first step, from what the user passed. `team`: the processes that train this
    model together; by default those torchrun started (distributed.team), or this process alone. `checkpoints`: where
    checkpoints go when that is not a run `directory` (a run of an experiment). `experiment`: a run of an experiment,
    whose experiment says what the data holds (constant feature columns) once for all its runs. `part`: a run that
    serves something larger (an experiment's run, lr_find's sweep), which is not measured when interrupted."""
    callbacks = checked_callbacks(callbacks)
    config, callables = fit_settings(model, config, settings, resume)
    if resume and directory is not None and config.epochs is None and not config.max_steps:
        config = config.replace(**checkpointed_length(Path(directory)))  # the length it began with, not the default's
    config = recorded(config, data)  # config.toml names the data the run was given, not the default data set
    starting_point(model, config, directory, resume)
    device = distributed.training_device(resolve_device(config.device))
    autocast, scaler = mixed_precision(config, device)  # a precision the device cannot compute in is refused here
    team = team if team is not None else distributed.team(device)
    splits = as_splits(data, config)
    config, batch_note = run_settings(config, model, splits, team)
    assert config.epochs is not None  # run_settings made them final
    # a Dataset's validation and test items are read here, once: under the run's seed, not the caller's random state,
    # so that items drawn at random (augmentations) are the same in every fit of that seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        prepared = Prepared(splits, config, device, team, callables.metrics)
    model = checked_model(model, prepared, config)
    tracked = judged(config, prepared.has_val, tuple(callables.metrics))
    if batch_note and team.first:  # once the data and the model passed their checks: a mistake is the one line said
        warn(batch_note, RiskminNote)
    unscaled = as_they_are_note(splits.data, config)
    if unscaled and team.first and not experiment:  # an experiment says it once for all its runs
        warn(unscaled, RiskminNote)
    unused = fixed_by_splits(settings) if isinstance(data, Splits) else ""
    if unused and team.first:
        warn(unused, RiskminNote)
    if team.first and not experiment:  # an experiment says these once for all its runs
        # what the data, once read, leaves unused (a Dataset's settings for rows held in memory)
        said_for_task(config, settings, splits.data.task if isinstance(splits.data, Data) else "")
        for note in prepared.notes:
            warn(note)
    # frozen ones never get a gradient
    optimizer = make_optimizer(config, [p for p in model.parameters() if p.requires_grad], callables.optimizer)
    frozen = frozenset(id(p) for p in model.parameters() if not p.requires_grad)
    batches = prepared.batches(config)
    threads = IntraOpThreads(
        config.threads, model, getattr(batches, "batch_size", config.batch_size) or len(splits.train), device
    )
    best, chosen = default_callbacks(config, prepared, model, threads.wanted or 0, tracked)
    directory, replacing = run_folder(directory, config, resume, team)
    chosen += live_logs(config, directory, team)
    state = State(model, config.epochs, steps_per_epoch(splits, config), optimizer=optimizer, team=team)
    # Lightning's (batch, batch_idx)
    steps_by_index = hasattr(model, "training_step") and takes_index(model.training_step)
    total_steps = config.max_steps or config.epochs * state.steps_per_epoch
    checkpoints = checkpoints if checkpoints is not None else directory
    saved = checkpoints is not None
    return Training(
        config=config,
        prepared=prepared,
        model=model,
        switches_mode=not models.mode_free(model),
        loss_fn=make_loss(config.loss, indexed(model.training_step, state) if steps_by_index else callables.loss),
        optimizer=optimizer,
        scheduler=make_scheduler(config, optimizer, callables.scheduler, total_steps),
        batches=batches,
        callbacks=chosen + list(callbacks),
        best=best,
        judge=Judge(config, runs=1, tracked=tracked),
        state=state,
        team=team,
        saver=Checkpoints(checkpoints) if saved else NoCheckpoints(),
        directory=directory,
        replacing=replacing,
        commanded=directory is not None and held_here(directory),
        part=part,
        frozen=frozen,
        total_steps=total_steps,
        losses=[],
        threads=threads,
        callables=callables,
        fingerprint=fingerprint(splits, config) if saved else None,
        autocast=autocast,
        scaler=scaler,
        shares=accumulation_shares(config, len(splits.train)),
    )


def run_settings(config: Config, model, splits, team) -> tuple:
    """(the settings the run trains with and records, a note on its batch or ""), made final before its data is
    prepared: process 0 alone reports, loss "auto" is made concrete by the targets, a module is described by how to
    build it again (or as model "custom" and its class), a default batch larger than a small table's training rows
    takes them all (fitted_batch), and the epochs are those in force (unset: 100, or as many as max_steps take)."""
    targets = splits.data.y if isinstance(splits.data, Data) else splits.data[0][1]
    note = ""
    if isinstance(splits.data, Data):  # in memory
        config, note = fitted_batch(config, len(splits.train))
    return config.replace(
        loss=with_concrete_loss(config, targets).loss,
        epochs=config.epochs_for(steps_per_epoch(splits, config)),
        **({} if team.first else {"progress": False}),
        **(models.build_settings(model) if isinstance(model, nn.Module) else {}),
    ), note


def steps_per_epoch(splits, config: Config) -> int:
    """Optimizer steps in an epoch: one per `accumulate` batches, and one for the epoch's last group however short."""
    return -(-batches_per_epoch(splits, config) // config.accumulate)


def fit_settings(model, config: Optional[Config], settings: dict, resume: bool = False) -> tuple:
    """(Config, Callables) from what fit was given: settings of another command refused, the user's own loss,
    optimizer, scheduler and metrics kept aside and named in the config, a model's own training_step noted, what the
    given settings leave unused said (`said_given`; a `config` given is checked whole unless it resumes a run)."""
    for key in settings:
        if key in COMMAND_SETTINGS:
            raise RiskminError(
                f"{key} is a setting of {COMMAND_SETTINGS[key]}, not of fit, which trains one run; drop {key}="
            )
    if isinstance(model, str):
        settings = {"model": model, **settings}
    callables, settings = user_objects(settings)  # the user's own loss, optimizer, ...: kept here, named in the config
    callables, settings = model_step(model, callables, settings)  # a model's own training_step, configure_optimizers
    whole = config is not None and not resume
    config = called_with("fit", config, settings)
    missing_callables(config, callables)
    said_given(config, settings, [model], whole=whole)
    return config, callables


def starting_point(model, config: Config, directory, resume: bool) -> None:
    """Refuse a `directory` a run may not start or resume in (`check_run_folder`); say so when `model` is a module an
    earlier fit trained, so that a run meant to start afresh does not silently go on from trained weights."""
    if directory is not None:
        check_run_folder(Path(directory), config, resume)
    if isinstance(model, nn.Module) and model in TRAINED and not resume:
        warn(
            "this module was trained by an earlier fit, and this fit continues from its trained weights; build a new "
            "one (after torch.manual_seed) to train from a fresh initialization"
        )


def check_run_folder(folder: Path, config: Config, resume: bool) -> None:
    """Refused: a symbolic link; a file; a folder that holds anything a run did not write (never written into,
    overwrite or not); an experiment; one another process writes; a finished run without overwrite, as `riskmin train`
    refuses; a run that stopped (its checkpoints, or the settings the command line wrote before its first one)
    without resume or overwrite."""
    check_not_a_link(folder, "directory")  # as riskmin train and save refuse one: here, before training
    if os.path.lexists(folder) and not folder.is_dir():
        raise RiskminError(f"directory {folder} is a file, not a folder; choose another directory")
    if not folder.is_dir() and resume:
        raise RiskminError(
            f"directory {folder} does not exist, so holds no run to resume; drop resume=True to begin one"
        )
    if not folder.is_dir():
        return
    if holds_experiment(folder):
        raise RiskminError(f"directory {folder} holds an experiment, not a run; give fit a directory of its own")
    # the other processes of a torchrun train in the folder process 0 locked
    owner = held_elsewhere(folder) if distributed.rank() == 0 else None
    if owner:
        raise RiskminError(f"directory {folder} is being written by {owner}; wait for it to finish or choose another")
    # a run's own folder may hold anything (a link planted at its metrics.csv is replaced, not written through)
    foreign = [] if holds_run(folder) else [path.name for path in folder.iterdir() if not written_by_a_run(path)]
    if foreign:
        raise RiskminError(
            f"directory {folder} exists and is not a riskmin run (it holds {foreign[0]}); a run is written into a new "
            "or empty folder, or over a riskmin run with overwrite=True: choose another directory"
        )
    finished = (folder / "summary.json").exists()
    if finished and resume:
        stopped = sorted((e for e in attempts(folder) if worth_keeping(e)), key=lambda e: e.stat().st_mtime_ns)
        raise RiskminError(
            f"directory {folder} holds a finished run, with nothing to resume; "
            + (
                f"the run that was to replace it stopped in {stopped[-1]}: resume it there, directory="
                f"{str(stopped[-1])!r}"
                if stopped
                else "drop resume=True and pass overwrite=True to train it again"
            )
        )
    if finished and not config.overwrite:
        raise RiskminError(
            f"directory {folder} holds a finished run; pass overwrite=True to replace it, or choose another directory"
        )
    # the command line trains in the folder it made and locked, its settings written first
    begun = (folder / "config.toml").exists() and not held_here(folder)
    if (stopped_run(folder) or begun) and not finished and not resume and not config.overwrite:
        raise RiskminError(
            f"directory {folder} holds a run that stopped before it finished; pass resume=True to continue it, "
            "or overwrite=True to train it again from the start"
        )


def checked_model(model, prepared: Prepared, config: Config) -> nn.Module:
    """The model on the training device, checked once against the data, the loss and the processes that train it (the
    loop itself checks nothing)."""
    # DistributedDataParallel syncs gradients through forward only
    if prepared.team.world > 1 and hasattr(model, "training_step"):
        raise RiskminError(
            "a model's own training_step trains in one process; under torchrun give riskmin the loss instead"
        )
    model = as_model(model, prepared, config).to(prepared.device)
    output = check_model(model, probe(prepared), config.loss)
    if prepared.labels:  # the classes the model scores, which a run records (n_outputs) and evaluate checks labels by
        prepared.n_outputs = output.shape[1]
    if config.loss == "bce":
        check_bce_outputs(model, prepared.first_inputs())
    check_one_row_batch(model, prepared.first_inputs, len(prepared.splits.train), config, prepared.team.world)
    return model


@contextlib.contextmanager
def session(training: Training, resume: bool):
    """Around the loop: the run's own random state and thread count, signals turned into a stop at a step's end, a
    resumed checkpoint loaded, the callbacks told; after it, the last checkpoint on disk and the processes done
    exchanging."""
    config, state, saver, team = training.config, training.state, training.saver, training.team
    if resume and not saver.enabled:
        raise RiskminError(
            "resume=True needs the run's directory; pass directory= the folder the run was checkpointing to"
        )
    device = training.prepared.device
    with (
        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        # a signal leaves at the next step's end: saved there, or measured (interrupt)
        Interruptible(state, defaults_only=not saver.enabled),
        training.threads,
        team.watched(),
    ):
        torch.manual_seed(config.seed)  # dropout and any other randomness inside the model
        training.start = time.perf_counter()
        # the first group adds up its own gradients, not ones left on the module
        training.model.zero_grad(set_to_none=True)
        if resume:
            restore_checkpoint(saver, training)
        TRAINED.add(training.model)
        training.last_saved = time.perf_counter()
        for hook in training.hooks("on_fit_start"):  # a KeyboardInterrupt raised here stops at the first step's end
            hook(state)
        try:
            yield
            saver.wait()
            team.finish_exchange()
            for hook in training.hooks("on_fit_end"):  # one raised here leaves once the run is finished and written
                hook(state)
        finally:  # also on Ctrl-C: no progress bar left behind on the line the next output lands on, no writer thread
            saver.close()
            for callback in training.callbacks:
                if hasattr(callback, "close"):
                    callback.close()


def going_on(training: Training) -> bool:
    """Whether another epoch begins, or one resumed inside it goes on: a checkpoint taken at a run's last step (a
    Ctrl-C there) still has that epoch's end, its last validation, to come."""
    state, epochs = training.state, training.config.epochs
    assert epochs is not None  # setup made them final
    return state.epoch_step > 0 or (state.epoch < epochs and steps_left(training))


def steps_left(training: Training) -> bool:
    state = training.state
    return state.step < training.total_steps and not state.should_stop


def validation_due(training: Training) -> bool:
    every, step = training.config.val_every, training.state.step
    return bool(every) and (step % every == 0 or step == training.total_steps)


def leaving(training: Training) -> bool:
    """Whether this epoch's steps end here: the last step, a stop, or an interruption (then save and leave)."""
    state = training.state
    if training.team.interrupted(state.interrupted, state.step):  # under torchrun, all processes agree on the step
        interrupt(training)
    return state.step == training.total_steps or state.should_stop


def interrupt(training: Training) -> None:
    """Save a checkpoint of the run where it stands and leave the loop by TrainingInterrupted; with nowhere to save one
    (no directory=), leave with the run so far instead, measured with the weights it keeps (its best), which the
    model then holds: an interrupted fit in a notebook loses neither. (A run that serves something larger, an
    experiment's or lr_find's sweep, leaves as it is: what it serves keeps what it needs.)"""
    state = training.state
    if not training.saver.enabled:
        if training.part:  # what it serves says what it kept
            raise TrainingInterrupted(f"interrupted in epoch {state.epoch} after step {state.step}")
        state.should_stop, state.stop_reason = True, "interrupted"
        with Interruptible(state, second_stops=True, defaults_only=True):  # a second Ctrl-C stops the measuring
            run = finish(training)
        kept = (
            f"the weights of epoch {run.summary['best_epoch']}" if run.summary["restored_best"] else "its last weights"
        )
        raise TrainingInterrupted(
            f"interrupted in epoch {state.epoch} after step {state.step}; fit was given no directory= to save a "
            f"checkpoint in, so the run so far, with {kept}, which the model holds too, is this exception's run",
            run,
        )
    save(training.saver, training)
    training.saver.wait()
    held = f" and {state.accumulated} batch(es) of the next" if state.accumulated else ""
    directory = training.directory
    # the command line, which holds the lock of its folder, names its own command; a replacement says where it is
    continued = ""
    if directory is not None and training.replacing is None and not training.commanded:
        continued = f"; continue with: {resume_call(directory)}"
    raise TrainingInterrupted(
        f"interrupted in epoch {state.epoch} after step {state.step}{held}; the checkpoint is saved{continued}"
    )


def end_epoch(training: Training) -> None:
    """What the end of an epoch does: report (unless validation runs every N steps), callbacks, schedule, checkpoint."""
    config, state = training.config, training.state
    if training.unreported and (not config.val_every or state.step == training.total_steps or state.should_stop):
        validate(training)
    for hook in training.hooks("on_epoch_end"):
        hook(state)
    if training.frozen and not training.unfrozen_said:  # nothing frozen at the start: nothing to look at each epoch
        say_unfrozen(training)
    if training.scheduler is not None and config.scheduler_interval == "epoch" and not plateau(training.scheduler):
        training.scheduler.step()
    state.epoch_step = 0
    # asked at an epoch's end (a KeyboardInterrupt of on_epoch_end, Ctrl-C while validating): left there, with its
    # checkpoint, not a step into the next; the last epoch's run finishes first. (Under torchrun the processes agree
    # at a step's end alone.)
    if state.interrupted and training.team.world == 1 and going_on(training):
        interrupt(training)
    if checkpoint_due(training):
        save(training.saver, training)
        training.last_saved = time.perf_counter()


def say_unfrozen(training: Training) -> None:
    """Warn, once, of parameters frozen when training began that require a gradient now but are in no group of the
    optimizer: it is built over those that required one then (frozen ones never get a gradient), so one a callback
    unfroze does not train until the callback adds it, as a loop by hand would. (One the user's own optimizer leaves
    out from the start is theirs to leave.)"""
    grouped = {id(p) for group in training.optimizer.param_groups for p in group["params"]}
    names = [
        name
        for name, p in training.model.named_parameters()
        if p.requires_grad and id(p) in training.frozen and id(p) not in grouped
    ]
    if not names or not training.team.first:
        return
    training.unfrozen_said = True
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    warn(
        f"{'parameters' if len(names) > 1 else 'parameter'} {', '.join(names[:3])}{more} now require a gradient but "
        "lie in no group of the optimizer, which holds the parameters that required one when training began, so "
        "they do not train; the callback that unfreezes a layer adds it too: "
        "state.optimizer.add_param_group({'params': list(layer.parameters())})"
    )


def plateau(scheduler) -> bool:
    """Whether `scheduler` follows the monitored metric, stepped by each validation rather than by the clock."""
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def checkpoint_due(training: Training) -> bool:
    """`checkpoint_every` epochs, when set; by default once CHECKPOINT_SECONDS have passed since the last checkpoint."""
    every = training.config.checkpoint_every
    if not training.saver.enabled or every == 0:
        return False
    if every is None:
        return time.perf_counter() - training.last_saved >= CHECKPOINT_SECONDS
    return training.state.epoch % every == 0


def finish(training: Training) -> Run:
    """The best weights restored, every split measured with them, and the summary of the run."""
    config, state, prepared = training.config, training.state, training.prepared
    best, model = training.best, training.model
    judge = training.judge
    # a callback that asked to stop without saying why is named as the reason
    stopped_by = (state.stop_reason or "stopped by a callback (state.should_stop)") if state.should_stop else ""
    judge.ended(0, state.epoch, state.step, stopped_by)
    restored = bool(judge.restored()[0]) and best is not None and best.restore(model)
    with training.team.watched():
        final = prepared.final_metrics(
            model, training.loss_fn, config.loss, known=known_val_metrics(training, restored)
        )
    summary = summary_of(training, final)
    # a run that reports says so; Monte-Carlo's runs are rows in its table
    test = {k: v for k, v in final.items() if k.startswith("test_")}
    return Run(
        model=model,
        config=config,
        history=state.history,
        test=test,
        summary=summary,
        preprocessing=prepared.standardizer,
        data_names=prepared.names,
        callables=training.callables,
    )


def known_val_metrics(training: Training, restored: bool) -> dict:
    """The val_ metrics of the validation that measured exactly the final weights, if any: they need no second pass."""
    state = training.state
    last = state.history[-1] if state.history and state.history[-1]["step"] == state.step and not state.diverged else {}
    best = training.best
    measured = {} if training.switches_mode else best.metrics if restored and best is not None else last
    return {k: v for k, v in measured.items() if k.startswith("val_")}


def summary_of(training: Training, final: dict) -> dict:
    prepared, config = training.prepared, training.config
    closed_form = reports_closed_form(config, training.model, prepared.tensors and "test" in prepared.rows)
    return {
        **training.judge.fields(0),  # best epoch and step, stops, divergence: the judge's, as for a stack's runs
        **final,
        "seconds": time.perf_counter() - training.start,
        "device": str(prepared.device),
        **({"checkpoint_seconds": training.saver.seconds} if training.saver.enabled else {}),
        "n_inputs": prepared.n_inputs,
        "n_outputs": prepared.n_outputs,
        **{f"n_{k}": v for k, v in prepared.splits.sizes().items()},
        **({"closed_form_test_loss": least_squares_loss(prepared, config.bias)} if closed_form else {}),
        **({"target_transform": "log"} if config.target_transform == "log" else {}),  # its losses are of log(target)
    }


def default_callbacks(config: Config, prepared: Prepared, model: nn.Module, threads: int, tracked: bool):
    """The best-model keeper (None when there is nothing to judge by) and the callbacks the settings ask for."""
    best = None
    chosen: list = []  # the best-model keeper and the console's callbacks
    if tracked:
        best = BestModel()
        chosen.append(best)
    if config.progress:
        chosen.append(
            Progress(
                print_every=config.print_every, monitor=config.monitor, header=opening(config, prepared, model, threads)
            )
        )
    return best, chosen


def run_folder(directory, config: Config, resume: bool, team) -> tuple:
    """(the folder the run writes in, the run it replaces once it succeeds, or None): `fit_folder`'s answer on process
    0, shared with the others of a torchrun."""
    if directory is None:
        return None, None
    found = fit_folder(Path(directory), config.overwrite, resume) if team.first else (None, None)
    return distributed.shared(found) if team.world > 1 else found


def live_logs(config: Config, directory, team) -> list:
    """With a run directory, on process 0: metrics.csv written at each validation, and TensorBoard when asked for."""
    if directory is None:
        if config.log == "tensorboard":
            raise RiskminError(
                "log tensorboard writes into the run's directory; pass directory= (riskmin train gives one)"
            )
        return []
    if not team.first:
        return []
    logs = [CsvLog(Path(directory) / "metrics.csv")]
    return logs + [TensorBoard(directory)] if config.log == "tensorboard" else logs


def opening(config: Config, prepared: Prepared, model: nn.Module, threads: int) -> list:
    """The header lines of a run's console: its data, model and training settings (threads: 0 off the CPU)."""
    name = config.model if config.model != "custom" else config.model_class.rsplit(".", 1)[-1]
    return header(
        data_label(prepared.names, config),
        prepared.splits.sizes(),
        name,
        sum(p.numel() for p in model.parameters()),
        trained_loss(config),
        config.optimizer,
        str(prepared.device),
        threads,
    )


def trained_loss(config: Config) -> str:
    """The loss as a run's header names it: "mse", or "mse of log(target)" where it trains on the logarithm."""
    return f"{config.loss} of log(target)" if config.target_transform == "log" else config.loss


def evaluate(run_or_model, data, loss=None) -> dict:
    """Loss and metrics on every row of `data`, with the run's preprocessing; `loss`: a name or a function of your own
    (by default the run's loss, and its own metrics). `data`: a DataFrame, Data, (x, y), or a data file's path, read as
    `riskmin evaluate` reads it; `run_or_model`: a Run, a run directory's path, or a module.

    >>> run = fit("linear", "line", split="tutorial", optimizer="sgd", lr=0.1, epochs=50, progress=False)
    >>> from riskmin import datasets
    >>> round(evaluate(run, datasets.line())["loss"], 2)
    0.01
    """
    run_or_model = loaded(run_or_model)
    model, standardizer, config = unpack(run_or_model)
    callables = (
        run_or_model.callables
        if isinstance(run_or_model, Run) and isinstance(run_or_model.callables, Callables)
        else Callables()
    )
    names = getattr(run_or_model, "data_names", {})
    data = file_rows(data, names) if is_path(data) else frames.rows(data, names)
    check_columns(data.x, standardizer)
    loss_name, given = evaluation_loss(model, config, loss, callables, data.y)
    # whole numbers where the run fits numbers, as fit reads them: a regression's amounts, bce's yes/no targets
    numbers = loss_name in REGRESSION or loss_name == "bce" and frames.yes_no(data.y)
    targets = data.y.float().reshape(len(data.y), -1) if numbers and not data.y.is_floating_point() else data.y
    check_targets(loss_name, targets, run_or_model.summary.get("n_outputs") if isinstance(run_or_model, Run) else None)
    target = (
        standardizer.target if standardizer is not None and (loss_name in REGRESSION or loss_name == "custom") else None
    )
    if target is not None and target.log:  # the run's rows with a logarithm: the new ones must have one too
        check_log_target(config, targets, getattr(run_or_model, "data_names", {}).get("targets") or data.target_names)
    device = next(model.parameters()).device
    x = to_device(standardizer(data.x) if standardizer is not None else data.x, device)
    check_arguments(model, x)
    check_evaluated_targets(model, x, targets, loss_name, names.get("targets") or [])
    # the outputs as the run trained them: a standardized (or log) regression target's units, converted back for the
    # metrics
    y = targets if target is None else target(targets)
    loss_fn = make_loss(loss_name, given)
    loss_fn = in_target_units(loss_fn, target) if target is not None and loss_name == "custom" else loss_fn
    metrics = {name: user_metric(name, fn, target) for name, fn in callables.metrics.items()}
    return evaluate_batches(model, chunks(x, y.to(device)), loss_fn, loss_name, metrics=metrics, target=target)


def evaluation_loss(model, config: Config, loss, callables: Callables, y: torch.Tensor) -> tuple:
    """(loss name, the user's own loss function or None) that evaluate measures with: `loss` (a name or a function),
    else the run's; a run's own function that this process was not given is asked for by its recorded name."""
    loss = loss_object(loss)
    given = loss if callable(loss) else callables.loss if loss is None else None
    if given is None and loss is None and hasattr(model, "training_step"):
        given = model.training_step  # evaluation sums the model's own step (_callables.step_sums)
    loss_name = with_concrete_loss(config.replace(loss="custom" if callable(loss) else loss or config.loss), y).loss
    if loss_name == "custom" and given is None:
        raise RiskminError(
            f"this run was trained with loss {config.loss_callable or 'custom'}, a function of your own "
            f"that config.toml records by name only; pass it from Python: riskmin.evaluate(run, data, "
            f"loss={config.loss_callable or 'my_loss'}), or a loss by name"
        )
    return loss_name, given


@torch.no_grad()
def predict(run_or_model, x, kind: outputs.Kind = "value"):
    """The model's outputs for the rows of `x`, with the run's preprocessing, on the CPU; a standardized regression
    target comes back in its own units. `run_or_model`: a Run, a run directory's path, or a module. For a classifier,
    kind="class" gives each row's class and kind="proba" the class probabilities, as `riskmin predict` writes them.
    The answer has the type of `x`: a tensor for tensors (a class as its index in run.data_names["classes"]), a NumPy
    array for NumPy (a class by name), a DataFrame for a DataFrame, with its row index and a column per target or
    class (see _data/_outputs.py); a data file's path, read as `riskmin predict` reads it, gives a NumPy array.

    >>> run = fit("linear", "line", split="tutorial", optimizer="sgd", lr=0.1, epochs=50, progress=False)
    >>> predict(run, torch.tensor([[0.5]])).shape
    torch.Size([1, 1])
    """
    run_or_model = loaded(run_or_model)
    model, standardizer, config = unpack(run_or_model)
    names = getattr(run_or_model, "data_names", {})
    loss = read_as(config.loss, names.get("task") == "classification")
    outputs.check_kind(kind, loss)
    if type(x).__name__ == "Series" and type(x).__module__.partition(".")[0] in ("pandas", "polars"):
        raise RiskminError(
            "x is a Series, one row or one column; pass the rows as a DataFrame, say X.iloc[[0]] for the first row "
            "rather than X.iloc[0]"
        )
    if is_path(x):  # answered as NumPy rows are: a class by its label
        x = file_inputs(x, names).numpy()
    if x is None or isinstance(x, (dict, set, bytes)) and not frames.given_as_several(x):
        raise RiskminError(
            f"x is {'None' if x is None else 'of type ' + type(x).__name__}; pass the rows as a DataFrame, a NumPy "
            "array, a tensor or a data file's path"
        )
    if isinstance(x, torch.utils.data.Dataset):  # its items are (inputs, target) pairs, or inputs alone: either
        raise RiskminError(
            f"x is a {type(x).__name__}; predict takes the rows themselves, as a tensor, a NumPy array, a DataFrame "
            "or a tuple or dict of inputs: stack the Dataset's inputs, say torch.stack([x for x, _ in dataset])"
        )
    rows = x
    if frames.given_as_several(x):  # several inputs, read as fit reads them; riskmin scales none of them
        x = several_inputs(x)
    else:
        x = frames.inputs(x, names)
        x = x[:, None] if x.ndim == 1 else x
        check_columns(x, standardizer)
        x = standardizer(x) if standardizer is not None else x
    check_arguments(model, x)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = torch.cat(
            [
                forward(model, each_input(lambda t: t[i : i + EVAL_CHUNK].to(device), x)).cpu()
                for i in range(0, max(n_rows(x), 1), EVAL_CHUNK)  # no rows: one empty chunk, no rows out
            ]
        )
    except RuntimeError as error:  # a bare model, whose inputs nothing recorded
        shapes = (
            ", ".join(str(tuple(t.shape)) for t in (x.values() if isinstance(x, dict) else x))
            if is_several(x)
            else tuple(x.shape)
        )
        raise RiskminError(
            f"the model cannot take rows of shape {shapes} ({distributed.error_headline(error)}); give the columns it "
            "was trained on"
        ) from None
    model.train(was_training)
    target = standardizer.target if standardizer is not None else None
    out = out if target is None else target.restore(out)
    return outputs.like_input(outputs.as_kind(out, kind, loss, names.get("classes")), out, rows, kind, loss, names)


def is_path(value) -> bool:
    """Whether `value` names a file or folder: text or a path."""
    return isinstance(value, (str, os.PathLike))


def loaded(run_or_model):
    """The run saved in a directory that predict or evaluate is given by its path; anything else as it is."""
    return Run.load(run_or_model) if is_path(run_or_model) else run_or_model


def file_inputs(path, names: dict, keep=()) -> torch.Tensor:
    """The rows of the data file at `path` to predict, encoded as the run's data was (`names`: its data_names), as
    `riskmin predict` reads them (the columns to `keep` beside the predictions checked to be there); a file without
    rows is refused."""
    x = read_for_run(path, names, keep=keep)[0]
    if not len(x):
        raise RiskminError(f"{path} has no rows to predict; give a file with at least one row under its header")
    return x


def file_rows(path, names: dict) -> Data:
    """The rows of the data file at `path` to evaluate, with its targets, encoded as the run's data was (`names`: its
    data_names), as `riskmin evaluate` reads them; a refused value named by its column."""
    from .._data._columns import input_names

    x, y = read_for_run(path, names, targets=True)
    frames.check_rows_to_evaluate(len(x), str(path), " under its header")
    columns = input_names(names.get("layout") or []) or list(names.get("features") or [])
    return Data(x, y, columns, list(names.get("targets") or []), missing=names.get("missing", "error"))


def read_for_run(path, names: dict, targets: bool = False, keep=()) -> tuple:
    """(inputs, targets or None) of the data file at `path`, read by the columns of the run whose data_names are
    `names` (_readers.read_columns); a bare module, which knows no columns, is refused."""
    from .._data._readers import read_columns

    if not names:
        raise RiskminError(
            f"a data file ({path}) is read by the columns a run was trained on; pass the Run, not its model"
        )
    return read_columns(path, names, targets=targets, keep=keep)[:2]


def unpack(run_or_model):
    if isinstance(run_or_model, Run):
        return run_or_model.model, run_or_model.preprocessing, run_or_model.config
    return run_or_model, None, Config()
