"""riskmin.fit against the loops people write by hand, on a 20 -> 64 -> 64 -> 1 MLP with 20,000 rows.

    python -m benchmarks.overhead [--repeats 5] [--epochs 3] [--clock wall|cpu]

Contestants, each training the same model from the same initialization on the same 16,000 training rows with
Adam, batches sliced from one permutation an epoch:
  riskmin       fit() as users run it: validation every epoch, best-model tracking, early stopping and the
                progress bar on
  riskmin_loop  fit() with no validation split (the 2,000 validation rows go to the test split): the training
                loop alone, the steps and what riskmin does beside each (the loss kept, the epoch's progress line)
  hand          a hand-written loop that permutes and slices tensors (no validation at all)
  hand_fused    the same with torch's fused Adam, which riskmin uses
  hand_val      hand_fused plus what riskmin does around the steps by default: the validation loss every epoch, a copy
                of the best weights, early stopping, the best weights restored and the test loss at the end
  dataloader    the DataLoader(TensorDataset) loop, reading loss.item() every batch
Prints steps per second and the ratios that compare like with like (above 1.0: riskmin is faster): riskmin
against hand_val, the same work; riskmin_loop against hand_fused, the loop's own cost beside the same
optimizer with the same flags; riskmin against hand and the DataLoader loop. Twice: for the whole fit of
`--epochs` epochs (setup, validation, final metrics and all), and per added step, from fits of 2x and 1x
`--epochs` epochs: what each step costs once the fixed costs of a fit are paid (riskmin's per-epoch validation
stays in it, amortized over the epoch's steps: a tenth of them at batch 256). That difference of two medians
moves by several percent from one invocation to the next even on a quiet machine, so a third measure, steady
epoch, takes each contestant's fastest epoch after the first (for riskmin and hand_val with the validation that
ends it) over `--repeats` fits of 2x `--epochs` epochs: riskmin against hand_val, and riskmin_loop against
hand_fused, the hand loop of overhead.py rather than of peers.py (the same loop, with epoch ticks). `--clock cpu` times the CPU of this process instead of the wall clock, which a busy machine's
neighbours move much less at one thread.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time

import torch
from torch import nn

import riskmin
from riskmin.models import MLP

from .common import alternate, machine
from .peers import Workload, initialized
from .peers import contestants as peer_contestants


def workload(rows=20_000, features=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=generator)
    y = torch.sin(x[:, :1]) + 0.1 * torch.randn(rows, 1, generator=generator)
    return riskmin.Data(x, y, name="bench")


def contestants(data: riskmin.Data, batch_size: int, epochs: int) -> dict:
    """riskmin, the hand loops and the DataLoader loop of benchmarks/peers.py, and the validating hand loop, on this workload."""
    work = Workload("overhead", "20-64-64-1 MLP", data, initialized(lambda: MLP(20, 1, hidden=(64, 64))), "mse", batch_size, epochs)
    return {**peer_contestants(work, peers=False, fused_hand=True), "riskmin_loop": lambda: loop_alone(work),
            "hand_val": lambda: validating_hand_loop(work)}


def loop_alone(work: Workload, ticks: list = None, val: float = 0.0, clock=time.process_time) -> int:
    """riskmin.fit with no validation split (nothing to judge, so no early stopping) on the same 16,000 training rows:
    the steps and what the loop does beside them, with the progress bar on, off screen. With `val`, riskmin as the
    riskmin contestant runs it. `ticks` gets `clock`'s time at the start and at the end of every epoch."""
    splits = riskmin.split(work.data, val=val, test=0.2 - val, seed=0)
    callbacks = [Ticks(ticks, clock)] if ticks is not None else []
    with contextlib.redirect_stderr(io.StringIO()):
        run = riskmin.fit(work.make(), splits, epochs=work.epochs, batch_size=work.batch_size, lr=1e-3, optimizer="adam",
                          loss=work.loss, standardize=False, progress=True, callbacks=callbacks, **({"patience": work.epochs} if val else {}),
                          threads=str(torch.get_num_threads()), device="cpu")
    return run.summary["steps"]


class Ticks:
    """A callback that notes the clock when the first epoch starts and when each epoch ends (its validation done)."""

    def __init__(self, ticks: list, clock):
        self.ticks, self.clock = ticks, clock

    def on_fit_start(self, state):
        self.ticks.append(self.clock())

    def on_epoch_end(self, state):
        self.ticks.append(self.clock())


