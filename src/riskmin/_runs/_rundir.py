"""Runs: `Run`, what `fit` returns, and its directory: where a run is written, its files written atomically, and a
finished run read back.

    runs/<name>/  config.toml, metrics.csv, model.safetensors, preprocessing.json, curves.png,
                  summary.json (written last: its presence means the run finished; it holds the
                  SHA-256 of model.safetensors and preprocessing.json), checkpoint/

A run that replaces another (--overwrite) is built in a hidden folder beside it, `.<name>.new-XXXXXXXX`,
and renamed into place only once it succeeded: a new run that diverged, failed or was interrupted stays
beside the old one, which is untouched. No run is written inside another (`_files.enclosing_run`).
Nothing is ever unpickled on load: tensors come from safetensors, structure from JSON and TOML.
"""

from __future__ import annotations

import csv
import errno
import glob
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from torch import nn

from .. import models
from .._files import (
    RunLock,
    atomic_write,
    check_destination,
    check_run_place,
    enclosing_run,
    fsync_directory,
    held_here,
    holds_run,
    inside,
    named_folder,
    json_bytes,
    load_tensors,
    lock_holder,
    safetensors_bytes,
    sha256,
)
from ..config import Config, RiskminError, RiskminNote, warn
from .._paths import (
    RUN_FILES,
    data_label,
    holds_experiment,
    missing_run_files,
    not_a_run,
    resume_line,
    shell_word,
    stopped_run,
    unfinished_run,
)
from ..data import Standardizer


@dataclass(kw_only=True)
class Run:
    """The result of `fit`: the model (best weights restored), its history and its test metrics."""

    model: nn.Module
    config: Config
    history: list
    test: dict
    summary: dict
    preprocessing: Optional[Standardizer] = None
    data_names: dict = field(default_factory=dict)
    # the loss, ... of the user's own given to fit
    callables: Optional[object] = field(default=None, repr=False, compare=False)

    @property
    def best_epoch(self) -> Optional[int]:
        """The epoch whose weights the model has, or None for a run that diverged with no finite weights to keep."""
        return self.summary["best_epoch"]

    def __repr__(self) -> str:
        loss = self.test.get("test_loss")
        tested = f"test loss {loss:.4g}" if isinstance(loss, float) else "no test split"
        data = data_label(self.data_names, self.config)
        best = self.summary.get("best_epoch")
        epochs = f"best epoch {best} of {self.summary.get('epochs_run')}" if best is not None else "no best epoch"
        return f"Run({data}, {self.config.model}, {epochs}, {tested})"

    def save(self, directory=None, overwrite: bool = False) -> Path:
        """Write the run directory (config.toml, metrics.csv, model.safetensors, summary.json, preprocessing.json,
        curves.png) and return its path. Without `directory` it is a new folder under `config.out`, named as
        `riskmin train` names it (numbered when the name is taken, unless `config.overwrite`, which replaces the run
        there as `riskmin train --overwrite` does), and one line says which. An existing `directory`
        is written only when empty, or replaced with `overwrite` when it holds a riskmin run or experiment, once the
        new files are complete; a folder of anything else is never written into.
        """
        named = directory is None  # by its settings, as riskmin train names it, and replaced as it replaces one
        target = (
            run_directory(self.config, data_label(self.data_names, self.config), python=True)
            if named
            else Path(directory)
        )
        if holds_experiment(target):
            raise RiskminError(f"directory {target} holds an experiment, not a run; choose another directory")
        path = save_experiment(
            lambda folder: save_run(self, folder), target, overwrite or named and self.config.overwrite, kind="run"
        )
        if named:
            print(f"run written to {path}")
        return path

    @classmethod
    def load(cls, directory, model: Optional[nn.Module] = None) -> "Run":
        """Read a run directory back; pass `model` (a fresh instance) when it is not one of riskmin's own."""
        return load_run(directory, model)


# the files a loaded run is built from, checksummed in summary.json: its weights, its preprocessing, and its settings,
# which say what model the weights belong to (a run written before config.toml was checksummed has none of it)
CHECKED = ("model.safetensors", "preprocessing.json", "config.toml")
# the hidden folder a run that replaces another is built in
REPLACEMENT = re.compile(r"^\.(?P<name>.+)\.new-[0-9a-f]{8}$")


