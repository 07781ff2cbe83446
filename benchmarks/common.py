"""Timing helpers shared by the benchmarks: alternate the contestants, take medians."""

from __future__ import annotations

import platform
import statistics
import time

import torch


def alternate(contestants: dict, repeats: int) -> dict:
    """Run each contestant once per round, in turn, `repeats` rounds; return the median seconds of each.

    Alternating inside one process means a noisy neighbour slows every contestant alike.
    Each contestant returns the number of optimizer steps it took; the result is seconds per step.
    """
    times = {name: [] for name in contestants}
    for contestant in contestants.values():
        contestant()  # warm-up round, not timed: first calls pay for lazy initialization and cold caches
    for _ in range(repeats):
        for name, contestant in contestants.items():
            start = time.perf_counter()
            steps = contestant()
            times[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(values) for name, values in times.items()}


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
