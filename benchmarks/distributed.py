"""One process against two (torchrun, gloo, CPU): training W2 with DDP, and a Monte-Carlo experiment.

    python -m benchmarks.distributed [--repeats 5] [--only W2,W4,montecarlo]

W2, W4      those workloads of benchmarks/peers.py (W2: 20-64-64-1 MLP, 20,000 rows, batch
            256; W4: 784-256-256-10 classifier, 10,000 rows, batch 128), Adam, with their
            epochs there: time per optimizer step at the same global batch. Beside it, one
            process at half the batch, the share of each of two processes: the step two
            processes would take if exchanging gradients were free, so the gap to it is what
            the exchange and the lockstep cost; and a bare all-reduce, between two processes, of
            as many numbers as the model has gradients.
montecarlo  benchmarks/montecarlo.py's workload with R = 200 runs, dealt out by seed.
Every figure is training time only, from the run's own clock, without the start of the
processes; the settings alternate, in fresh processes, and medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

RUNS = 200


def child(kind: str, batch: int) -> None:
    """One run of `kind` (a workload's name, or montecarlo); process 0 prints its training time."""
    import torch

    import riskmin
    from riskmin.distributed import rank

    torch.set_num_threads(1)
    if kind == "allreduce":  # `batch` numbers, summed across the processes, 200 times
        import time

        import torch.distributed as dist

        dist.init_process_group("gloo")
        numbers = torch.zeros(batch)
        dist.all_reduce(numbers)
        began = time.perf_counter()
        for _ in range(200):
            dist.all_reduce(numbers)
        result = {"seconds": time.perf_counter() - began, "steps": 200}
        dist.destroy_process_group()
    elif kind != "montecarlo":
        from .peers import workloads

        work = workloads()[kind]
        run = riskmin.fit(work.make(), work.data, loss=work.loss, optimizer="adam", lr=1e-3, batch_size=batch, epochs=work.epochs,
                          patience=work.epochs, progress=False)
        result = {"seconds": run.summary["seconds"], "steps": run.summary["steps"]}
    else:
        import time

        from riskmin import montecarlo

        from .montecarlo import SETTINGS

        data = riskmin.load("lab1", riskmin.Config(n_samples=SETTINGS["n_samples"]))
        began = time.perf_counter()
        montecarlo(SETTINGS["model"], data, runs=RUNS, **{k: v for k, v in SETTINGS.items() if k not in ("model", "n_samples")})
        result = {"seconds": time.perf_counter() - began, "steps": 1}
    if rank() == 0:
        print(json.dumps(result))


def measure(kind: str, processes: int, batch: int = 0) -> float:
    """Seconds per step (train) or per experiment (montecarlo) of one fresh run."""
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)] if processes > 1 else []
    out = subprocess.run([sys.executable, *launcher, "-m", "benchmarks.distributed", "--child", kind, str(batch)], capture_output=True,
                         text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"] / result["steps"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="W2,W4,montecarlo")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], int(args.child[1]))
    from .common import machine

    print(f"one process against two, gloo on CPU, one thread each, median of {args.repeats}; {machine()}")
    only = args.only.split(",")
    for name in (name for name in only if name != "montecarlo"):
        batch = {"W2": 256, "W4": 128}[name]
        settings = {"one": (1, batch), "two": (2, batch), "half": (1, batch // 2)}
        times = {setting: [] for setting in settings}
        for _ in range(args.repeats):
            for setting, (processes, size) in settings.items():
                times[setting].append(measure(name, processes, size))
        one, two, half = (statistics.median(times[setting]) for setting in settings)
        from .peers import workloads

        gradients = sum(p.numel() for p in workloads()[name].make().parameters())
        exchange = statistics.median(measure("allreduce", 2, gradients) for _ in range(args.repeats))
        print(f"train {name}, batch {batch}: {one * 1e6:.0f} us a step in one process, {two * 1e6:.0f} us in two: speedup {one / two:.2f}x")
        print(f"  one process at batch {batch // 2} (each one's share): {half * 1e6:.0f} us a step; "
              f"two processes spend {(two - half) * 1e6:.0f} us a step beyond it on exchanging gradients and keeping in step")
        print(f"  a bare gloo all-reduce of its {gradients:,} gradients between two processes: {exchange * 1e6:.0f} us")
    if "montecarlo" in only:
        times = {1: [], 2: []}
        for _ in range(args.repeats):
            for processes in times:
                times[processes].append(measure("montecarlo", processes))
        one, two = statistics.median(times[1]), statistics.median(times[2])
        print(f"montecarlo R = {RUNS}: {one:.2f} s in one process, {two:.2f} s in two: speedup {one / two:.2f}x")


if __name__ == "__main__":
    main()
