"""The `riskmin` command. Its flags are generated from the fields of `Config`.

    riskmin train [DATA] [--flag value ...] [--config run.toml]
    riskmin montecarlo [DATA] --runs N [--flag value ...]
    riskmin compare [DATA] --lr 0.01,0.001 [--flag a,b ...] [--config grid.toml] [--select]
    riskmin graph MODEL_OR_RUN [DATA] [--plot graph.svg]
    riskmin datasets

Any mistake in what was asked prints `error: ...` on one line and exits with status 2.
This module parses; what each command then does is in _commands.py.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import io
import os
import sys
import typing
import warnings

from .. import __version__
from ..config import (
    FIELDS,
    SECTIONS,
    Diverged,
    RiskminError,
    RiskminNote,
    RiskminWarning,
    fact,
    field_type,
    settings_where,
)
from ..metrics import METRICS, in_words, metrics_where
from ._early import refused_early


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose complaints become one-line RiskminErrors instead of usage dumps."""

    commands: dict  # riskmin's own parser: the parser of each command, by name (build_parser)

    def error(self, message):
        if message.startswith("unrecognized arguments"):
            flag = message.split(":", 1)[1].split()[0]
            name = flag.lstrip("-").replace("-", "_")
            if flag.startswith("--") and name in FIELDS and fact(name, "command"):  # another command's setting
                owners = {"montecarlo": "riskmin montecarlo, compare and curve"}.get(fact(name, "command"))
                raise RiskminError(
                    f"{flag} is a setting of {owners or 'riskmin ' + fact(name, 'command')}, not of {self.prog}"
                )
            # compared without their dashes, which every option shares and which made any short flag look close to
            # one (--bogus to --out)
            options = {option.lstrip("-"): option for action in self._actions for option in action.option_strings}
            close = difflib.get_close_matches(flag.lstrip("-"), list(options), n=1)
            hint = f"did you mean {options[close[0]]}?" if close else f"run `{self.prog} --help` for the list"
            raise RiskminError(f"unknown option {flag}; {hint}")
        raise RiskminError(f"{message}; run `{self.prog} --help` for the options")


EXAMPLES = {
    None: ("riskmin train houses.csv --target price", "riskmin montecarlo lab1 --runs 100 --epochs 50"),
    "train": (
        "riskmin train lab1 --model mlp --hidden 64,64 --optimizer adamw --lr 1e-3",
        "riskmin train houses.csv --target price --patience 20 --name houses",
    ),
    "montecarlo": (
        "riskmin montecarlo lab1 --runs 100 --epochs 50",
        "riskmin montecarlo houses.csv --target price --model linear --runs 20",
    ),
    "compare": (
        "riskmin compare lab1 --model linear,two_layer --hidden 32/128 --lr 0.01,0.001",
        "riskmin compare lab1 --config grid.toml",
    ),
    "curve": (
        "riskmin curve lab1 --model linear,two_layer --runs 50 --epochs 50",
        "riskmin curve houses.csv --target price --sizes 0.1,0.2,0.5,1.0",
    ),
}


CONFIG_HELP = "TOML file of settings; flags override it"


def examples(command) -> str:
    return "examples:\n" + "\n".join("  " + line for line in EXAMPLES[command])


def default_text(f: dataclasses.Field) -> str:
    """The end of a flag's help: its default as a user would type it; nothing where the help text says it in words."""
    value = f.default
    if "(default:" in f.metadata["help"] or value is None or value == "":
        return ""
    if isinstance(value, bool):
        value = "on" if value else "off"
    elif isinstance(value, tuple):
        value = ",".join(map(str, value))
    return f" (default: {value})"


def metavar(name: str) -> str:
    """What a flag takes: its choices where the field has a fixed few, else a placeholder."""
    kind = field_type(name)
    if typing.get_origin(kind) is typing.Literal:
        return "{" + ",".join(typing.get_args(kind)) + "}"
    placeholders = {bool: "{on,off}", tuple: "N[,N...]", int: "N", float: "X"}
    return fact(name, "placeholder") or placeholders.get(kind, name.upper())


