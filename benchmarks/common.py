"""Timing helpers shared by the benchmarks: alternate the contestants, take medians."""

from __future__ import annotations

import platform
import statistics
import time

import torch


def alternate(contestants: dict, repeats: int, clock=time.perf_counter) -> dict:
    """Run each contestant once per round, in turn, `repeats` rounds; return the median seconds of each.

    Alternating inside one process means a noisy neighbour slows every contestant alike.
    Each contestant returns the number of optimizer steps it took; the result is seconds per step.
    `clock`: the wall clock by default; time.process_time counts the CPU time of this process alone,
    which a neighbour's load moves much less when the contestants use one thread.
    """
    times = {name: [] for name in contestants}
    for contestant in contestants.values():
        contestant()  # warm-up round, not timed: first calls pay for lazy initialization and cold caches
    for _ in range(repeats):
        for name, contestant in contestants.items():
            start = clock()
            steps = contestant()
            times[name].append((clock() - start) / steps)
    return {name: statistics.median(values) for name, values in times.items()}


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