def run_directory(config: Config, data_name: str, python: bool = False, kind: str = "run") -> Path:
    """The directory a run will be written to: `out/name`, or `out/<data>-<model>[-N]` when unnamed, numbered past the
    names taken (an empty folder is taken, as a named run takes one); with `overwrite`, an unnamed run replaces
    `out/<data>-<model>` itself, as a named one its name (see prepare_run_directory: only a riskmin run or experiment,
    and only with a success). `python`: a refusal names the settings and arguments a Python caller changes (name,
    overwrite=True), not the flags; `kind`: "run" or "experiment", what the folder is for, which a name already taken
    by the other kind is refused as."""
    out = Path(config.out)
    name, asked = ("name", "overwrite=True") if python else ("--name", "--overwrite")
    try:
        if config.name or config.overwrite:  # unnamed with overwrite: the folder its name gives, not one numbered
            target = out / (config.name or unnamed_stem(config, data_name))
            check_not_being_written(target, f"wait for it to finish or choose another {name}")
            if os.path.lexists(target) and not config.overwrite and not left_empty(target):
                # what --overwrite would refuse to replace (a run where an experiment goes), said as such, not offered
                check_replaceable(target, name, asked, kind)
                raise RiskminError(
                    f"run directory {target} already exists; "
                    + (
                        f"continue it with --resume {shell_word(target)}, or pass --overwrite to start it again"
                        if unfinished(target) and not python
                        else f"choose another {name} or pass {asked} to replace it"
                    )
                )
            return target
        stem = unnamed_stem(config, data_name)
        target, number = out / stem, 2
        while os.path.lexists(target) and not left_empty(target):  # an empty one is taken, with a note
            target, number = out / f"{stem}-{number}", number + 1
        return target
    except OSError as error:
        raise path_error(out, error, python) from None


def stopped_before(config: Config, data_name: str, target: Path) -> Optional[Path]:
    """The last of the names an unnamed run passed over to take `target` (out/<data>-<model>, -2, ...) that holds a run
    that stopped before it finished, which no process trains now: the one a rerun of its command may have meant to
    continue. None for a named run, which is refused with the way to resume instead (run_directory)."""
    stem = unnamed_stem(config, data_name)
    if config.name or config.overwrite or target.name == stem:
        return None
    passed = [stem] + [f"{stem}-{number}" for number in range(2, int(target.name.rpartition("-")[2]))]
    stopped = [target.parent / name for name in passed if unfinished(target.parent / name)]
    return next((folder for folder in reversed(stopped) if not lock_holder(folder)), None)


def check_not_being_written(directory: Path, remedy: str) -> None:
    """Refuse a run directory while another process holds its lock (a run training there, or one being replaced), in
    the sentence RunLock says, with `remedy`: said first, where the command would otherwise offer to resume or replace
    a live run."""
    owner = lock_holder(directory)
    if owner:
        raise RiskminError(f"run directory {directory} is being written by {owner}; {remedy}")


def unnamed_stem(config: Config, data_name: str) -> str:
    """The name an unnamed run or experiment takes, before a number that tells it from those already there: a run's
    <data>-<model>; an experiment names its model too (lab1-two_layer-montecarlo); a comparison, <data>-compare."""
    if data_name.endswith("-montecarlo"):
        return f"{Path(data_name[: -len('-montecarlo')]).stem}-{config.model}-montecarlo"
    if data_name.endswith("-compare"):
        return f"{Path(data_name[: -len('-compare')]).stem}-compare"
    return data_name if data_name.endswith("-curve") else f"{Path(data_name).stem}-{config.model}"


def left_empty(directory: Path) -> bool:
    """Whether `directory` is an empty folder (not a link): what a command stopped between making a run's folder and
    writing its settings leaves, which the next run of that name takes, with a note."""
    return directory.is_dir() and not directory.is_symlink() and not any(directory.iterdir())


def unfinished(directory: Path) -> bool:
    """Whether `directory` is a run that began (its settings are saved) and never finished."""
    return (directory / "config.toml").is_file() and not (directory / "summary.json").exists()


def path_error(out: Path, error: OSError, python: bool = False) -> RiskminError:
    """The one sentence for a run path the file system refuses: a name too long, or a folder it cannot write, with the
    flag to change (`python`: the setting)."""
    name, folder = ("name", "another out folder") if python else ("--name", "another with --out")
    if error.errno == errno.ENAMETOOLONG:
        return RiskminError(f"the run name is too long for the file system of {out}; choose a shorter {name}")
    return RiskminError(f"output folder {out} cannot be written ({error.strerror}); choose {folder}")


def check_writable(config: Config) -> None:
    """Fail before training, not after, when the output folder cannot be created or written, or lies in a run. Nothing
    is
    made here: the folder it would be made in is probed, so a command that stops on a mistake leaves no empty folder."""
    out = Path(config.out)
    run = enclosing_run(out)
    if run is not None:
        raise RiskminError(
            f"output folder {out} {inside(out, run)} {named_folder(run)}; choose an --out outside every run"
        )
    made = first_missing(out)
    existing = out if made is None else made.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        probe = tempfile.NamedTemporaryFile(dir=existing, prefix=".riskmin-probe-")
        probe.close()
    except OSError as error:
        raise RiskminError(
            f"output folder {out} cannot be written ({error.strerror}); choose another with --out"
        ) from None


