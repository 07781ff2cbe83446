"""How long a command takes from the shell, against the time Python takes to import torch.

    python -m benchmarks.startup [--repeats 5]

Each contestant is a fresh process, run in turn `repeats` times (medians):
  import torch   python -c "import torch": what any PyTorch program pays before it does anything
  refusal        riskmin train --lr -1: a mistake, refused before torch is imported
  train          riskmin train lab1 --epochs 1, start to end, its run folder written
  predict        riskmin predict on that run and its 1,000 rows
Prints each median and the commands' time beyond the torch import (the targets: refusal under
0.5 s in all; train within the import + 1.0 s; predict within the import + 0.5 s). Constructing
any torch.optim optimizer imports torch._dynamo (about 1.3 s here), a cost every training loop
pays; `train` includes it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import machine


def seconds(command: list, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    riskmin = [sys.executable, "-m", "riskmin"]
    with tempfile.TemporaryDirectory() as scratch:
        rows = Path(scratch) / "rows.csv"
        rows.write_text("x\n" + "\n".join(str(i / 100) for i in range(1000)) + "\n")
        subprocess.run([*riskmin, "train", "line", "--epochs", "1", "--progress", "off", "--out", scratch, "--name", "run"],
                       cwd=scratch, check=True, capture_output=True)
        contestants = {
            "import torch": [sys.executable, "-c", "import torch"],
            "refusal": [*riskmin, "train", "--lr", "-1"],
            "train": [*riskmin, "train", "lab1", "--epochs", "1", "--progress", "off", "--out", scratch, "--name", "t", "--overwrite"],
            "predict": [*riskmin, "predict", str(Path(scratch) / "run"), str(rows), "--out", str(Path(scratch) / "p.csv"), "--overwrite"],
        }
        times = {name: [] for name in contestants}
        for _ in range(args.repeats):
            for name, command in contestants.items():
                times[name].append(seconds(command, scratch))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"start-up, median of {args.repeats} fresh processes; {machine()}")
    for name, value in median.items():
        beyond = "" if name in ("import torch", "refusal") else f"   import torch + {value - median['import torch']:.2f} s"
        print(f"  {name:13} {value:6.2f} s{beyond}")


if __name__ == "__main__":
    main()
