"""The `riskmin` command. Its flags are generated from the fields of `Config`.

    riskmin train [DATA] [--flag value ...] [--config run.toml]
    riskmin montecarlo [DATA] --runs N [--flag value ...]
    riskmin datasets

Any mistake in what was asked prints `error: ...` on one line and exits with status 2.
This module parses; what each command then does is in commands.py.
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
    predict.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")
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


def quiet(error: RiskminError) -> bool:
    """Whether this process leaves `error` unsaid: under torchrun, process 0 says what every process found wrong alike."""
    if int(os.environ.get("RANK", "0")) == 0:
        return False
    from .distributed import ProcessLost

    return not isinstance(error, ProcessLost)


def main(argv=None) -> int:
    from .commands import evaluate_file, launch, list_datasets, predict_file, run_montecarlo, train

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
