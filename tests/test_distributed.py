"""Several processes: a Monte-Carlo experiment dealt out over two gloo processes equals the one-process experiment."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch

import riskmin
from riskmin import montecarlo
from said import unwrapped
from snapshot import tree

ARGS = ["montecarlo", "lab1", "--runs", "6", "--epochs", "4", "--model", "two_layer", "--hidden", "8", "--progress", "off"]


def rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_two_processes_give_the_table_of_one(tmp_path):
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "riskmin",
                             *ARGS, "--out", str(tmp_path), "--name", "two"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("runs written to") == 1  # only the first process reports and writes
    shared = rows(tmp_path / "two" / "runs.csv")
    alone = montecarlo("two_layer", "lab1", runs=6, epochs=4, hidden=(8,), progress=False).table
    assert [int(row["seed"]) for row in shared] == [row["seed"] for row in alone] == list(range(6))
    for a, b in zip(shared, alone):
        for key in ("train_loss", "val_loss", "test_loss"):
            assert float(a[key]) == pytest.approx(b[key], rel=1e-5), key
        assert int(a["best_epoch"]) == b["best_epoch"]


def test_two_processes_compare_as_one(tmp_path):
    grid = ["compare", "lab1", "--lr", "0.01,0.003", "--runs", "4", "--epochs", "3", "--hidden", "8", "--progress", "off"]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "riskmin",
                             *grid, "--out", str(tmp_path), "--name", "two"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("comparison written to") == 1  # only the first process reports and writes
    shared = rows(tmp_path / "two" / "runs.csv")
    alone = riskmin.compare({"a": {"lr": 0.01}, "b": {"lr": 0.003}}, "lab1", runs=4, epochs=3, hidden=8, progress=False).table
    assert [(row["run"], row["seed"]) for row in shared] == [(str(row["run"]), str(row["seed"])) for row in alone]
    for a, b in zip(shared, alone):
        assert float(a["test_loss"]) == pytest.approx(b["test_loss"], rel=1e-5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_torchrun(*arguments, second=None, first=None) -> list:
    """`riskmin <arguments>` as the two processes torchrun would start, each told its rank by the environment; the
    second runs `python <second>` instead, when given (one that kills itself at a chosen step), and the first
    `python <first>`."""
    port, processes = free_port(), []
    for rank in range(2):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RISKMIN_DISTRIBUTED_TIMEOUT": "60"}
        command = second if rank == 1 and second else first if rank == 0 and first else ["-m", "riskmin", *arguments]
        processes.append(subprocess.Popen([sys.executable, *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
    return processes


# `riskmin <argv[2:]>` whose runs trained one by one (the sequential engine) kill the process after step argv[1] of its
# first run: a Monte-Carlo command takes no --callback, so this process gives its runs' fit the callback itself.
KILLED_IN_ITS_FIRST_RUN = """
import sys
import riskmin._cli._main, riskmin._experiments._montecarlo
from riskmin.callbacks import SignalAt

fit_alone = riskmin._experiments._montecarlo.fit_alone

def killed(model, data, config, **settings):
    return fit_alone(model, data, config, callbacks=[SignalAt(int(sys.argv[1]), "SIGKILL")], **settings)

riskmin._experiments._montecarlo.fit_alone = killed
sys.exit(riskmin._cli._main.main(sys.argv[2:]))
"""


def test_a_process_that_dies_ends_the_other_with_a_clear_error(tmp_path):
    # the sequential engine trains each run through fit, where the second process dies at step 5 of its first run
    command = ["montecarlo", "lab1", "--runs", "4", "--epochs", "5", "--engine", "sequential", "--progress", "off", "--out",
               str(tmp_path)]
    processes = as_torchrun(*command, second=["-c", KILLED_IN_ITS_FIRST_RUN, "5", *command])
    _, err = processes[0].communicate(timeout=120)
    processes[1].communicate(timeout=60)
    assert processes[0].returncode == 2 and processes[1].returncode == -signal.SIGKILL
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: another riskmin process stopped before sending its runs"), err[-2000:]
    assert not any(tmp_path.glob("*/summary.json"))


# fit(directory=D, overwrite=True) on two processes: process 0 renames the new run into D once it finished; the
# other returns only after that, so that what follows the call reads the new run on every process. Process 0 notes
# whether process 1 had already returned (it writes a file once fit returns) when the rename came.
REPLACED_ON_TWO = """
import json, os, sys
from pathlib import Path
import riskmin, riskmin._runs._rundir as rundir

target, rank = Path(sys.argv[1]), int(os.environ["RANK"])
returned = target.parent / "returned"
install = rundir.install

def watched(building, replaced):
    print("renamed after the other returned:", returned.exists())
    install(building, replaced)

rundir.install = watched
riskmin.fit("linear", "lab1", epochs=2, progress=False, directory=target, overwrite=True)
if rank == 1:
    returned.touch()
