"""A grid of candidates through `riskmin.compare` against the same runs through `riskmin.fit`, one after another.

    python -m benchmarks.compare [--runs 20] [--repeats 1] [--schedules]

Grid: two_layer (h = 32) on lab1 (1,000 rows), learning rates 0.03, 0.01, 0.003 x weight
decays 0 and 1e-4, R = 20 splits each (120 runs), 30 epochs, patience 5, batch 32, Adam, CPU,
one intra-op thread for both. `compare` trains each candidate as one stack of R replicas;
the sequential contestant calls `fit` 120 times with the same seeds and settings. The two
alternate inside one process (`--repeats` rounds, medians); the test losses of the two are
checked to agree, so both did the same work. `--schedules` times instead learning rates 0.03,
0.01, 0.003 x schedules none, step (x0.5 every 10 epochs) and cosine (180 runs), which also
train as one stack, each candidate on its own schedule.
"""

from __future__ import annotations

import argparse
import statistics
import time

import riskmin

from .common import machine

MODEL = "two_layer"
SHARED = dict(hidden=32, epochs=30, patience=5, batch_size=32, optimizer="adam", threads="1", progress=False)
GRID = {"lr": [0.03, 0.01, 0.003], "weight_decay": [0.0, 1e-4]}
SCHEDULES = {"lr": [0.03, 0.01, 0.003], "scheduler": ["none", "step", "cosine"]}  # with step_size 10, gamma 0.5


def through_compare(data, candidates: dict, runs: int) -> dict:
    result = riskmin.compare(candidates, data, runs=runs, model=MODEL, **SHARED)
    return {(row["candidate"], row["run"]): row["test_loss"] for row in result.table}


def through_fit(data, candidates: dict, runs: int) -> dict:
    losses = {}
    for name, settings in candidates.items():
        for run in range(runs):
            fitted = riskmin.fit(MODEL, data, seed=run, **SHARED, **settings)
            losses[(name, run)] = fitted.summary["test_loss"]
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--schedules", action="store_true", help="learning rates x schedules instead of x weight decays")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from riskmin._experiments._candidates import grid

    data = riskmin.load("lab1")
    if args.schedules:
        SHARED.update(step_size=10, gamma=0.5)
    candidates = grid(SCHEDULES if args.schedules else GRID)
    through_compare(data, dict(list(candidates.items())[:2]), 2)  # torch's one-time start-up, paid by neither contestant
    times = {"compare": [], "fit": []}
    losses = {}
    for _ in range(args.repeats):
        for name, contestant in (("compare", through_compare), ("fit", through_fit)):
            start = time.perf_counter()
            losses[name] = contestant(data, candidates, args.runs)
            times[name].append(time.perf_counter() - start)
    gap = max(abs(losses["compare"][key] - losses["fit"][key]) / abs(losses["fit"][key]) for key in losses["fit"])
    fast, slow = statistics.median(times["compare"]), statistics.median(times["fit"])
    total = len(candidates) * args.runs
    print(f"compare: {len(candidates)} candidates x {args.runs} splits = {total} runs of two_layer h=32 on lab1, 30 epochs, "
          f"patience 5; {machine()}")
    print(f"{'riskmin.compare':>22}  {fast:8.2f} s  ({fast / total * 1000:.1f} ms/run)")
    print(f"{f'{total} x riskmin.fit':>22}  {slow:8.2f} s  ({slow / total * 1000:.1f} ms/run)")
    print(f"{'ratio':>22}  {slow / fast:8.1f}x   (largest relative test-loss difference between the two: {gap:.1e})")


if __name__ == "__main__":
    main()