def first_missing(path: Path) -> Optional[Path]:
    """The outermost of `path` and the folders above it that does not exist: the first folder that making `path` makes
    (None when `path` exists)."""
    missing = None
    for folder in (path, *path.parents):
        if os.path.lexists(folder):
            break
        missing = folder
    return missing


def discard(target: Path, made: Path) -> None:
    """Remove the folder `target`, then the folders above it up to `made`, the outermost one this command made for
    it, while they are empty (another run or experiment may have come to share them)."""
    shutil.rmtree(target, ignore_errors=True)
    for folder in target.parents:
        if not folder.is_relative_to(made):
            return
        try:
            folder.rmdir()
        except OSError:
            return


@dataclass(frozen=True)
class Attempt:
    """A new run's attempt in the folder `folder`, and what it made there: the outermost folder it made for the run
    (`made`: `folder` or one above it; None when `folder` was there already) and the names a folder that was there
    held before (`before`). The one rule of every failed run, the command line's, fit's, a replacement's and the
    --nproc launcher's: what it wrote is removed when nothing is worth keeping, and no more.

    Take it before the folder is made (`Attempt.at`): the folder, or its first write, makes it after.
    """

    folder: Path
    made: Optional[Path] = None
    before: frozenset = frozenset()

    @classmethod
    def at(cls, folder: Path) -> Attempt:
        """The attempt about to write in `folder`: what it will make, and what a folder there already holds."""
        made = first_missing(folder)
        return cls(folder, made, frozenset(os.listdir(folder)) if made is None and folder.is_dir() else frozenset())

    def undone(self) -> bool:
        """What the attempt wrote, removed unless something in the folder is worth keeping (a checkpoint written whole,
        the final files); whether it was. The folders it made go (discard); a folder that was there keeps the names it
        held before, and a file another wrote meanwhile."""
        if worth_keeping(self.folder):
            return False
        if self.made is not None:
            discard(self.folder, self.made)
            return True
        for path in list(self.folder.iterdir()) if self.folder.is_dir() else ():
            # by its name alone: what the failed run wrote may be cut short
            ours = (
                path.name in RUN_OUTPUTS or written_by_a_run(path) or path.name.startswith(".")
            )  # .x.tmp: atomic_write
            if path.name in self.before or not ours:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        return True

    def as_json(self) -> dict:
        """The attempt in JSON's words, for another process to undo (the --nproc launcher)."""
        folder, made = os.path.abspath(self.folder), None if self.made is None else os.path.abspath(self.made)
        return {"folder": folder, "made": made, "before": sorted(self.before)}

    @classmethod
    def from_json(cls, told: dict) -> Attempt:
        made = None if told["made"] is None else Path(told["made"])
        return cls(Path(told["folder"]), made, frozenset(told["before"]))


def prepare_run_directory(
    target: Path, overwrite: bool, place: str = "--name", asked: str = "--overwrite", kind: str = ""
) -> Path:
    """Create the folder a new run trains in and return it: `target` itself, or, when an existing run is
    to be replaced, a hidden folder beside it that `install` later renames to `target`.

    The old run is not touched here; the caller holds its lock while the new one trains. `place` and `asked`, for
    Python: what to change and how a replacement is asked for; `kind`: "run" or "experiment", what the folder is for
    (see check_replaceable).
    """
    try:
        check_replaceable(target, place, asked, kind)
        empty = left_empty(target)
        if empty:
            warn(
                f"{target} is an empty folder, left by a command stopped before its run began; this run uses it",
                RiskminNote,
            )
        replaces = overwrite and target.exists() and not empty
        building = replacement_folder(target) if replaces else target
        building.mkdir(parents=True, exist_ok=empty)
    except FileExistsError:
        raise RiskminError(
            f"run directory {target} already exists; choose another --name or pass --overwrite to replace it"
        ) from None
    except OSError as error:
        raise path_error(target.parent, error) from None
    return building


def check_not_a_link(target: Path, place: str) -> None:
    """Refuse a run or experiment folder that is a symbolic link, whoever asks (`place`: what to change): riskmin never
    writes through one, nor replaces one, --overwrite or not."""
    if Path(target).is_symlink():
        raise RiskminError(
            f"{target} is a symbolic link; riskmin never writes through a link nor replaces one: give the folder it "
            f"points to, or choose another {place}"
        )


