"""The checks of what a command was given that need no torch: its settings, its data file, the run it reads.

Importing torch takes seconds; a mistyped flag, a missing file or a folder that is not a run
should be refused before that, in the time Python takes to start. `refused_early` makes those
checks for the command line, ahead of the commands themselves, which make them again where they
stand (a Python caller never passes through here).
"""

from __future__ import annotations

from pathlib import Path

from .config import RiskminError

SUFFIXES = (".csv", ".parquet", ".npz")
RUN_FILES = ("config.toml", "metrics.csv", "model.safetensors", "summary.json", "preprocessing.json")
TRAINING = ("train", "montecarlo", "lr-find")  # the commands that read one Config from their flags
READING = ("predict", "evaluate", "export")  # the commands that read a trained run


def checked(path) -> tuple:
    """(path, lower-case suffix) of an existing file riskmin can read, or a clear error."""
    path = Path(path)
    if path.is_dir():
        raise RiskminError(f"data file {path} is a folder; give a {', '.join(SUFFIXES[:-1])} or {SUFFIXES[-1]} file")
    if not path.is_file():
        raise RiskminError(f"data file {path} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise RiskminError(f"{path} is a {suffix or 'suffix-less'} file; riskmin reads {', '.join(SUFFIXES)} files")
    return path, suffix


def is_file_name(name: str) -> bool:
    """Whether data `name` names a file: built-in data sets are plain words."""
    return bool(Path(name).suffix) or "/" in name


def missing_run_files(directory: Path) -> list:
    return [name for name in RUN_FILES if not (directory / name).is_file()]


def not_a_run(directory: Path, missing: list) -> RiskminError:
    """The error for a folder given as a run that lacks the run files `missing`."""
    return RiskminError(f"{directory} is not a riskmin run directory (missing {', '.join(missing)}); give the folder "
                        "`riskmin train` wrote")


def unfinished_run(directory: Path) -> bool:
    """Whether `directory` is a run that began and has not finished: its settings without summary.json, beside the lock
    of
    a run in training or a checkpoint of one that stopped."""
    return ((directory / "config.toml").is_file() and not (directory / "summary.json").exists()
            and ((directory / ".lock").exists() or any((directory / "checkpoint").glob("step-*"))))


def refused_early(args) -> None:
    """Raise the RiskminError a command would raise on its settings, its data file or its run, without importing torch:
    a bad setting value, a data file that is missing or unreadable by name, a run folder that is not a finished run."""
    from ._flags import config_from_args

    if args.command in TRAINING and not getattr(args, "resume", None) and getattr(args, "nproc", None) in (None, "1"):
        config = config_from_args(args)
        if is_file_name(config.data):
            checked(config.data)
    if args.command in READING:
        run = Path(args.run)
        missing = missing_run_files(run)
        # a diverged run lacks its model alone, an unfinished one its final files: the command says which it is
        if missing and missing != ["model.safetensors"] and not unfinished_run(run):
            raise not_a_run(run, missing)
        if args.command != "export":
            checked(args.file)
