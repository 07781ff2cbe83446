"""What each `riskmin` command does once its flags are parsed: train (and resume), montecarlo,
compare, predict, evaluate, datasets, and `--nproc`, which starts the same command in N processes.

A command returns its exit status; every mistake in what was asked is raised as a RiskminError,
which `cli.main` prints on one line with status 2.
"""

from __future__ import annotations

import sys

from ._flags import config_from_args, flags_given, flags_over, parse_value
from ..config import (
    FIELDS,
    Config,
    RiskminError,
    RiskminNote,
    check_experiment,
    fact,
    given_for_task,
    given_settings,
    unused_by_sweep,
    warn,
)
from .._paths import shell_word


def train(args) -> int:
    from .._training._callables import named_callback
    from .._paths import checkpointed_by
    from ..distributed import follow_launcher, join, made_for_launcher, resume_command, shared
    from .._runs._rundir import Attempt, check_writable, prepare_run_directory, run_directory, stopped_before

    follow_launcher()
    callbacks = [named_callback(spec) for spec in args.callback or ()]
    if args.resume:
        return resume(args, callbacks)
    data, config = read_given(args, config_from_args(args))
    building = replacing = attempt = None
    if join(config.device)[0] == 0:  # under torchrun, process 0 alone makes the run directory and writes it
        check_writable(config)
        target = run_directory(config, data.name)
        stopped = stopped_before(config, data.name, target)
        if stopped is not None:
            warn(
                f"{stopped} holds a run that stopped before it finished; this one trains in {target} (to continue that "
                f"one instead: {resume_command(stopped, checkpointed_by(stopped))})",
                RiskminNote,
            )
        # what a failure removes, taken before the folder is made, and told the --nproc launcher first: a process
        # ended between the two would leave a folder that no one knows of
        attempt = Attempt.at(target)
        made_for_launcher(attempt)
        building = prepare_run_directory(target, config.overwrite, kind="run")
        replacing = target if building != target else None
        if replacing is not None:  # a hidden folder beside the run it replaces
            attempt = Attempt(building, building)
            made_for_launcher(attempt)
    return train_in(shared(building), config, data, False, attempt, replacing, callbacks)


def read_given(args, config: Config, trained=None) -> tuple:
    """(the data a command reads, its config recording that data). A mode the flags give that would keep the worst
    epoch is refused first; the notes on flags the other settings leave unused (`trained`: given_settings) join the
    data's notes, said with them once the command's checks pass, so that a mistake is still the one line said; a data
    file is recorded by its absolute path, which --config and --resume find from any folder."""
    from .._training._prepare import recorded
    from ..config import read_toml
    from ..datasets import read_data

    # a --config file's keys are given as its flags are, but not the settings an interrupted experiment saved, nor
    # those the file holds at their default: a run's own config.toml records every setting, stratify = true among them
    # (given_for_task notes stratify on, its default, only when asked for). batch_size needs no exception: Config
    # tells a default batch from one given (DefaultBatch)
    from_file = (
        [key for key in read_toml(args.config) if key in FIELDS and getattr(config, key) != FIELDS[key].default]
        if args.config and not getattr(args, "resume", None)
        else []
    )
    given = [*flags_given(args), *from_file]
    notes = given_settings(config, given, flags=True, trained=trained)
    experiments = [key for key in from_file if fact(key, "command") == "montecarlo"]
    if experiments and getattr(args, "command", "") in ("train", "lr-find"):  # an experiment's file, say
        settings = ", ".join(f"{key} = {getattr(config, key)!r}" for key in experiments)
        notes.append(
            f"{args.config} holds settings of riskmin montecarlo, compare and curve ({settings}), which "
            f"{args.command} leaves unused: it trains one run"
        )
    data = read_data(config.data, config)
    data.notes = [*data.notes, *notes, *given_for_task(config, given, data.task, flags=True)]
    return data, recorded(config, config.data)


def find_rate(args) -> int:
    """riskmin lr-find: the sweep, its suggested rate with the rule that chose it, and its picture."""
    from ..distributed import follow_launcher, rank
    from .._training._lr_find import lr_find
    from .._runs._report import message_lines

    follow_launcher()
    config = config_from_args(args)
    check_plot(args.plot, config)
    data, config = read_given(args, config)
    data.notes = [*data.notes, *unused_by_sweep(flags_given(args), flags=True)]
    finding = lr_find(config.model, data, config, start=args.start, end=args.end, steps=args.steps)
    if rank() != 0:  # under torchrun the first process alone reports and draws
        return 0
    print_notes(data.notes)  # once the sweep passed every check: a mistake is the one line said
    write_picture(finding.plot(), args.plot)
    print(  # within 80 columns, as every message
        message_lines(
            f"suggested learning rate {finding.suggestion:.3g} ({finding.rule}); "
            f"{len(finding.rates)} steps from {finding.rates[0]:.3g} to {finding.rates[-1]:.3g} drawn in {args.plot}"
        )
    )
    return 0


