"""riskmin.fit against the loops people write by hand, on a 20 -> 64 -> 64 -> 1 MLP with 20,000 rows.

    python -m benchmarks.overhead [--repeats 5] [--epochs 3]

Contestants, each training the same model from the same initialization on the same
16,000 training rows with Adam:
  riskmin     fit() with validation every epoch, best-model tracking, early stopping and the progress bar on
  hand        a hand-written loop that permutes and slices tensors (no validation at all)
  hand_fused  the same with torch's fused Adam, which riskmin uses: the ratio to it is the loop's own cost
  hand_val    hand_fused plus what riskmin does around the steps by default: the validation loss every epoch, a copy
              of the best weights, early stopping, the best weights restored and the test loss at the end
  dataloader  the DataLoader(TensorDataset) loop, reading loss.item() every batch
Prints steps per second and riskmin's ratio to each (above 1.0: riskmin is faster), twice: for the whole
fit of `--epochs` epochs (setup, validation, final metrics and all), and per added step, the difference
between fits of 2x and 1x `--epochs` epochs divided by the difference in steps: what each step costs once
the fixed costs of a fit (riskmin's final train/val/test metrics among them, which the hand loops skip)
are paid.
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

import riskmin
from riskmin.models import MLP

from .common import alternate, machine
from .peers import Workload, initialized, steps_per_epoch
from .peers import contestants as peer_contestants


def workload(rows=20_000, features=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=generator)
    y = torch.sin(x[:, :1]) + 0.1 * torch.randn(rows, 1, generator=generator)
    return riskmin.Data(x, y, name="bench")


def contestants(data: riskmin.Data, batch_size: int, epochs: int) -> dict:
    """riskmin, the hand loops and the DataLoader loop of benchmarks/peers.py, and the validating hand loop, on this workload."""
    work = Workload("overhead", "20-64-64-1 MLP", data, initialized(lambda: MLP(20, 1, hidden=(64, 64))), "mse", batch_size, epochs)
    return {**peer_contestants(work, peers=False, fused_hand=True), "hand_val": lambda: validating_hand_loop(work)}


def validating_hand_loop(work: Workload, patience: int = None) -> int:
    """The loop a careful person writes by hand: fused Adam, the validation loss after every epoch, the best weights
    kept and restored, early stopping, and the test loss at the end (riskmin's splits, without standardizing)."""
    splits = riskmin.split(work.data, val=0.1, test=0.1, seed=0)
    (x, y), (x_val, y_val), (x_test, y_test) = ((work.data.x[rows], work.data.y[rows]) for rows in (splits.train, splits.val, splits.test))
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
        model.eval()
        with torch.no_grad():
            value = criterion(model(x_val), y_val).item()
        if value < best:
            best, best_state, waited = value, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    model.load_state_dict(best_state)
    with torch.no_grad():
        criterion(model(x_test), y_test).item()
    return steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = workload()
    print(f"overhead: 20-64-64-1 MLP, 20,000 rows, Adam, {args.epochs} epochs, median of {args.repeats}; {machine()}")
    print(f"{'batch':>5}  {'measure':>14}  {'riskmin':>8}  {'hand':>8}  {'hand_fused':>10}  {'hand_val':>8}  {'dataloader':>10}  "
          f"{'vs hand':>8}  {'vs hand_fused':>13}  {'vs hand_val':>11}  {'vs dataloader':>13}   (steps/s)")
    for batch_size in (64, 256):
        short, long = contestants(data, batch_size, args.epochs), contestants(data, batch_size, 2 * args.epochs)
        seconds = alternate({**{(name, 1): c for name, c in short.items()}, **{(name, 2): c for name, c in long.items()}},
                            args.repeats)
        steps = steps_per_epoch(16_000, batch_size) * args.epochs  # the training split's rows: 80% of 20,000
        whole = {name: 1.0 / seconds[name, 1] for name in short}
        added = {name: steps / (2 * steps * seconds[name, 2] - steps * seconds[name, 1]) for name in short}
        for measure, rate in (("whole fit", whole), ("per added step", added)):
            print(f"{batch_size:>5}  {measure:>14}  {rate['riskmin']:>8.0f}  {rate['hand']:>8.0f}  {rate['hand_fused']:>10.0f}  "
                  f"{rate['hand_val']:>8.0f}  {rate['dataloader']:>10.0f}  {rate['riskmin'] / rate['hand']:>7.2f}x  "
                  f"{rate['riskmin'] / rate['hand_fused']:>12.2f}x  {rate['riskmin'] / rate['hand_val']:>10.2f}x  "
                  f"{rate['riskmin'] / rate['dataloader']:>12.2f}x")


if __name__ == "__main__":
    main()
