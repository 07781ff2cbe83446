"""Checkpoints of a run in training: what they hold, how they are written beside training, and exact resume.

Every file goes through files.py: written atomically, tensors in safetensors, structure in
JSON. Nothing is ever unpickled on load.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from .config import RiskminError
from .distributed import shared
from .files import load_tensors, safetensors_bytes, sha256, write_over

KEEP = 2  # checkpoints kept: the newest, and one to fall back on if the newest is damaged
SPARE_DATA, SPARE_MANIFEST = ".retired.safetensors", ".retired.manifest.json"  # a retired checkpoint's files, reused by the next


def warn(text: str) -> None:
    print(text, file=sys.stderr)


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; the step finished and a checkpoint was written before leaving."""


@functools.lru_cache(maxsize=None)
def writer_thread(process: int) -> ThreadPoolExecutor:
    """The thread that writes the checkpoints of process `process` (os.getpid()), started once: handing it work costs
    half of starting a thread. Keyed by process id: a child forked after a checkpoint inherits the executor but not
    its thread, and work handed to that copy would never run."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskmin-checkpoint")


class Checkpoints:
    """The checkpoints of one run, in <run>/checkpoint/: step-NNNNNNNNN-NNNNNN.safetensors and .manifest.json.

    The .safetensors file holds every tensor, and in its metadata the JSON structure (epoch,
    position, history, counters). Each file is written to a temporary name, fsynced and
    renamed into place; the manifest, which lists the file's SHA-256, is written last, and a
    checkpoint without its manifest does not exist for `latest`. On load the checksum is
    checked, so a file damaged by anything is skipped for the one before it.
    """

    def __init__(self, directory):
        self.root = Path(directory) / "checkpoint"
        self.seconds = 0.0  # time the training thread spent on checkpoints, encoding and waiting: the summary's figure
        self.rows = []  # the history's rows encoded once each: the history only grows, so a long run stays cheap
        self.writer, self.failure = None, None
        self.kept = None  # stems of the complete checkpoints, oldest first, once the writer has listed them

    def save(self, tensors: dict, values: dict) -> None:
        """Encode one checkpoint now and write it on a writer thread; `wait` for it to be on disk.

        The training thread only encodes: fsyncs and renames, which wait on the disk with the
        GIL released, go to the writer while the next epoch runs. One write is in flight at a
        time, so a checkpoint is complete before the next one starts. The writer overwrites the
        files of the checkpoint it retired last time: filling and fsyncing a file whose blocks
        exist costs about half of doing so for a new one, and renaming a checkpoint out of sight
        is cheaper than unlinking it.
        """
        self.wait()
        stem = f"step-{values['step']:09d}-{values['epoch_step']:06d}"
        values = dict(values)
        history = values.pop("history")
        if len(self.rows) > len(history):
            self.rows = []
        self.rows.extend(json.dumps(row) for row in history[len(self.rows):])
        # the structure rides in the header
        state = safetensors_bytes(tensors, {"riskmin": json.dumps(values), "history": f"[{','.join(self.rows)}]"})
        self.writer = writer_thread(os.getpid()).submit(self.write, stem, state, values["epoch"], values["step"])

    def write(self, stem: str, state: bytes, epoch: int, step: int) -> None:
        """On the writer thread: the data, then its manifest with its checksum, then retire the oldest beyond KEEP.

        Plain os calls on string paths: every bit of Python here holds the GIL the training
        thread needs, so the writer does as little of it as it can between its system calls
        (hashing releases it).
        """
        root = str(self.root)
        try:
            os.makedirs(root, exist_ok=True)
            write_over(f"{root}/{SPARE_DATA}", f"{root}/{stem}.safetensors", state)
            manifest = {"files": {f"{stem}.safetensors": hashlib.sha256(state).hexdigest()}, "epoch": epoch, "step": step}
            write_over(f"{root}/{SPARE_MANIFEST}", f"{root}/{stem}.manifest.json", json.dumps(manifest).encode())
            if self.kept is None:
                self.kept = [path.name[:-len(".manifest.json")] for path in reversed(self.complete())]
            elif stem not in self.kept:  # the same step saved twice (interrupted again at once) is one checkpoint
                self.kept.append(stem)
            while len(self.kept) > KEEP:
                # the manifest first: the checkpoint stops existing before its data goes; both become next save's files
                old = self.kept.pop(0)
                os.replace(f"{root}/{old}.manifest.json", f"{root}/{SPARE_MANIFEST}")
                os.replace(f"{root}/{old}.safetensors", f"{root}/{SPARE_DATA}")
        except OSError as error:
            self.failure = error

    def wait(self) -> None:
        """Block until the checkpoint in flight is on disk; a failed write is raised here, on the training thread."""
        if self.writer is not None:
            began = time.perf_counter()
            self.writer.result()
            self.writer = None
            self.seconds += time.perf_counter() - began
        if self.failure is not None:
            error, self.failure = self.failure, None
            raise RiskminError(f"could not write a checkpoint in {self.root} ({error.strerror or error}); free space or fix permissions, then resume")

    def complete(self) -> list:
        """The manifests of finished checkpoints, newest first."""
        return sorted(self.root.glob("step-*.manifest.json"), reverse=True) if self.root.is_dir() else []

    def latest(self, warn=warn) -> tuple:
        """(tensors, values) of the newest checkpoint whose file matches its manifest."""
        self.wait()
        for manifest in self.complete():
            problem = verify(manifest)
            name = manifest.name.replace(".manifest.json", "")
            if not problem:
                data = self.root / f"{name}.safetensors"
                with safe_open(str(data), framework="pt") as file:
                    metadata = file.metadata()
                values = {**json.loads(metadata["riskmin"]), "history": json.loads(metadata["history"])}
                return load_tensors(data), values
            warn(f"warning: checkpoint {name} is unusable ({problem}); trying the one before it")
        raise RiskminError(f"{self.root.parent} has no usable checkpoint to resume from; start the run again without --resume")


def verify(manifest_path: Path) -> str:
    """What is wrong with a checkpoint, or "" when every file its manifest lists matches its checksum."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return "its manifest is unreadable"
    for name, digest in manifest.get("files", {}).items():
        path = manifest_path.parent / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256(path) != digest:
            return f"{name} does not match its checksum"
    return "" if manifest.get("files") else "its manifest lists no files"


