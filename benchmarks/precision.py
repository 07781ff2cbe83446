"""Mixed precision, and what the step costs at its defaults against another checkout, on W2 of benchmarks/peers.py.

    python -m benchmarks.precision [--repeats 5] [--epochs 3] [--against /path/to/checkout] [--device cuda] [--only riskmin,against]

Every contestant trains W2's 20-64-64-1 MLP (batch 256, 20,000 rows, Adam at lr 1e-3) from the same initialization,
inside one process, in turn, after a warm-up round:
  riskmin    fit() at its defaults: precision 32, accumulate 1
  bf16       fit() at precision bf16-mixed
  16         fit() at precision 16-mixed (on CUDA only, where it runs)
  hand       a hand-written loop in float32, and hand_bf16 the same under torch.autocast(bfloat16): what the device
             itself gains or loses in bfloat16, riskmin apart
  against    riskmin.fit of another checkout (--against, the folder holding its src/riskmin), imported under another
             name: the same fit at the same settings, before a change (git worktree add /tmp/base HEAD)
Prints microseconds per step, for the whole fit and per added step (the difference between fits of 2x and 1x
`--epochs` epochs, over the steps added: what a step costs once a fit's fixed costs are paid, as
benchmarks/overhead.py), and the ratios that matter (above 1.0: the first named is slower). With --against, also
riskmin's time over the other checkout's paired round by round: each round times them A B B A, in wall-clock and in
this process' CPU time (which other processes on a busy machine do not inflate), and the median of the rounds' ratios
is printed, so that a load that comes and goes cancels out within a round.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import riskmin

from .common import alternate, machine
from .peers import finished, initialized, steps_per_epoch, workloads

ROWS, BATCH = 16_000, 256  # W2's training rows (80% of 20,000) and batch


def checkout(folder) -> object:
    """The riskmin package of another checkout, imported as riskmin_against: its modules import each other relatively."""
    source = Path(folder) / "src" / "riskmin"
    spec = importlib.util.spec_from_file_location("riskmin_against", source / "__init__.py", submodule_search_locations=[str(source)])
    package = importlib.util.module_from_spec(spec)
    sys.modules["riskmin_against"] = package
    spec.loader.exec_module(package)
    return package


def with_fit(package, x, y, epochs: int, device: str, **settings):
    """A contestant: `package`.fit on W2 as benchmarks/peers.py runs it, its own MLP from the same initial weights."""
    data = package.Data(x, y)
    splits = package.split(data, val=0.1, test=0.1, seed=0)
    make = initialized(lambda: package.models.MLP(20, 1, hidden=(64, 64)))

    def run():
        with contextlib.redirect_stderr(io.StringIO()):  # the progress bar runs, but off screen
            fitted = package.fit(make(), splits, epochs=epochs, batch_size=BATCH, lr=1e-3, optimizer="adam", loss="mse",
                                 patience=epochs, standardize=False, progress=True, threads=str(torch.get_num_threads()),
                                 device=device, **settings)
        return finished(fitted.summary["steps"], device)
    return run


def hand(x, y, epochs: int, device: str, dtype=None):
    """The hand-written loop of benchmarks/peers.py with fused Adam, in float32 or under autocast to `dtype`."""
    splits = riskmin.split(riskmin.Data(x, y), val=0.1, test=0.1, seed=0)
    rows = (x[splits.train].to(device), y[splits.train].to(device))
    make = initialized(lambda: riskmin.models.MLP(20, 1, hidden=(64, 64)))
    criterion = nn.MSELoss()

    def run():
        model = make().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        generator = torch.Generator().manual_seed(0)
        autocast = torch.autocast(torch.device(device).type, dtype=dtype) if dtype else contextlib.nullcontext()
        for _ in range(epochs):
            order = torch.randperm(ROWS, generator=generator).to(device)
            xs, ys = rows[0][order], rows[1][order]
            for i in range(0, ROWS, BATCH):
                with autocast:
                    loss = criterion(model(xs[i:i + BATCH]), ys[i:i + BATCH])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return finished(epochs * steps_per_epoch(ROWS, BATCH), device)
    return run


def contestants(epochs: int, device: str, against) -> dict:
    data = workloads()["W2"].data
    x, y = data.x, data.y
    found = {"riskmin": with_fit(riskmin, x, y, epochs, device), "bf16": with_fit(riskmin, x, y, epochs, device, precision="bf16-mixed"),
             "hand": hand(x, y, epochs, device), "hand_bf16": hand(x, y, epochs, device, torch.bfloat16)}
    if device.startswith("cuda"):
        found["16"] = with_fit(riskmin, x, y, epochs, device, precision="16-mixed")
    if against is not None:
        found["against"] = with_fit(against, x, y, epochs, device)
    return found


def paired(first, second, repeats: int) -> tuple:
    """first's time over second's, (wall-clock, CPU time): the medians over `repeats` rounds of A B B A, after a warm-up."""
    first(), second()
    ratios = []
    for _ in range(repeats):
        spent = {}
        for name, contestant in (("a", first), ("b", second), ("b", second), ("a", first)):
            wall, cpu = time.perf_counter(), time.process_time()
            contestant()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            spent[name] = [sum(pair) for pair in zip(spent.get(name, (0.0, 0.0)), (wall, cpu))]
        ratios.append([a / b for a, b in zip(spent["a"], spent["b"])])
    return tuple(statistics.median(ratio[i] for ratio in ratios) for i in (0, 1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--against", help="another checkout of riskmin, to time its fit beside this one's")
    parser.add_argument("--only", help="the contestants to time, comma separated (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    against = checkout(args.against) if args.against else None
    short, long = contestants(args.epochs, args.device, against), contestants(2 * args.epochs, args.device, against)
    if args.only:
        short, long = ({name: c for name, c in found.items() if name in args.only.split(",")} for found in (short, long))
    print(f"precision: W2 (20-64-64-1 MLP, batch 256, 20,000 rows), Adam, {args.epochs} epochs, median of {args.repeats}, "
          f"on {args.device}; {machine()}")
    seconds = alternate({**{(name, 1): c for name, c in short.items()}, **{(name, 2): c for name, c in long.items()}}, args.repeats)
    whole = {name: seconds[name, 1] for name in short}
    added = {name: (2 * seconds[name, 2] - seconds[name, 1]) for name in short}  # per step: (2s * T2 - s * T1) / s
    ratios = [("bf16", "riskmin"), ("hand_bf16", "hand"), ("16", "riskmin"), ("riskmin", "against")]
    print(f"{'measure':>14}  " + "  ".join(f"{name:>9}" for name in short) + "   (us per step)  " +
          "  ".join(f"{a}/{b}" for a, b in ratios if a in short and b in short))
    for measure, cost in (("whole fit", whole), ("per added step", added)):
        print(f"{measure:>14}  " + "  ".join(f"{1e6 * cost[name]:>9.1f}" for name in short) + "                  " +
              "  ".join(f"{cost[a] / cost[b]:>{len(a) + len(b) + 1}.3f}" for a, b in ratios if a in short and b in short))
    if "against" in short and "riskmin" in short:
        wall, cpu = paired(short["riskmin"], short["against"], args.repeats)
        print(f"riskmin/against, paired A B B A, median of {args.repeats} rounds of {args.epochs}-epoch fits: "
              f"wall-clock {wall:.3f}, CPU time {cpu:.3f}")


if __name__ == "__main__":
    main()
