"""Checkpoints of a run in training: what they hold, how they are written beside training, and exact resume.

Every file goes through files.py: written atomically, tensors in safetensors, structure in
JSON. Nothing is ever unpickled on load.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from safetensors import safe_open

from .config import RiskminError
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

    enabled = True

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


class NoCheckpoints:
    """The checkpointer of a run without a directory: it saves nothing, and there is nothing to wait for."""

    seconds = 0.0
    enabled = False

    def wait(self) -> None:
        pass


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
