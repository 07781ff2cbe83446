"""What checkpointing every epoch costs, on the workload of benchmarks/overhead.py.

    python -m benchmarks.checkpoint [--repeats 9] [--epochs 20]

riskmin.fit with a run directory (a verified, fsynced checkpoint at the end of every epoch)
against the same fit without one, alternating in one process. Two figures:
  share   the time the training thread spent on checkpoints (summary's checkpoint_seconds:
          encoding, and waiting for the writer thread when it was still busy) over the run's;
  ratio   checkpointed over plain wall time, medians; on a shared machine whole runs scatter
          by 10-20%, so this one is noisy at the few-percent level.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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
    print(f"{'batch':>5}  {'plain s':>8}  {'checkpointed s':>14}  {'ratio':>7}  {'share':>7}")
    try:
        for batch_size in (64, 256):
            shares = []

            def train(directory=None):
                if directory is not None:
                    shutil.rmtree(directory, ignore_errors=True)
                with contextlib.redirect_stderr(io.StringIO()):
                    run = riskmin.fit("mlp", splits, hidden=(64, 64), epochs=args.epochs, batch_size=batch_size, lr=1e-3,
                                      patience=args.epochs, directory=directory)
                if directory is not None:
                    shares.append(run.summary["checkpoint_seconds"] / run.summary["seconds"])
                return 1  # alternate() divides by this: whole runs, not steps

            seconds = alternate({"plain": train, "checkpointed": lambda: train(scratch / "run")}, args.repeats)
            print(f"{batch_size:>5}  {seconds['plain']:>8.3f}  {seconds['checkpointed']:>14.3f}  "
                  f"{seconds['checkpointed'] / seconds['plain']:>6.3f}x  {100 * statistics.median(shares):>6.2f}%")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