def add_config_flags(parser: argparse.ArgumentParser, command: str, unlisted: tuple = ()) -> None:
    """The flags of the settings `command` shows, a section of `--help` each; those `unlisted` are taken but left out of
    `--help` (the command refuses them in a sentence of its own)."""
    for title in SECTIONS:  # each section lists its settings in Config's order
        names = [
            name for name in settings_where(group=title) if name != "data" and fact(name, "command") in (None, command)
        ]
        if not names:
            continue
        group = parser.add_argument_group(title)
        for name in names:
            kind = field_type(name)
            # a plain dict: as dict[str, str], mypy would hold its values against add_argument's bool keywords too
            extra: dict = (
                {"nargs": "?", "const": "on"} if kind is bool else {"action": "append"} if name == "target" else {}
            )
            group.add_argument(
                "--" + name.replace("_", "-"),
                dest=name,
                metavar=metavar(name),
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS
                if name in unlisted
                else FIELDS[name].metadata["help"] + default_text(FIELDS[name]),
                **extra,
            )


def build_parser() -> Parser:
    parser = Parser(
        prog="riskmin",
        description="Train PyTorch models by empirical risk minimization.",
        allow_abbrev=False,
        epilog=examples(None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"riskmin {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    parser.commands = {}
    for command, text in (
        ("train", "train one model and write a run directory"),
        ("montecarlo", "train on many random splits and report mean, spread and confidence intervals"),
    ):
        sub = add_data_command(commands, command, text)
        if command == "train":
            sub.add_argument(
                "--resume",
                metavar="RUN",
                help="continue the interrupted run in this directory exactly where it stopped",
            )
            sub.add_argument(
                "--callback",
                action="append",
                metavar="FILE.py:NAME",
                help="a callback of your own: the object NAME (or a class, made with no arguments) of a "
                "Python file, or MODULE:NAME; repeat for several",
            )
        else:
            add_resume_flag(sub)
        add_nproc_flag(sub, "--batch-size stays the global batch" if command == "train" else "they share out the runs")
        add_config_flags(sub, command)
        parser.commands[command] = sub
    predict = commands.add_parser(
        "predict", help="predictions of a trained run for the rows of a file", allow_abbrev=False
    )
    predict.add_argument("run", help="run directory that `riskmin train` wrote")
    predict.add_argument("file", help=".csv, .parquet or .npz file with the run's feature columns, in any order")
    predict.add_argument(
        "--out", required=True, help="CSV file to write: kept columns, then one prediction column per target"
    )
    predict.add_argument(
        "--keep", default="", help="columns to copy from the input beside the predictions, comma separated"
    )
    predict.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")
    evaluate = commands.add_parser(
        "evaluate", help="metrics of a trained run on labelled rows of a file", allow_abbrev=False
    )
    evaluate.add_argument("run", help="run directory that `riskmin train` wrote")
    evaluate.add_argument("file", help=".csv, .parquet or .npz file with the run's feature and target columns")
    export = commands.add_parser(
        "export", help="write a trained run as one ONNX or TorchScript file, preprocessing included", allow_abbrev=False
    )
    export.add_argument("run", help="run directory that `riskmin train` wrote")
    export.add_argument(
        "--format",
        default="onnx",
        help="onnx (one input per feature column; pip install 'riskmin[onnx]') or torchscript (number columns only)",
    )
    export.add_argument("--out", help="file to write (default: the run directory's name with .onnx or .pt, beside it)")
    export.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")
    parser.commands.update(predict=predict, evaluate=evaluate, export=export)
    add_compare_parser(commands, parser)
    add_curve_parser(commands, parser)
    add_lr_find_parser(commands, parser)
    add_graph_parser(commands, parser)
    # to name a bad flag with its own command's options
    parser.commands["datasets"] = commands.add_parser("datasets", help="list the built-in data sets")
    return parser


COMPARE_DESCRIPTION = """Train candidates on the same splits, rank them, and test each against the best.

Any setting takes alternatives separated by commas (--lr 0.01,0.001); every
combination that makes sense is a candidate (--hidden does not multiply linear).
--hidden separates its alternatives with '/', as a comma separates the widths
of one mlp (--hidden 64,64/128,128). The data, split and output settings take
one value. --config FILE may instead name the candidates as TOML tables."""


def add_compare_parser(commands, parser: Parser) -> None:
    sub = add_data_command(
        commands,
        "compare",
        "compare candidates on the same splits; choose one honestly",
        COMPARE_DESCRIPTION,
        config_help="TOML file: shared settings at the top, one [table] per named candidate",
    )
    sub.add_argument(
        "--select",
        nargs="?",
        const="on",
        metavar="{on,off}",
        help="choose a candidate in each split by its validation metric and report that nested test estimate",
    )
    sub.add_argument(
        "--metric",
        metavar="METRIC",
        help=f"metric that ranks the candidates: {in_words(list(METRICS))} (default: the one --monitor names)",
    )
    sub.add_argument(
        "--rope",
        metavar="WIDTH",
        help="differences from the best within +-WIDTH, in the ranking "
        "metric's units, count as practically equal (default: 0.01 for "
        f"{in_words(metrics_where(units='fraction'), 'and')}, else 1%% of the best's mean)",
    )
    add_resume_flag(sub)
    add_nproc_flag(sub, "they share out the candidates' runs")
    add_config_flags(sub, "montecarlo")
    parser.commands["compare"] = sub


def add_data_command(commands, command: str, text: str, description: str = "", config_help: str = CONFIG_HELP):
    """The parser of a command that takes DATA and settings: `text` is its line in `riskmin --help`, and its
    description unless one is given; its examples close its help."""
    sub = commands.add_parser(
        command,
        help=text,
        description=description or text[0].upper() + text[1:] + ".",
        allow_abbrev=False,
        usage=f"riskmin {command} [DATA] [options]",
        epilog=examples(command) if command in EXAMPLES else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_argument(sub, config_help=config_help)
    return sub


def add_data_argument(sub, default: str = "", config_help: str = CONFIG_HELP) -> None:
    """The optional positional DATA that every command taking data has, and its --config FILE; `default` words
    DATA's default where the field's own does not say it."""
    text = FIELDS["data"].metadata["help"] + (default or default_text(FIELDS["data"]))
    sub.add_argument("data", nargs="?", metavar="DATA", default=argparse.SUPPRESS, help=text)
    sub.add_argument("--config", metavar="FILE", help=config_help)


def add_resume_flag(sub) -> None:
    sub.add_argument(
        "--resume",
        metavar="EXPERIMENT",
        help="continue the interrupted experiment in this folder with "
        "the runs it kept and its saved settings (flags given must not change them)",
    )


def add_nproc_flag(sub, what_is_shared: str) -> None:
    sub.add_argument(
        "--nproc", metavar="N", help=f"run N processes on this machine through torchrun (default: 1); {what_is_shared}"
    )


CURVE_DESCRIPTION = """Learning curves: test risk against the training rows,
a Monte-Carlo experiment at each size."""
LR_FIND_DESCRIPTION = """Sweep the learning rate exponentially over training steps and suggest one
(Smith 2017), on a copy of the model."""


def add_curve_parser(commands, parser: Parser) -> None:
    text = "learning curves: test risk against the training rows, a Monte-Carlo experiment at each size"
    sub = add_data_command(commands, "curve", text, CURVE_DESCRIPTION)
    sub.add_argument(
        "--sizes",
        metavar="FRACTIONS",
        default=None,  # left out: a --config file's sizes, else the default ones (_commands.curve_plan)
        help="training sizes, as fractions of the training rows a split leaves (default: "
        "0.1,0.18,0.32,0.56,1.0, evenly spaced in log n); "
        "--model takes several models, comma separated, one curve each",
    )
    add_config_flags(sub, "montecarlo", unlisted=("folds", "splits"))  # a curve draws random splits of each size
    parser.commands["curve"] = sub


def add_lr_find_parser(commands, parser: Parser) -> None:
    text = "sweep the learning rate exponentially over training steps and suggest one (Smith 2017)"
    sub = add_data_command(commands, "lr-find", text, LR_FIND_DESCRIPTION)
    sub.add_argument(
        "--start", metavar="X", type=float, default=1e-7, help="first learning rate of the sweep (default: 1e-07)"
    )
    sub.add_argument(
        "--end", metavar="X", type=float, default=10.0, help="last learning rate of the sweep (default: 10)"
    )
    sub.add_argument("--steps", metavar="N", type=int, default=100, help="training steps of the sweep (default: 100)")
    sub.add_argument(
        "--plot",
        metavar="FILE",
        nargs="?",
        default="lr_find.png",
        const="lr_find.png",
        help="picture of the sweep (default, and --plot alone: lr_find.png)",
    )
    add_config_flags(sub, "lr-find", unlisted=settings_where(sweep=False))  # taken, and said unused (unused_by_sweep)
    add_nproc_flag(sub, "--batch-size stays the global batch")
    parser.commands["lr-find"] = sub


def add_graph_parser(commands, parser: Parser) -> None:
    text = "draw the computation graph of one training step, from the loss back to the parameters"
    sub = commands.add_parser(
        "graph",
        help=text,
        allow_abbrev=False,
        usage="riskmin graph MODEL_OR_RUN [DATA] [options]",
        description="Draw the computation graph of one training step, from the loss back to the\nparameters, as "
        "Graphviz DOT and, with Graphviz installed, a picture:\nparameters blue, operations grey, the output yellow, "
        "the loss green.",
        epilog="examples:\n  riskmin graph two_layer lab1 --hidden 4\n  riskmin graph "
        "runs/lab1-two_layer --plot step.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument(
        "source",
        metavar="MODEL_OR_RUN",
        help="a model name (linear, two_layer, mlp), or a run directory "
        "that `riskmin train` wrote: its model and settings",
    )
    add_data_argument(sub, " (default: lab1, or the run's)")
    sub.add_argument(
        "--plot",
        metavar="FILE",
        default="graph.svg",
        help="picture to draw, .svg, .png or .pdf, with "
        "the DOT text beside it as .dot; or a .dot file alone (default: graph.svg)",
    )
    add_config_flags(sub, "graph")
    parser.commands["graph"] = sub


def said_elsewhere(error: RiskminError) -> bool:
    """Whether another process says `error` rather than this one: under `--nproc` the launcher, once, which it is kept
    for here (kept_for_launcher); under torchrun, process 0, what every process found wrong alike."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # alone: torch is not imported for the check
        return False
    from ..distributed import ProcessLost, kept_for_launcher

    if kept_for_launcher(str(error)):
        return True
    return int(os.environ.get("RANK", "0")) != 0 and not isinstance(error, ProcessLost)


def stopped_for_another() -> bool:
    """Whether a stop is said by another process: under torchrun process 0 says it, once; under `--nproc`, where
    another process failed first, the launcher says that one's mistake."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # alone: torch is not imported for the check
        return False
    from ..distributed import failed_elsewhere

    return os.environ.get("RANK", "0") != "0" or failed_elsewhere()


def closed_output() -> int:
    """The exit status of a command whose output was closed early (`| head`) where it wrote past Unbroken (a stream of
    its own): what it wrote stays, the rest of what it would print is dropped without a second error as Python flushes
    at exit; 1."""
    nowhere = os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, sys.stdout.fileno())
    os.close(nowhere)
    return 1


def main(argv=None) -> int:
    """Run the command in `argv` and return its exit status: 0 done, 2 a mistake in what was asked, 130 Ctrl-C.

    Parsing, `--help` and `--version` import neither torch nor rich: they answer at once.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    # riskmin's own messages as lines, beside its errors; the caller's setting comes back
    try:
        with warnings.catch_warnings(), unbroken_output(), terminated_as_interrupted():
            warnings.showwarning = as_lines(warnings.showwarning)
            warnings.simplefilter("always", RiskminWarning)  # each one said, as each happens
            warnings.filterwarnings("ignore", category=Diverged)  # said as the command's error, with where the run went
            return command(parser, argv)
    finally:  # once the command's outcome is said: a stop while the processes part ends this one quietly
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from ..distributed import leave

            leave()


@contextlib.contextmanager
def terminated_as_interrupted():
    """While a command runs, SIGTERM (kill, a scheduler's stop) stops it as Ctrl-C does: what it kept is said, with
    how to go on, where the signal's default would end it without a word. A run's steps take both signals over
    themselves (to checkpoint at a step); a SIGTERM ignored by whoever started riskmin stays ignored."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def interrupted(number, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Unbroken(io.TextIOBase):
    """An output stream that a reader who stops reading (`| head`) cannot stop: once the pipe is closed, what follows
    goes nowhere, and the command goes on to write its run, as it would had it been asked nothing of its output. It
    writes through `stream`, the one it stands for, buffered as that one is."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream

    @property
    def encoding(self):
        return self.stream.encoding

    @property
    def errors(self):
        return self.stream.errors

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self.reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self.reader_gone()

    def reader_gone(self) -> None:
        """The stream's file now leads nowhere, so that what its buffer holds flushes there, at exit too."""
        try:
            nowhere = os.open(os.devnull, os.O_WRONLY)
            os.dup2(nowhere, self.stream.fileno())
            os.close(nowhere)
        except (OSError, ValueError):  # a stream with no file of its own: each write is dropped as it fails
            pass


@contextlib.contextmanager
def unbroken_output():
    """sys.stdout and sys.stderr as Unbroken streams while a command runs (rich prints to whichever is there); one
    closed before Python started (`>&-`), which Python holds as None, stays so."""
    before = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (None if s is None else Unbroken(s) for s in before)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = before


def as_lines(shown):
    """warnings.showwarning that prints a RiskminWarning as 'warning: ...' (a RiskminNote as 'note: ...') on stderr,
    within 80 columns, each once (the candidates of a comparison would each say the same note), and leaves any other
    warning to `shown`."""
    said = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RiskminWarning):
            from .._runs._report import message_lines

            kind = "note" if issubclass(category, RiskminNote) else "warning"
            if f"{kind}: {message}" not in said:
                said.add(f"{kind}: {message}")
                print(message_lines(f"{kind}: {message}"), file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    return show


def command(parser, argv: list) -> int:
    """The command in `argv`, run; its exit status."""
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        refused_early(args)  # a bad setting, a missing file or a folder that is not a run: said before torch loads
        # imported once parsing is done, inside the try: a command imports torch (seconds),
        # and Ctrl-C then ends as quietly
        from . import _commands as commands

        if getattr(args, "nproc", None) is not None and args.nproc != "1":
            return commands.launch(args, argv)
        run = {
            "train": commands.train,
            "montecarlo": commands.run_montecarlo,
            "compare": commands.run_compare,
            "curve": commands.run_curve,
            "predict": commands.predict_file,
            "evaluate": commands.evaluate_file,
            "export": commands.export_run,
            "datasets": lambda args: commands.list_datasets(),
            "lr-find": commands.find_rate,
            "graph": commands.draw_graph,
        }.get(args.command)
        if run is not None:
            return run(args)
        parser.print_help()
        return 0
    except RiskminError as error:
        if not said_elsewhere(error):
            print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if not stopped_for_another():
            print("interrupted; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return closed_output()
