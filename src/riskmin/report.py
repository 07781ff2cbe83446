"""What a person sees: the end-of-run summary table and the loss curves."""

from __future__ import annotations

from pathlib import Path


def summary_table(summary: dict, console) -> None:
    """The run at a glance: one row per metric, one column per split, then how the run went."""
    from rich.table import Table

    parts = ("train", "val", "test")
    metrics = list(dict.fromkeys(key.split("_", 1)[1] for key, value in summary.items()
                                 if key.split("_", 1)[0] in parts and "_" in key and value is not None))
    table = Table(title="riskmin run", show_header=True)
    table.add_column("")
    shown = [part for part in parts if summary.get(f"{part}_loss") is not None]
    for part in shown:
        table.add_column(part, justify="right")
    for metric in metrics:
        table.add_row(metric.replace("_", " "), *(f"{summary[f'{part}_{metric}']:.6g}" if summary.get(f"{part}_{metric}") is not None
                                                  else "-" for part in shown))
    if summary.get("closed_form_test_loss") is not None:
        table.add_row("closed-form least squares", *(f"{summary['closed_form_test_loss']:.6g}" if part == "test" else "" for part in shown))
    console.print(table)
    console.print(f"best epoch {summary['best_epoch']} of {summary['epochs_run']}, {summary['steps']} steps, {summary['seconds']:.2f} s",
                  highlight=False)
    if summary["stop_reason"]:
        console.print(summary["stop_reason"], highlight=False)


def montecarlo_table(summary: dict, console) -> None:
    from rich.table import Table

    table = Table(title=f"riskmin Monte-Carlo: {summary['runs']} runs, {summary['engine']} engine, {summary['seconds']:.1f} s")
    for column in ("metric", "mean", "std", "95% CI of the mean"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, d in summary["metrics"].items():
        interval = f"[{d['ci_low']:.5g}, {d['ci_high']:.5g}]" if d["ci_low"] is not None else "-"
        table.add_row(name.replace("_", " "), f"{d['mean']:.5g}", f"{d['std']:.3g}" if d["std"] is not None else "-", interval)
    console.print(table)


def plot_montecarlo(table: list, path: Path) -> None:
    """The distribution of the test loss over runs, and train against test loss run by run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = [row["test_loss"] for row in table if row.get("test_loss") is not None]
    train = [row["train_loss"] for row in table if row.get("test_loss") is not None]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.hist(test, bins=min(30, max(5, len(test) // 3)))
    left.set_xlabel("test loss")
    left.set_ylabel("runs")
    right.scatter(train, test, s=12)
    if test:
        low, high = min(train + test), max(train + test)
        right.plot([low, high], [low, high], color="gray", linewidth=1, label="test = train")
        right.legend()
    right.set_xlabel("train loss")
    right.set_ylabel("test loss")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_curves(history: list, path: Path) -> None:
    """Training and validation loss against epoch, on a log scale when they span a wide range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    epochs = [row["epoch"] for row in history]
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            axis.plot(epochs, values, label=label)
    positive = [row[k] for row in history for k in ("loss", "val_loss") if row.get(k)]
    if positive and min(positive) > 0 and max(positive) / min(positive) > 100:
        axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