def random_states() -> tuple:
    """Every random state a run may touch: (JSON-able values, tensors)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    python_version, python_state, python_gauss = random.getstate()
    values = {"numpy": [kind, position, has_gauss, cached], "python": [python_version, python_gauss]}
    tensors = {"rng/torch": torch.get_rng_state(), "rng/numpy": torch.from_numpy(keys.astype(np.int64)),
               "rng/python": torch.from_numpy(np.array(python_state, dtype=np.int64))}
    if torch.cuda.is_available():
        tensors.update({f"rng/cuda/{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    return values, tensors


def set_random_states(values: dict, tensors: dict) -> None:
    kind, position, has_gauss, cached = values["numpy"]
    np.random.set_state((kind, tensors["rng/numpy"].numpy().astype(np.uint32), position, has_gauss, cached))
    version, gauss = values["python"]
    random.setstate((version, tuple(tensors["rng/python"].tolist()), gauss))
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def optimizer_state(optimizer) -> tuple:
    """An optimizer's state_dict split into JSON structure and named tensors."""
    state = optimizer.state_dict()
    values, tensors = {"param_groups": state["param_groups"], "state": {}}, {}
    for index, entry in state["state"].items():
        values["state"][str(index)] = {}
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = value
            else:
                values["state"][str(index)][name] = value
    return values, tensors


def load_optimizer_state(optimizer, values: dict, tensors: dict) -> None:
    state = {int(index): dict(entry) for index, entry in values["state"].items()}
    for key, tensor in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": values["param_groups"]})


