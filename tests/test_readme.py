"""README.md runs as written: every code block is taken out of it and run on the CPU.

Which blocks are commands, by their fence and content:

- ```python is Python, run.
- ```sh, ```bash or ```shell is shell, and so is a fence without a language whose every line (blank
  lines and # comments aside) starts with a command (riskmin, torchrun, make, pip, python); each line
  runs on its own, `riskmin` as `python -m riskmin`, and must exit with status 0.
- Everything else is not a command: a fence without a language whose first line starts with `$ ` is
  console output (a command and what it printed), one without any command line is a file's content or
  output (the splits CSV), and ```toml and other languages are files. A file block whose first line is
  `# <name>` is the file examples/data/<name>, and must equal it. A fence without a language that mixes
  command lines and other text is refused as ambiguous.

How they run:

- Every block starts in a fresh temporary folder holding a copy of examples/data/, which the README
  names as the folder its commands run in (the files it reads ship there, made by make_data.py).
- A block whose first line is `# continues the block above` or `# continues "<heading>"` (the first
  block of its kind, Python or shell, under that heading, else the first runnable one) runs after
  that block, in its folder; a Python block also in its namespace. Blocks so joined run in README
  order, as one test.
- Python runs in a process of its own with a fresh namespace; so does each shell line. These
  processes are forked from one that imported riskmin, torch, pandas and matplotlib once, so that
  a command costs its work and not the seconds of importing torch again; `riskmin ...` is then the
  `riskmin` script's own entry point (`riskmin.__main__.run`) with that command line.
- Shortened, to fit about two minutes on two cores: `--epochs`, `epochs=`, `epochs =` are capped at
  EPOCHS and `--runs`, `runs=`, `runs =` at RUNS, in the blocks and in the copied TOML files, and a
  command that trains (TRAINING) without `--epochs`, `--config` or `--resume` gets `--epochs EPOCHS`.
  Nothing else changes.
- INTERRUPTED gives a line the interruption its comment asks for (flags that name a callback file,
  written in its folder), with the status it must exit with; STAND_INS gives a block a module it
  imports that riskmin does not depend on.
- NOT_RUN lists the lines that cannot run here, each with its reason; every entry must still match
  a README line. OPTIONAL names what an extra kept out of [test] must provide (onnx): without it those
  lines and blocks are left out, the rest runs, and the test reports a skip that names them.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DATA = ROOT / "examples" / "data"

EPOCHS = 5
RUNS = 5

COMMANDS = ("riskmin", "torchrun", "make", "pip", "python")
TRAINING = ("train", "montecarlo", "compare", "curve")

NOT_RUN = {  # the start of a command line -> why it is not run here
    "make demo": "installs torch and riskmin's dependencies: the network and minutes (test_examples checks what make runs)",
    "make test": "installs the test dependencies and runs the whole suite, this test among them",
    "pip install": "installs packages: the network and minutes",
    "torchrun": "several processes (two interpreters importing torch, about 15 s each on two shared cores), or several "
                "machines; tests/test_distributed.py runs these paths",
    "riskmin train lab1 --model mlp --hidden 128,128 --epochs 50 --nproc 2": "starts torchrun, as the line below it",
    "riskmin compare lab1 --lr 0.03,0.01,0.003 --runs 200 --nproc 2": "starts torchrun, as the lines above it",
    "riskmin train --resume runs/x --nproc 2": "resumes a run that two processes began and an interruption stopped",
    "riskmin montecarlo --resume runs/long-mc": "resumes an experiment an interruption stopped; tests/test_kept.py kills "
                                                 "experiments at random moments and resumes them",
}

INTERRUPTED = {  # the start of a command line -> (flags added to it, exit status)
    # "Ctrl-C, kill, power loss: at any moment": the run is interrupted after step 30, exits 130, and the next line resumes it
    "riskmin train lab1 --epochs 500 --name long": (["--callback", "ctrl_c_after_30.py:callback"], 130),
}
CTRL_C = 'from riskmin.callbacks import SignalAt\n\ncallback = SignalAt(30, "SIGINT")\n'  # the file the flags above name

MLFLOW = '''\
"""A stand-in for mlflow's two functions that the README's logger block calls: it records the metrics."""
import contextlib
import json
import math


def log_metrics(metrics, step=None):
    for name, value in metrics.items():  # mlflow takes a number for each metric
        if not isinstance(name, str) or not math.isfinite(float(value)):
            raise ValueError(f"mlflow cannot log {name!r}: {value!r}")
    with open("mlflow_calls.jsonl", "a") as file:
        file.write(json.dumps({"step": step, "metrics": metrics}) + "\\n")


@contextlib.contextmanager
def start_run():
    yield
'''

STAND_INS = {"import mlflow": ("mlflow.py", MLFLOW),  # a block that contains the key gets the file in its folder
             "--name long": ("ctrl_c_after_30.py", CTRL_C)}

OPTIONAL = {  # a command line, or a Python block that holds the text -> the module it needs, of an extra kept out of [test]
    "riskmin export runs/houses-two_layer": "onnx",
    "import onnxruntime": "onnxruntime",
}


def missing_module(text: str):
    """The module that OPTIONAL names for `text` (a command line that is an entry, or a Python block that holds one)
    when it is not installed, else None."""
    for needle, module in OPTIONAL.items():
        if (text == needle or "\n" in text and needle in text) and importlib.util.find_spec(module) is None:
            return module
    return None


@dataclass
class Block:
    number: int  # 1, 2, ... in README order
    line: int  # the line of its opening fence
    language: str
    text: str
    heading: str
    kind: str = ""  # python, shell, console, file or ambiguous
    continues: list = field(default_factory=list)  # the numbers of the blocks it continues

    @property
    def code_line(self) -> int:
        return self.line + 1


def blocks_of(text: str) -> list:
    blocks, heading, lines, i = [], "", text.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith("#") and not lines[i].startswith("#!"):
            heading = lines[i].lstrip("#").strip()
        fence = re.match(r"^```(\S*)\s*$", lines[i])
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(len(blocks) + 1, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n", heading))
            i = end
        i += 1
    for block in blocks:
        block.kind = kind_of(block)
    for block in blocks:
        block.continues = continued(block, blocks)
    return blocks


def command_lines(text: str) -> list:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def kind_of(block: Block) -> str:
    if block.language == "python":
        return "python"
    if block.language in ("sh", "bash", "shell"):
        return "shell"
    if block.language:
        return "file"
    lines = command_lines(block.text)
    commands = [line.split()[0] in COMMANDS for line in lines]
    if lines and all(commands):
        return "shell"
    if block.text.startswith("$ "):
        return "console"
    return "ambiguous" if any(commands) else "file"


def continued(block: Block, blocks: list) -> list:
    first = block.text.splitlines()[0] if block.text.strip() else ""
    mark = re.match(r'^#\s*continues\s+(?:the block above|"([^"]+)")', first)
    if not mark:
        return []
    runnable = [b for b in blocks if b.kind in ("python", "shell") and b.number != block.number]
    if mark.group(1) is None:
        earlier = [b for b in runnable if b.number < block.number]
        return [earlier[-1].number] if earlier else [-1]
    named = [b for b in runnable if b.heading == mark.group(1)]
    alike = [b for b in named if b.kind == block.kind]
    return [(alike or named)[0].number] if named else [-1]


def groups_of(blocks: list) -> list:
    """The runnable blocks joined by their continuations, each group in README order."""
    runnable = {b.number: b for b in blocks if b.kind in ("python", "shell")}
    root = {number: number for number in runnable}

    def find(number):
        while root[number] != number:
            number = root[number]
        return number

    for block in runnable.values():
        for other in block.continues:
            if other in runnable:
                root[find(block.number)] = find(other)
    groups = {}
    for number in sorted(runnable):
        groups.setdefault(find(number), []).append(runnable[number])
    return list(groups.values())


def shortened(text: str) -> str:
    """Epochs capped at EPOCHS and runs at RUNS, in flags (--epochs 50), keywords (epochs=50) and TOML (epochs = 50)."""
    def cap(match, most):
        return match.group(1) + str(min(int(match.group(2)), most))

    text = re.sub(r"(--epochs[ =]|\bepochs\s*=\s*)(\d+)\b", lambda m: cap(m, EPOCHS), text)
    return re.sub(r"(--runs[ =]|\bruns\s*=\s*)(\d+)\b", lambda m: cap(m, RUNS), text)


def shortened_command(argv: list) -> list:
    """A command line with its epochs and runs capped, and EPOCHS epochs where a training command takes its default."""
    argv = shlex.split(shortened(shlex.join(argv)))
    named = {word.split("=")[0] for word in argv}
    if argv[0] in TRAINING and not named & {"--epochs", "--config", "--resume", "--help"}:
        argv += ["--epochs", str(EPOCHS)]
    return argv


def not_run(line: str):
    return next((reason for start, reason in NOT_RUN.items() if line.startswith(start)), None)


BLOCKS = blocks_of(README.read_text(encoding="utf-8"))
GROUPS = groups_of(BLOCKS)


# ---- the process that forks one child per command -------------------------------------------------------------------

def serve() -> None:
    """Read one JSON request a line from stdin, run it in a forked child, answer its exit status on stdout."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed while importing goes to stderr, not into the answers
    import matplotlib

    matplotlib.use("Agg")
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import torch  # noqa: F401

    import riskmin
    import riskmin.__main__
    import riskmin._cli._main  # noqa: F401

    for name in ("fit", "montecarlo", "compare", "curve", "graph", "Run", "load"):
        getattr(riskmin, name)
    # what a run imports on its way (an optimizer's first step imports torch._dynamo) and matplotlib's fonts, once
    import io

    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure
    import rich.progress  # noqa: F401
    import rich.table  # noqa: F401
    import safetensors.torch  # noqa: F401
    import torch._dynamo  # noqa: F401

    figure = matplotlib.figure.Figure()
    figure.add_subplot().plot([0, 1], [0, 1])
    figure.savefig(io.BytesIO(), format="png")
    answers.write(json.dumps({"ready": True}) + "\n")
    for request in sys.stdin:
        request = json.loads(request)
        pid = os.fork()
        if pid == 0:
            child(request)
        deadline = time.monotonic() + request["timeout"]
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                status = None
                break
            time.sleep(0.02)
        code = None if status is None else os.waitstatus_to_exitcode(status)
        answers.write(json.dumps({"status": code}) + "\n")


