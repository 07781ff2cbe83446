"""What a comparison of many candidates spends after training: statistics, tables and files against training itself.

    python -m benchmarks.many_candidates [--candidates 1000] [--runs 5]

`riskmin.compare` of `candidates` learning rates of the linear model on lab1, `runs` splits,
2 epochs, then `Comparison.save`: the whole of what `riskmin compare` does. Prints the seconds
spent training the stacks, computing the statistics (paired tests, Holm, the Bayesian comparison
and the detectable difference for every metric), and writing the files (comparison.csv, runs.csv,
summary.json and compare.png, which draws the best 30), and the ratio of the work after training
to the training, which should stay below 1 whatever the number of candidates.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import riskmin
from riskmin._experiments import _compare

from .common import machine


def timed(seconds: dict, name: str, function):
    def call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
    return call


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    candidates = {f"lr={0.001 + i * 1e-5:.5f}": {"lr": 0.001 + i * 1e-5} for i in range(args.candidates)}
    seconds = {}
    _compare.train_candidates = timed(seconds, "training", _compare.train_candidates)
    _compare.comparison_summary = timed(seconds, "statistics", _compare.comparison_summary)
    start = time.perf_counter()
    comparison = riskmin.compare(candidates, "lab1", runs=args.runs, epochs=2, model="linear", progress=False)
    seconds["rest of compare"] = time.perf_counter() - start - seconds["training"] - seconds["statistics"]
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        comparison.save(f"{scratch}/comparison")
        seconds["files"] = time.perf_counter() - start
    after = seconds["statistics"] + seconds["rest of compare"] + seconds["files"]
    print(f"compare of {args.candidates} candidates x {args.runs} runs; {machine()}")
    print("  " + "   ".join(f"{name} {value:.2f} s" for name, value in seconds.items()))
    print(f"  after training / training: {after / seconds['training']:.2f}")


if __name__ == "__main__":
    main()