def check_replaceable(target: Path, place: str = "--name", asked: str = "--overwrite", kind: str = "") -> None:
    """Refuse, before any work, an output that --overwrite must not replace: a symbolic link, a file, a folder that is
    not riskmin's, a result of the other `kind` ("run" or "experiment": a run never replaces an experiment, nor an
    experiment a run); and a run inside another one. `place` and `asked` name, for Python, what to change and how to
    ask for a replacement."""
    if os.path.isdir(target) and any(Path(target).iterdir()):  # what a replacement would rename away
        check_not_in_use(target, place, asked)
    check_run_place(target, "--out or --name" if place == "--name" else place)
    check_not_a_link(target, place)
    if os.path.lexists(target) and not target.is_dir():
        raise RiskminError(f"{target} exists and is not a run directory; remove it or choose another {place}")
    if target.is_dir() and not holds_run(target) and not all(written_by_a_run(p) for p in target.iterdir()):
        raise RiskminError(
            f"{target} exists and is not a riskmin run; {asked} replaces only riskmin's runs and "
            f"experiments: remove it or choose another {place}"
        )
    held = ("experiment" if holds_experiment(target) else "run") if target.is_dir() and holds_run(target) else kind
    if kind and held != kind:
        a = {"run": "a run", "experiment": "an experiment"}
        raise RiskminError(
            f"{target} holds {a[held]}, which {asked} does not replace with {a[kind]}: choose another {place}, or "
            "remove it"
        )


def check_not_in_use(target: Path, place: str, asked: str) -> None:
    """Refuse to replace the folder this process works in, or one that holds it: renamed away, it would leave the
    process in a deleted folder. `place` and `asked`: what to change and how a replacement is asked for."""
    here = Path(os.path.abspath(target))
    if here == Path.cwd() or here in Path.cwd().parents:
        raise RiskminError(
            f"{place.lstrip('-')} {target} holds the current folder, which {asked} cannot replace while it is in use; "
            f"run from outside it, or choose another {place}"
        )


def save_experiment(write, target: Path, overwrite: bool, kind: str = "experiment") -> Path:
    """`write(folder)`, an experiment's files (or a run's: `kind`) written into `target` from Python as the command
    line writes them: never through a symbolic link, never inside another run or experiment, never over an existing
    one unless `overwrite`, nor over one of the other kind, and then in a hidden folder that takes its place once
    complete (`write_replacing`). An empty folder is written into as it is: one made for it, or the one the command
    line builds in. The folder written."""
    check_replaceable(target, place="directory", asked="overwrite=True", kind=kind)
    if left_empty(target):
        write(target)
        return target
    if os.path.lexists(target) and not overwrite:
        raise RiskminError(
            f"directory {target} already exists; pass overwrite=True to replace it, or choose another directory"
        )
    return write_replacing(write, target)


def write_replacing(save, target: Path, replace: bool = True) -> Path:
    """`save(folder)` into `target`; when `target` exists (--overwrite), into a hidden folder beside it that takes its
    place once complete (if `replace`: a result that failed stays beside it), so that a failure, or Ctrl-C, while
    writing leaves the old files whole and nothing beside them. The folder written."""
    building = prepare_run_directory(target, overwrite=True)
    try:
        save(building)
    except BaseException as error:
        shutil.rmtree(building, ignore_errors=True)
        if isinstance(error, OSError):
            kept = f"; {target} is as it was" if building != target else ""
            raise RiskminError(
                f"the results could not be written to {target} ({error.strerror or error}){kept}; "
                "free space or fix permissions, then run the command again"
            ) from None
        raise
    if building != target and replace:
        with RunLock(target, tidy=False):  # not while a run trains there
            install(building, target)
        return target
    return building


def replacement_folder(target: Path) -> Path:
    """A new hidden folder beside `target`, for a run or experiment that is to take its place (REPLACEMENT)."""
    return target.with_name(f".{target.name}.new-{secrets.token_hex(4)}")


def replaced_by(building: Path):
    """The run that the hidden folder `building` was made to replace, or None for an ordinary run directory."""
    match = REPLACEMENT.match(building.name)
    return building.with_name(match["name"]) if match else None


