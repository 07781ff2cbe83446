"""The `riskmin` command. Its flags are generated from the fields of `Config`.

    riskmin train [DATA] [--flag value ...] [--config run.toml]
    riskmin montecarlo [DATA] --runs N [--flag value ...]
    riskmin datasets

Any mistake in what was asked prints `error: ...` on one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
import typing

from .config import FIELDS, Config, RiskminError, field_type, read_toml

TRUE, FALSE = ("on", "true", "yes", "1"), ("off", "false", "no", "0")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose complaints become one-line RiskminErrors instead of usage dumps."""

    def error(self, message):
        if message.startswith("unrecognized arguments"):
            flag = message.split(":", 1)[1].split()[0]
            close = difflib.get_close_matches(flag, [a for action in self._actions for a in action.option_strings], n=1)
            hint = f"did you mean {close[0]}?" if close else f"run `{self.prog} --help` for the list"
            raise RiskminError(f"unknown option {flag}; {hint}")
        raise RiskminError(f"{message}; run `{self.prog} --help` for the options")


def parse_value(name: str, text: str):
    """Turn the text of a flag into the type its Config field declares."""
    kind = field_type(name)
    try:
        if kind is bool:
            if text.lower() in TRUE or text.lower() in FALSE:
                return text.lower() in TRUE
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is tuple:
            return tuple(int(part) for part in text.split(","))
    except ValueError:
        allowed = {bool: "on or off", int: "a whole number", float: "a number", tuple: "comma-separated whole numbers such as 64,64"}[kind]
        raise RiskminError(f"{name} = {text!r} is not allowed; it must be {allowed}") from None
    return text


def add_config_flags(parser: argparse.ArgumentParser, command: str) -> None:
    for f in dataclasses.fields(Config):
        if f.name == "data" or f.metadata["command"] not in (None, command):
            continue
        kind = field_type(f.name)
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        default = {True: "on", False: "off"}.get(default, default) if isinstance(default, bool) else default
        help_text = f.metadata["help"] + f" (default: {default})"
        if typing.get_origin(kind) is typing.Literal:
            help_text += f"; one of {', '.join(typing.get_args(kind))}"
        extra = {"nargs": "?", "const": "on"} if kind is bool else {"action": "append"} if f.name == "target" else {}
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, metavar=f.name.upper(), default=argparse.SUPPRESS, help=help_text, **extra)


