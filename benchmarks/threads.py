"""How many intra-op threads a training step wants, measured: the data behind riskmin's threads="auto" rule.

    python -m benchmarks.threads [--repeats 3]

Trains W1-W4 of benchmarks/peers.py with riskmin at 1, 2, 4, ... threads up to the machine's
cores, alternating, and prints the time per step of each, the work per step (multiply-adds of
a forward and backward pass over one batch), the fastest count, and what threads="auto" picks.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os

import torch

import riskmin
from riskmin._training._threads import auto_threads, step_work

from .common import alternate, machine
from .peers import workloads


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    counts = sorted({1, *(2 ** k for k in range(1, 8) if 2 ** k <= cores), cores})
    print(f"time per step by thread count, median of {args.repeats}; {machine()}, {cores} cores")
    print(f"{'':3} {'work/step':>10}" + "".join(f"{f'{n} thr':>10}" for n in counts) + f"{'best':>6}{'auto':>6}")
    for name, work in workloads().items():
        splits = riskmin.split(work.data, val=0.1, test=0.1, seed=0)

        def train(threads):
            with contextlib.redirect_stderr(io.StringIO()):
                run = riskmin.fit(work.make(), splits, epochs=work.epochs, batch_size=work.batch_size, lr=1e-3, loss=work.loss,
                                  patience=work.epochs, standardize=False, threads=str(threads))
            return run.summary["steps"]

        seconds = alternate({n: (lambda n=n: train(n)) for n in counts}, args.repeats)
        batch = work.batch_size or len(splits.train)
        flops = step_work(work.make(), batch)
        best = min(seconds, key=seconds.get)
        print(f"{name:3} {flops / 1e6:8.2f}M" + "".join(f"{seconds[n] * 1e6:8.0f}us" for n in counts)
              + f"{best:>6}{auto_threads(work.make(), batch, cores):>6}")
    torch.set_num_threads(1)


if __name__ == "__main__":
    main()