class Replacement:
    """A new run trained in `building` to take the place of the run in `target`, and replacing it only with a success:
    the one rule that Python's fit and `riskmin train --overwrite` share.

    While active, the old run is locked, so nobody resumes or replaces it meanwhile. `settle(run)` renames a run that
    finished and did not diverge into its place; anything else leaves the old run as it was. A failure (an exception
    out of the block) leaves the new run beside it when it is worth keeping (a checkpoint or its final files), and
    removes what the `attempt` made (Attempt.undone; None: the folder was resumed, not made). `resume`: the call or
    command that continues the new run, in the caller's voice, which `left` names.
    """

    def __init__(self, building: Path, target: Path, resume: str, attempt: Optional[Attempt]):
        self.building, self.target, self.attempt, self.resume = building, target, attempt, resume
        self.lock = RunLock(target, tidy=False)

    def __enter__(self):
        self.lock.__enter__()
        return self

    def __exit__(self, kind, error, trace):
        try:
            if kind is not None and self.attempt is not None:
                self.attempt.undone()
        finally:
            self.lock.release()
        return False

    def kept(self) -> bool:
        """Whether the new run stays beside the old one after a failure: something in it to resume or use, or a
        folder this attempt did not make (one resumed)."""
        return self.attempt is None or worth_keeping(self.building)

    def settle(self, run) -> bool:
        """Put the finished `run` (None: none finished) in the old one's place, unless it diverged; whether it took
        the place."""
        if run is None or run.summary["diverged"]:
            return False
        install(self.building, self.target)
        return True

    def left(self) -> str:
        """What became of the new run when it did not take the place, and how to resume or discard it (left_beside)."""
        return left_beside(self.building, self.target, self.resume)


def install(building: Path, target: Path) -> None:
    """Put the new run `building` where the old run `target` is: two renames, then the old one is deleted, but for
    files of the user's own in an old run's folder, which move into the new one."""
    retired = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
    if target.is_symlink():
        raise RiskminError(f"{target} became a symbolic link meanwhile; the new run is kept in {building}")
    try:
        if target.exists():
            os.rename(target, retired)
        os.rename(building, target)
    except OSError as error:
        if os.path.lexists(retired) and not os.path.lexists(target):
            os.rename(retired, target)  # the old run back where it was
        raise RiskminError(
            f"the new run could not take the place of {target} ({error.strerror}); it is kept in {building}"
        ) from None
    fsync_directory(target.parent)
    # a run's or an experiment's folder may hold the user's own files: they stay in it
    ours = (lambda path: path.name in EXPERIMENT_OUTPUTS) if holds_experiment(retired) else written_by_a_run
    for path in retired.iterdir() if retired.is_dir() else ():
        if not ours(path) and not os.path.lexists(target / path.name):
            os.rename(path, target / path.name)
    shutil.rmtree(retired, ignore_errors=True)
    for earlier in attempts(target):
        if (earlier / "summary.json").is_file():  # one that finished and diverged, said so when it did
            continue
        warn(
            f"{earlier} holds an earlier, interrupted attempt to replace {target.name}; resuming it is refused "
            f"now that {target} is newer: remove it (rm -r {shell_word(earlier)}), or rename it to keep it",
            RiskminNote,
        )


def attempts(target: Path) -> list:
    """The hidden folders beside `target` that attempts to replace it left, interrupted or failed."""
    found = sorted(target.parent.glob(f".{glob.escape(target.name)}.new-*"))
    return [earlier for earlier in found if replaced_by(earlier) == target]


def check_not_overtaken(building: Path) -> None:
    """Refuse to resume the hidden folder `building` when the run or experiment it was made to replace was written
    after it began (that summary.json is newer than the oldest file `building` holds: its settings, as begun, unless
    only they are there and were edited since): resuming would replace a result it never saw."""
    target = replaced_by(building)
    written = None if target is None else target / "summary.json"
    files = [path for path in building.rglob("*") if path.is_file()]
    if written is None or not written.is_file() or not files:
        return
    if written.stat().st_mtime_ns > min(path.stat().st_mtime_ns for path in files):
        raise RiskminError(
            f"{target} was written after {building} began to replace it, and resuming would replace that newer "
            f"result; to keep both, rename this one (mv {shell_word(building)} {shell_word(f'{target}-resumed')}) "
            "and resume it there, or remove it"
        )


def save_run(run, directory) -> Path:
    """Write the run's files into `directory`, each atomically; summary.json goes last, marks the run finished and holds
    the checksums."""
    from ._report import plot_curves

    target = Path(directory)
    check_run_place(target, "directory")
    target.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu() for k, v in run.model.state_dict().items()}
    preprocessing = {
        "standardizer": run.preprocessing.to_dict() if run.preprocessing else None,
        **run.data_names,
        "n_inputs": run.summary.get("n_inputs"),
        "n_outputs": run.summary.get("n_outputs"),
    }
    contents = {
        "model.safetensors": safetensors_bytes(weights, {}),
        "config.toml": run.config.to_toml().encode(),
        "metrics.csv": history_csv(run.history, header=("epoch", "step", "loss")).encode(),
        "preprocessing.json": (json.dumps(preprocessing, indent=2) + "\n").encode(),
        "curves.png": picture(plot_curves, run.history, target),
    }
    # its weights are those that diverged
    no_best = run.summary.get("diverged") and run.summary.get("best_epoch") is None
    if no_best or unsound(weights, run.model):
        # a run that diverged before it had finite weights to keep: no NaN ever reaches a model file; its summary says
        # why
        del contents["model.safetensors"]
        (target / "model.safetensors").unlink(missing_ok=True)
    checksums = {name: hashlib.sha256(contents[name]).hexdigest() for name in CHECKED if name in contents}
    contents["summary.json"] = json_bytes({**run.summary, "sha256": checksums})
    for name, content in contents.items():
        atomic_write(target / name, content)
    fsync_directory(target)
    return target


