"""What a person sees: the end-of-run summary table and the loss curves."""

from __future__ import annotations

from pathlib import Path


def summary_table(summary: dict, console) -> None:
    from rich.table import Table

    table = Table(title="riskmin run", show_header=True)
    table.add_column("")
    table.add_column("value", justify="right")
    rows = [("best epoch", summary["best_epoch"]), ("epochs run", summary["epochs_run"]), ("steps", summary["steps"])]
    for key, value in summary.items():
        if key.split("_", 1)[0] in ("train", "val", "test") and value is not None:
            rows.append((key.replace("_", " "), f"{value:.6g}"))
    if summary.get("closed_form_test_loss") is not None:
        rows.append(("closed-form least-squares test loss", f"{summary['closed_form_test_loss']:.6g}"))
    rows.append(("seconds", f"{summary['seconds']:.2f}"))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
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