def build_parser() -> Parser:
    parser = Parser(prog="riskmin", description="Train PyTorch models by empirical risk minimization.", allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    parser.commands = {}
    for command, text in (("train", "train one model and write a run directory"),
                          ("montecarlo", "train on many random splits and report mean, spread and confidence intervals")):
        sub = commands.add_parser(command, help=text, allow_abbrev=False)
        sub.add_argument("data", nargs="?", default=argparse.SUPPRESS, help="built-in data set name (default: lab1)")
        sub.add_argument("--config", metavar="FILE", help="TOML file of settings; flags override it")
        if command == "train":
            sub.add_argument("--resume", metavar="RUN", help="continue the interrupted run in this directory exactly where it stopped")
        sub.add_argument("--nproc", metavar="N", help="run N processes on this machine through torchrun (default: 1); "
                         "--batch-size stays the global batch")
        add_config_flags(sub, command)
        parser.commands[command] = sub
    predict = commands.add_parser("predict", help="predictions of a trained run for the rows of a file", allow_abbrev=False)
    predict.add_argument("run", help="run directory that `riskmin train` wrote")
    predict.add_argument("file", help=".csv, .parquet or .npz file with the run's feature columns, in any order")
    predict.add_argument("--out", required=True, help="CSV file to write: kept columns, then one prediction column per target")
    predict.add_argument("--keep", default="", help="columns to copy from the input beside the predictions, comma separated")
    evaluate = commands.add_parser("evaluate", help="metrics of a trained run on labelled rows of a file", allow_abbrev=False)
    evaluate.add_argument("run", help="run directory that `riskmin train` wrote")
    evaluate.add_argument("file", help=".csv, .parquet or .npz file with the run's feature and target columns")
    parser.commands.update(predict=predict, evaluate=evaluate)
    parser.commands["datasets"] = commands.add_parser("datasets", help="list the built-in data sets")  # to name a bad flag with its own command's options
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    values = read_toml(args.config) if args.config else {}
    if values:
        Config.from_dict(values, source=args.config)  # unknown keys and bad values are named with the file
    for name in FIELDS:
        if name in vars(args):
            raw = getattr(args, name)
            raw = ",".join(raw) if isinstance(raw, list) else raw  # --target may be given more than once
            values[name] = raw if name == "data" else parse_value(name, raw)
    return Config.from_dict(values, source="the flags")


def train(args) -> int:
    from .datasets import load
    from .distributed import join, shared
    from .rundir import check_writable, prepare_run_directory, run_directory

    if args.resume:
        return resume(args)
    config = config_from_args(args)
    data = load(config.data, config)
    target = None
    if join(config.device)[0] == 0:  # under torchrun, process 0 alone makes the run directory and writes it
        check_writable(config)
        tell(data.notes)
        target = run_directory(config, data.name)
        prepare_run_directory(target, config.overwrite)
    return train_in(shared(target), config, data, resume=False)


def resume(args) -> int:
    from pathlib import Path

    from .datasets import load

    directory = Path(args.resume)
    changed = [name for name in FIELDS if name in vars(args) and name not in ("progress", "print_every")]
    if changed or args.config:
        flags = ", ".join("--" + name.replace("_", "-") for name in changed) or "--config"
        raise RiskminError(f"--resume continues with the settings saved in {directory}/config.toml; drop {flags}")
    config = resumable(directory)  # under torchrun every process reads it: on several machines the run sits on a shared disk
    if "progress" in vars(args):
        config = config.replace(progress=parse_value("progress", args.progress))
    return train_in(directory, config, load(config.data, config), resume=True)


def resumable(directory):
    """The settings of the interrupted run in `directory`, once it is sure there is something to resume."""
    if not (directory / "config.toml").is_file() or not (directory / "checkpoint").is_dir():
        raise RiskminError(f"{directory} is not a riskmin run with checkpoints; give --resume the run directory `riskmin train` wrote")
    if (directory / "summary.json").is_file():
        raise RiskminError(f"run {directory} already finished; there is nothing to resume")
    return Config.from_toml(directory / "config.toml")


def train_in(target, config, data, resume: bool) -> int:
    """Train into the run directory `target` under its lock; a failure before the first checkpoint removes it."""
    import shutil

    from rich.console import Console

    from .checkpoint import Checkpoints, TrainingInterrupted
    from .files import RunLock, atomic_write
    from .distributed import rank
    from .loop import fit
    from .report import summary_table

    if rank() != 0:  # another process of a torchrun: it trains its share and leaves the writing to process 0
        try:
            fit(config.model, data, config, directory=target, resume=resume)
        except TrainingInterrupted:
            return 130
        return 0
    console = Console()
    try:
        with RunLock(target):
            atomic_write(target / "config.toml", config.to_toml().encode())
            try:
                run = fit(config.model, data, config, directory=target, resume=resume)
            except TrainingInterrupted as stop:
                print(f"{stop}; continue with: riskmin train --resume {target}", file=sys.stderr)
                return 130
            summary_table(run.summary, console)
            run.save(target)
    except (RiskminError, KeyboardInterrupt):
        if not resume and not Checkpoints(target).complete():
            shutil.rmtree(target, ignore_errors=True)  # nothing worth keeping was written: leave no trace
        raise
    console.print(f"run written to {target}", highlight=False)
    if run.summary["diverged"]:
        print(f"error: {run.summary['stop_reason']}", file=sys.stderr)
        return 1
    return 0


def run_montecarlo(args) -> int:
    from rich.console import Console

    from .datasets import load
    from .distributed import join, leave
    from .montecarlo import montecarlo
    from .report import montecarlo_table
    from .rundir import check_writable, run_directory

    config = config_from_args(args)
    data = load(config.data, config)
    first = join(config.device)[0] == 0  # under torchrun every process trains its share; the first alone reports
    if first:
        check_writable(config)
        tell(data.notes)
        target = run_directory(config, f"{data.name}-montecarlo")
    try:
        mc = montecarlo(config.model, data, config.runs, config if first else config.replace(progress=False))
    finally:
        if not first:
            leave()
    if not first:
        return 0
    console = Console()
    for note in mc.notes:
        console.print(note, highlight=False)
    montecarlo_table(mc.summary, console)
    path = mc.save(target)
    console.print(f"runs written to {path}", highlight=False)
    leave()
    return 0


def predict_file(args) -> int:
    import csv
    import io
    from pathlib import Path

    import torch

    from .files import atomic_write
    from .loop import predict
    from .readers import read_columns
    from .rundir import load_run

    run = load_run(args.run)
    names = run.data_names
    keep = [name.strip() for name in args.keep.split(",") if name.strip()]
    x, _, kept = read_columns(args.file, names, keep=keep)
    output = predict(run, x)
    targets, classes = names["targets"], names.get("classes")
    if run.config.loss == "cross_entropy":
        classes = classes or [str(k) for k in range(output.shape[1])]
        probabilities = torch.softmax(output, 1)
        columns = {f"predicted_{targets[0]}": [classes[k] for k in output.argmax(1).tolist()],
                   **{f"probability_{label}": probabilities[:, k].tolist() for k, label in enumerate(classes)}}
    elif run.config.loss == "bce" and classes and output.shape[1] == 1:  # one yes/no target with its two class names
        yes = torch.sigmoid(output[:, 0])
        columns = {f"predicted_{targets[0]}": [classes[int(p > 0.5)] for p in yes.tolist()],
                   f"probability_{classes[0]}": (1 - yes).tolist(), f"probability_{classes[1]}": yes.tolist()}
    elif run.config.loss == "bce":
        columns = {f"probability_{name}": torch.sigmoid(output[:, i]).tolist() for i, name in enumerate(targets)}
    else:
        columns = {f"predicted_{name}": output[:, i].tolist() for i, name in enumerate(targets)}
    columns = {**kept, **columns}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values()))
    try:
        atomic_write(Path(args.out), buffer.getvalue().encode())
    except OSError as error:
        raise RiskminError(f"{args.out} cannot be written ({error.strerror}); choose another --out") from None
    print(f"{len(x)} predictions written to {args.out}")
    return 0