print("epochs in the run there:", json.loads((target / "summary.json").read_text())["epochs_run"])
"""


def test_a_replacement_on_two_processes_returns_on_each_once_the_new_run_is_in_place(tmp_path):
    riskmin.fit("linear", "lab1", epochs=1, progress=False, directory=tmp_path / "r")
    processes = as_torchrun(first=["-c", REPLACED_ON_TWO, str(tmp_path / "r")],
                            second=["-c", REPLACED_ON_TWO, str(tmp_path / "r")])
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert outputs[0][0].splitlines() == ["renamed after the other returned: False", "epochs in the run there: 2"]
    assert outputs[1][0].splitlines() == ["epochs in the run there: 2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "returned"]


# Process 0 fails to rename the finished run and goes on (a notebook would): the other still returns from fit at
# once, rather than waiting on process 0 until the link times out, and both meet at the next collective call.
FAILED_RENAME_ON_TWO = """
import os, sys
from pathlib import Path
import torch.distributed as dist
import riskmin, riskmin._runs._rundir as rundir

target, rank = Path(sys.argv[1]), int(os.environ["RANK"])
if rank == 0:
    def full(building, replaced):
        raise riskmin.RiskminError("no room to rename")
    rundir.install = full
try:
    riskmin.fit("linear", "lab1", epochs=2, progress=False, directory=target, overwrite=True)
    print("returned")
except riskmin.RiskminError as error:
    print("refused:", str(error).split(";")[0])
dist.barrier()
print("together")
"""


def test_a_replacement_process_0_fails_to_rename_lets_the_others_return(tmp_path):
    riskmin.fit("linear", "lab1", epochs=1, progress=False, directory=tmp_path / "r")
    script = ["-c", FAILED_RENAME_ON_TWO, str(tmp_path / "r")]
    processes = as_torchrun(first=script, second=script)
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert outputs[0][0].splitlines() == ["refused: no room to rename", "together"]
    assert outputs[1][0].splitlines() == ["returned", "together"]
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["epochs_run"] == 1  # the old run, as it was


# One model on two processes. A batch of 31 splits 16/15 between them, and 800 training rows leave a last batch
# of 25 (13/12): the shares differ, so the weighing of each process' loss is what makes the weights match.
TRAIN = ["train", "lab1", "--model", "mlp", "--hidden", "16,16", "--batch-size", "31", "--epochs", "6", "--patience", "100",
         "--progress", "off"]


def riskmin_command(*args, nproc=2, **options):
    options.setdefault("env", {**os.environ, "OMP_NUM_THREADS": "1"})
    return subprocess.Popen([sys.executable, "-m", "riskmin", *args, "--nproc", str(nproc)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **options)


def finished(*args, **options):
    process = riskmin_command(*args, **options)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    return out


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """A run trained by two processes through `--nproc 2`, and its output."""
    out = tmp_path_factory.mktemp("ddp")
    return out / "two", finished(*TRAIN, "--optimizer", "adam", "--out", str(out), "--name", "two")


def test_two_processes_train_the_weights_of_one(two_processes):
    from safetensors.torch import load_file

    import riskmin

    run_dir, out = two_processes
    assert out.count("run written to") == 1  # process 0 alone reports and writes
    alone = riskmin.fit("mlp", "lab1", hidden=(16, 16), batch_size=31, epochs=6, patience=100, optimizer="adam", progress=False)
    shared = load_file(run_dir / "model.safetensors")
    for name, tensor in alone.model.state_dict().items():
        assert torch.allclose(shared[name], tensor, rtol=1e-5, atol=1e-6), name
    history = rows(run_dir / "metrics.csv")
    assert len(history) == len(alone.history) == 6
    for written, row in zip(history, alone.history):
        for key in ("loss", "val_loss", "val_r2"):  # the training loss and the validation sums, added across processes
            assert float(written[key]) == pytest.approx(row[key], rel=1e-5), key


def test_an_interrupted_two_process_run_resumes_bitwise(tmp_path, two_processes, signal_at):
    run_dir = tmp_path / "cut"
    # both processes get SIGINT after step 57 of 26-step epochs, inside epoch 3, as a Ctrl-C reaches every process
    process = riskmin_command(*TRAIN, "--optimizer", "adam", "--out", str(tmp_path), "--name", "cut", *signal_at(57, "SIGINT"))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and f"riskmin train --resume {run_dir}" in unwrapped(err), err[-2000:]
    alone = subprocess.run([sys.executable, "-m", "riskmin", "train", "--resume", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and "was checkpointed by 2 process(es) and resumed by 1" in alone.stderr
    finished("train", "--resume", str(run_dir))
    assert (run_dir / "model.safetensors").read_bytes() == (two_processes[0] / "model.safetensors").read_bytes()
    strip = lambda table: [{k: v for k, v in row.items() if k != "seconds"} for row in table]  # noqa: E731
    assert strip(rows(run_dir / "metrics.csv")) == strip(rows(two_processes[0] / "metrics.csv"))


def test_a_training_process_that_dies_ends_the_other_with_a_clear_error(tmp_path, signal_at):
    # 25 steps an epoch: the second process dies in epoch 3, once the checkpoint of epoch 1 is surely on disk
    command = ["train", "lab1", "--epochs", "600", "--checkpoint-every", "1", "--progress", "off", "--out", str(tmp_path), "--name", "run"]
    processes = as_torchrun(*command, second=["-m", "riskmin", *command, *signal_at(55, "SIGKILL")])
    _, err = processes[0].communicate(timeout=120)
    processes[1].communicate(timeout=60)
    assert processes[0].returncode == 2 and processes[1].returncode == -signal.SIGKILL
    assert err.strip().splitlines()[-1].startswith("error: another riskmin process stopped in the middle of training"), err[-2000:]
    assert not (tmp_path / "run" / "summary.json").exists() and any((tmp_path / "run" / "checkpoint").glob("*.manifest.json"))


def test_nproc_checks_what_was_asked_once_before_starting_anything(tmp_path):
    process = riskmin_command("train", "lab1", "--lr", "-1", "--out", str(tmp_path))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and err.strip() == "error: lr = -1.0 is out of range; it must be greater than 0"
    assert not any(tmp_path.iterdir())


def test_a_mistake_the_processes_find_is_said_once_by_the_launcher_and_leaves_no_folder(tmp_path):
    # found in fit by every process alike, after process 0 made the run's folder: the first to fail ends the others
    process = riskmin_command("train", "lab1", "--batch-size", "900", "--out", str(tmp_path / "deep" / "runs"))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert err.strip() == "error: batch_size = 900 is larger than the training split (800 samples); use at most 800, or 0 " \
                          "for the whole split"
    assert not any(tmp_path.iterdir())  # neither the run's folder nor those made above it


def test_an_overwrite_on_two_processes_that_fails_leaves_the_old_run_as_it_was(tmp_path):
    riskmin.fit("linear", "lab1", epochs=1, progress=False, directory=tmp_path / "r")
    before = tree(tmp_path)
    # found by every process after process 0 made the hidden folder beside runs/r for the new run
    process = riskmin_command("train", "lab1", "--batch-size", "900", "--out", str(tmp_path), "--name", "r", "--overwrite")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and err.strip().startswith("error: batch_size = 900 is larger than the training split")
    assert tree(tmp_path) == before  # the old run whole, and no hidden folder beside it


STOPS_THE_LAUNCHER = """
import os, signal