def check_plot(path, config) -> None:
    """Refuse, before the sweep, a --plot that is no picture or that riskmin must not write (see
    _rundir.check_picture)."""
    from .._runs._rundir import check_picture as refused

    refused(path, "--plot", config.overwrite, inputs=(config.data,))


def write_picture(figure, path) -> None:
    """`figure` drawn into `path` whole and put in its place atomically: an existing file is replaced whole, a link at
    `path` is replaced, not written through."""
    from pathlib import Path

    from .._runs._rundir import draw

    try:
        draw(figure, Path(path))
    except OSError as error:
        raise RiskminError(f"{path} cannot be written ({error.strerror}); choose another --plot") from None


def resume(args, callbacks: list) -> int:
    """`riskmin train --resume RUN`: the interrupted run continued with its saved settings, under the flags of those
    a resume may change (check_resumable_flags): it goes on where its last checkpoint left it, or starts again."""
    from pathlib import Path

    from .._training._checkpoint import Checkpoints
    from ..datasets import read_data
    from .._runs._rundir import check_not_overtaken, replaced_by

    directory = Path(args.resume)
    check_resumable_flags(args, directory)
    # under torchrun every process reads it: on several machines the run sits on a shared disk
    saved = resumable(directory)
    check_not_overtaken(directory)
    config = flags_over(saved.to_dict(), args)  # the flags a resume may take, over the saved settings
    checkpointed = bool(Checkpoints(directory).complete())
    if not checkpointed:
        tell(f"{directory} has no checkpoint yet; the run starts again from the beginning with its saved settings")
    return train_in(
        directory,
        config,
        read_data(config.data, config),
        resume=checkpointed,
        replacing=replaced_by(directory),
        callbacks=callbacks,
    )


# settings a checkpoint's fingerprint leaves out (resume "free") that a resumed run keeps all the same: its data, which
# the fingerprint would refuse once the settings were rewritten, and its place, which --resume names
KEPT_ON_RESUME = ("data", "out", "name", "overwrite")


def check_resumable_flags(args, directory) -> None:
    """Refuse, with --resume, --config and the flags of settings a resumed run keeps. A run may change on resume only
    where it runs and what it shows (--device, --threads, --progress, --print-every, --checkpoint-every): settings
    whose `resume` fact is free, as montecarlo --resume takes them, but for its data and its place (KEPT_ON_RESUME).
    A length (--epochs, --max-steps) changes in the saved file, where the checkpoint's fingerprint judges it against
    the schedule."""
    fixed = [name for name in flags_given(args) if fact(name, "resume") != "free" or name in KEPT_ON_RESUME]
    if fixed or args.config:
        flags = ", ".join("DATA" if name == "data" else "--" + name.replace("_", "-") for name in fixed) or "--config"
        longer = [name for name in fixed if fact(name, "resume") == "length"]  # may change, in the saved file
        edit = f" (to train for another length, edit {' and '.join(longer)} there)" if longer else ""
        raise RiskminError(f"--resume continues with the settings saved in {directory}/config.toml; drop {flags}{edit}")


def resumable(directory):
    """The settings of the interrupted run in `directory`, once it is sure there is something to resume, and that no
    other process trains it now."""
    from ..distributed import rank
    from .._experiments._kept import check_experiment_kind, interrupted
    from .._paths import holds_experiment
    from .._runs._rundir import check_not_being_written

    if not directory.exists():
        raise RiskminError(f"{directory} does not exist; check the path, the run directory an interrupted train kept")
    if interrupted(directory):  # an experiment's folder: its own command resumes it
        check_experiment_kind(directory, "train")
    if (directory / "summary.json").is_file():
        what = "experiment" if holds_experiment(directory) else "run"
        raise RiskminError(f"{what} {directory} already finished; there is nothing to resume")
    if directory.is_dir() and not any(directory.iterdir()):
        raise RiskminError(
            f"{directory} is empty: the command that made it stopped before the run began; run that "
            "command again, which uses the folder"
        )
    if not (directory / "config.toml").is_file() and (directory / "checkpoint").is_dir():
        raise RiskminError(
            f"{directory} holds the checkpoints of a run riskmin.fit trained in Python, which writes its settings at "
            "the end; resume it there: riskmin.fit(model, data, ..., directory=..., resume=True)"
        )
    if not (directory / "config.toml").is_file():
        raise RiskminError(
            f"{directory} is not a riskmin run with checkpoints; give --resume the run directory `riskmin train` wrote"
        )
    if rank() == 0:  # said before anything else is; the other processes of a torchrun train in the folder 0 locks
        check_not_being_written(directory, "wait for it to finish")
    return Config.from_toml(directory / "config.toml")


