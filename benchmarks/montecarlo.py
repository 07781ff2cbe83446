"""Monte-Carlo: the vectorized engine against the sequential one, and how both scale with the number of runs.

    python -m benchmarks.montecarlo [--sizes 1,10,100,1000] [--sequential-up-to 100]

Workload: two_layer (h = 32) on 2,000 lab1 samples, 50 epochs, batch 32, Adam, CPU, one thread.
Each measurement runs in a fresh child process, which reports its wall time and its peak
resident memory. The memory column is the growth over one run with the same engine (one run
pays torch's one-time start-up), next to what each run's own state should take: parameters,
gradients, two Adam moments and the best-weights copy, plus its index tensors.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SETTINGS = dict(model="two_layer", hidden=32, n_samples=2000, epochs=50, batch_size=32, optimizer="adam", lr=0.01, progress=False)


def child(engine: str, runs: int) -> None:
    import torch

    import riskmin
    from riskmin import montecarlo

    torch.set_num_threads(1)
    data = riskmin.load("lab1", riskmin.Config(n_samples=SETTINGS["n_samples"]))
    start = time.perf_counter()
    if runs:
        montecarlo(SETTINGS["model"], data, runs=runs, engine=engine, **{k: v for k, v in SETTINGS.items() if k != "model"})
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports kilobytes
    print(json.dumps({"seconds": seconds, "peak": peak}))


def measure(engine: str, runs: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.montecarlo", "--child", engine, str(runs)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,1000")
    parser.add_argument("--sequential-up-to", type=int, default=100)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], int(args.child[1]))
    import torch

    from .common import machine

    torch.set_num_threads(1)
    n = SETTINGS["n_samples"]
    parameters = 10 * 32 + 32 + 32 * 2 + 2
    state = 5 * 4 * parameters + 8 * (n + 2 * int(0.8 * n))  # weights, grad, 2 moments, best copy; split and epoch indices
    print(f"montecarlo: two_layer h=32, {n:,} lab1 samples (data {4 * n * 12 / 1e3:.0f} kB), 50 epochs, batch 32, Adam; {machine()}")
    print(f"expected state per run: {state / 1e3:.0f} kB")
    print(f"{'runs':>5}  {'engine':>10}  {'seconds':>8}  {'s/run':>7}  {'memory over 1 run':>17}  {'per run':>8}  {'speedup':>8}")
    first = {}
    for runs in (int(v) for v in args.sizes.split(",")):
        engines = ["vectorized"] + (["sequential"] if runs <= args.sequential_up_to else [])
        results = {engine: measure(engine, runs) for engine in engines}
        for engine, result in results.items():
            first.setdefault(engine, result["peak"])
            added = result["peak"] - first[engine]
            per_run = f"{added / (runs - 1) / 1e3:.0f} kB" if runs > 1 else ""
            speedup = results["sequential"]["seconds"] / result["seconds"] if "sequential" in results else None
            print(f"{runs:>5}  {engine:>10}  {result['seconds']:>8.2f}  {result['seconds'] / runs:>7.3f}  "
                  f"{added / 2**20:>14.1f} MB  {per_run:>8}  {f'{speedup:.1f}x' if speedup else '':>8}")


if __name__ == "__main__":
    main()