# the files a run writes in its directory, beside its checkpoints and TensorBoard's events
RUN_OUTPUTS = (*RUN_FILES, "curves.png")
# what montecarlo, compare and curve write in theirs, and what keeps their runs as they finish
EXPERIMENT_OUTPUTS = (
    ".lock",
    "config.toml",
    "runs.csv",
    "summary.json",
    "experiment.json",
    "kept",
    "montecarlo.png",
    "compare.png",
    "comparison.csv",
    "curve.png",
    "curve.csv",
)


def written_by_a_run(path: Path) -> bool:
    """Whether `path`, in a folder a run is to use, is one a run writes there: its lock, checkpoints and TensorBoard
    events; settings that read as riskmin's; a metrics.csv that a run's log begins (a failed fit leaves one); its other
    files beside riskmin's settings."""
    name = path.name
    if name in (".lock", "checkpoint") or name.startswith("events.out.tfevents."):
        return True
    if name == "config.toml":
        try:
            Config.from_toml(path)
        except RiskminError:
            return False
        return True
    if name == "metrics.csv":
        try:
            with open(path, encoding="utf-8") as file:
                return file.readline().startswith("epoch,step,")
        except (OSError, UnicodeDecodeError):
            return False
    return (
        name in RUN_OUTPUTS
        and (path.parent / "config.toml").is_file()
        and written_by_a_run(path.parent / "config.toml")
    )


def fit_folder(directory: Path, overwrite: bool, resume: bool) -> tuple:
    """(the folder a fit given run `directory` writes in, the run that folder takes the place of once the fit succeeds,
    or None). `directory` itself, unless overwrite=True replaces a run begun there (finished, stopped, or its settings
    written): then a hidden folder beside it, as `riskmin train --overwrite` builds one, made by the fit's first write.
    A hidden folder resumed still replaces the run it was made for, unless that run was written since. A folder this
    process locked is the command line's, which renames it into place itself."""
    if held_here(directory):
        return directory, None
    if resume:
        replacing = replaced_by(directory)
        if replacing is not None:
            check_not_overtaken(directory)
        return directory, replacing
    begun = (directory / "summary.json").exists() or (directory / "config.toml").exists() or stopped_run(directory)
    if not overwrite or not begun:
        return directory, None
    directory = Path(os.path.normpath(directory))  # "runs/r/.." names runs, beside which the hidden folder goes
    check_not_in_use(directory, "directory", "overwrite=True")
    return replacement_folder(directory), directory


def worth_keeping(directory: Path) -> bool:
    """Whether a run directory holds something to resume or use: a checkpoint written whole, or the final files."""
    return stopped_run(directory) or (directory / "summary.json").is_file()


def left_beside(building: Path, replacing: Path, resume: str) -> str:
    """What became of a replacement that did not succeed (`building`, beside the run `replacing`): where it is, and how
    to continue it (`resume`: the command, or fit's call) and to discard it."""
    if worth_keeping(building) and not (building / "summary.json").is_file():
        return (
            f"{replacing} is as it was; the new run is in {building}: continue it with: {resume} "
            f"(it takes the place of {replacing} once it succeeds), or discard it with: rm -r {shell_word(building)}"
        )
    return f"{replacing} is as it was; the new run is in {building}: discard it with: rm -r {shell_word(building)}"


def misfit(saved: dict, wanted: dict) -> str:
    """How saved weights differ from a model's: the tensors it lacks, those it has no place for, the shapes that differ
    (a few of each, named).

    >>> import torch
    >>> print(misfit({"w": torch.zeros(3, 2), "old": torch.zeros(1)}, {"w": torch.zeros(4, 2), "b": torch.zeros(4)}))
    the model has b, which the run lacks; the run has old, which the model lacks; w is 3x2 in the run, 4x2 in the model
    """

    def names(keys: list) -> str:
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    def size(tensor) -> str:
        return "x".join(map(str, tensor.shape)) or "one number"

    lacking, extra = [k for k in wanted if k not in saved], [k for k in saved if k not in wanted]
    shapes = [
        f"{k} is {size(saved[k])} in the run, {size(wanted[k])} in the model"
        for k in wanted
        if k in saved and saved[k].shape != wanted[k].shape
    ]
    return "; ".join(
        ([f"the model has {names(lacking)}, which the run lacks"] if lacking else [])
        + ([f"the run has {names(extra)}, which the model lacks"] if extra else [])
        + shapes[:3]
        + ([f"{len(shapes) - 3} more differ in shape"] if len(shapes) > 3 else [])
    )


