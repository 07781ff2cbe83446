"""The checks of a data file and of a run folder that need no torch: its suffix, its existence, the run files.

Importing torch takes seconds; a missing file or a folder that is not a run should be refused
before that, in the time Python takes to start. The readers and the run directories make these
checks where they stand; `_cli._early.refused_early` makes them, with the settings' own checks,
for the command line ahead of the commands.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .config import RiskminError

SUFFIXES = (".csv", ".parquet", ".npz")
RUN_FILES = ("config.toml", "metrics.csv", "model.safetensors", "summary.json", "preprocessing.json")


def shell_word(path) -> str:
    """`path` as a command a message gives to paste must hold it: quoted when a shell would split it or read a
    character of it (a space in a data file's name comes into its run's).

    >>> shell_word("runs/my data-linear"), shell_word("runs/lab1-mlp")
    ("'runs/my data-linear'", 'runs/lab1-mlp')
    """
    import shlex

    return shlex.quote(str(path))


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


# how config.toml names data that was passed in Python as an object ("DataFrame given in Python"): no file of settings
# can hold it, and reading one that says so asks for the data instead of training on something else
GIVEN_IN_PYTHON = "given in Python"


def data_label(names: dict, config) -> str:
    """The data as a result names it: the name it was read under (`names["data"]`: the data set's, the file's stem,
    else the type of what was given), or, for a result without one, what its settings name.

    >>> data_label({"data": "wine"}, None), data_label({}, type("C", (), {"data": "/tmp/houses.csv"}))
    ('wine', 'houses')
    """
    return names.get("data") or Path(config.data).stem


# the built-in data sets, described as `riskmin datasets` lists them
DATASETS = {
    "lab1": "y = A x + w, A Bernoulli(1/2), x and w Gaussian (set n_samples, n_inputs, n_outputs, noise, data_seed)",
    "line": "y = 1 + 2x + 0.1 noise, 100 points; split tutorial gives its fixed 80/20 cut",
}


def is_file_name(name: str, folder: Path = Path()) -> bool:
    """Whether data `name` names a file: built-in data sets are plain words, and a plain word that names something on
    disk (a file without a suffix, a folder; found from `folder`) is read as a path, which checked refuses in its own
    words."""
    return bool(Path(name).suffix) or "/" in name or (name not in DATASETS and os.path.lexists(folder / name))


def missing_run_files(directory: Path) -> list:
    return [name for name in RUN_FILES if not (directory / name).is_file()]


def holds_experiment(folder: Path) -> bool:
    """Whether `folder` holds an experiment (montecarlo, compare, curve) rather than a run."""
    return any(os.path.lexists(folder / name) for name in ("runs.csv", "experiment.json"))


def not_a_run(directory: Path, missing: list) -> RiskminError:
    """The error for a folder given as a run that lacks the run files `missing`: one that is not there at all, a
    mistyped path, or an experiment's folder, said so."""
    if not os.path.lexists(directory):
        return RiskminError(f"{directory} does not exist; check the path")
    if holds_experiment(directory):
        return RiskminError(
            f"{directory} holds an experiment (montecarlo, compare or curve), not a run; give the folder of a run "
            "`riskmin train` wrote"
        )
    return RiskminError(
        f"{directory} is not a riskmin run directory (missing {', '.join(missing)}); give the folder "
        "`riskmin train` wrote"
    )


def unfinished_run(directory: Path) -> bool:
    """Whether `directory` is a run that began and has not finished: no summary.json, and a checkpoint of a run that
    stopped (a fit from Python writes no config.toml), or settings beside the lock of a run in training."""
    if (directory / "summary.json").exists():
        return False
    return stopped_run(directory) or ((directory / "config.toml").is_file() and (directory / ".lock").exists())


def stopped_run(directory: Path) -> bool:
    """Whether `directory` holds a checkpoint written whole (its manifest, a file riskmin renames into place, comes
    last), which a run resumes from."""
    return any(path.is_file() and not path.is_symlink() for path in checkpoint_manifests(directory))


def checkpoint_manifests(run: Path) -> list:
    """The manifests of the checkpoints of the run in `run` written whole, newest first (their names count the steps;
    a checkpoint without its manifest does not exist)."""
    root = Path(run) / "checkpoint"
    return sorted(root.glob("step-*.manifest.json"), reverse=True) if root.is_dir() else []


def newest_manifest(run: Path) -> dict:
    """The manifest of the newest checkpoint of `run` that can be read, or {} (none, or none readable)."""
    import json

    for manifest in checkpoint_manifests(run):
        try:
            facts = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(facts, dict):
            return facts
    return {}


def checkpointed_by(run: Path) -> Optional[int]:
    """How many processes wrote the newest checkpoint of `run`, as its manifest says (None where it does not say, as
    before riskmin wrote it there, or where there is none): as many must resume it."""
    processes = newest_manifest(run).get("processes")
    return processes if isinstance(processes, int) and not isinstance(processes, bool) and processes > 0 else None


def resume_line(run, processes: Optional[int] = None) -> str:
    """The command that resumes the run in `run` on this machine: with --nproc where more than one process wrote its
    checkpoint (by default, as many as its newest checkpoint says), which as many must resume.

    >>> resume_line("runs/a b", 1), resume_line("runs/x", 2)
    ("riskmin train --resume 'runs/a b'", 'riskmin train --resume runs/x --nproc 2')
    """
    processes = processes or checkpointed_by(Path(run)) or 1
    return f"riskmin train --resume {shell_word(run)}" + (f" --nproc {processes}" if processes > 1 else "")
