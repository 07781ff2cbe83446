"""A learning curve against one Monte-Carlo experiment at its largest size.

    python -m benchmarks.curve [--runs 50] [--repeats 3]

`riskmin.curve("two_layer", "lab1", runs=50)` (the default sizes, 0.1 to 1.0 evenly spaced in log n;
`--linear` takes 0.1, 0.325, 0.55, 0.775, 1.0 instead, as scikit-learn's learning_curve does) against
`riskmin.montecarlo("two_layer", "lab1", runs=50)`, both 20 epochs with patience 5 and the
default engine and threads, alternating in one process (medians). The curve trains five
experiments, four of them on fewer rows; its time over the one experiment's says what the
curve costs beyond the experiment a user would run anyway.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import riskmin

from .common import machine

SETTINGS = dict(epochs=20, patience=5, progress=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--linear", action="store_true", help="sizes evenly spaced in n instead of log n")
    args = parser.parse_args(argv)
    sizes = (0.1, 0.325, 0.55, 0.775, 1.0) if args.linear else riskmin.curve.__defaults__[0]
    contestants = {"curve": lambda: riskmin.curve("two_layer", "lab1", sizes, runs=args.runs, **SETTINGS),
                   "montecarlo": lambda: riskmin.montecarlo("two_layer", "lab1", runs=args.runs, **SETTINGS)}
    times = {name: [] for name in contestants}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        contestants["montecarlo"]()  # torch's one-time start-up, paid by neither
        for _ in range(args.repeats):
            for name, contestant in contestants.items():
                start = time.perf_counter()
                contestant()
                times[name].append(time.perf_counter() - start)
    curve, experiment = (statistics.median(times[name]) for name in contestants)
    print(f"learning curve of two_layer on lab1, sizes {', '.join(f'{v:g}' for v in sizes)} x {args.runs} runs, against one {args.runs}-run experiment at the "
          f"largest size; median of {args.repeats}; {machine()}")
    print(f"  curve {curve:.2f} s   montecarlo {experiment:.2f} s   curve / montecarlo {curve / experiment:.2f}x")


if __name__ == "__main__":
    main()
