"""RiskminRegressor.fit against riskmin.fit and skorch's NeuralNetRegressor, on a 10,000-row NumPy array.

    python -m benchmarks.sklearn [--repeats 5] [--epochs 10] [--threads 1] [--quick]

Every contestant trains the same 20 -> 64 -> 1 MLP from the same initialization with Adam at
lr 1e-3, batch 64, holding out 10% of the rows to validate after every epoch:
  estimator  RiskminRegressor(...).fit(X, y) on the float64 NumPy arrays a scikit-learn user has
  fit        riskmin.fit on the same rows as float32 tensors, with the same split, seed and settings
  skorch     NeuralNetRegressor with ValidSplit(10) (10% held out) on float32 arrays, as its users pass them
Contestants alternate inside one process after a warm-up round, each round starting with the next
one; each reports the median seconds of one whole fit, and the ratios are medians of the ratios
within a round, which cancels load that changes between rounds (the machine may be shared).
Targets: the estimator within 10% of fit, and at least 2x faster than skorch.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import time

import numpy as np
import torch
from torch import nn

import riskmin
from riskmin.models import MLP
from riskmin.sklearn import RiskminRegressor

from .common import machine
from .peers import initialized

ROWS, FEATURES, HIDDEN, BATCH, LR = 10_000, 20, 64, 64, 1e-3


def arrays(seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((ROWS, FEATURES))
    return x, np.sin(x[:, 0]) + 0.1 * rng.standard_normal(ROWS)


def contestants(x: np.ndarray, y: np.ndarray, epochs: int) -> dict:
    make = initialized(lambda: MLP(FEATURES, 1, hidden=(HIDDEN,)))
    threads = str(torch.get_num_threads())
    settings = dict(lr=LR, epochs=epochs, batch_size=BATCH, patience=epochs, optimizer="adam")  # patience: never stop early
    tensors = (torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))

    def estimator():
        RiskminRegressor(model=lambda n_inputs, n_outputs: make(), val=0.1, random_state=0, config={"threads": threads},
                         **settings).fit(x, y)
        return 1

    def fit():
        riskmin.fit(make(), tensors, val=0.1, test=0.0, seed=0, device="cpu", threads=threads, progress=False, **settings)
        return 1

    found = {"estimator": estimator, "fit": fit}
    try:
        import skorch
    except ImportError:
        return found
    x32, y32 = x.astype(np.float32), y.astype(np.float32)[:, None]

    def with_skorch():
        skorch.NeuralNetRegressor(make(), max_epochs=epochs, batch_size=BATCH, optimizer=torch.optim.Adam, lr=LR,
                                  criterion=nn.MSELoss, train_split=skorch.dataset.ValidSplit(10), verbose=0).fit(x32, y32)
        return 1

    found["skorch"] = with_skorch
    return found


def rounds(contestants: dict, repeats: int) -> dict:
    """Seconds of every contestant in each of `repeats` rounds, after a warm-up round; each round starts with the next
    contestant in turn, so that none always follows the long skorch fit, and collects garbage before each fit."""
    names = list(contestants)
    for contestant in contestants.values():
        contestant()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            start = time.perf_counter()
            contestants[name]()
            times[name].append(time.perf_counter() - start)
    return times


def paired(times: dict, a: str, b: str) -> float:
    """The median over rounds of a's time over b's in the same round: load that changes from round to round cancels."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="6 rounds of 3 epochs: a first look, noisier")
    args = parser.parse_args(argv)
    repeats, epochs = (6, 3) if args.quick else (args.repeats, args.epochs)
    torch.set_num_threads(args.threads)
    x, y = arrays()
    steps = epochs * math.ceil(0.9 * ROWS / BATCH)
    print(f"one fit of a {FEATURES}-{HIDDEN}-1 MLP on {ROWS:,} rows, {epochs} epochs ({steps} steps), median of {repeats}, "
          f"alternating; {machine()}")
    times = rounds(contestants(x, y, epochs), repeats)
    for name, values in times.items():
        print(f"{name:<10} {statistics.median(values):8.3f} s  (rounds: {', '.join(f'{v:.3f}' for v in values)})")
    print(f"estimator / fit     {paired(times, 'estimator', 'fit'):.3f}   (median of the rounds' ratios; target: at most 1.10)")
    if "skorch" in times:
        print(f"skorch / estimator  {paired(times, 'skorch', 'estimator'):.2f}x  (target: at least 2x)")
    else:
        print("note: skorch is not installed, so it was skipped; pip install -e '.[bench]' adds it")


if __name__ == "__main__":
    main()
