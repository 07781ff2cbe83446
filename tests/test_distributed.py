"""Several processes: a Monte-Carlo experiment dealt out over two gloo processes equals the one-process experiment."""

import csv
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from riskmin.montecarlo import montecarlo

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_process_that_dies_ends_the_other_with_a_clear_error(tmp_path):
    port = free_port()
    processes = []
    for rank in range(2):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RISKMIN_DISTRIBUTED_TIMEOUT": "60"}
        processes.append(subprocess.Popen([sys.executable, "-m", "riskmin", "montecarlo", "lab1", "--runs", "40", "--epochs", "600",
                                           "--progress", "off", "--out", str(tmp_path)], env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    time.sleep(10)  # both have joined and are training their share (which takes far longer)
    processes[1].send_signal(signal.SIGKILL)
    began = time.monotonic()
    _, err = processes[0].communicate(timeout=120)
    assert processes[0].returncode == 2 and time.monotonic() - began < 100
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: another riskmin process stopped before sending its runs"), err[-2000:]
    assert not any(tmp_path.glob("*/summary.json"))
