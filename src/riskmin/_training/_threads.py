"""How many intra-op threads a CPU training step gets: a rule measured, not guessed (benchmarks/threads.py)."""

from __future__ import annotations

import os
import time
from typing import Optional

import torch
from torch import nn

from ..distributed import local_processes


def step_work(model: nn.Module, batch: int) -> int:
    """Multiply-adds of one training step, roughly: three per parameter per row (forward, and backward twice)."""
    return 3 * batch * sum(p.numel() for p in model.parameters())


# Measured by benchmarks/threads.py on a 2-core x86_64 VM with torch 2.13 CPU: W1-W3 (at most 4.3 million
# multiply-adds a step) gained nothing from a second thread (-5% to +1%), W4 (103 million) ran 7% faster with two.
# So one thread below 20 million, and above it one per 25 million: that figure past two threads is an estimate,
# since this machine had no more cores to measure; benchmarks/threads.py re-derives both on a bigger one.
SERIAL_WORK, WORK_PER_THREAD = 20_000_000, 25_000_000


def process_cores() -> int:
    """The cores this process may use: those it is allowed to run on, shared with torchrun's other processes here."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(cores // local_processes(), 1)


class MeasuredThreads:
    """threads="auto" for the stacked Monte-Carlo engine, chosen by measuring the experiment itself.

    A stack's step is many small kernels, and whether a second thread helps depends on the load
    of the machine more than on the model: on an idle machine two threads can beat one, while beside
    a busy process they can be much slower (benchmarks/montecarlo.py --users, and --busy 1). So epoch 1
    runs at one thread (warming up), epoch 2 is timed at one thread and epoch 3 at every core, per run
    and step; from epoch 4 on the stack keeps the faster. Where every core
    turns out slow (a busy machine), epoch 3 goes back to one thread after a few steps instead of
    finishing at that cost. The stacked engine's results are the same bits whatever the count
    (tested), so the choice changes only the time.
    """

    # steps at every core before judging them; how much slower than one thread ends the probe
    PROBE_STEPS, TOO_SLOW = 3, 1.5

    def __init__(self, cores: int):
        self.cores, self.epoch, self.began, self.work, self.cost = cores, 0, 0.0, 0, {}
        self.decided, self.chosen = cores == 1, 1

    def start(self) -> None:
        self.epoch += 1
        if self.decided:  # one trial can serve several experiments of one model (a learning curve's sizes)
            if torch.get_num_threads() != self.chosen:
                torch.set_num_threads(self.chosen)
            return
        if self.epoch in (2, 3):
            torch.set_num_threads(1 if self.epoch == 2 else self.cores)
            self.began, self.work = time.perf_counter(), 0

    def step(self, runs: int) -> None:
        """A step of `runs` runs is done: while every core is on trial, leave it early when it is clearly the slower."""
        if self.decided or self.epoch != 3:
            return
        self.work += runs
        if (
            self.work >= self.PROBE_STEPS * runs
            and (time.perf_counter() - self.began) / self.work > self.TOO_SLOW * self.cost[1]
        ):
            torch.set_num_threads(1)
            self.decided, self.chosen = True, 1

    def end(self, work: int) -> None:
        """The epoch that started last is over, having done `work` (runs times steps, evaluation included)."""
        if self.decided or self.epoch not in (2, 3):
            return
        self.cost[torch.get_num_threads()] = (time.perf_counter() - self.began) / max(work, 1)
        if self.epoch == 3:
            self.chosen = min(self.cost, key=lambda threads: self.cost[threads])
            torch.set_num_threads(self.chosen)
            self.decided = True


def auto_threads(model: nn.Module, batch: int, cores: int) -> int:
    """The intra-op thread count threads="auto" picks: one for a small step, more as the step's work grows.

    >>> auto_threads(nn.Linear(32, 64), batch=64, cores=16), auto_threads(nn.Linear(784, 256), batch=4096, cores=16)
    (1, 16)
    """
    work = step_work(model, batch)
    return 1 if work < SERIAL_WORK else max(1, min(cores, work // WORK_PER_THREAD))


class IntraOpThreads:
    """On CPU, run with the thread count `threads` asks for (a number, or auto) and give the process its own back
    after."""

    def __init__(self, threads: str, model: Optional[nn.Module], batch: int, device: torch.device):
        """`model` and `batch`: the step whose work threads="auto" weighs; a count given as a number needs neither."""
        self.wanted = None
        if device.type != "cpu":
            return
        if threads != "auto":
            self.wanted = int(threads)
        elif model is not None:
            self.wanted = auto_threads(model, batch, process_cores())

    def __enter__(self):
        self.previous = torch.get_num_threads()
        if self.wanted is not None and self.wanted != self.previous:
            torch.set_num_threads(self.wanted)
        return self

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.previous:
            torch.set_num_threads(self.previous)
