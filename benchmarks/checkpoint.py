"""What checkpointing every epoch costs, on the workload of benchmarks/overhead.py.

    python -m benchmarks.checkpoint [--repeats 9] [--epochs 20]

Three fits of the same run, alternating in one process:
  plain         no run directory at all;
  saved         a run directory, with checkpoint_every = 0: the same path through fit, no checkpoint;
  checkpointed  the same with a verified, fsynced checkpoint at the end of every epoch.
Figures:
  share   the time the training thread spent on checkpoints (summary's checkpoint_seconds:
          encoding, and waiting for the writer thread when it was still busy) over the run's;
  cost    checkpointed over saved wall time, medians: what checkpointing adds;
  total   checkpointed over plain. On a shared machine whole runs scatter by 10-20%, and
          plain and saved differ by nothing but noise, so both ratios are noisy at the
          few-percent level.
Each directory is new, and they are deleted after the timing, so no run pays for removing another.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import shutil
import statistics
import tempfile
from pathlib import Path

import torch

import riskmin

from .common import alternate, machine
from .overhead import workload


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    splits = riskmin.split(workload(), val=0.1, test=0.1, seed=0)
    scratch = Path(tempfile.mkdtemp(prefix="riskmin-bench-"))
    print(f"checkpoint cost: 20-64-64-1 MLP, 20,000 rows, Adam, {args.epochs} epochs, median of {args.repeats}; {machine()}")
    print(f"{'batch':>5}  {'plain s':>8}  {'saved s':>8}  {'checkpointed s':>14}  {'cost':>7}  {'total':>7}  {'share':>7}")
    runs = itertools.count()
    try:
        for batch_size in (64, 256):
            shares = []

            def train(checkpoint_every=None):
                directory = None if checkpoint_every is None else scratch / f"run-{next(runs)}"
                with contextlib.redirect_stderr(io.StringIO()):
                    run = riskmin.fit("mlp", splits, hidden=(64, 64), epochs=args.epochs, batch_size=batch_size, lr=1e-3,
                                      patience=args.epochs, directory=directory, checkpoint_every=checkpoint_every or 0)
                if checkpoint_every:
                    shares.append(run.summary["checkpoint_seconds"] / run.summary["seconds"])
                return 1  # alternate() divides by this: whole runs, not steps

            seconds = alternate({"plain": train, "saved": lambda: train(0), "checkpointed": lambda: train(1)}, args.repeats)
            for old in scratch.iterdir():
                shutil.rmtree(old)
            print(f"{batch_size:>5}  {seconds['plain']:>8.3f}  {seconds['saved']:>8.3f}  {seconds['checkpointed']:>14.3f}  "
                  f"{seconds['checkpointed'] / seconds['saved']:>6.3f}x  {seconds['checkpointed'] / seconds['plain']:>6.3f}x  "
                  f"{100 * statistics.median(shares):>6.2f}%")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
