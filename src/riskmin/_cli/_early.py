"""The checks of what a command was given that need no torch: its settings, its data file, the run it reads.

Importing torch takes seconds; a mistyped flag, a missing file or a folder that is not a run
should be refused before that, in the time Python takes to start. `refused_early` makes those
checks for the command line, ahead of the commands themselves, which make them again where they
stand (a Python caller never passes through here).
"""

from __future__ import annotations

from pathlib import Path

from .._paths import checked, is_file_name, missing_run_files, not_a_run, unfinished_run

TRAINING = ("train", "montecarlo", "lr-find")  # the commands that read one Config from their flags
READING = ("predict", "evaluate", "export")  # the commands that read a trained run


def refused_early(args) -> None:
    """Raise the RiskminError a command would raise on its settings, its data file or its run, without importing torch:
    a bad setting value, a --config file's value that stands for Python code of one's own, a data file that is missing
    or unreadable by name, a run folder that is not a finished run."""
    from ._flags import config_from_args, flags_given, refuse_own_code_in
    from ..config import read_toml

    if args.command in TRAINING and not getattr(args, "resume", None) and getattr(args, "nproc", None) in (None, "1"):
        config = config_from_args(args)  # a --config file's value that stands for Python code of one's own among them
        if is_file_name(config.data):
            checked(config.data)
    elif getattr(args, "config", None) and not getattr(args, "resume", None):  # compare, curve, graph: before any line
        refuse_own_code_in(args.config, read_toml(args.config), flags_given(args))
    if args.command in READING:
        run = Path(args.run)
        missing = missing_run_files(run)
        # a diverged run lacks its model alone, an unfinished one its final files: the command says which it is
        if missing and missing != ["model.safetensors"] and not unfinished_run(run):
            raise not_a_run(run, missing)
        if args.command != "export":
            checked(args.file)