def train_in(target, config, data, resume: bool, attempt=None, replacing=None, callbacks=()) -> int:
    """Train into the run directory `target`, then, if it was built to replace the run `replacing`, rename it there
    if it succeeded (`Replacement`, the rule fit follows too).

    A failure that leaves nothing worth keeping removes what this command's `attempt` wrote (Attempt.undone; None: a
    run resumed); `callbacks`: the user's own, for fit. A new run that did not take the place of the one it replaces
    stays beside it, and the message names the commands that resume it and that discard it.
    """
    import contextlib

    from ..distributed import rank, resume_command
    from .._runs._rundir import Replacement, worth_keeping

    if rank() != 0:  # another process of a torchrun: it trains its share and leaves the writing to process 0
        return train_share(target, config, data, resume, callbacks)
    replacement = Replacement(target, replacing, resume_command(target), attempt) if replacing is not None else None
    try:
        with replacement or contextlib.nullcontext():
            outcome = train_locked(target, config, data, resume, callbacks)
            if replacement is not None and replacement.settle(finished_run(outcome)):
                target, replacement = replacing, None
    except RiskminError as error:  # a mistake found late: said with where the new run is, when one is kept
        if replacement is not None and replacement.kept():
            raise RiskminError(f"{error}; {replacement.left()}") from None
        if replacement is None and attempt is not None:  # a replacement removes its own
            attempt.undone()
        raise
    except BaseException as error:  # Ctrl-C outside the steps (a second one while finishing), or a crash
        if replacement is not None:
            if replacement.kept():
                tell(replacement.left())
        elif attempt is None or not attempt.undone():  # undone: nothing worth keeping was written, and no trace left
            if isinstance(error, KeyboardInterrupt) and worth_keeping(target):
                tell(f"interrupted; {kept_run(target)}")
                return 130
        raise
    return report_outcome(outcome, target, replacement)


def kept_run(target) -> str:
    """Where an interrupted command left the run it kept: written whole, or resumable from its checkpoint."""
    from ..distributed import resume_command

    if (target / "summary.json").is_file():
        return f"the run was written to {target}"
    return f"the run is kept in {target}: continue with: {resume_command(target)}"


def finished_run(outcome):
    """The run that training ended in, finished (if interrupted, only after its last step), or None."""
    from .._training._checkpoint import FinishedThenInterrupted

    run = outcome.run if isinstance(outcome, FinishedThenInterrupted) else outcome
    return None if isinstance(run, BaseException) else run


def train_share(target, config, data, resume: bool, callbacks) -> int:
    from .._training._checkpoint import FinishedThenInterrupted, TrainingInterrupted
    from .._training._loop import fit

    try:
        fit(config.model, data, config, callbacks, directory=target, resume=resume)
    except (TrainingInterrupted, FinishedThenInterrupted):
        return 130
    return 0


def train_locked(target, config, data, resume: bool, callbacks):
    """Train in `target` under its lock: the Run, the TrainingInterrupted that stopped it (or FinishedThenInterrupted,
    once the run was written), or the OSError that kept its final files from being written (the run stays resumable
    from its last checkpoint)."""
    from rich.console import Console

    from .._training._checkpoint import FinishedThenInterrupted, TrainingInterrupted
    from .._files import RunLock, atomic_write
    from .._training._loop import fit
    from .._runs._report import summary_table

    with RunLock(target):
        if (target / "checkpoint").is_symlink():  # said now, not at the first checkpoint
            raise RiskminError(
                f"{target / 'checkpoint'} is a symbolic link; "
                "riskmin never writes a checkpoint through one: "
                "remove the link, then resume"
            )
        try:
            atomic_write(target / "config.toml", config.to_toml().encode())
        except OSError as error:
            raise RiskminError(
                f"run directory {target} cannot be written ({error.strerror}); free space or fix its permissions"
            ) from None
        try:
            # fit writes its files last
            run = fit(config.model, data, config, callbacks, directory=target, resume=resume)
        except (TrainingInterrupted, FinishedThenInterrupted) as stop:
            return stop
        except OSError as error:  # a checkpoint that cannot be written is a RiskminError: this is the final files
            return error
        if not resume:  # how the data was read, with the results: a mistake found before them is the one line said
            print_notes(data.notes)
        summary_table(run.summary, Console())
    return run


def report_outcome(outcome, target, replacement=None) -> int:
    """What the user reads once training ended: where the run is, or how to continue it; the exit status.
    `replacement`: the run in `target` was built to take another's place and did not (it did not succeed)."""
    from .._training._checkpoint import FinishedThenInterrupted, TrainingInterrupted
    from ..distributed import resume_command

    beside = f"; {replacement.left()}" if replacement is not None else ""
    if isinstance(outcome, FinishedThenInterrupted):  # the run is whole, in its place: the command stops as asked
        tell(f"interrupted after the last step; the run was written to {target}{beside}")
        return 130
    if isinstance(outcome, TrainingInterrupted):
        tell(f"{outcome}{beside or f'; continue with: {resume_command(target)}'}")
        return 130
    if isinstance(outcome, OSError):
        tell(
            f"error: the trained run could not be written to {target} ({outcome.strerror or outcome}); free space"
            f"{beside or f', then finish it with: {resume_command(target)}'}"
        )
        return 1
    print(f"run written to {target}")
    if outcome.summary["diverged"]:
        tell(f"error: {outcome.summary['stop_reason']}{beside}")
        return 1
    return 0