def validating_hand_loop(work: Workload, patience: int = None, ticks: list = None, validate: bool = True,
                         clock=time.process_time) -> int:
    """The loop a careful person writes by hand: fused Adam, the validation loss after every epoch, the best weights
    kept and restored, early stopping, and the test loss at the end (riskmin's splits, without standardizing). Without
    `validate`, the steps alone on the same training rows: hand_fused. `ticks` and `clock` as in loop_alone."""
    splits = riskmin.split(work.data, val=0.1 if validate else 0.0, test=0.1 if validate else 0.2, seed=0)
    (x, y), (x_val, y_val), (x_test, y_test) = ((work.data.x[rows], work.data.y[rows]) for rows in (splits.train, splits.val, splits.test))
    ticks = ticks if ticks is not None else []
    ticks.append(clock())
    model, criterion, patience = work.make(), nn.MSELoss(), patience or work.epochs
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    generator, best, best_state, waited, steps = torch.Generator().manual_seed(0), float("inf"), None, 0, 0
    for _ in range(work.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        xs, ys = x[order], y[order]
        for i in range(0, len(xs), work.batch_size):
            loss = criterion(model(xs[i:i + work.batch_size]), ys[i:i + work.batch_size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        if not validate:
            ticks.append(clock())
            continue
        model.eval()
        with torch.no_grad():
            value = criterion(model(x_val), y_val).item()
        if value < best:
            best, best_state, waited = value, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
        ticks.append(clock())
    if not validate:
        return steps
    model.load_state_dict(best_state)
    with torch.no_grad():
        criterion(model(x_test), y_test).item()
    return steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    data = workload()
    pairs = (("riskmin", "hand_val"), ("riskmin_loop", "hand_fused"), ("riskmin", "hand"), ("riskmin", "dataloader"))
    print(f"overhead: 20-64-64-1 MLP, 20,000 rows, Adam, {args.epochs} epochs, median of {args.repeats}, {args.clock} clock; "
          f"{machine()}")
    names = ("riskmin", "riskmin_loop", "hand", "hand_fused", "hand_val", "dataloader")
    print(f"{'batch':>5}  {'measure':>14}  " + "  ".join(f"{name:>12}" for name in names) + "   (steps/s)   "
          + "  ".join(f"{a} / {b}" for a, b in pairs))
    for batch_size in (64, 256):
        short, long = contestants(data, batch_size, args.epochs), contestants(data, batch_size, 2 * args.epochs)
        seconds = alternate({**{(name, 1): c for name, c in short.items()}, **{(name, 2): c for name, c in long.items()}},
                            args.repeats, clock)
        # per step: a fit of 2n steps takes 2n s2, one of n steps n s1; the n added steps cost 2 s2 - s1 each
        whole = {name: 1.0 / seconds[name, 1] for name in short}
        added = {name: 1.0 / (2 * seconds[name, 2] - seconds[name, 1]) for name in short}
        for measure, rate in (("whole fit", whole), ("per added step", added)):
            print(f"{batch_size:>5}  {measure:>14}  " + "  ".join(f"{rate[name]:>12.0f}" for name in names) + "   "
                  + "  ".join(f"{rate[a] / rate[b]:>.3f}x" for a, b in pairs))
        steady = steady_epochs(data, batch_size, 2 * args.epochs, args.repeats, clock)
        print(f"{batch_size:>5}  {'steady epoch':>14}  " + "  ".join(f"{steady.get(name, 0):>12.0f}" for name in names)
              + "   " + "  ".join(f"{steady[a] / steady[b]:>.3f}x" if b in steady else "" for a, b in pairs[:2]))


def steady_epochs(data: riskmin.Data, batch_size: int, epochs: int, repeats: int, clock) -> dict:
    """Steps per second within an epoch once training runs: each contestant's fastest epoch (its steps, and for
    riskmin and hand_val the validation that ends it) over `repeats` alternating fits of `epochs` epochs, by the
    steps of an epoch. The fastest, not the median: a neighbour only ever slows an epoch down."""
    work = Workload("overhead", "20-64-64-1 MLP", data, initialized(lambda: MLP(20, 1, hidden=(64, 64))), "mse", batch_size, epochs)
    runs = {"riskmin": lambda t: loop_alone(work, t, val=0.1, clock=clock), "riskmin_loop": lambda t: loop_alone(work, t, clock=clock),
            "hand_fused": lambda t: validating_hand_loop(work, ticks=t, validate=False, clock=clock),
            "hand_val": lambda t: validating_hand_loop(work, ticks=t, clock=clock)}
    fastest = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            ticks = []
            run(ticks)
            seconds = min(b - a for a, b in zip(ticks[1:-1], ticks[2:]))  # the first epoch warms up: left out
            fastest[name] = min(fastest[name], seconds / -(-16_000 // batch_size))  # every contestant: 16,000 rows
    return {name: 1.0 / seconds for name, seconds in fastest.items()}


if __name__ == "__main__":
    main()