def capture(saver: "Checkpoints", state, model, optimizer, scheduler, batches, callbacks, team, running, unreported: int, seconds: float) -> None:
    """Write everything `restore` needs to continue this run exactly where it is.

    Under torchrun every process sends process 0 what is its own (random states, its share
    of the loss sum); the rest is the same in all of them, and process 0 alone writes.
    """
    saver.wait()  # the previous checkpoint is on disk first; waiting counts towards saver.seconds
    began = time.perf_counter()
    values, tensors = random_states()
    values["processes"] = 1 if team is None else team.world
    if team is not None:
        states = team.to_first((values, tensors, running.cpu()))
        if not team.first:
            return
        values["ranks"] = {str(rank): own for rank, (own, _, _) in enumerate(states) if rank}
        for rank, (_, own, own_running) in enumerate(states[1:], 1):
            tensors.update({f"rank/{rank}/{k}": v for k, v in {**own, "running": own_running}.items()})
    optimizer_values, optimizer_tensors = optimizer_state(optimizer)
    tensors.update(optimizer_tensors)
    tensors.update({f"model/{k}": v for k, v in model.state_dict().items()})
    # inside an epoch: where its order began, so it can be drawn again; at its end: where the next one begins
    began_at = batches.epoch_start if state.epoch_step else None
    tensors["rng/order"] = began_at if began_at is not None else batches.generator.get_state()
    tensors["running"] = running
    values.update(epoch=state.epoch, step=state.step, epoch_step=state.epoch_step, unreported=unreported, seconds=seconds,
                  history=state.history, metrics=state.metrics, optimizer=optimizer_values,
                  scheduler=scheduler.state_dict() if scheduler is not None else None, callbacks={})
    for i, callback in enumerate(callbacks):
        if hasattr(callback, "state_dict"):
            callback_values, callback_tensors = callback.state_dict()
            values["callbacks"][str(i)] = callback_values
            tensors.update({f"callbacks/{i}/{k}": v for k, v in callback_tensors.items()})
    saver.save({k: v.detach().cpu() for k, v in tensors.items()}, values)
    saver.seconds += time.perf_counter() - began


def restore(saver: "Checkpoints", state, model, optimizer, scheduler, batches, callbacks, team, warn=warn) -> tuple:
    """Load the newest good checkpoint into the run's objects; return (running loss sum, unreported steps, seconds).

    Under torchrun process 0 reads it and sends it to the others, which take their own random
    states and loss sums from it.
    """
    tensors, values = saver.latest(warn) if team is None or team.first else (None, None)
    world = 1 if team is None else team.world
    if team is not None:
        tensors, values = shared((tensors, values))
    if values.get("processes", 1) != world:
        raise RiskminError(f"run {saver.root.parent} was checkpointed by {values.get('processes', 1)} process(es) and resumed by {world}; "
                           "resume it with as many processes as it began with")
    if team is not None and not team.first:
        own = f"rank/{team.rank}/"
        values = {**values, **values["ranks"][str(team.rank)]}
        tensors = {**tensors, **{k[len(own):]: v for k, v in tensors.items() if k.startswith(own)}}
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    load_optimizer_state(optimizer, values["optimizer"], tensors)
    if scheduler is not None and values["scheduler"] is not None:
        scheduler.load_state_dict(values["scheduler"])
    for i, callback in enumerate(callbacks):
        if str(i) in values["callbacks"]:
            prefix = f"callbacks/{i}/"
            callback.load_state_dict(values["callbacks"][str(i)], {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    set_random_states(values, tensors)
    state.step, state.history, state.metrics = values["step"], values["history"], values["metrics"]
    state.epoch_step = values["epoch_step"]
    if state.epoch_step:  # stopped inside an epoch: draw its order again and skip what was done
        state.epoch = values["epoch"] - 1
        batches.resume_epoch(tensors["rng/order"], state.epoch_step)
    else:
        state.epoch = values["epoch"]
        batches.generator.set_state(tensors["rng/order"])
    return tensors["running"], values["unreported"], values["seconds"]


class interruptible:
    """While active, SIGINT and SIGTERM only set `state.interrupted`; the loop saves and leaves at the next step."""

    def __init__(self, state, enabled: bool):
        self.state, self.enabled, self.previous = state, enabled, {}

    def __enter__(self):
        import signal

        if self.enabled and threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self.handle)
        return self

    def handle(self, number, frame):
        self.state.interrupted = True

    def __exit__(self, *exc):
        import signal

        for number, handler in self.previous.items():
            signal.signal(number, handler)
