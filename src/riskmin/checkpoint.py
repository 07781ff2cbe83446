"""Run directories: every file written atomically, tensors in safetensors and structure in JSON or TOML.

Nothing is ever unpickled on load.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from . import models
from .config import Config, RiskminError
from .data import Standardizer

RUN_FILES = ("config.toml", "metrics.csv", "model.safetensors", "summary.json", "preprocessing.json")


def atomic_write(path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never a part."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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


def save_run(run, directory=None) -> Path:
    """Write the run into a hidden temporary folder, then move it into place in one rename."""
    from .report import plot_curves

    target = Path(directory) if directory else run_directory(run.config, run.data_names.get("data", "data"))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
        save_file(weights, str(staging / "model.safetensors"))
        (staging / "config.toml").write_text(run.config.to_toml())
        (staging / "metrics.csv").write_text(history_csv(run.history))
        (staging / "summary.json").write_text(json.dumps(run.summary, indent=2) + "\n")
        preprocessing = {"standardizer": run.preprocessing.to_dict() if run.preprocessing else None, **run.data_names,
                         "n_inputs": run.summary.get("n_inputs"), "n_outputs": run.summary.get("n_outputs")}
        (staging / "preprocessing.json").write_text(json.dumps(preprocessing, indent=2) + "\n")
        plot_curves(run.history, staging / "curves.png")
        publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def save_montecarlo(mc, directory=None) -> Path:
    """Write a Monte-Carlo experiment (config.toml, runs.csv, summary.json, montecarlo.png) in one rename."""
    from .report import plot_montecarlo

    target = Path(directory) if directory else run_directory(mc.config, f"{mc.config.data}-montecarlo")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        (staging / "config.toml").write_text(mc.config.to_toml())
        (staging / "runs.csv").write_text(history_csv(mc.table))
        (staging / "summary.json").write_text(json.dumps(mc.summary, indent=2) + "\n")
        plot_montecarlo(mc.table, staging / "montecarlo.png")
        publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def publish(staging: Path, target: Path) -> None:
    """fsync every file of a finished staging folder, then move it into place."""
    for file in staging.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    if target.exists():
        shutil.rmtree(target)  # only reached with overwrite: run_directory refused otherwise
    os.replace(staging, target)


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
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
    except RuntimeError as error:
        raise RiskminError(f"the weights in {directory} do not fit the model given ({str(error).splitlines()[0]})") from None
    with open(directory / "metrics.csv", newline="") as file:
        history = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(file)]
    standardizer = Standardizer.from_dict(preprocessing["standardizer"]) if preprocessing["standardizer"] else None
    names = {k: preprocessing[k] for k in ("features", "targets", "data") if k in preprocessing}
    test = {k: v for k, v in summary.items() if k.startswith("test_")}
    return Run(model, config, history, test, summary, standardizer, names)


def _number(text: str):
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)