def save_montecarlo(mc, directory=None, overwrite: bool = False) -> Path:
    """Write a Monte-Carlo experiment (config.toml, runs.csv, montecarlo.png, then summary.json), each file atomically,
    where `save_experiment` allows; without `directory`, where its settings name (their overwrite asks to replace)."""
    target = (
        Path(directory)
        if directory
        else run_directory(mc.config, f"{data_label(mc.names, mc.config)}-montecarlo", python=True, kind="experiment")
    )
    return save_experiment(
        lambda folder: write_montecarlo(mc, folder), target, overwrite or (directory is None and mc.config.overwrite)
    )


def write_montecarlo(mc, target: Path) -> None:
    """The files of a Monte-Carlo experiment in the folder `target`, each atomically, summary.json last."""
    from ._report import plot_montecarlo

    files = (
        ("config.toml", mc.config.to_toml().encode()),
        ("runs.csv", history_csv(mc.table).encode()),
        ("montecarlo.png", picture(lambda rows, path: plot_montecarlo(rows, path, mc.summary), mc.table, target)),
        ("summary.json", json_bytes(mc.summary)),
    )
    for name, content in files:
        atomic_write(target / name, content)
    fsync_directory(target)


def save_picture(figure, path, overwrite: bool = False) -> Path:
    """`figure` drawn into `path` from Python (a result's plot(path)) under the rules of `--plot`: refused inside a run
    or experiment, in a folder that does not exist, onto a folder, over an existing file unless `overwrite`, or under a
    name that is no picture format; then drawn whole and renamed into place (`draw`). The path."""
    path = Path(path)
    check_picture(path, "path", overwrite, asked="overwrite=True")
    try:
        draw(figure, path)
    except OSError as error:
        raise RiskminError(f"{path} cannot be written ({error.strerror}); choose another path") from None
    return path


def check_picture(path, flag: str, overwrite: bool, inputs=(), asked: str = "--overwrite") -> None:
    """Refuse a picture riskmin must not draw: a name whose extension is no format matplotlib draws, or a file that
    `_files.check_destination` refuses (`flag` and `asked` name the path and the way to replace a file in messages)."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if Path(path).suffix[1:].lower() not in formats:
        raise RiskminError(
            f"{flag} {path} does not end in a picture format; name it .png, .svg or .pdf "
            f"(or {', '.join(sorted(set(formats) - {'png', 'svg', 'pdf'}))})"
        )
    check_destination(path, flag, overwrite, inputs=inputs, what="the picture", asked=asked)


def draw(figure, path: Path) -> None:
    """`figure` in the format the name `path` ends in, drawn whole in memory, then written to a new file beside `path`
    and renamed into place (`_files.atomic_write`): a file there is replaced whole, a link replaced, not written
    through."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix[1:].lower(), dpi=100)
    atomic_write(path, buffer.getvalue())


def picture(plot, rows: list, near: Path, suffix: str = ".png") -> bytes:
    """The bytes of `plot(rows, path)`, drawn in a scratch folder beside the run, in the format `suffix` names."""
    with tempfile.TemporaryDirectory(dir=near, prefix=".plot-") as scratch:
        plot(rows, Path(scratch) / f"figure{suffix}")
        return (Path(scratch) / f"figure{suffix}").read_bytes()


