"""Checkpoints of a run in training: what they hold, how they are written beside training, and exact resume.

Every file goes through _files.py: written atomically, tensors in safetensors, structure in
JSON. Nothing is ever unpickled on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


from .. import _files as files
from .._paths import checkpoint_manifests, newest_manifest
from ..config import RiskminError, warn

KEEP = 2  # checkpoints kept: the newest, and one to fall back on if the newest is damaged


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; the step finished and a checkpoint was written before leaving. A run with nowhere to
    write one (fit without directory=) was measured instead, with the weights it keeps: `run` holds it (else None)."""

    def __init__(self, message: str, run=None):
        super().__init__(message)
        self.run = run


class Damaged(Exception):
    """What is wrong with one checkpoint, said inside the warning that skips it."""


class Checkpoints:
    """The checkpoints of one run, in <run>/checkpoint/: step-NNNNNNNNN-NNNNNN.safetensors and .manifest.json.

    The .safetensors file holds every tensor, and in its metadata the JSON structure (epoch,
    position, history, counters). Each file is written to a new hidden name, fsynced and
    renamed into place; the manifest, which names the file and holds its SHA-256, is written
    last, and a checkpoint without its manifest does not exist for `latest`. On load the file
    the manifest names is read once, checked against the checksum and decoded from those same
    bytes, so a file damaged by anything is skipped for the one before it.
    """

    enabled = True

    def __init__(self, directory):
        self.root = Path(directory) / "checkpoint"
        self.seconds = 0.0  # time the training thread spent on checkpoints, encoding and waiting: the summary's figure
        self.rows = []  # the history's rows encoded once each: the history only grows, so a long run stays cheap
        # one writer thread for this run, started at its first checkpoint: handing it work costs a fraction of starting
        # a thread per checkpoint (benchmarks/checkpoint.py). It is this object's own, so a process forked
        # meanwhile never inherits a writer without its thread; it ends with `close`, or once this object is dropped.
        self.pool, self.writer, self.failure = None, None, None
        self.kept = None  # stems of the complete checkpoints, oldest first, once the writer has listed them

    def save(self, tensors: dict, values: dict) -> None:
        """Encode one checkpoint now and write it on a writer thread; `wait` for it to be on disk.

        The training thread only encodes: fsyncs and renames, which wait on the disk with the
        GIL released, go to the writer while the next epoch runs. One write is in flight at a
        time, so a checkpoint is complete before the next one starts.
        """
        self.wait()
        stem = f"step-{values['step']:09d}-{values['epoch_step']:06d}"
        values = dict(values)
        history = values.pop("history")
        if len(self.rows) > len(history):
            self.rows = []
        self.rows.extend(json.dumps(row) for row in history[len(self.rows) :])
        # the structure rides in the header
        state = files.safetensors_bytes(tensors, {"riskmin": json.dumps(values), "history": f"[{','.join(self.rows)}]"})
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskmin-checkpoint")
        # the manifest says, beside where the run stands, what a resume needs before it reads the checkpoint
        facts = {key: values[key] for key in ("epoch", "step", "processes", "length")}
        self.writer = self.pool.submit(self.write, stem, state, facts)

    def write(self, stem: str, state: bytes, facts: dict) -> None:
        """On the writer thread: the data, then its manifest with its checksum, then remove the oldest beyond KEEP."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if self.root.is_symlink():
                raise RiskminError(
                    f"{self.root} is a symbolic link; riskmin never writes a checkpoint through one: "
                    "remove the link, then resume"
                )
            if self.kept is None:
                for leftover in self.root.glob(".step-*.tmp"):  # a write that a killed process left half done
                    leftover.unlink(missing_ok=True)
                self.kept = [path.name[: -len(".manifest.json")] for path in reversed(self.complete())]
            files.atomic_write(self.root / f"{stem}.safetensors", state)
            manifest = {"files": {f"{stem}.safetensors": hashlib.sha256(state).hexdigest()}, **facts}
            files.atomic_write(self.root / f"{stem}.manifest.json", json.dumps(manifest).encode())
            if stem not in self.kept:  # the same step saved twice (interrupted again at once) is one checkpoint
                self.kept.append(stem)
            while len(self.kept) > KEEP:
                old = self.kept.pop(0)  # the manifest first: the checkpoint stops existing before its data goes
                (self.root / f"{old}.manifest.json").unlink(missing_ok=True)
                (self.root / f"{old}.safetensors").unlink(missing_ok=True)
        except OSError as error:
            self.failure = error

    def wait(self) -> None:
        """Block until the checkpoint in flight is on disk; a failed write is raised here, on the training thread."""
        if self.writer is not None:
            began, writer, self.writer = time.perf_counter(), self.writer, None
            writer.result()
            self.seconds += time.perf_counter() - began
        if self.failure is not None:
            error, self.failure = self.failure, None
            raise RiskminError(
                f"could not write a checkpoint in {self.root} ({error.strerror or error}); free space "
                "or fix permissions, then resume"
            )

    def close(self) -> None:
        """Wait for the checkpoint in flight, then end the writer thread."""
        try:
            self.wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown()
                self.pool = None

    def complete(self) -> list:
        """The manifests of finished checkpoints, newest first."""
        return checkpoint_manifests(self.root.parent)

    def latest(self, warn=warn) -> tuple:
        """(tensors, values) of the newest checkpoint whose file matches its manifest."""
        self.wait()
        for manifest in self.complete():
            try:
                return read_checkpoint(manifest)
            except Damaged as problem:
                warn(
                    f"checkpoint {manifest.name[: -len('.manifest.json')]} is unusable ({problem}); trying the one "
                    "before it"
                )
        raise RiskminError(
            f"{self.root.parent} has no usable checkpoint to resume from; start the run again with --overwrite "
            "(overwrite=True)"
        )


class NoCheckpoints:
    """The checkpointer of a run without a directory: it saves nothing, and there is nothing to wait for."""

    seconds = 0.0
    enabled = False

    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass


def checkpointed_length(run: Path) -> dict:
    """The epochs and max_steps the run in `run` trains for, as its newest checkpoint's manifest says ({} where it does
    not say): what a resume that gives neither goes on to, where it would otherwise take the defaults."""
    length = newest_manifest(run).get("length")
    if not isinstance(length, dict):
        return {}
    return {key: value for key, value in length.items() if key in ("epochs", "max_steps") and type(value) is int}


def read_checkpoint(manifest_path: Path) -> tuple:
    """(tensors, values) of one checkpoint: exactly the file its manifest names, read once, checked and decoded.

    The manifest must name one file, the .safetensors of its own stem: a manifest moved beside
    another checkpoint's data vouches for nothing. Raises Damaged saying what is wrong.
    """
    stem = manifest_path.name[: -len(".manifest.json")]
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        raise Damaged("its manifest is unreadable") from None
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    name = f"{stem}.safetensors"
    if not listed:
        raise Damaged("its manifest lists no files")
    if not isinstance(listed, dict) or list(listed) != [name]:
        raise Damaged(f"its manifest must list {name} alone")
    path = manifest_path.parent / name
    try:
        handle = os.open(path, os.O_RDONLY | files.NOFOLLOW | files.BINARY)  # a link planted there is damage, not data
        with os.fdopen(handle, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        raise Damaged(f"{name} is missing") from None
    except OSError as error:
        raise Damaged(f"{name} cannot be read ({error.strerror})") from None
    if hashlib.sha256(data).hexdigest() != listed[name]:
        raise Damaged(f"{name} does not match its checksum")
    try:
        metadata = files.safetensors_metadata(data, path)
        values = {**json.loads(metadata["riskmin"]), "history": json.loads(metadata["history"])}
        return files.decode_safetensors(data, path), values
    except (ValueError, KeyError, TypeError) as error:  # RiskminError is a ValueError
        raise Damaged(str(error).strip("'")) from None


class FinishedThenInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM once a run's steps were done: the run was measured, and written where it has a directory,
    before the interruption went on; `run` holds it."""

    def __init__(self, message: str, run):
        super().__init__(message)
        self.run = run


