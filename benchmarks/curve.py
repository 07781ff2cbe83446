"""A learning curve against one Monte-Carlo experiment at its largest size.

    python -m benchmarks.curve [--runs 50] [--repeats 5] [--threads auto]

`riskmin.curve("two_layer", "lab1", runs=50)` (the default sizes, 0.1 to 1.0 evenly spaced in log n;
`--linear` takes 0.1, 0.325, 0.55, 0.775, 1.0 instead, as scikit-learn's learning_curve does) against
`riskmin.montecarlo("two_layer", "lab1", runs=50)`, both 20 epochs with patience 5 and the
default engine and threads (or `--threads`), alternating in one process (medians, and every
round's ratio for the spread). The curve trains five experiments, four of them on fewer rows;
its time over the one experiment's says what the curve costs beyond the experiment a user
would run anyway. Beside the wall-clock time, the process's CPU time: on a machine shared with
other work the wall clock of a single-threaded contestant moves with its neighbours' load, its
CPU time much less. Last, the work each did, counted from its runs: stacked steps (one step of
a stack, whatever its runs), run-steps (steps times the runs still in the stack) and validations.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import riskmin

from .common import machine

SETTINGS = dict(epochs=20, patience=5, progress=False)
SETTINGS_BATCH = riskmin.Config().batch_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", default="auto", help="intra-op threads of both contestants (auto: the default)")
    parser.add_argument("--linear", action="store_true", help="sizes evenly spaced in n instead of log n")
    args = parser.parse_args(argv)
    sizes = (0.1, 0.325, 0.55, 0.775, 1.0) if args.linear else riskmin.curve.__defaults__[0]
    settings = dict(SETTINGS, threads=args.threads)
    contestants = {"curve": lambda: riskmin.curve("two_layer", "lab1", sizes, runs=args.runs, **settings),
                   "montecarlo": lambda: riskmin.montecarlo("two_layer", "lab1", runs=args.runs, **settings)}
    times = {name: [] for name in contestants}
    cpu = {name: [] for name in contestants}
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        contestants["montecarlo"]()  # torch's one-time start-up, paid by neither
        for _ in range(args.repeats):
            for name, contestant in contestants.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                results[name] = contestant()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    curve, experiment = (statistics.median(times[name]) for name in contestants)
    curve_cpu, experiment_cpu = (statistics.median(cpu[name]) for name in contestants)
    rounds = lambda measured: " ".join(f"{c / m:.2f}" for c, m in zip(measured["curve"], measured["montecarlo"]))  # noqa: E731
    experiments = {"curve": list(results["curve"].results["two_layer"].values()), "montecarlo": [results["montecarlo"]]}
    print(f"learning curve of two_layer on lab1, sizes {', '.join(f'{v:g}' for v in sizes)} x {args.runs} runs, against one {args.runs}-run experiment at the "
          f"largest size; median of {args.repeats}; {machine()}")
    print(f"  wall: curve {curve:.2f} s   montecarlo {experiment:.2f} s   curve / montecarlo {curve / experiment:.2f}x   "
          f"(rounds {rounds(times)})")
    print(f"  CPU:  curve {curve_cpu:.2f} s   montecarlo {experiment_cpu:.2f} s   curve / montecarlo {curve_cpu / experiment_cpu:.2f}x   "
          f"(rounds {rounds(cpu)}; threads {args.threads})")
    work = {name: work_done(mcs, args.runs) for name, mcs in experiments.items()}
    print("  work: " + "   ".join(f"{label} {work['curve'][i]} against {work['montecarlo'][i]} ({work['curve'][i] / work['montecarlo'][i]:.2f}x)"
                                  for i, label in enumerate(("stacked steps", "run-steps", "validations"))))


def work_done(experiments: list, runs: int) -> tuple:
    """(stacked steps, run-steps, validations) of Monte-Carlo experiments, from their runs' epochs: a stack steps every
    batch of every epoch until its last run stops, and validates once an epoch."""
    steps = run_steps = validations = 0
    for mc in experiments:
        batches = math.ceil(mc.summary["n_train"] / SETTINGS_BATCH)
        epochs = [row["epochs_run"] for row in mc.table]
        steps, run_steps, validations = steps + batches * max(epochs), run_steps + batches * sum(epochs), validations + max(epochs)
    return steps, run_steps, validations


if __name__ == "__main__":
    main()