def run_montecarlo(args) -> int:
    from .._training._callables import Callables
    from .._experiments._kept import fingerprint_settings
    from .._experiments._montecarlo import kept_montecarlo
    from .._runs._report import montecarlo_table
    from .._runs._rundir import run_directory

    config = config_from_args(resumed(args))
    check_experiment(config)
    data, config = read_given(args, config)
    stem = f"{data.name}-montecarlo"
    settings = fingerprint_settings(config, config.model)
    done = on_first_process(
        config,
        data,
        args,
        lambda: run_directory(config, stem, kind="experiment"),
        lambda target: command_keeper(args, "montecarlo", target, config, settings, config.to_toml(), stem),
        lambda shown, keeper: kept_montecarlo(config.model, data, shown, Callables(), keeper),
    )
    if done is None:
        return 0
    mc, keeper = done

    def table(console):
        if mc.summary["used_runs"]:  # the runs that did not diverge
            montecarlo_table(mc.summary, console)

    diverged = not mc.summary["used_runs"]
    from .._runs._rundir import write_montecarlo

    path = shown_and_saved(
        mc,
        table,
        "runs",
        lambda: keeper.finished(lambda folder: write_montecarlo(mc, folder), not diverged),
        data.notes,
    )
    if diverged:  # nothing to report, but the table of what happened is written, beside an experiment it would replace
        beside = (
            f"; {keeper.target} is as it was: discard the new one with: rm -r {shell_word(path)}"
            if path != keeper.target
            else ""
        )
        from .._experiments._montecarlo import all_diverged

        tell(f"error: {all_diverged(mc.summary, flags=True)} (the table is in {path}/runs.csv){beside}")
        return 1
    return 0


def resumed(args):
    """`args` of an experiment, with --resume EXPERIMENT: its saved config.toml read as --config, under the flags
    given."""
    if not getattr(args, "resume", None):
        return args
    from pathlib import Path

    from .._experiments._kept import KEPT, SETTINGS, check_experiment_kind, interrupted

    directory = Path(args.resume)
    if args.config:
        raise RiskminError(f"--resume reads the settings saved in {directory}/config.toml; drop --config")
    if not directory.exists():
        raise RiskminError(f"{directory} does not exist; check the path, the folder an interrupted {args.command} kept")
    if not interrupted(directory):
        finished = (directory / "summary.json").is_file()
        raise RiskminError(
            f"{directory} "
            + (
                "is a finished run of riskmin train; there is nothing to resume"
                if finished and (directory / "model.safetensors").is_file()
                else "is a run of riskmin train, not an experiment; resume it with riskmin train --resume "
                + shell_word(directory)
                if (directory / "checkpoint").is_dir()
                else "is a finished experiment; there is nothing to resume"
                if finished
                else "holds no interrupted experiment; give --resume the folder an interrupted montecarlo "
                "or compare "
                "kept its runs in"
            )
        )
    check_experiment_kind(directory, args.command)
    placed = [name for name in flags_given(args) if name in KEPT_ON_RESUME]
    if placed:  # it goes on in its folder, on its data: a flag of another would be ignored, or change the result
        flags = ", ".join("DATA" if name == "data" else "--" + name for name in placed)
        raise RiskminError(f"--resume continues the experiment kept in {directory}, on its data; drop {flags}")
    args.config = str(directory / KEPT / SETTINGS)
    return args


def command_keeper(args, command: str, target, config, settings: dict, config_toml: str, stem: str, about=None):
    """The Keeper of an experiment of the command line: in `target`, or, with --resume, the folder it names; an unnamed
    one looks among the numbered folders of its name for an interrupted twin to name in its refusal."""
    from pathlib import Path

    from .._experiments._kept import Keeper
    from .._runs._rundir import unnamed_stem

    if target is None:  # a process of a torchrun but the first: it is told the folder
        return Keeper(None, settings, config_toml)
    resume = bool(getattr(args, "resume", None))
    base = None if config.name or resume else Path(config.out) / unnamed_stem(config, stem)
    return Keeper(
        Path(args.resume) if resume else target,
        settings,
        config_toml,
        resume=resume,
        overwrite=config.overwrite,
        base=base,
        command=command,
        about=about,
        kind=command,
    )


