"""riskmin against the loops people write and the libraries they reach for, on four workloads, per optimizer step.

    python -m benchmarks [--repeats 5] [--threads 1] [--only W1,W2] [--device cuda]

Workloads (in-memory data, Adam at lr 1e-3; on the CPU unless --device says otherwise):
  W1  32 -> 64 -> 1 MLP, batch 64, 4,096 rows               (tiny model: the loop's own overhead)
  W2  20 -> 64 -> 64 -> 1 MLP, batch 256, 20,000 rows
  W3  linear on lab1 (10 -> 2), full batch, 1,000 rows
  W4  784 -> 256 -> 256 -> 10 classifier, cross entropy, batch 128, 10,000 rows (compute starts to matter)
Contestants, each training the same model from the same initialization on the same training rows:
  riskmin     fit() with validation every epoch, best-model tracking, early stopping and the progress bar on
  hand        a hand-written loop that permutes and slices tensors (no validation at all)
  dataloader  the DataLoader(TensorDataset) loop, reading loss.item() every batch
  lightning   a LightningModule and Trainer, no validation, logging, checkpointing or progress bar
  skorch      NeuralNetRegressor or NeuralNetClassifier with no internal validation split
Lightning and skorch come from the `bench` extra (pip install -e ".[bench]"); a missing one is
skipped with a note. Contestants alternate inside one process, after a warm-up round, and each
reports the median of `repeats` rounds, so a noisy neighbour slows them all alike.
With --device cuda, riskmin and the hand loop hold the rows on the GPU. The DataLoader loop,
Lightning and skorch move each batch there, as their users' code does. Each contestant waits
for the GPU before its time is taken.
Prints microseconds per step and riskmin's speed relative to each (above 1.0: riskmin is faster).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import riskmin
from riskmin.models import MLP

from .common import alternate, machine


@dataclass
class Workload:
    name: str
    description: str
    data: riskmin.Data
    make: callable  # a fresh model, same initialization every time
    loss: str
    batch_size: int  # 0: the whole training split
    epochs: int


def initialized(build):
    """A maker of fresh models from `build` that all start from the same weights."""
    torch.manual_seed(0)
    state = build().state_dict()

    def make():
        model = build()
        model.load_state_dict(state)
        return model
    return make


def workloads() -> dict:
    generator = torch.Generator().manual_seed(0)

    def regression(rows, features):
        x = torch.randn(rows, features, generator=generator)
        return riskmin.Data(x, torch.sin(x[:, :1]) + 0.1 * torch.randn(rows, 1, generator=generator))

    digits_like = torch.randn(10_000, 784, generator=generator)
    teacher = torch.randn(784, 10, generator=generator)
    w4 = riskmin.Data(digits_like, (digits_like @ teacher).argmax(1))

    return {
        "W1": Workload("W1", "32-64-1 MLP, batch 64, 4,096 rows", regression(4096, 32), initialized(lambda: MLP(32, 1, hidden=(64,))), "mse", 64, 6),
        "W2": Workload("W2", "20-64-64-1 MLP, batch 256, 20,000 rows", regression(20_000, 20), initialized(lambda: MLP(20, 1, hidden=(64, 64))), "mse", 256, 3),
        "W3": Workload("W3", "linear on lab1, full batch", riskmin.load("lab1"), initialized(lambda: riskmin.models.Linear(10, 2)), "mse", 0, 300),
        "W4": Workload("W4", "784-256-256-10 classifier, batch 128, 10,000 rows", w4, initialized(lambda: MLP(784, 10, hidden=(256, 256))),
                       "cross_entropy", 128, 4),
    }


def steps_per_epoch(rows: int, batch_size: int) -> int:
    return math.ceil(rows / batch_size) if batch_size else 1


def contestants(work: Workload, peers: bool = True, fused_hand: bool = False, device: str = "cpu") -> dict:
    """The contestants on `work`; `fused_hand` adds the hand loop with torch's fused Adam, the one riskmin uses."""
    splits = riskmin.split(work.data, val=0.1, test=0.1, seed=0)
    x, y = work.data.x[splits.train], work.data.y[splits.train]
    held = (x.to(device), y.to(device))  # the rows where riskmin and the hand loop keep them
    batch = work.batch_size or len(x)
    criterion = nn.MSELoss() if work.loss == "mse" else nn.CrossEntropyLoss()
    steps = work.epochs * steps_per_epoch(len(x), batch)

    def with_riskmin():
        with contextlib.redirect_stderr(io.StringIO()):  # the progress bar runs, but off screen
            run = riskmin.fit(work.make(), splits, epochs=work.epochs, batch_size=work.batch_size, lr=1e-3, optimizer="adam",
                              loss=work.loss, patience=work.epochs, standardize=False, progress=True,
                              threads=str(torch.get_num_threads()), device=device)  # the same threads as the other contestants
        return run.summary["steps"]

    def hand(fused=False):
        model = work.make().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
        generator = torch.Generator().manual_seed(0)
        for _ in range(work.epochs):
            order = torch.randperm(len(x), generator=generator).to(device)
            xs, ys = held[0][order], held[1][order]
            for i in range(0, len(xs), batch):
                loss = criterion(model(xs[i:i + batch]), ys[i:i + batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return finished(steps, device)

    def dataloader():
        model = work.make().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
        for _ in range(work.epochs):
            total = 0.0
            for xb, yb in loader:
                loss = criterion(model(xb.to(device)), yb.to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
        return finished(steps, device)

    found = {"riskmin": with_riskmin, "hand": hand, "dataloader": dataloader}
    if fused_hand:
        found["hand_fused"] = lambda: hand(fused=True)
    if not peers:
        return found
    peer = lightning_contestant(work, x, y, batch, criterion, steps, device)
    if peer:
        found["lightning"] = peer
    peer = skorch_contestant(work, x, y, batch, steps, device)
    if peer:
        found["skorch"] = peer
    return found


def finished(steps: int, device: str) -> int:
    """`steps`, once the device has done all it was given: GPU work is queued, and the clock must wait for it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps


def lightning_contestant(work, x, y, batch, criterion, steps, device="cpu"):
    try:
        import lightning
    except ImportError:
        return None
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    class Module(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = work.make()

        def training_step(self, batch_rows, index):
            xb, yb = batch_rows
            return criterion(self.model(xb), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    def run():
        trainer = lightning.Trainer(max_epochs=work.epochs, accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1, logger=False, enable_checkpointing=False,
                                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its advice on DataLoader workers
            trainer.fit(Module(), DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True))
        return finished(trainer.global_step, device)
    return run


def skorch_contestant(work, x, y, batch, steps, device="cpu"):
    try:
        import skorch
    except ImportError:
        return None

    def run():
        kind = skorch.NeuralNetRegressor if work.loss == "mse" else skorch.NeuralNetClassifier
        net = kind(work.make(), max_epochs=work.epochs, batch_size=batch, optimizer=torch.optim.Adam, lr=1e-3,
                   criterion=nn.MSELoss if work.loss == "mse" else nn.CrossEntropyLoss, train_split=None, verbose=0, device=device)
        net.fit(x, y)
        return finished(steps, device)
    return run


PEERS = ("lightning", "skorch")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="W1,W2,W3,W4", help="workloads to run, comma separated")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to run every contestant on the GPU")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device} needs a CUDA GPU and a torch built for it; this one has none")
    torch.set_num_threads(args.threads)
    chosen = [name.strip() for name in args.only.split(",")]
    print(f"per-step time, median of {args.repeats}, alternating, on {args.device}; {machine()}")
    names = ["riskmin", "hand", "dataloader", *PEERS]
    print(f"{'':3} {'':50}" + "".join(f"{n:>11}" for n in names) + "   riskmin's speed relative to each")
    missing = set()
    for name, work in workloads().items():
        if name not in chosen:
            continue
        seconds = alternate(contestants(work, device=args.device), args.repeats)
        missing |= set(PEERS) - set(seconds)
        times = "".join(f"{seconds[n] * 1e6:9.0f}us" if n in seconds else f"{'-':>11}" for n in names)
        ratios = "  ".join(f"{n} {seconds[n] / seconds['riskmin']:.2f}x" for n in names[1:] if n in seconds)
        print(f"{name:3} {work.description:50}{times}   {ratios}")
    for peer in sorted(missing):
        print(f"note: {peer} is not installed, so it was skipped; pip install -e '.[bench]' adds it")


if __name__ == "__main__":
    main()