class Interruptible:
    """While active, SIGINT and SIGTERM only set `state.interrupted`; the loop leaves at the next step's end.
    `second_stops`: a signal once `state.interrupted` is set raises KeyboardInterrupt (while a run is being finished,
    which no step checks). A signal ignored by whoever started the process stays ignored; with `defaults_only` (a run
    with nowhere to save a checkpoint), one whose handler the program set itself stays its (a server's SIGTERM)."""

    def __init__(self, state, second_stops: bool = False, defaults_only: bool = False):
        self.state, self.previous, self.second_stops, self.defaults_only = state, {}, second_stops, defaults_only

    def __enter__(self):
        import signal

        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                if self.takes(signal.getsignal(number)):
                    self.previous[number] = signal.signal(number, self.handle)
        return self

    def takes(self, handler) -> bool:
        import signal

        if handler is signal.SIG_IGN:
            return False
        # Python's own handlers, or riskmin's: the command line's SIGTERM, or an Interruptible around this one
        ours = handler in (signal.default_int_handler, signal.SIG_DFL) or str(
            getattr(handler, "__module__", None)
        ).startswith("riskmin.")
        return ours or not self.defaults_only

    def handle(self, number, frame):
        if self.second_stops and self.state.interrupted:
            raise KeyboardInterrupt
        self.state.interrupted = True

    def __exit__(self, *exc):
        import signal

        for number, handler in self.previous.items():
            signal.signal(number, handler)