def run_curve(args) -> int:
    """riskmin curve: a Monte-Carlo experiment at each training size, for each model named, its table and its files."""
    from .._experiments._curve import curve, curve_table
    from .._runs._rundir import check_replaceable, run_directory, write_replacing

    config, models, sizes = curve_plan(args)
    check_experiment(config)
    data, config = read_given(args, config, [config.replace(model=model) for model in models])
    target = run_directory(config, f"{data.name}-curve", kind="experiment")
    # a link or a file in the way is said now, not once the curve is trained
    check_replaceable(target, kind="experiment")
    try:
        result = curve(models or config.model, data, sizes, config.runs, config)
    except KeyboardInterrupt:  # a curve keeps nothing before it is done: nothing to resume, and nothing replaced
        kept = f"; {target} is as it was" if target.exists() else ""
        tell(f"interrupted; a curve is written once all its sizes are trained, so nothing was written{kept}")
        raise SystemExit(130) from None
    # how the data was read, once the curve is done and written: a mistake found before it is the one line said
    shown_and_saved(
        result,
        lambda console: curve_table(result, console),
        "curve",
        lambda: write_replacing(result.save, target),
        data.notes,
    )
    return 0


def curve_plan(args) -> tuple:
    """(Config, models, sizes) of `riskmin curve`: the flags over the --config file, whose [curve] table (the end of the
    config.toml a curve writes) names the models and sizes that --model and --sizes leave out. No models: the one that
    config.model names."""
    from .._experiments._curve import SIZES, TABLE, checked_sizes, recorded_plan
    from ..config import read_toml

    values = read_toml(args.config) if args.config else {}
    tables = [key for key, value in values.items() if isinstance(value, dict)]
    recorded, sizes = recorded_plan(values[TABLE], args.config) if tables == [TABLE] else ([], None)
    models = [
        parse_value("model", name.strip()) for name in (args.model.split(",") if "model" in vars(args) else recorded)
    ]
    if args.sizes is not None:  # given, over the file's
        sizes = checked_sizes(args.sizes.split(","))
    sizes = SIZES if sizes is None else sizes
    if models:
        args.model = models[0]  # the settings of the first; each model of the curve replaces it
    if tables != [TABLE]:  # settings alone, or a comparison's candidates, which config_from_args refuses in its words
        return config_from_args(args), models, sizes
    # config_from_args refuses a file with tables: the settings beside the curve's, with the flags over them as it
    # reads them
    shared = {key: value for key, value in values.items() if key != TABLE}
    Config.from_dict(shared, source=args.config)  # unknown keys and bad values are named with the file
    # its batch_size is the one the curve was given, or the default it recorded, which fits each size as it did
    return flags_over(shared, args), models, sizes


def on_first_process(config, data, args, directory, keeper, experiment):
    """`experiment(settings, keeper)` on every process of a torchrun, each training its share of the runs and keeping
    them as they finish with `keeper(target)`; process 0 alone checks and names the output `directory()` (the folder
    --resume names, under it) first and gets (result, keeper), the others None once they left. Process 0 tells the
    data's notes once the experiment is done and written (shown_and_saved), so that a mistake it finds is the one line
    said. Interrupted, it says how to resume what was kept."""
    from pathlib import Path

    from .._experiments._kept import restarted
    from .._runs._rundir import check_replaceable, check_writable
    from ..distributed import follow_launcher, join, leave

    follow_launcher()
    first = join(config.device)[0] == 0
    target = None
    if first and getattr(args, "resume", None):
        target = Path(args.resume)
    elif first and restarted() and config.name:  # torchrun started it again: the folder it began is there, to go on in
        target = Path(config.out) / config.name
    elif first:
        check_writable(config)
        target = directory()
        # a link or a file in the way is said now, not once the runs are trained
        check_replaceable(target, kind="experiment")
    kept = keeper(target)
    try:
        with kept:
            result = experiment(config if first else config.replace(progress=False), kept)
    except KeyboardInterrupt:
        if first and kept.building is not None:
            tell(kept.stopped())
            raise SystemExit(130) from None
        raise
    finally:
        if not first:
            leave()
    if not first:
        return None
    return result, kept


def as_number(text):
    """A flag's text as a float, or as given when it is none (for the function it goes to to refuse in one sentence)."""
    try:
        return None if text is None else float(text)
    except ValueError:
        return text


def run_compare(args) -> int:
    """`riskmin compare`: the candidates from the flags' alternatives or the --config tables, every one checked before
    the data is read and anything is written; then trained, ranked, printed and saved. With --resume, the grid and
    the flags of the interrupted comparison."""
    from .._experiments._compare import (
        comparable_data,
        comparison_directory,
        comparison_table,
        grid_settings,
        kept_comparison,
        resolved,
        write_comparison,
    )
    from .._experiments._candidates import candidate_configs, grid_toml

    config, candidates, select, saved = compare_plan(args, saved_flags(args))
    check_experiment(config)
    configs = candidate_configs(candidates, config)
    data, config = read_given(args, config, [each for _, each in configs.values()])
    metric, rope = (
        args.metric or saved.get("metric"),
        as_number(args.rope) if args.rope is not None else saved.get("rope"),
    )
    base, mode = resolved(config, metric, rope, select)
    comparable_data(data, config, base, select, configs)  # the refusals only: read_data gave Data already
    about = {"select": select, "metric": metric, "rope": rope}
    done = on_first_process(
        config,
        data,
        args,
        lambda: comparison_directory(config, data.name),
        lambda target: command_keeper(
            args,
            "compare",
            target,
            config,
            grid_settings(configs),
            grid_toml(config, candidates, {**about, "metric": base}),
            f"{data.name}-compare",
            about,
        ),
        lambda shown, keeper: kept_comparison(candidates, configs, data, shown, keeper, select, base, mode, rope),
    )
    if done is None:
        return 0
    comparison, keeper = done
    shown_and_saved(
        comparison,
        lambda console: comparison_table(comparison.summary, console),
        "comparison",
        lambda: keeper.finished(lambda folder: write_comparison(comparison, folder)),
        data.notes,
    )
    return 0


