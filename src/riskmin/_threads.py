"""How many intra-op threads a CPU training step gets: a rule measured, not guessed (benchmarks/threads.py)."""

from __future__ import annotations

import os

import torch
from torch import nn

from .distributed import local_processes


def step_work(model: nn.Module, batch: int) -> int:
    """Multiply-adds of one training step, roughly: three per parameter per row (forward, and backward twice)."""
    return 3 * batch * sum(p.numel() for p in model.parameters())


# Measured by benchmarks/threads.py on a 2-core x86_64 VM with torch 2.13 CPU: W1-W3 (at most 4.3 million
# multiply-adds a step) gained nothing from a second thread (-5% to +1%), W4 (103 million) ran 7% faster with two.
# So one thread below 20 million, and above it one per 25 million: that figure past two threads is an estimate,
# since this machine had no more cores to measure; benchmarks/threads.py re-derives both on a bigger one.
SERIAL_WORK, WORK_PER_THREAD = 20_000_000, 25_000_000


def auto_threads(model: nn.Module, batch: int, cores: int) -> int:
    """The intra-op thread count threads="auto" picks: one for a small step, more as the step's work grows.

    >>> auto_threads(nn.Linear(32, 64), batch=64, cores=16), auto_threads(nn.Linear(784, 256), batch=4096, cores=16)
    (1, 16)
    """
    work = step_work(model, batch)
    return 1 if work < SERIAL_WORK else max(1, min(cores, work // WORK_PER_THREAD))


class intra_op_threads:
    """On CPU, run with the thread count `threads` asks for (a number, or auto) and give the process its own back after."""

    def __init__(self, threads: str, model: nn.Module, batch: int, device: torch.device):
        self.wanted = None
        if device.type == "cpu":
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            cores = max(cores // local_processes(), 1)  # torchrun's processes on this machine share them
            self.wanted = auto_threads(model, batch, cores) if threads == "auto" else int(threads)

    def __enter__(self):
        self.previous = torch.get_num_threads()
        if self.wanted is not None and self.wanted != self.previous:
            torch.set_num_threads(self.wanted)
        return self

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.previous:
            torch.set_num_threads(self.previous)
