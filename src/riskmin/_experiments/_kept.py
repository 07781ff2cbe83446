"""An experiment kept as it trains: each finished run on disk at once, so that a killed Monte-Carlo experiment or
comparison continues where it stopped instead of starting over.

    runs/lab1-two_layer-montecarlo/
        config.toml              the settings, written first: the folder is an experiment that began
        experiment.json          what it trains: the data's and every split's fingerprint, the settings, the candidates
        kept/process-0.jsonl     a line per finished run, appended and fsynced as its stack or its fit ends,
        kept/process-1.jsonl       each process its own file (under torchrun), so no two write one file
        kept/settings.toml       config.toml as the experiment began, which --resume reads (the result's is
                                   settled: loss auto named)
        kept/run-0-0-7/          the checkpoints of a run that `fit` trains (the sequential engine), as
                                   `riskmin train` writes them (every 30 s, on Ctrl-C or SIGTERM); gone once it is kept
        runs.csv, summary.json   the result at the end, summary.json last; then kept/ and experiment.json go

A line is taken back only whole (it ends in a newline and parses): a line cut short by a kill
is a run trained again. Resuming compares experiment.json with what the command asks for and
refuses, naming the difference, when the data, the splits, the settings or the candidates
changed: rows kept from other splits would mix two experiments in one table.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Optional

from ..config import Config, RiskminError, fact, settings_where
from .. import _files as files
from .._paths import shell_word
from .._training._fingerprint import check_same, data_fingerprint, fingerprinted, tensors_sha256

FINGERPRINT = "experiment.json"
KEPT = "kept"
SETTINGS = "settings.toml"  # in kept/: config.toml as the experiment began, which --resume reads
# settings an experiment may change when it resumes: those a run may (what it shows, where it writes, its threads), less
# the experiment's own (runs, splits, engine...), which a run does not depend on but the experiment does
FREE = {name for name in settings_where(resume="free") if fact(name, "command") != "montecarlo"}


def experiment_fingerprint(data, every: list, settings: dict) -> dict:
    """What an experiment trains, as JSON values: the data (rows, columns, a SHA-256 of its values), a SHA-256 of every
    run's split, and `settings` (the config, or each candidate's), less the FREE ones."""
    import torch

    inputs = data_fingerprint(data)
    parts = [torch.as_tensor(part, dtype=torch.long) for _, _, s in every for part in (s.train, s.val, s.test)]
    inputs["split"] = tensors_sha256(torch.tensor([len(part) for part in parts]), *parts)
    return json.loads(json.dumps({"data": inputs, "settings": without_free(settings)}))


def without_free(settings: dict) -> dict:
    """`settings` less the FREE ones: a config's dict, or a dict of them, or a comparison's candidates' settings flat
    ("small.progress")."""
    return {
        key: without_free(value) if isinstance(value, dict) else value
        for key, value in settings.items()
        if key.rpartition(".")[2] not in FREE
    }


def fingerprint_settings(config: Config, model: str) -> dict:
    """A config's settings as an experiment's fingerprint holds them (`fingerprinted`, as a run's), with the model's
    name."""
    return {**fingerprinted(config), "model": model}


class Keeper:
    """Where an experiment keeps its runs as they finish, and reads back those an interrupted one kept.

    `target`: the folder the result goes to (None on the processes of a torchrun but the first,
    which are told the folder). `settings`: what the fingerprint holds of the settings, and
    `config_toml` the experiment's config.toml. `resume`: continue the unfinished experiment in
    `target`. `overwrite`: replace what is there, only once the new result is complete; meanwhile
    the runs are kept in a hidden folder beside it. `base` (an unnamed experiment of the command
    line): the name its numbered folders share, among which an interrupted twin is looked for.
    `command`: the command whose flags the refusals name ("montecarlo"), or None for Python's
    keywords. `about`: what experiment.json also records, for `riskmin compare --resume`, with
    `kind`, "montecarlo" or "compare", which only the same kind of experiment resumes.
    """

    def __init__(
        self,
        target,
        settings: dict,
        config_toml: str,
        resume: bool = False,
        overwrite: bool = False,
        base=None,
        command: Optional[str] = None,
        about: Optional[dict] = None,
        kind: str = "montecarlo",
    ):
        self.target = None if target is None else Path(target)
        self.settings, self.config_toml, self.resume, self.overwrite = settings, config_toml, resume, overwrite
        self.base, self.command, self.about = base, command, {**(about or {}), "kind": kind}
        self.building: Optional[Path] = None  # where the runs are kept: target, or a hidden folder that replaces it
        self.rows: dict = {}  # (group, variant, run) -> the row kept
        self.lock: Optional[files.RunLock] = None
        self.rank = 0  # this process's number among those of a torchrun, which names its file of kept runs
        # the outermost folder this experiment made, while nothing is kept in it: a mistake removes it
        self.made: Optional[Path] = None

    @property
    def destination(self) -> Path:
        """`target`, which process 0 alone is given: it decides where the runs are kept, and writes the result."""
        if self.target is None:
            raise RuntimeError("only process 0 of a torchrun decides where an experiment is kept")
        return self.target

    @property
    def folder(self) -> Path:
        """`building`, once `open` has made or found it."""
        if self.building is None:
            raise RuntimeError("the experiment's folder is not open yet")
        return self.building

    @property
    def log(self) -> Path:
        """This process's file of the runs it kept."""
        return self.folder / KEPT / f"process-{self.rank}.jsonl"

    def open(self, data, every: list, rank: int = 0) -> dict:
        """The folder ready (process 0 makes or checks it; the others learn which it is); the rows kept before."""
        from ..distributed import shared

        if self.building is not None:  # a comparison's later stacks: the folder is open
            return self.rows
        opened = str(self.decide(experiment_fingerprint(data, every, self.settings))) if rank == 0 else None
        self.building = Path(shared(opened))
        self.rows = read_kept(self.building / KEPT)
        self.rank = rank
        return self.rows

    def decide(self, now: dict) -> Path:
        """The folder the experiment keeps its runs in (process 0): made new, or the unfinished one it resumes."""
        if self.resume:
            return self.resumed(now)
        twin = next(
            (
                folder
                for folder in siblings(Path(self.base or self.destination), bool(self.base))
                if interrupted(folder) and same(folder, now)
            ),
            None,
        )
        if restarted() and twin is not None:  # torchrun started the processes again: on with what was kept
            self.take(twin)
            return twin
        self.refuse_to_start(twin)
        return self.begun(now)

    def resumed(self, now: dict) -> Path:
        """The interrupted experiment in `target`, once its fingerprint shows it trains what `now` describes."""
        from .._runs._rundir import check_not_overtaken, replaced_by

        if not interrupted(self.destination):
            finished = "; it finished" if (self.destination / "summary.json").exists() else ""
            instead = "run the command without --resume" if self.command else "drop resume=True"
            raise RiskminError(
                f"{self.target} holds no interrupted experiment to resume{finished}; {instead} to start one"
            )
        found = self.destination
        check_experiment_kind(found, self.about["kind"])
        check_same(read_fingerprint(found), now, found, what="experiment")
        check_not_overtaken(found)
        self.take(found)
        self.target = replaced_by(found) or found  # a replacement that was interrupted still replaces what it was for
        return found

    @property
    def voice(self) -> dict:
        """How a refusal names what to change and how to ask for a replacement: in flags, or in Python's words."""
        return {} if self.command else {"place": "directory", "asked": "overwrite=True"}

    def refuse_to_start(self, twin: Optional[Path]) -> None:
        """Without overwrite, refuse to start again an experiment interrupted with these settings (`twin`), and to
        replace what `target` holds."""
        from .._runs._rundir import check_replaceable, left_empty

        if self.overwrite:
            return
        if twin is not None:
            kept = len(read_kept(twin / KEPT))
            runs = f"{kept} finished run{'s' * (kept != 1)}"
            raise RiskminError(
                f"{twin} holds this experiment, interrupted after {runs}; {self.resume_hint(twin)}, "
                f"or {self.overwrite_hint()} to start it again"
            )
        if os.path.lexists(self.destination) and not left_empty(self.destination):
            if not interrupted(self.destination):  # what overwrite would not replace either (a link, a folder of
                # one's own, a run) is said for what it is, first
                check_replaceable(self.destination, **self.voice, kind="experiment")
            held = (
                "an interrupted experiment with other data or settings"
                if interrupted(self.destination)
                else "a finished result"
            )
            raise RiskminError(
                f"{self.target} holds {held}; {self.overwrite_hint()} to replace it, or choose another "
                f"{'--name' if self.command else 'directory'}"
            )

    def begun(self, now: dict) -> Path:
        """A new folder for the experiment (hidden beside what it replaces) with its settings and fingerprint: written
        in a hidden folder that then takes the new folder's place, so that a kill leaves the experiment begun whole or
        an empty folder, which the next command uses."""
        import secrets

        from .._runs._rundir import first_missing, prepare_run_directory

        made = first_missing(self.destination)
        # a hidden folder beside one already there
        building = prepare_run_directory(self.destination, True, **self.voice, kind="experiment")
        self.made = made if building == self.target else building
        starting = building.with_name(f".{building.name}.begin-{secrets.token_hex(4)}")
        (starting / KEPT).mkdir(parents=True)
        # the settings twice: the second stays as begun, while the result rewrites config.toml with them settled
        for path in (starting / "config.toml", starting / KEPT / SETTINGS):
            files.atomic_write(path, self.config_toml.encode())
        files.atomic_write(starting / FINGERPRINT, files.json_bytes({**now, "about": self.about}))
        files.fsync_directory(starting / KEPT)
        files.fsync_directory(starting)
        os.rename(starting, building)  # over the empty folder made for it
        files.fsync_directory(building.parent)
        self.take(building)
        return building

    def resume_hint(self, folder: Path) -> str:
        """How the user continues the experiment kept in `folder`, as a clause: "continue it with: ..." """
        if self.command:
            return f"continue it with: riskmin {self.command} --resume {shell_word(folder)}"
        if folder == self.target:
            return "pass resume=True to continue it"
        return f"continue it with directory='{folder}', resume=True"

    def overwrite_hint(self) -> str:
        return "pass --overwrite" if self.command else "pass overwrite=True"

    def take(self, folder: Path) -> None:
        """Hold `folder`'s lock while the experiment trains there: two commands never keep runs in one folder."""
        self.lock = files.RunLock(folder)
        self.lock.__enter__()

    def keep(self, group: int, rows: list) -> None:
        """Append `rows` (each with its variant and run) to this process's file, on disk before this returns."""
        if not rows:
            return
        text = "".join(json.dumps({"group": group, "row": row}, default=plain, allow_nan=True) + "\n" for row in rows)
        descriptor = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | files.NOFOLLOW, 0o666)
        try:
            os.write(descriptor, text.encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def checkpoints(self, group: int, variant: int, run: int) -> Path:
        """The folder a run trained by `fit` checkpoints in while it trains (removed once its row is kept)."""
        return self.folder / KEPT / f"run-{group}-{variant}-{run}"

    def kept(self, group: int) -> dict:
        """(variant, run) -> row of the runs of `group` kept before."""
        return {(v, r): row for (g, v, r), row in self.rows.items() if g == group}

    def finished(self, save, replace: bool = True) -> Path:
        """Write the result with `save(folder)` into the folder the runs were kept in, then, where it was a hidden one,
        put it in the place of the old result (if `replace`); the kept runs go once the result is complete."""
        from .._runs._rundir import install

        building = self.folder
        try:
            save(building)
        except KeyboardInterrupt:  # the runs are still kept, and the command that resumes them writes the result
            from .._training._checkpoint import TrainingInterrupted

            raise TrainingInterrupted(self.stopped()) from None
        except OSError as error:
            kept = f"; {self.target} is as it was" if building != self.target else ""
            raise RiskminError(
                f"the results could not be written to {building} ({error.strerror or error}){kept}; "
                f"free space or fix permissions, then {self.resume_hint(building)}"
            ) from None
        shutil.rmtree(building / KEPT, ignore_errors=True)
        (building / FINGERPRINT).unlink(missing_ok=True)
        self.release()
        if building != self.target and replace:
            with files.RunLock(self.destination, tidy=False):
                install(building, self.destination)
            return self.destination
        return building

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        """A mistake found before any run was kept (a setting a run refuses) leaves no folder behind; whatever else
        stopped the experiment leaves what it kept, and its folder free for the command that resumes it. A Python
        caller's Ctrl-C is said with what was kept and the call that goes on from it."""
        mistake = kind is not None and issubclass(kind, Exception)
        if mistake and self.made is not None and self.building is not None and not read_kept(self.building / KEPT):
            from .._runs._rundir import discard

            self.release()
            discard(self.building, self.made)
        self.release()
        stopped = kind is not None and issubclass(kind, KeyboardInterrupt) and self.building is not None
        if stopped and not self.command and interrupted(self.building):  # the command line says it itself
            from .._training._checkpoint import TrainingInterrupted

            raise TrainingInterrupted(self.stopped()) from None

    def stopped(self) -> str:
        """What an interrupted experiment says, in its caller's words: the runs it kept and how to go on; and for one
        begun to replace another, that the other is as it was, and how to discard the new one."""
        building = self.building
        assert building is not None, "stopped() tells of an experiment begun"
        count = len(read_kept(building / KEPT))
        said = f"interrupted; {count} finished run{'s' * (count != 1)} kept in {building}: {self.resume_hint(building)}"
        if self.target is not None and building != self.target:
            said += f"; {self.target} is as it was: discard the new one with: rm -r {shell_word(building)}"
        return said

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def check_experiment_kind(folder: Path, kind: str) -> None:
    """Refuse to resume with `kind` ("montecarlo", "compare", or "train" for a run) an experiment of another kind."""
    began = about(folder).get("kind", kind)
    if began != kind:
        raise RiskminError(
            f"{folder} is an interrupted {began}, not {'a run of riskmin train' if kind == 'train' else 'a ' + kind}; "
            f"continue it with: riskmin {began} "
            f"--resume {shell_word(folder)}, or riskmin.{began}(..., directory=..., resume=True)"
        )


def holding(keeper: Optional[Keeper]):
    """`keeper`, or a context that does nothing when the experiment is kept in memory alone."""
    return keeper if keeper is not None else contextlib.nullcontext()


def restarted() -> bool:
    """Whether torchrun started this process again after one of its group failed (its --max-restarts)."""
    from ..distributed import restart_attempt

    return restart_attempt() > 0


def plain(value):
    """A NumPy or torch number as the Python number json writes."""
    return value.item()


def interrupted(folder: Path) -> bool:
    """Whether `folder` holds an experiment that began keeping runs and never finished."""
    begun = (folder / FINGERPRINT).is_file() and (folder / "config.toml").is_file()
    return begun and not (folder / "summary.json").exists()


def siblings(target: Path, numbered: bool) -> list:
    """The folders an experiment aimed at `target` may have been kept in: `target`, the hidden folder an --overwrite
    builds beside it, and for an unnamed one the numbered names after it; newest first."""
    found = [target, *target.parent.glob(f".{target.name}.new-*")]
    number = 2
    while numbered and os.path.lexists(target.with_name(f"{target.name}-{number}")):
        found.append(target.with_name(f"{target.name}-{number}"))
        number += 1
    found = [folder for folder in found if folder.is_dir() and not folder.is_symlink()]
    return sorted(found, key=lambda folder: folder.stat().st_mtime, reverse=True)


def read_fingerprint(folder: Path) -> dict:
    try:
        return json.loads((folder / FINGERPRINT).read_text())
    except (OSError, ValueError):
        raise RiskminError(
            f"{folder / FINGERPRINT} is damaged, so {folder} cannot be resumed; start the experiment "
            "again with --overwrite (overwrite=True)"
        ) from None


def same(folder: Path, now: dict) -> bool:
    """Whether the unfinished experiment in `folder` trains what `now` describes."""
    try:
        then = json.loads((folder / FINGERPRINT).read_text())
    except (OSError, ValueError):
        return False
    return {key: then.get(key) for key in ("data", "settings")} == now


def read_kept(folder: Path) -> dict:
    """(group, variant, run) -> row of every whole line in the kept files of `folder`; a line cut short is left."""
    rows = {}
    for path in sorted(folder.glob("process-*.jsonl")) if folder.is_dir() else ():
        text = path.read_bytes().decode(errors="replace")
        for line in text.split("\n")[:-1]:  # the part after the last newline is not a whole line
            try:
                entry = json.loads(line)
                rows[(entry["group"], entry["row"]["variant"], entry["row"]["run"])] = entry["row"]
            except (ValueError, KeyError, TypeError):
                continue
    return rows


def about(folder: Path) -> dict:
    """What experiment.json in `folder` records besides the fingerprint: how the command was given."""
    return read_fingerprint(folder).get("about", {})