def evaluate_file(args) -> int:
    from .data import Data
    from .loop import evaluate
    from .readers import read_columns
    from .rundir import load_run

    run = load_run(args.run)
    x, y, _ = read_columns(args.file, run.data_names, targets=True)
    for name, value in evaluate(run, Data(x, y, missing=run.data_names.get("missing", "error"))).items():
        print(f"{name:<12} {value:.6g}")
    return 0


def tell(notes: list) -> None:
    """What reading the data guessed or did (the task, dropped rows), one line each."""
    for note in notes:
        print(note)


def list_datasets() -> int:
    from .datasets import DATASETS

    for name, description in DATASETS.items():
        print(f"{name:<8} {description}")
    return 0


def launch(args, argv: list) -> int:
    """`--nproc N`: check what was asked once, here, then start N processes of the same command through torchrun."""
    from .datasets import load
    from .distributed import launched, start
    from .rundir import check_writable, run_directory

    try:
        count = int(args.nproc)
    except ValueError:
        count = 0
    if count < 1:
        raise RiskminError(f"--nproc {args.nproc} is not allowed; it must be a whole number of processes, at least 1")
    if launched():
        raise RiskminError("--nproc starts torchrun itself; under torchrun leave it out")
    if getattr(args, "resume", None):
        from pathlib import Path

        resumable(Path(args.resume))
    else:
        config = config_from_args(args)
        data = load(config.data, config)
        check_writable(config)
        if args.command == "train":
            run_directory(config, data.name)  # an existing --name without --overwrite is refused now, not in N processes
    rest = list(argv)
    at = next(i for i, arg in enumerate(rest) if arg == "--nproc" or arg.startswith("--nproc="))
    del rest[at:at + (1 if "=" in rest[at] else 2)]
    return start(count, rest)


def quiet(error: RiskminError) -> bool:
    """Whether this process leaves `error` unsaid: under torchrun, process 0 says what every process found wrong alike."""
    if int(os.environ.get("RANK", "0")) == 0:
        return False
    from .distributed import ProcessLost

    return not isinstance(error, ProcessLost)


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        if getattr(args, "nproc", None) is not None and args.nproc != "1":
            return launch(args, argv)
        if args.command == "train":
            return train(args)
        if args.command == "montecarlo":
            return run_montecarlo(args)
        if args.command == "predict":
            return predict_file(args)
        if args.command == "evaluate":
            return evaluate_file(args)
        if args.command == "datasets":
            return list_datasets()
        parser.print_help()
        return 0
    except RiskminError as error:
        if not quiet(error):
            print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no run directory was written", file=sys.stderr)
        return 130
    finally:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from .distributed import leave

            leave()