def child(request: dict) -> None:
    import traceback

    code = 1
    try:
        os.chdir(request["cwd"])
        output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(output, 1)
        os.dup2(output, 2)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)
        sys.path.insert(0, request["cwd"])
        if "argv" in request:
            import riskmin.__main__

            sys.argv = ["riskmin", *request["argv"]]
            code = riskmin.__main__.run()
        else:
            namespace = {"__name__": "__main__"}
            for line, code_text in request["python"]:
                # padded so that a traceback names the README's own line
                exec(compile("\n" * (line - 1) + code_text, str(README), "exec"), namespace)
            code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


class Runner:
    def __init__(self):
        environment = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT / "src")}
        self.process = subprocess.Popen([sys.executable, __file__, "serve"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=environment, cwd=ROOT)
        assert json.loads(self.process.stdout.readline()) == {"ready": True}

    def run(self, request: dict, timeout: float = 120) -> int:
        self.process.stdin.write(json.dumps({**request, "timeout": timeout}) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["status"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def runner():
    runner = Runner()
    yield runner
    runner.close()


# ---- the tests -------------------------------------------------------------------------------------------------------

def test_every_block_is_a_command_output_or_file_and_its_continuation_exists():
    assert len(BLOCKS) > 20
    assert [b.line for b in BLOCKS if b.kind == "ambiguous"] == []  # command lines mixed with other text
    assert [b.line for b in BLOCKS if -1 in b.continues] == []  # a continuation that names no runnable block
    for block in BLOCKS:
        if block.kind == "python":
            compile(block.text, f"README.md line {block.code_line}", "exec")


def test_file_blocks_that_name_a_file_are_that_file():
    named = [b for b in BLOCKS if b.kind == "file" and re.match(r"^# [\w.-]+\.\w+\n", b.text)]
    assert named
    for block in named:
        name = block.text.split("\n", 1)[0][2:]
        assert (DATA / name).read_text(encoding="utf-8") == block.text, f"README line {block.line}: {name}"


def test_the_lists_of_lines_not_run_and_interrupted_match_readme_lines():
    lines = [line for b in BLOCKS if b.kind == "shell" for line in command_lines(b.text)]
    for start in [*NOT_RUN, *INTERRUPTED]:
        assert any(line.startswith(start) for line in lines), f"no README line starts with {start!r}"
    for needle in [*STAND_INS, *OPTIONAL]:
        assert any(needle in b.text for b in BLOCKS if b.kind in ("python", "shell")), needle


def test_shortening_caps_only_epochs_and_runs():
    assert shortened("riskmin montecarlo lab1 --runs 100 --epochs 20 --patience 50 --epochs=3") == \
        "riskmin montecarlo lab1 --runs 5 --epochs 5 --patience 50 --epochs=3"
    assert shortened("fit(m, epochs=200, max_epochs=9, runs = 50, batch_size=32)") == "fit(m, epochs=5, max_epochs=9, runs = 5, batch_size=32)"
    assert shortened_command(["train", "lab1", "--hidden", "64,64"]) == ["train", "lab1", "--hidden", "64,64", "--epochs", "5"]
    assert shortened_command(["train", "--resume", "runs/long"]) == ["train", "--resume", "runs/long"]
    assert shortened_command(["export", "runs/x"]) == ["export", "runs/x"]


def test_the_shipped_data_files_are_what_make_data_writes(tmp_path):
    import numpy as np
    import pyarrow.parquet

    spec = importlib.util.spec_from_file_location("make_data", DATA / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(p.name for p in DATA.iterdir() if p.name != "make_data.py")
    for name in made:
        if name.endswith(".npz"):  # a zip file holds the time it was written; its arrays are what counts
            with np.load(tmp_path / name) as new, np.load(DATA / name) as shipped:
                assert sorted(new.files) == sorted(shipped.files)
                assert all(np.array_equal(new[k], shipped[k]) for k in new.files), name
        elif name.endswith(".parquet"):
            assert pyarrow.parquet.read_table(tmp_path / name).equals(pyarrow.parquet.read_table(DATA / name))
        else:
            assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
        assert (DATA / name).stat().st_size < 64_000, name


def group_id(group: list) -> str:
    return f"line{group[0].line}-" + re.sub(r"\W+", "_", group[0].heading.lower()).strip("_")[:30]


@pytest.mark.parametrize("group", GROUPS, ids=[group_id(g) for g in GROUPS])
def test_readme_block_runs(group, runner, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(DATA, folder, ignore=shutil.ignore_patterns("make_data.py", "__pycache__"))
    for toml in folder.glob("*.toml"):
        toml.write_text(shortened(toml.read_text(encoding="utf-8")), encoding="utf-8")
    output = tmp_path / "output.txt"
    steps, python, left_out = [], [], []  # python: the Python blocks that run next, in one namespace
    for block in group:
        if block.kind == "python" and missing_module(block.text):
            left_out.append(f"README line {block.code_line} needs {missing_module(block.text)}")
            continue
        for needle, (name, text) in STAND_INS.items():
            if needle in block.text:
                (folder / name).write_text(text, encoding="utf-8")
        if block.kind == "python":
            python.append((block.code_line, shortened(block.text)))
            continue
        if python:
            steps.append(("python", python))
            python = []
        for offset, raw in enumerate(block.text.splitlines()):
            words = shlex.split(raw, comments=True)
            if not words:
                continue
            line = " ".join(words)
            if not_run(line):
                continue
            if missing_module(line):
                left_out.append(f"README line {block.code_line + offset} needs {missing_module(line)}")
                continue
            assert words[0] == "riskmin", f"README line {block.code_line + offset}: {words[0]} is neither run nor in NOT_RUN"
            flags, status = next(((f, s) for start, (f, s) in INTERRUPTED.items() if line.startswith(start)), ([], 0))
            steps.append(("shell", (block.code_line + offset, shortened_command(words[1:]) + flags, status)))
    if python:
        steps.append(("python", python))
    if not steps:
        pytest.skip("every line is in NOT_RUN: " + "; ".join(sorted({not_run(" ".join(shlex.split(raw, comments=True)))
                                                                      for b in group for raw in b.text.splitlines()
                                                                      if shlex.split(raw, comments=True)})))
    for kind, step in steps:
        request = {"cwd": str(folder), "output": str(output)}
        if kind == "python":
            where, expected = f"the Python block at README line {step[0][0]}", 0
            request["python"] = step
        else:
            line, argv, expected = step
            where = f"README line {line}: riskmin {' '.join(argv)}"
            request.update(argv=argv)
        with open(output, "a", encoding="utf-8") as file:
            file.write(f"\n==== {where}\n")
        start = time.monotonic()
        status = runner.run(request)
        with open(output, "a", encoding="utf-8") as file:
            file.write(f"==== exit status {status} after {time.monotonic() - start:.1f} s\n")
        text = output.read_text(encoding="utf-8")
        assert status == expected, f"{where} exited with {status}, not {expected}:\n{text[-4000:]}"
        assert "Traceback (most recent call last)" not in text, f"{where}:\n{text[-4000:]}"
    if any("import mlflow" in b.text for b in group):
        calls = [json.loads(line) for line in (folder / "mlflow_calls.jsonl").read_text().splitlines()]
        assert calls and all("val_loss" in call["metrics"] for call in calls)
    if left_out:
        pytest.skip("ran the rest; an optional extra is not installed: " + "; ".join(left_out))


if __name__ == "__main__" and sys.argv[1:] == ["serve"]:
    serve()
