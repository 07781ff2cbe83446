"""How often a learning curve's corrected intervals hold the expected risk, size by size.

    python -m benchmarks.curve_coverage [--samples 300] [--sizes 0.1,0.3,0.6,1.0] [--runs 10] [--epochs 30]

Each sample is lab1 drawn afresh (data_seed 2000 + s); `riskmin.curve("linear", ...)` trains
--runs runs at each size on it. The expected risk at a size is taken as the mean test loss over
all samples (its own Monte-Carlo error is about sd / sqrt(samples)). Beside the intervals the
curve reports (every size corrected with the full split's n_test/n_train), it recomputes them
with a size's own n_test/n_train and with a correlation taken in proportion to the size, from
the same runs: the three rules the README compares. About 10 minutes at the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import statistics
import warnings


def interval(mean: float, se: float, quantile: float) -> tuple:
    """The log-scale interval a summary gives a test loss: mean x exp(+-t se / mean)."""
    return mean * math.exp(-quantile * se / mean), mean * math.exp(quantile * se / mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--sizes", default="0.1,0.3,0.6,1.0")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    import riskmin
    from riskmin.stats import t_quantile

    warnings.simplefilter("ignore")
    sizes = [float(size) for size in args.sizes.split(",")]
    rows = []
    for sample in range(args.samples):
        data = riskmin.load("lab1", riskmin.Config(data_seed=2000 + sample))
        curve = riskmin.curve("linear", data, sizes=sizes, runs=args.runs, epochs=args.epochs, progress=False,
                              threads="1")
        rows += curve.table
    quantile, r = t_quantile(0.975, args.runs - 1), args.runs
    full = max(row["n_train"] for row in rows)
    print(f"coverage of the expected risk over {args.samples} lab1 samples, linear, {args.runs} runs a size")
    print(f"{'n_train':>8}{'full ratio':>12}{'own ratio':>11}{'in proportion':>15}{'sd of means':>13}{'mean se':>9}")
    for size in sizes:
        at = [row for row in rows if row["size"] == size]
        truth = statistics.mean(row["test_loss"] for row in at)
        n_train, n_test = at[0]["n_train"], at[0]["n_test"]
        full_ratio = n_test / full
        rho = (n_train / full) * n_test / (n_test + full)  # the full split's correlation, in proportion to the size
        ratios = {"full": full_ratio, "own": n_test / n_train, "proportion": rho / (1 - rho)}
        covered = dict.fromkeys(ratios, 0)
        for row in at:
            for name, ratio in ratios.items():  # the same runs' spread, another correction
                se = row["test_loss_se"] * math.sqrt((1 / r + ratio) / (1 / r + full_ratio))
                low, high = interval(row["test_loss"], se, quantile)
                covered[name] += low <= truth <= high
        share = {name: f"{count / len(at):.1%}" for name, count in covered.items()}
        spread = statistics.stdev(row["test_loss"] for row in at)
        print(f"{n_train:>8.0f}{share['full']:>12}{share['own']:>11}{share['proportion']:>15}{spread:>13.4f}"
              f"{statistics.mean(row['test_loss_se'] for row in at):>9.4f}")


if __name__ == "__main__":
    main()