def history_csv(history: list, header=()) -> str:
    """The rows as CSV, a column for every key any row has; `header` names the columns when there are no rows."""
    columns = list(dict.fromkeys(key for row in history for key in row)) or list(header)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def load_run(directory, model=None):
    """A saved run: its model with the best weights, config, preprocessing and history.

    model.safetensors and preprocessing.json must match the checksums summary.json holds (runs
    written before riskmin kept them load unchecked); anything damaged is one RiskminError.
    """
    if model is not None and not isinstance(model, nn.Module):
        raise RiskminError(
            f"model= is a {type(model).__name__}; Run.load takes a fresh instance of the run's own module "
            "(model=Net()), and builds riskmin's own models (linear, two_layer, mlp) from the run's config without it"
        )
    directory = Path(directory)
    summary = checked_summary(directory)
    config = Config.from_toml(directory / "config.toml")
    preprocessing = read_json(directory / "preprocessing.json")
    given = model is not None
    try:
        if model is None:
            model = models.build(config, preprocessing["n_inputs"], preprocessing["n_outputs"])
        standardizer = Standardizer.from_dict(preprocessing["standardizer"]) if preprocessing["standardizer"] else None
    except RiskminError:  # a module of the user's own, which riskmin cannot build: its sentence asks for one
        raise
    except (KeyError, TypeError, AttributeError, ValueError, RuntimeError) as error:
        raise RiskminError(
            f"{directory / 'preprocessing.json'} lacks what riskmin wrote there ({error}); the run is "
            "damaged, train it again"
        ) from None
    if standardizer is not None and not standardizer.fits(preprocessing["n_inputs"]):
        raise RiskminError(
            f"{directory / 'preprocessing.json'} scales inputs that are not the run's {preprocessing['n_inputs']}, "
            "each with a spread above 0; the run is damaged, train it again"
        )
    saved = load_tensors(directory / "model.safetensors")
    if unsound(saved, model):
        raise RiskminError(
            f"{directory / 'model.safetensors'} holds NaN or infinite weights, which riskmin never writes; the run is "
            "damaged, train it again"
        )
    try:
        model.load_state_dict(saved)
    except RuntimeError as error:
        fix = "give a model built as the run's was" if given else "the run is damaged, train it again"
        raise RiskminError(
            f"the weights in {directory} do not fit the model {'given' if given else 'its config.toml describes'} "
            f"({misfit(saved, model.state_dict()) or error}); {fix}"
        ) from None
    try:
        with open(directory / "metrics.csv", newline="") as file:
            history = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(file)]
    except (csv.Error, UnicodeDecodeError) as error:
        raise RiskminError(f"{directory / 'metrics.csv'} is not readable CSV ({error}); the run is damaged") from None
    names = {
        k: preprocessing[k]
        for k in ("features", "targets", "data", "task", "layout", "classes", "missing", "csv_form", "loss")
        if k in preprocessing
    }
    test = {k: v for k, v in summary.items() if k.startswith("test_")}
    return Run(
        model=model,
        config=config,
        history=history,
        test=test,
        summary=summary,
        preprocessing=standardizer,
        data_names=names,
    )


def checked_summary(directory: Path) -> dict:
    """summary.json of a run directory that holds every run file, each checked against its checksum; else one
    RiskminError."""
    missing = missing_run_files(directory)
    if unfinished_run(directory):
        owner = lock_holder(directory)
        if owner:
            raise RiskminError(f"run {directory} is still training ({owner} writes it); use it once it has finished")
        finish = (
            resume_line(directory)
            if (directory / "config.toml").is_file()
            else f"riskmin.fit(model, data, directory={str(directory)!r}, resume=True) with the model, data and "
            "settings it began with"
        )
        raise RiskminError(
            f"run {directory} has not finished: its training stopped before the end; finish it with {finish}, then use "
            "it"
        )
    if missing == ["model.safetensors"] and read_json(directory / "summary.json").get("diverged"):
        raise RiskminError(
            f"{directory} has no model: the run diverged before it had finite weights to keep; "
            "train it again with a lower --lr (lr=) or with --clip-grad 1.0 (clip_grad=1.0)"
        )
    if missing:
        raise not_a_run(directory, missing)
    summary = read_json(directory / "summary.json")
    checksums = summary.pop("sha256", {})  # none: a run written before riskmin kept them
    if not isinstance(checksums, dict):
        raise RiskminError(
            f"{directory / 'summary.json'} holds no checksums riskmin wrote; the run is damaged, train it again"
        )
    for name, digest in checksums.items():
        if name in CHECKED and sha256(directory / name) != digest:
            raise RiskminError(
                f"{directory / name} does not match the checksum in summary.json; the run is damaged, train it again"
            )
    return summary


def unsound(weights: dict, model: nn.Module) -> bool:
    """Whether `weights` (a state dict of `model`'s) hold what riskmin never keeps: a NaN, or an infinite parameter; a
    buffer may hold an infinity on purpose (an attention mask's -inf).

    >>> import torch
    >>> layer, inf = nn.Linear(1, 1), float("inf")
    >>> unsound({"weight": torch.tensor([[inf]])}, layer), unsound({"mask": torch.tensor(-inf)}, layer)
    (True, False)
    """
    parameters = {name for name, _ in model.named_parameters()}
    return any(
        bool(tensor.isnan().any()) or (name in parameters and not bool(tensor.isfinite().all()))
        for name, tensor in weights.items()
        if tensor.is_floating_point()
    )


def read_json(path: Path) -> dict:
    """The JSON object in `path`; a damaged file is one RiskminError."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise RiskminError(f"{path} is not readable JSON ({error}); the run is damaged, train it again") from None
    if not isinstance(value, dict):
        raise RiskminError(f"{path} does not hold a JSON object; the run is damaged, train it again")
    return value


def _number(text: str):
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)
