"""From a CSV file to training-ready tensors, against the CSV reader's own time, and the peak memory it takes.

    python -m benchmarks.ingest [--rows 1000000] [--repeats 3]

Writes a numeric CSV of `rows` x 20 features and one target to a scratch folder, then in one
process alternates:
  reader   pyarrow.csv.read_csv, the reader riskmin uses, alone
  riskmin  riskmin.load: read, check for missing values, describe and encode the columns,
           guess the task, and hand back float32 x and y tensors
and prints the median seconds of each and their ratio. Peak memory is measured apart, in a
fresh process per contestant (the growth of its peak resident size over what it held after
its imports), and printed as a multiple of the float32 size of the data. riskmin parses
real-valued columns straight to float32 and hands pyarrow's spare memory back before it
builds tensors, so it peaks well below the reader's own default read, which holds float64.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .common import alternate, machine

FEATURES = 20

PEAK = """
import sys
import pyarrow.csv, pyarrow.compute, riskmin, riskmin._data._readers  # imports are not the data's memory
def status_kb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # start the high-water mark afresh (a child inherits its parent's ru_maxrss)
before = status_kb("VmRSS")
if sys.argv[2] == "reader":
    result = pyarrow.csv.read_csv(sys.argv[1])
else:
    result = riskmin.load(sys.argv[1], riskmin.Config(target="y"))
print((status_kb("VmHWM") - before) * 1024)
"""


def write_csv(path: Path, rows: int) -> None:
    import pyarrow
    import pyarrow.csv

    generator = np.random.default_rng(0)
    x = generator.standard_normal((rows, FEATURES))
    columns = {f"x{i}": x[:, i] for i in range(FEATURES)}
    columns["y"] = x @ generator.standard_normal(FEATURES) + 0.1 * generator.standard_normal(rows)
    pyarrow.csv.write_csv(pyarrow.table(columns), path)


def peak_bytes(path: Path, contestant: str) -> int:
    result = subprocess.run([sys.executable, "-c", PEAK, str(path), contestant], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1])


def main(argv=None):
    import pyarrow.csv

    import riskmin

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="riskmin-ingest-"))
    try:
        path = scratch / "table.csv"
        write_csv(path, args.rows)
        size = args.rows * (FEATURES + 1) * 4
        print(f"ingest: {args.rows:,} x {FEATURES} features + 1 target, {path.stat().st_size / 1e6:.0f} MB of CSV, "
              f"{size / 1e6:.0f} MB as float32; median of {args.repeats}; {machine()}")
        seconds = alternate({"reader": lambda: pyarrow.csv.read_csv(path) and 1,
                             "riskmin": lambda: riskmin.load(str(path), riskmin.Config(target="y")) and 1}, args.repeats)
        print(f"{'':8}  {'seconds':>8}  {'peak memory':>12}  {'x float32 size':>14}")
        for name in ("reader", "riskmin"):
            peak = peak_bytes(path, name)
            print(f"{name:8}  {seconds[name]:8.3f}  {peak / 1e6:9.0f} MB  {peak / size:13.2f}x")
        print(f"riskmin / reader time: {seconds['riskmin'] / seconds['reader']:.2f}x")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
