"""How long a command takes from the shell, against the time Python takes to import torch.

    python -m benchmarks.startup [--repeats 5] [--against /path/to/other/checkout]

Each contestant is a fresh process; a round runs every contestant once, in turn, and with --against
once more under the other checkout's src/ (PYTHONPATH), in the opposite order every other round, after one
round that is not timed, so that a noisy neighbour slows both alike:
  import torch   python -c "import torch": what any PyTorch program pays before it does anything
  refusal        riskmin train --lr -1: a mistake, refused before torch is imported
  missing file   riskmin train missing.csv: refused before torch is imported
  train          riskmin train lab1 --epochs 1 --progress off, start to end, its run folder written
  predict        riskmin predict on a run and a CSV of 1,000 rows
Prints each median with its interquartile range over the rounds, the commands' time beyond the torch
import of the same round (the targets: refusals under 0.5 s in all; train within the import + 1.0 s;
predict within the import + 0.5 s), and with --against each command's time over the other checkout's,
round by round (below 1.0: this checkout is faster). Constructing any torch.optim optimizer imports
torch._dynamo (about 1.1-1.5 s on a 2-core VM), a cost every training loop pays; `train` includes it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import machine

HERE = Path(__file__).resolve().parents[1] / "src"


def seconds(command: list, cwd: str, source: Path) -> float:
    environment = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True, check=False, env=environment)
    return time.perf_counter() - start


def spread(values: list) -> str:
    """The median and the interquartile range of `values`."""
    low, _, high = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return f"{statistics.median(values):5.2f} [{low:.2f}, {high:.2f}]"


def commands(scratch: Path, checkout: str) -> dict:
    """The contestants' command lines, each writing into a folder of its own checkout's."""
    riskmin = [sys.executable, "-m", "riskmin"]
    out = scratch / checkout
    return {
        "refusal": [*riskmin, "train", "--lr", "-1"],
        "missing file": [*riskmin, "train", str(scratch / "missing.csv")],
        "train": [*riskmin, "train", "lab1", "--epochs", "1", "--progress", "off", "--out", str(out), "--name", "t", "--overwrite"],
        "predict": [*riskmin, "predict", str(scratch / "run"), str(scratch / "rows.csv"), "--out", str(out / "p.csv"), "--overwrite"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--against", help="another checkout of riskmin (the folder holding its src/), timed in the same rounds")
    args = parser.parse_args(argv)
    sources = {"this": HERE}
    if args.against:
        sources["against"] = Path(args.against).resolve() / "src"
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        (scratch / "rows.csv").write_text("x\n" + "\n".join(str(i / 100) for i in range(1000)) + "\n")
        subprocess.run([sys.executable, "-m", "riskmin", "train", "line", "--epochs", "1", "--progress", "off", "--out", folder,
                        "--name", "run"], cwd=folder, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(HERE)})
        for checkout in sources:
            (scratch / checkout).mkdir()
        times = {("torch", "import torch"): []}
        for checkout in sources:
            times.update({(checkout, name): [] for name in commands(scratch, checkout)})
        for checkout, source in sources.items():  # a round not timed: compiles each checkout's bytecode, warms the disk cache
            for command in commands(scratch, checkout).values():
                seconds(command, folder, source)
        for i in range(args.repeats):
            times["torch", "import torch"].append(seconds([sys.executable, "-c", "import torch"], folder, HERE))
            for checkout in list(sources)[::1 if i % 2 == 0 else -1]:  # A B, then B A: neither always goes first
                for name, command in commands(scratch, checkout).items():
                    times[checkout, name].append(seconds(command, folder, sources[checkout]))
    torch_times = times["torch", "import torch"]
    print(f"start-up, {args.repeats} rounds of fresh processes, median [interquartile range] in seconds; {machine()}")
    print(f"  {'import torch':13} {spread(torch_times)}")
    for checkout, source in sources.items():
        print(f"{checkout} ({source}):")
        for name in commands(Path(), checkout):
            values = times[checkout, name]
            beyond = ""
            if name in ("train", "predict"):
                beyond = f"   import torch + {spread([v - t for v, t in zip(values, torch_times)])}"
            print(f"  {name:13} {spread(values)}{beyond}")
    if "against" in sources:
        print("this over against, round by round:")
        for name in commands(Path(), "this"):
            print(f"  {name:13} {spread([a / b for a, b in zip(times['this', name], times['against', name])])}")


if __name__ == "__main__":
    main()
