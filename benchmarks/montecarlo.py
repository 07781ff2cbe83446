"""Monte-Carlo: the vectorized engine against the sequential one, and how both scale with the number of runs.

    python -m benchmarks.montecarlo [--sizes 1,10,100,1000] [--sequential-up-to 100]
    python -m benchmarks.montecarlo --users [--repeats 3] [--busy 1]  # what users run: early stopping, default threads

--users times `riskmin montecarlo lab1 --runs R --epochs 20 --patience 5` (every other setting
at its default, the default engine and threads) against `--engine sequential`: inside one
process from the call of `riskmin.montecarlo` to its return, alternating, at R = 100 and 1,000
(medians of --repeats; the sequential engine at R = 1,000 once); then the whole command, process
start-up included, at R = 1,000 (the vectorized one's median); then the default thread setting against fixed thread counts.

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


USERS = dict(epochs=20, patience=5, progress=False)  # riskmin montecarlo lab1 --runs R --epochs 20 --patience 5


def users(repeats: int, busy: int = 0) -> None:
    """The engines on the experiment users run, timed call to return in this process, then as whole commands."""
    import statistics

    import riskmin

    from .common import machine

    data = riskmin.load("lab1")
    riskmin.montecarlo("two_layer", data, runs=2, epochs=1, progress=False)  # torch's one-time imports, paid by either engine
    beside = f", {busy} busy process(es) beside" if busy else ""
    print(f"montecarlo, as users run it: lab1, two_layer h=32, 20 epochs, patience 5, default threads; {machine()}{beside}")
    print(f"{'runs':>5}  {'vectorized s':>12}  {'sequential s':>12}  {'speedup':>8}  {'s/run (vectorized)':>18}")
    for runs in (1, 10, 100, 1000):
        times = {"auto": [], "sequential": []}
        for repeat in range(repeats):
            for engine in times:
                if engine == "sequential" and runs == 1000 and repeat:
                    continue  # two minutes a time: once
                start = time.perf_counter()
                riskmin.montecarlo("two_layer", data, runs=runs, engine=engine, **USERS)
                times[engine].append(time.perf_counter() - start)
        fast, slow = (statistics.median(times[engine]) for engine in ("auto", "sequential"))
        print(f"{runs:>5}  {fast:>12.2f}  {slow:>12.2f}  {slow / fast:>7.1f}x  {fast / runs:>18.4f}")
    command = [sys.executable, "-m", "riskmin", "montecarlo", "lab1", "--runs", "1000", "--epochs", "20", "--patience", "5",
               "--progress", "off", "--out", "/tmp/riskmin-bench-runs", "--overwrite", "on"]
    whole = {"auto": [], "sequential": []}
    for engine in ("auto", "sequential", *["auto"] * (repeats - 1)):  # the sequential command once, the other's median
        start = time.perf_counter()
        subprocess.run([*command, "--engine", engine, "--name", f"users-{engine}"], check=True, capture_output=True)
        whole[engine].append(time.perf_counter() - start)
    whole = {engine: statistics.median(seconds) for engine, seconds in whole.items()}
    print(f"the whole command at R = 1000, start-up included: {whole['auto']:.1f} s against {whole['sequential']:.1f} s, "
          f"{whole['sequential'] / whole['auto']:.1f}x")
    print(f"{'threads':>8}  " + "  ".join(f"{f'R = {runs}':>9}" for runs in (100, 1000)) + "  (medians, alternating)")
    cells = {threads: [[], []] for threads in ("auto", "1", "2")}
    for _ in range(repeats):
        for column, runs in enumerate((100, 1000)):
            for threads, times in cells.items():
                start = time.perf_counter()
                riskmin.montecarlo("two_layer", data, runs=runs, threads=threads, **USERS)
                times[column].append(time.perf_counter() - start)
    for threads, times in cells.items():
        print(f"{threads:>8}  " + "  ".join(f"{statistics.median(cell):>8.2f}s" for cell in times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,1000")
    parser.add_argument("--sequential-up-to", type=int, default=100)
    parser.add_argument("--users", action="store_true", help="the experiment users run: early stopping, default threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="with --users: this many processes spinning beside it")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], int(args.child[1]))
    if args.users:
        spinning = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        try:
            return users(args.repeats, args.busy)
        finally:
            for process in spinning:
                process.kill()
                process.wait()
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
