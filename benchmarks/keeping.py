"""What keeping an experiment's runs as they finish costs, and what gathering a large table costs.

    python -m benchmarks.keeping [--rounds 8] [--runs 1000] [--epochs 20] [--patience 5] [--engine auto] [--threads auto]
    python -m benchmarks.keeping --gather 100000 [--processes 8]

The first form times, in one process, round after round in the order A B B A, the experiment of
`riskmin montecarlo lab1 --runs 1000 --epochs 20 --patience 5` from Python, its files written at the end both times:
  kept      montecarlo(..., directory=D): each finished stack (or run) appended to kept/ and fsynced as it ends,
            the fingerprint of the data and every split computed first, the result written into D
  in memory montecarlo(...) then .save(D): the runs held in memory until the end, as before runs were kept
and prints the median, over rounds, of kept / in memory, in wall-clock and in this process' CPU time (which other
processes on a busy machine do not inflate), with the lowest and highest round; and, less noisy on a busy machine, the
time spent inside the keeping itself over the kept experiment's whole time.

The second form simulates the table of a 10^5-run experiment over several nodes: `processes` files of kept rows, as the
processes of a torchrun on a shared file system leave them, read back and turned into runs.csv and summary.json, and
the same rows encoded as the gather between processes sends them; each step is timed.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import riskmin

from .common import machine


def keeping(args) -> None:
    settings = dict(runs=args.runs, epochs=args.epochs, patience=args.patience, engine=args.engine, threads=args.threads,
                    progress=False)
    folder = Path(tempfile.mkdtemp(prefix="riskmin-keeping-"))
    count = iter(range(10 ** 6))

    def kept():
        riskmin.montecarlo("two_layer", "lab1", directory=folder / f"kept-{next(count)}", **settings)

    def in_memory():
        riskmin.montecarlo("two_layer", "lab1", **settings).save(folder / f"memory-{next(count)}")

    def timed(contestant) -> tuple:
        wall, cpu = time.perf_counter(), time.process_time()
        contestant()
        return time.perf_counter() - wall, time.process_time() - cpu

    inside = watch_keeping()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept(), in_memory()  # warm-up: the first calls pay for imports and lazy initialization
        ratios, shares = {"wall": [], "cpu": []}, []
        for _ in range(args.rounds):
            inside.clear()
            a1, b1, b2, a2 = timed(kept), timed(in_memory), timed(in_memory), timed(kept)
            for i, clock in enumerate(("wall", "cpu")):
                ratios[clock].append((a1[i] + a2[i]) / (b1[i] + b2[i]))
            shares.append(sum(inside) / (a1[0] + a2[0]))
    shutil.rmtree(folder, ignore_errors=True)
    print(f"{machine()}; montecarlo lab1 --runs {args.runs} --epochs {args.epochs} --patience {args.patience} "
          f"--engine {args.engine} --threads {args.threads}, {args.rounds} rounds A B B A")
    for clock, values in ratios.items():
        print(f"  kept / in memory, {clock:4}: median {statistics.median(values):.3f} (rounds {min(values):.3f} to {max(values):.3f})")
    print(f"  time inside keeping (the fingerprint, the folder, appending and fsyncing rows, tidying up) over the kept "
          f"experiment's: median {statistics.median(shares):.2%} (rounds {min(shares):.2%} to {max(shares):.2%})")


def watch_keeping() -> list:
    """Time spent in the Keeper's own work, each call's seconds appended to the list returned: opening the folder (the
    fingerprint of the data and every split included), keeping rows, and tidying up after the result is written (the
    result's own files, which the in-memory contestant writes too, are not counted)."""
    from riskmin._experiments._kept import Keeper

    spent = []

    def timed(method, result_files=False):
        def run(self, *args, **kwargs):
            start = time.perf_counter()
            if result_files:  # the save(folder) inside is the result's files: time them apart and leave them out
                save, saving = args[0], []

                def save_timed(folder):
                    begin = time.perf_counter()
                    save(folder)
                    saving.append(time.perf_counter() - begin)
                value = method(self, save_timed, *args[1:], **kwargs)
                spent.append(time.perf_counter() - start - sum(saving))
                return value
            value = method(self, *args, **kwargs)
            spent.append(time.perf_counter() - start)
            return value
        return run

    Keeper.open, Keeper.keep, Keeper.finished = timed(Keeper.open), timed(Keeper.keep), timed(Keeper.finished, True)
    return spent


def gather(args) -> None:
    from riskmin._experiments._kept import read_kept
    from riskmin._runs._rundir import history_csv
    from riskmin.stats import summarize

    folder = Path(tempfile.mkdtemp(prefix="riskmin-gather-")) / "kept"
    folder.mkdir()
    metrics = ("train_loss", "val_loss", "test_loss", "test_mse", "test_rmse", "test_mae", "test_r2")
    rows = [{"variant": 0, "run": r, "seed": r, "best_epoch": 17, "epochs_run": 22, "stopped_early": True, "diverged": False,
             **{name: 0.3 + 1e-6 * r + 1e-3 * i for i, name in enumerate(metrics)}} for r in range(args.gather)]
    timings = {}
    start = time.perf_counter()
    for rank in range(args.processes):  # each process appends its own rows, a line each
        with open(folder / f"process-{rank}.jsonl", "w") as file:
            file.writelines(json.dumps({"group": 0, "row": row}) + "\n" for row in rows[rank::args.processes])
    timings["write the kept lines (all processes together)"] = time.perf_counter() - start
    start = time.perf_counter()
    kept = read_kept(folder)
    timings["read them back (process 0, on resume or at the end)"] = time.perf_counter() - start
    table = sorted(kept.values(), key=lambda row: row["run"])
    start = time.perf_counter()
    summary = summarize(table, 800.0, 100.0, None, n_val=100.0)
    timings["statistics over the runs"] = time.perf_counter() - start
    start = time.perf_counter()
    text = history_csv(table)
    timings["runs.csv as text"] = time.perf_counter() - start
    start = time.perf_counter()
    sent = [pickle.dumps(rows[rank::args.processes]) for rank in range(args.processes)]
    received = [row for share in sent for row in pickle.loads(share)]
    timings["encode and decode every share, as all_gather_object does"] = time.perf_counter() - start
    assert len(received) == len(table) == args.gather and summary["runs"] if "runs" in summary else True
    size = sum(path.stat().st_size for path in folder.iterdir())
    shutil.rmtree(folder.parent, ignore_errors=True)
    print(f"{machine()}; a table of {args.gather} runs from {args.processes} processes: kept lines {size / 1e6:.1f} MB, "
          f"runs.csv {len(text) / 1e6:.1f} MB, gathered {sum(map(len, sent)) / 1e6:.1f} MB")
    for what, seconds in timings.items():
        print(f"  {what}: {seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--threads", default="auto", help="intra-op threads of the runs (auto: each stack measures its own)")
    parser.add_argument("--gather", type=int, default=0, help="simulate the table of this many runs instead")
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()
    gather(args) if args.gather else keeping(args)


if __name__ == "__main__":
    main()