class StopsTheLauncher:  # as a user's Ctrl-C or kill would stop `riskmin train --nproc 2`, at a step chosen in advance
    def on_step_end(self, state):
        if state.step == 30 and os.environ["RANK"] == "0":
            os.kill(int(os.environ["RISKMIN_LAUNCHER"]), signal.SIGTERM)

callback = StopsTheLauncher()
"""


def test_a_launcher_stopped_by_a_signal_leaves_the_run_its_processes_saved_and_says_how_to_resume(tmp_path):
    (tmp_path / "stop.py").write_text(STOPS_THE_LAUNCHER)
    command = ["train", "lab1", "--epochs", "4", "--progress", "off", "--out", str(tmp_path / "runs"), "--name", "cut"]
    process = riskmin_command(*command, "--callback", f"{tmp_path / 'stop.py'}:callback")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert f"continue with: riskmin train --resume {tmp_path / 'runs' / 'cut'} --nproc 2" in unwrapped(err)
    assert any((tmp_path / "runs" / "cut" / "checkpoint").glob("*.manifest.json"))
    finished("train", "--resume", str(tmp_path / "runs" / "cut"), "--progress", "off")
    assert json.loads((tmp_path / "runs" / "cut" / "summary.json").read_text())["epochs_run"] == 4


def test_lr_find_on_two_processes_sweeps_the_whole_batch_as_one(tmp_path):
    # each process holds half of every batch: the sweep smooths and stops on the whole batch's loss, so both processes
    # stop at the same step (with its own half's loss each suggested its own rate) and process 0 alone reports and draws
    sweep = ["lr-find", "lab1", "--steps", "60", "--model", "mlp", "--hidden", "16,16", "--batch-size", "31", "--optimizer", "sgd"]
    alone = subprocess.run([sys.executable, "-m", "riskmin", *sweep, "--plot", str(tmp_path / "one.png")], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    two = finished(*sweep, "--plot", str(tmp_path / "two.png"))
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert "55 steps" in alone.stdout  # the sweep diverged and stopped before its last step
    assert two.count("suggested learning rate") == 1
    assert two.replace("two.png", "one.png") == alone.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png", "two.png"]


def test_launching_sets_what_its_processes_inherit_and_leaves_this_process_as_it_was(monkeypatch):
    import logging

    from riskmin import distributed

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(distributed.LAUNCHER, raising=False)
    agent = logging.getLogger("torch.distributed.elastic.agent.server.api")
    level = agent.level
    with distributed.launching() as errors:
        assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ[distributed.LAUNCHER] == str(os.getpid())
        assert agent.level == logging.CRITICAL and os.environ[distributed.ERRORS] == errors and os.path.isdir(errors)
    assert "OMP_NUM_THREADS" not in os.environ and distributed.LAUNCHER not in os.environ and agent.level == level
    assert distributed.ERRORS not in os.environ and not os.path.exists(errors)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice is what the processes inherit, and stays
    with distributed.launching():
        assert os.environ["OMP_NUM_THREADS"] == "3"
    assert os.environ["OMP_NUM_THREADS"] == "3"