def saved_flags(args) -> dict:
    """With --resume: what the interrupted comparison's command said besides its settings (select, metric, rope)."""
    if not getattr(args, "resume", None):
        return {}
    from pathlib import Path

    from .._experiments._kept import about

    resumed(args)
    return about(Path(args.resume))


def shown_and_saved(result, table, what: str, saved, data_notes=()):
    """On process 0 of an experiment: its files written by `saved()`, which returns where, then how its data was read
    (`data_notes`), its notes and `table(console)` printed (files first: output closed early, or Ctrl-C while it
    prints, leaves them whole); the other processes let go; the path written."""
    from rich.console import Console

    from ..distributed import leave

    from .._runs._report import message_lines
    from .._training._checkpoint import TrainingInterrupted

    try:
        path = saved()
    except TrainingInterrupted as stop:  # while the results were written: what was kept, and how to go on
        tell(str(stop))
        raise SystemExit(130) from None
    try:
        print_notes(data_notes)
        console = Console()
        for note in result.notes:
            console.print(message_lines(f"note: {note}"), highlight=False, markup=False)
        table(console)
        console.print(f"{what} written to {path}", highlight=False)
    except KeyboardInterrupt:
        tell(f"interrupted while printing; {what} written to {path}")
        raise SystemExit(130) from None
    leave()
    return path


def compare_plan(args, saved: dict = None) -> tuple:
    """(shared Config, candidates, select, what it was asked besides: metric, rope, select) of `riskmin compare`, from
    the flags' alternatives or the --config tables, every candidate and the ranking metric checked; `saved`: what an
    interrupted comparison was asked, or else what a comparison's config.toml says ([comparison]), under the flags."""
    from ._flags import alternatives_from_args, check_not_a_curve, parse_switch
    from .._experiments._candidates import asked_in, candidate_configs, plan, ranking
    from ..config import read_toml

    values = read_toml(args.config) if args.config else {}
    tables = {key: value for key, value in values.items() if isinstance(value, dict)}
    check_not_a_curve(args.config, list(tables))
    asked = asked_in(args.config, tables)  # what a comparison's own config.toml says it was asked besides settings
    shared = {key: value for key, value in values.items() if not isinstance(value, dict)}
    Config.from_dict(shared, source=args.config)  # unknown keys and bad values are named with the file
    if "data" in vars(args):
        shared["data"] = args.data
    shared, candidates = plan(alternatives_from_args(args), shared, tables)
    config = Config.from_dict(shared, source="the flags")
    candidate_configs(candidates, config)
    saved = {**asked, **(saved or {})}
    ranking(args.metric or saved.get("metric"), config)
    select = parse_switch("--select", args.select) if args.select is not None else bool(saved.get("select"))
    return config, candidates, select, saved


def predict_file(args) -> int:
    import csv
    import io
    from pathlib import Path

    from .._data import _outputs as outputs
    from .._files import atomic_write, check_destination
    from ..metrics import read_as
    from .._training._loop import file_inputs, predict
    from .._data._readers import column_names

    check_destination(args.out, "--out", args.overwrite, inputs=(args.file,), run=args.run, what="predictions")
    if Path(args.out).suffix.lower() != ".csv":  # what it writes, whatever the name says
        raise RiskminError(f"--out {args.out}: predictions are written as CSV; name a .csv file")
    run = trained_run(args.run, "Python can: riskmin.predict({}, rows)")
    names = run.data_names
    keep = column_names(args.keep)
    x = file_inputs(args.file, names, keep)

    def written(output) -> dict:
        loss = read_as(run.config.loss, names.get("task") == "classification")  # as riskmin.predict reads it
        return outputs.prediction_columns(output, loss, names["targets"], names.get("classes"))

    # the prediction's column would take the kept one's place: the names alone, from one row, before every row
    clashes = [name for name in keep if name in written(predict(run, x[:1]))]
    if clashes:
        raise RiskminError(
            f"--keep {clashes[0]} names a column predict writes itself; rename that column in {Path(args.file).name}, "
            "or leave it out of --keep"
        )
    kept = as_written(args.file, keep)  # as the file writes them: the inputs are read in float32, as riskmin trains
    columns = {**kept, **written(predict(run, x))}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values()))
    try:
        atomic_write(Path(args.out), buffer.getvalue().encode())
    except OSError as error:
        raise RiskminError(f"{args.out} cannot be written ({error.strerror}); choose another --out") from None
    print(f"{len(x)} prediction{'s' * (len(x) != 1)} written to {args.out}")
    return 0


