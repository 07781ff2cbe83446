"""Run directories: where a run is written, its files written atomically, and a finished run read back.

    runs/<name>/  config.toml, metrics.csv, model.safetensors, preprocessing.json, curves.png,
                  summary.json (written last: its presence means the run finished), checkpoint/

Nothing is ever unpickled on load: tensors come from safetensors, structure from JSON and TOML.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path

from safetensors.torch import save

from . import models
from .files import RunLock, atomic_write, fsync_directory, load_tensors
from .config import Config, RiskminError
from .data import Standardizer

RUN_FILES = ("config.toml", "metrics.csv", "model.safetensors", "summary.json", "preprocessing.json")


def run_directory(config: Config, data_name: str) -> Path:
    """The directory a run will be written to: `out/name`, or `out/<data>-<model>[-N]` when unnamed."""
    out = Path(config.out)
    if config.name:
        target = out / config.name
        if target.exists() and not config.overwrite:
            raise RiskminError(f"run directory {target} already exists; choose another --name or pass --overwrite")
        return target
    stem = data_name if data_name.endswith("-montecarlo") else f"{Path(data_name).stem}-{config.model}"
    target, number = out / stem, 2
    while target.exists():
        target, number = out / f"{stem}-{number}", number + 1
    return target


def check_writable(config: Config) -> None:
    """Fail before training, not after, when the output folder cannot be created or written."""
    out = Path(config.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out, prefix=".riskmin-probe-")
        probe.close()
    except OSError as error:
        raise RiskminError(f"output folder {out} cannot be written ({error.strerror}); choose another with --out") from None


def prepare_run_directory(target: Path, overwrite: bool) -> None:
    """Create the run directory for a new run (the caller holds no lock yet; `RunLock` comes next)."""
    if target.exists() and overwrite:
        with RunLock(target):  # never delete a run that another process is writing
            pass
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=False)


def save_run(run, directory=None) -> Path:
    """Write the run's files, each atomically; summary.json goes last and marks the run finished."""
    from .report import plot_curves

    target = Path(directory) if directory else run_directory(run.config, run.data_names.get("data", "data"))
    target.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
    preprocessing = {"standardizer": run.preprocessing.to_dict() if run.preprocessing else None, **run.data_names,
                     "n_inputs": run.summary.get("n_inputs"), "n_outputs": run.summary.get("n_outputs")}
    for name, content in (("model.safetensors", save(weights)), ("config.toml", run.config.to_toml().encode()),
                          ("metrics.csv", history_csv(run.history).encode()),
                          ("preprocessing.json", (json.dumps(preprocessing, indent=2) + "\n").encode()),
                          ("curves.png", picture(plot_curves, run.history, target)), ("summary.json", (json.dumps(run.summary, indent=2) + "\n").encode())):
        atomic_write(target / name, content)
    fsync_directory(target)
    return target


def save_montecarlo(mc, directory=None) -> Path:
    """Write a Monte-Carlo experiment (config.toml, runs.csv, montecarlo.png, then summary.json), each file atomically."""
    from .report import plot_montecarlo

    target = Path(directory) if directory else run_directory(mc.config, f"{mc.config.data}-montecarlo")
    target.mkdir(parents=True, exist_ok=True)
    files = (("config.toml", mc.config.to_toml().encode()), ("runs.csv", history_csv(mc.table).encode()),
             ("montecarlo.png", picture(plot_montecarlo, mc.table, target)),
             ("summary.json", (json.dumps(mc.summary, indent=2) + "\n").encode()))
    for name, content in files:
        atomic_write(target / name, content)
    fsync_directory(target)
    return target


def picture(plot, rows: list, near: Path) -> bytes:
    """The PNG bytes of `plot(rows, path)`, drawn in a scratch folder beside the run."""
    with tempfile.TemporaryDirectory(dir=near, prefix=".plot-") as scratch:
        plot(rows, Path(scratch) / "figure.png")
        return (Path(scratch) / "figure.png").read_bytes()


def history_csv(history: list) -> str:
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def load_run(directory, model=None):
    """A saved run: its model with the best weights, config, preprocessing and history."""
    from .loop import Run

    directory = Path(directory)
    missing = [name for name in RUN_FILES if not (directory / name).is_file()]
    if missing:
        raise RiskminError(f"{directory} is not a riskmin run directory (missing {', '.join(missing)}); give the folder `riskmin train` wrote")
    config = Config.from_toml(directory / "config.toml")
    preprocessing = json.loads((directory / "preprocessing.json").read_text())
    summary = json.loads((directory / "summary.json").read_text())
    if model is None:
        model = models.build(config, preprocessing["n_inputs"], preprocessing["n_outputs"])
    try:
        model.load_state_dict(load_tensors(directory / "model.safetensors"))
    except RuntimeError as error:
        raise RiskminError(f"the weights in {directory} do not fit the model given ({str(error).splitlines()[0]})") from None
    with open(directory / "metrics.csv", newline="") as file:
        history = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(file)]
    standardizer = Standardizer.from_dict(preprocessing["standardizer"]) if preprocessing["standardizer"] else None
    names = {k: preprocessing[k] for k in ("features", "targets", "data", "task", "layout", "classes", "missing", "loss") if k in preprocessing}
    test = {k: v for k, v in summary.items() if k.startswith("test_")}
    return Run(model, config, history, test, summary, standardizer, names)


def _number(text: str):
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)
