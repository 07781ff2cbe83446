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
import contextlib
import io

import torch
from torch.utils.data import DataLoader, TensorDataset

import riskmin
from riskmin.models import MLP

from .common import alternate, machine


def workload(rows=20_000, features=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=generator)
    y = torch.sin(x[:, :1]) + 0.1 * torch.randn(rows, 1, generator=generator)
    return riskmin.Data(x, y, name="bench")


def contestants(data: riskmin.Data, batch_size: int, epochs: int) -> dict:
    splits = riskmin.split(data, val=0.1, test=0.1, seed=0)
    x_train, y_train = data.x[splits.train], data.y[splits.train]
    torch.manual_seed(0)
    initial = MLP(20, 1, hidden=(64, 64)).state_dict()

    def fresh():
        model = MLP(20, 1, hidden=(64, 64))
        model.load_state_dict(initial)
        return model

    def with_riskmin():
        with contextlib.redirect_stderr(io.StringIO()):  # the progress bar runs, but off screen
            run = riskmin.fit(fresh(), splits, epochs=epochs, batch_size=batch_size, lr=1e-3, optimizer="adam",
                              patience=epochs, standardize=False, progress=True,
                              threads=str(torch.get_num_threads()))  # the same threads as the other contestants
        return run.summary["steps"]

    def hand_written(fused=False):
        model = fresh()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
        generator = torch.Generator().manual_seed(0)
        steps = 0
        for _ in range(epochs):
            order = torch.randperm(len(x_train), generator=generator)
            xs, ys = x_train[order], y_train[order]
            for i in range(0, len(xs), batch_size):
                loss = torch.nn.functional.mse_loss(model(xs[i:i + batch_size]), ys[i:i + batch_size])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
        return steps

    def dataloader():
        model = fresh()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)
        criterion = torch.nn.MSELoss()
        steps = 0
        for _ in range(epochs):
            total = 0.0
            for xb, yb in loader:
                loss = criterion(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
                steps += 1
        return steps

    return {"riskmin": with_riskmin, "hand": hand_written, "hand_fused": lambda: hand_written(fused=True), "dataloader": dataloader}


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