def as_written(path, keep: list) -> dict:
    """The columns `keep` of the data file `path`, by name, as the file holds them, for predict --keep to copy: a CSV's
    cells as text, as written (64.2 stays 64.2, 02134 keeps its zero, an empty cell stays empty); a Parquet file's
    values as stored, float64 included. file_inputs has checked that they are there."""
    import pyarrow
    import pyarrow.csv
    import pyarrow.parquet

    from .._data._readers import checked, csv_format

    path, suffix, keep = *checked(path), list(dict.fromkeys(keep))  # a column named twice is read once
    if not keep:
        return {}
    if suffix == ".parquet":
        table = pyarrow.parquet.read_table(path, columns=keep)
    elif suffix == ".csv":

        def read(encoding: str):
            return pyarrow.csv.read_csv(
                path,
                read_options=pyarrow.csv.ReadOptions(encoding=encoding),
                parse_options=pyarrow.csv.ParseOptions(delimiter=csv_format(path)[0]),
                convert_options=pyarrow.csv.ConvertOptions(
                    include_columns=keep, column_types={name: pyarrow.string() for name in keep}
                ),
            )

        try:
            table = read("utf8")
        except pyarrow.ArrowInvalid:  # not UTF-8: read as Latin-1, which decodes any byte, as read_table does
            table = read("latin-1")
    else:  # an .npz file has no columns to keep
        return {}
    return {name: table.column(name).to_pylist() for name in keep}


def evaluate_file(args) -> int:
    from .._training._loop import evaluate
    from .._runs._report import EVALUATE_LOG_NOTE, UNITS_FIRST, message_lines

    run = trained_run(args.run, "Python can: riskmin.evaluate({}, data)")
    # the file read as riskmin.evaluate reads one, a refused value named by its column
    measured = evaluate(run, args.file)
    # a regression's errors in the target's own units first, as every table of riskmin's leads with them
    for name in sorted(measured, key=lambda name: name not in UNITS_FIRST):
        print(f"{name:<12} {measured[name]:.6g}")
    if run.config.target_transform == "log":  # a paragraph under the metrics, within 80 columns
        print(message_lines(EVALUATE_LOG_NOTE, indent=""))
    return 0


def export_run(args) -> int:
    """`riskmin export`: the run as one ONNX or TorchScript file, by default beside its directory."""
    from pathlib import Path

    from .._runs._export import FORMATS, KINDS, SUFFIXES, export
    from .._files import check_destination
    from ..config import read_toml

    if args.format not in FORMATS:
        raise RiskminError(f"--format {args.format} is not an export format; choose {' or '.join(FORMATS)}")
    run_path = Path(args.run)
    # beside the run, named as the user named it (runs/x gives runs/x.onnx; ".", the folder's own name)
    beside = run_path if run_path.name not in ("", ".", "..") else run_path.resolve()
    out = Path(args.out) if args.out else beside.parent / (beside.name + FORMATS[args.format])
    named = next((kind for kind, suffixes in SUFFIXES.items() if out.suffix.lower() in suffixes), args.format)
    if named != args.format:  # a TorchScript archive named model.onnx: a program opening it as ONNX fails
        raise RiskminError(
            f"--out {args.out} names {KINDS[named]} file but --format {args.format} writes {KINDS[args.format]} one; "
            f"name it "
            f"{out.with_suffix(FORMATS[args.format]).name}, or export --format {named}"
        )
    settings = run_path / "config.toml"
    # the file the run trained on, which an export never replaces, --overwrite or not
    trained_on = str(read_toml(settings).get("data", "")) if settings.is_file() else ""
    check_destination(out, "--out", args.overwrite, inputs=(trained_on,), run=run_path, what="the exported file")
    path = export(
        trained_run(run_path, "Python loads it, {}, and exports its model: torch.onnx.export(run.model, ...)"),
        out,
        args.format,
    )
    print(f"{args.format} file written to {path}")
    return 0


def trained_run(directory, python: str):
    """The run saved in `directory`, for predict, evaluate and export. A module of the user's own (model custom) is
    recorded by its class name alone, which the command line cannot build: refused in its words, with what Python can
    do (`python`, a clause whose {} is the run loaded), where load_run's own message speaks to Python."""
    from pathlib import Path

    from .._runs._rundir import load_run

    settings = Path(directory) / "config.toml"
    config = Config.from_toml(settings) if settings.is_file() else None
    if config is not None and config.model == "custom":
        own, name = config.model_class or "a class of your own", config.model_class.rpartition(".")[2] or "MyNet"
        loaded = f"riskmin.Run.load({str(directory)!r}, model={name}())"
        raise RiskminError(
            f"{directory} holds a module of your own ({own}), which the command line cannot rebuild, as a run records "
            f"it by class name only; {python.format(loaded)}"
        )
    return load_run(directory)


