"""How riskmin's time per epoch grows with rows and with width, and its peak memory with the data.

    python -m benchmarks.scaling [--threads 1]

1. W2's model (20 -> 64 -> 64 -> 1, batch 256) on 10,000 to 1,000,000 rows: the second
   epoch's time (training and its validation), and the exponent of a least-squares fit of
   log time on log rows. One would expect 1.0: an epoch is rows / batch equal steps.
2. The same at 100,000 rows with hidden widths 32 to 512: the exponent in width.
3. Peak memory of a whole `fit` in a fresh process (growth of its peak resident size over
   what it held before, the least of five processes), against the float32 size of the data.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import subprocess
import sys

import torch

import riskmin

from .common import machine

PEAK = """
import sys, torch, riskmin
torch.set_num_threads(1)
rows = int(sys.argv[1])
generator = torch.Generator().manual_seed(0)
x = torch.randn(rows, 20, generator=generator)
data = riskmin.Data(x, torch.sin(x[:, :1]), name="scaling")
def status_kb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
before = status_kb("VmRSS")
riskmin.fit("mlp", data, hidden=(64, 64), epochs=1, batch_size=256, progress=False, threads="1")
print((status_kb("VmHWM") - before) * 1024)
"""


def epoch_seconds(rows: int, width: int) -> float:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 20, generator=generator)
    data = riskmin.Data(x, torch.sin(x[:, :1]) + 0.1 * torch.randn(rows, 1, generator=generator))
    with contextlib.redirect_stderr(io.StringIO()):
        run = riskmin.fit("mlp", data, hidden=(width, width), epochs=2, batch_size=256, lr=1e-3, patience=2,
                          threads=str(torch.get_num_threads()))
    return run.history[1]["seconds"] - run.history[0]["seconds"]  # the second epoch: no first-call costs


def exponent(sizes: list, seconds: list) -> float:
    """The slope of the least-squares line through (log size, log seconds)."""
    xs, ys = [math.log(s) for s in sizes], [math.log(t) for t in seconds]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"scaling; {machine()}")
    rows = [10_000, 30_000, 100_000, 300_000, 1_000_000]
    seconds = [epoch_seconds(n, 64) for n in rows]
    print("rows      " + "".join(f"{n:>11,}" for n in rows))
    print("s/epoch   " + "".join(f"{s:>11.3f}" for s in seconds) + f"   exponent in rows {exponent(rows, seconds):.2f}")
    widths = [32, 64, 128, 256, 512]
    seconds = [epoch_seconds(100_000, w) for w in widths]
    print("width     " + "".join(f"{w:>11}" for w in widths))
    print("s/epoch   " + "".join(f"{s:>11.3f}" for s in seconds) + f"   exponent in width {exponent(widths, seconds):.2f}")
    peaks = {}
    for n in (100_000, 1_000_000):
        # the least of five fresh processes: the same fit's peak varies by a quarter from run to run with the allocator's luck
        runs = [subprocess.run([sys.executable, "-c", PEAK, str(n)], capture_output=True, text=True, check=True) for _ in range(5)]
        peaks[n], size = min(int(result.stdout.split()[-1]) for result in runs), n * 21 * 4
        print(f"peak memory of fit on {n:,} rows: {peaks[n] / 1e6:.0f} MB, {peaks[n] / size:.2f}x the data's {size / 1e6:.0f} MB as float32")
    growth = (peaks[1_000_000] - peaks[100_000]) / (900_000 * 21 * 4)
    print(f"what grows with the data: {growth:.2f} bytes per byte of float32 data (the rest is torch's fixed first-use cost)")


if __name__ == "__main__":
    main()
