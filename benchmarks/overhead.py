"""riskmin.fit against the loops people write by hand, on a 20 -> 64 -> 64 -> 1 MLP with 20,000 rows.

    python -m benchmarks.overhead [--repeats 5] [--epochs 3]

Contestants, each training the same model from the same initialization on the same
16,000 training rows with Adam:
  riskmin     fit() with validation every epoch, best-model tracking, early stopping and the progress bar on
  hand        a hand-written loop that permutes and slices tensors (no validation at all)
  hand_fused  the same with torch's fused Adam, which riskmin uses: the ratio to it is the loop's own cost
  dataloader  the DataLoader(TensorDataset) loop, reading loss.item() every batch
Prints steps per second and riskmin's ratio to each (above 1.0: riskmin is faster).
"""

from __future__ import annotations

import argparse

import torch

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
    """riskmin, the hand loops and the DataLoader loop of benchmarks/peers.py, on this workload."""
    work = Workload("overhead", "20-64-64-1 MLP", data, initialized(lambda: MLP(20, 1, hidden=(64, 64))), "mse", batch_size, epochs)
    return peer_contestants(work, peers=False, fused_hand=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = workload()
    print(f"overhead: 20-64-64-1 MLP, 20,000 rows, Adam, {args.epochs} epochs, median of {args.repeats}; {machine()}")
    print(f"{'batch':>5}  {'riskmin':>8}  {'hand':>8}  {'hand_fused':>10}  {'dataloader':>10}  "
          f"{'vs hand':>8}  {'vs hand_fused':>13}  {'vs dataloader':>13}   (steps/s)")
    for batch_size in (64, 256):
        seconds = alternate(contestants(data, batch_size, args.epochs), args.repeats)
        rate = {name: 1.0 / s for name, s in seconds.items()}
        print(f"{batch_size:>5}  {rate['riskmin']:>8.0f}  {rate['hand']:>8.0f}  {rate['hand_fused']:>10.0f}  {rate['dataloader']:>10.0f}  "
              f"{rate['riskmin'] / rate['hand']:>7.2f}x  {rate['riskmin'] / rate['hand_fused']:>12.2f}x  "
              f"{rate['riskmin'] / rate['dataloader']:>12.2f}x")


if __name__ == "__main__":
    main()