def tell(message: str) -> None:
    """`message` on stderr within 80 columns, as every message: what became of an interrupted or failed run, and how to
    go on."""
    from .._runs._report import message_lines

    print(message_lines(message), file=sys.stderr)


def print_notes(notes: list) -> None:
    """What reading the data guessed or did (the task, dropped rows), each a 'note: ...' line within 80 columns, as
    a RiskminNote is printed."""
    from .._runs._report import message_lines

    for note in notes:
        print(message_lines(f"note: {note}"))


def list_datasets() -> int:
    from ..datasets import DATASETS
    from .._runs._report import message_lines

    for name, description in DATASETS.items():  # a description past 80 columns goes on under itself
        print(message_lines(f"{name:<8} {description}", indent=" " * 9))
    return 0


def launch(args, argv: list) -> int:
    """`--nproc N`: check what was asked once, here, then start N processes of the same command through torchrun."""
    from ..datasets import read_data
    from ..distributed import launched, start
    from .._runs._rundir import check_writable, run_directory

    try:
        count = int(args.nproc)
    except ValueError:
        count = 0
    if count < 1:
        raise RiskminError(f"--nproc {args.nproc} is not allowed; it must be a whole number of processes, at least 1")
    if launched():
        raise RiskminError("--nproc starts torchrun itself; under torchrun leave it out")
    if getattr(args, "resume", None):  # an experiment's folder: its processes check it, as one alone does
        from pathlib import Path

        if args.command == "train":
            resumable(Path(args.resume))
    else:
        config = compare_plan(args)[0] if args.command == "compare" else config_from_args(args)
        if args.command in ("montecarlo", "compare"):
            check_experiment(config)
        data = read_data(config.data, config)
        if args.command == "lr-find":  # the sweep writes only its picture
            check_plot(args.plot, config)
        else:
            check_writable(config)
        if args.command == "train":
            # an existing --name without --overwrite is refused now, not in N processes
            run_directory(config, data.name)
        if args.command == "compare":
            from .._experiments._compare import comparison_directory

            comparison_directory(config, data.name)
    rest = list(argv)
    at = next(i for i, arg in enumerate(rest) if arg == "--nproc" or arg.startswith("--nproc="))
    del rest[at : at + (1 if "=" in rest[at] else 2)]
    status, ended = start(count, rest)
    if ended:
        print(f"error: {ended}", file=sys.stderr)
    return status


def draw_graph(args) -> int:
    """`riskmin graph`: the computation graph of one training step of a model by name, or of a run's model with its
    settings (flags override those that do not build the model), as DOT and, with Graphviz, a picture."""
    import typing
    from pathlib import Path

    from ..config import ModelName, read_toml
    from ..datasets import read_data
    from .._files import check_destination
    from .._training._graph import PICTURES, graph

    source, plot = Path(args.source), Path(args.plot)
    if "model" in vars(args):
        raise RiskminError("riskmin graph takes the model as its first argument, MODEL_OR_RUN; drop --model")
    # a --config file's model gives way to the first argument, which says what to draw
    in_file = read_toml(args.config) if args.config else {}
    given = [name for name in FIELDS if name != "model" and (name in vars(args) or name in in_file)]
    if source.is_dir():
        built = [name for name in given if fact(name, "group") == "model"]  # what a trained run's model was built with
        if built:
            raise RiskminError(
                f"{source} holds a trained model, built with its own {', '.join(built)}; drop "
                f"{', '.join('--' + name.replace('_', '-') for name in built)}"
            )
        flags = config_from_args(args)
        model = trained_run(source, "Python can: riskmin.graph({}, data)")
        config = model.config.replace(**{name: getattr(flags, name) for name in given})
    elif args.source in typing.get_args(ModelName):
        args.model = args.source  # as a flag: the widths and the rest are checked against this model, not the default
        model, config = args.source, config_from_args(args)
    else:
        raise RiskminError(
            f"{args.source} is neither a model name ({', '.join(typing.get_args(ModelName)[:3])}) "
            "nor a run "
            "directory; give one of them"
        )
    for path in (plot, plot.with_suffix(".dot")) if plot.suffix[1:].lower() in PICTURES else (plot,):
        check_destination(path, "--plot", config.overwrite, inputs=(config.data,), what="the graph")
    data = read_data(config.data, config)
    # what the flags leave unused: --hidden beside linear, as train says it (a run's own model was refused its flags)
    print_notes([*data.notes, *given_settings(config, given, flags=True)])
    drawn = graph(model, data, config)
    written = drawn.save(plot)
    source = plot.with_suffix(".dot") if plot.suffix[1:].lower() in PICTURES else plot
    files = " and ".join(str(path) for path in dict.fromkeys((source, written)))
    print(f"{files}: {drawn!r}")
    return 0
