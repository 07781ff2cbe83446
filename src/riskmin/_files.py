"""Files that cannot be half written, written through a link, or run code: atomic writes, safetensors in and out,
checksums,
the run lock, and where riskmin may write at all.

Every file is created under a fresh hidden name (exclusively, never through a symbolic link),
fsynced and renamed into place, with the permissions the user's umask gives. Tensors are read
only through safetensors; a pickle is refused before anything in it can run. Nothing is written
inside a run or experiment folder but by the command that owns it (`enclosing_run`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import secrets
from pathlib import Path
from typing import Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes

from .config import RiskminError, warn
from ._paths import holds_experiment, stopped_run

# None where the platform lacks the module; mypy takes each name for the module alone
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # everything but Windows
    msvcrt = None  # type: ignore[assignment]

# Windows has no symbolic-link flag; exclusive creation still refuses a link there
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
BINARY = getattr(os, "O_BINARY", 0)
LARGEST_HEADER = 100_000_000  # the safetensors reader's own limit on the JSON header, in bytes
NO_LOCKS = {errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP), errno.ENOLCK}
# beside config.toml, what only riskmin writes there: the files of a run written (its preprocessing), of an experiment
# (its table), of a run in training (its lock), or a checkpoint; names a project folder of one's own seldom holds
# together
RUN_MARKS = ("preprocessing.json", "runs.csv", ".lock", "experiment.json")
SAFETENSORS_DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def strict(value):
    """`value` with every NaN or infinity made None, so that it is strict JSON (Python's json writes a bare NaN)."""
    if isinstance(value, dict):
        return {key: strict(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_bytes(value) -> bytes:
    """The strict JSON of `value`, indented, as a file holds it: NaN and infinities are null."""
    return (json.dumps(strict(value), indent=2, allow_nan=False) + "\n").encode()


def safetensors_bytes(tensors: dict, metadata: dict) -> bytes:
    """The safetensors encoding of CPU `tensors` and string `metadata`, in one pass.

    The format is an 8-byte little-endian header length, a JSON header of dtype, shape and
    byte offsets, then the raw bytes. `safetensors.torch.save` writes the same format but
    spends more Python per tensor, which a run checkpointing every epoch pays each time
    (benchmarks/checkpoint.py). Views and
    tied weights need no special care: each tensor's bytes are copied out. Files from either
    load through the same `safetensors` reader.
    """
    header, parts, offset = {"__metadata__": metadata}, [], 0
    for name, tensor in tensors.items():
        plain = tensor.contiguous()
        # NumPy has no bfloat16
        raw = (plain.view(torch.int16) if plain.dtype == torch.bfloat16 else plain).numpy().tobytes()
        header[name] = {
            "dtype": SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        parts.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference writer does
    return b"".join([len(text).to_bytes(8, "little"), text, *parts])


def load_tensors(path) -> dict:
    """Tensors from a safetensors file. Anything else, a pickle above all, is refused and never executed."""
    path = Path(path)
    return decode_safetensors(path.read_bytes(), path)


def decode_safetensors(data: bytes, path: Path) -> dict:
    """The tensors in `data`, the bytes of the file `path`, once its header is known to be sound."""
    check_header(data, path)
    try:
        return load_bytes(data)
    except (SafetensorError, ValueError, RuntimeError, MemoryError) as error:
        raise RiskminError(
            f"{path} is not a readable safetensors file ({error}); the file is damaged or not riskmin's"
        ) from None


def safetensors_metadata(data: bytes, path: Path) -> dict:
    """The string metadata in the header of a safetensors file's bytes."""
    length = check_header(data, path)
    try:
        metadata = json.loads(data[8 : 8 + length]).get("__metadata__") or {}
    except (ValueError, AttributeError):
        metadata = None
    if not isinstance(metadata, dict):
        raise RiskminError(f"{path} has an unreadable safetensors header; the file is damaged or not riskmin's")
    return metadata


def check_header(data: bytes, path: Path) -> int:
    """The header length of a safetensors file's bytes, after checking it fits in the file: a damaged length
    (2**62 bytes, say) would otherwise have the reader try to allocate it."""
    # a safetensors file opens with its header's length (8 bytes, little-endian) and the header's "{"
    length = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if len(data) < 9 or data[8:9] != b"{" or not 0 < length <= min(len(data) - 8, LARGEST_HEADER):
        if data[:1] == b"\x80" or data[:2] == b"PK":  # pickle protocol 2+, or torch.save's zip of pickles
            raise RiskminError(
                f"{path} holds a pickle payload; riskmin loads tensors only from safetensors and never unpickles"
            )
        raise RiskminError(f"{path} is not a safetensors file; the file is damaged or not riskmin's")
    return length


class RunLock:
    """One writer per run directory: an exclusive lock on <run>/.lock, held while training and removed after.

    The lock file is opened without following a symbolic link, so a link planted there cannot
    make riskmin write elsewhere. Where the file system cannot lock (some network file systems)
    or the platform has no lock call, the run goes on with a warning. `tidy=False` removes the
    file afterwards only if this lock created it (a run merely guarded keeps what it had).
    """

    def __init__(self, directory: Path, tidy: bool = True, place: str = "--name", holder: str = ""):
        self.path = Path(directory) / ".lock"
        self.handle: Optional[int] = None  # the open lock file, while held
        self.tidy = tidy
        self.place = place  # what to choose another of, in the sentence that refuses a run being written
        # who the lock file names: this process (the command line's folder, held_here), or `holder` (fit's, which
        # no other fit of this process, in another thread, takes for its own)
        self.holder = holder or this_process()

    def __enter__(self):
        self.tidy = self.tidy or not os.path.lexists(self.path)
        try:
            self.handle = os.open(self.path, os.O_RDWR | os.O_CREAT | NOFOLLOW | BINARY, 0o666)
        except OSError as error:
            raise RiskminError(
                f"run directory {self.path.parent} cannot be written ({error.strerror}); "
                "fix its permissions or free space, then run the command again"
            ) from None
        try:
            locked = lock(self.handle)
            if locked and os.fstat(self.handle).st_ino != os.lstat(self.path).st_ino:
                locked = None  # the process before removed the file after this one opened it: its lock guards nothing
            if locked is None:
                owner = os.pread(self.handle, 200, 0).decode(errors="replace").strip() if hasattr(os, "pread") else ""
                raise RiskminError(
                    f"run directory {self.path.parent} is being written by "
                    f"{owner or 'another process'}; wait for it to finish or choose another {self.place}"
                )
            if not locked:
                warn(
                    f"the file system of {self.path.parent} cannot lock files; make sure no other riskmin "
                    "process writes this run"
                )
            os.ftruncate(self.handle, 0)
            os.write(self.handle, self.holder.encode())
        except OSError as error:
            self.release()
            raise RiskminError(
                f"run directory {self.path.parent} cannot be written ({error.strerror}); "
                "free space or fix its permissions, then run the command again"
            ) from None
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self) -> None:
        """Remove the lock file while still holding the lock, then let go (a process that opened the old file finds it
        gone)."""
        try:
            if self.tidy and self.handle is not None and os.fstat(self.handle).st_ino == os.lstat(self.path).st_ino:
                os.unlink(self.path)
        except OSError:
            pass  # gone with its directory (an overwritten run), or never ours
        self.close()

    def close(self) -> None:
        if self.handle is not None:
            os.close(self.handle)  # closing the descriptor lets go of the lock
            self.handle = None


def held_elsewhere(directory) -> Optional[str]:
    """`lock_holder`, unless it is this process (the command line trains in the folder it locked)."""
    owner = lock_holder(directory)
    return None if owner == this_process() else owner


def held_here(directory) -> bool:
    """Whether this process holds the lock of the run in `directory`: the lock file names it (where the file system
    cannot lock, the file is written all the same)."""
    try:
        handle = os.open(Path(directory) / ".lock", os.O_RDONLY | NOFOLLOW)
    except OSError:
        return False
    try:
        return os.read(handle, 200).decode(errors="replace").strip() == this_process()
    finally:
        os.close(handle)


def this_process() -> str:
    """How a lock names its holder, for this process."""
    return f"riskmin process {os.getpid()}"


def lock_holder(directory) -> Optional[str]:
    """Who holds the lock of the run in `directory` ("riskmin process 1234"), or None: no lock held there, or no way to
    tell on this platform. Nothing is written: the lock file is only opened to read and tried."""
    path = Path(directory) / ".lock"
    if fcntl is None or not os.path.lexists(path):
        return None
    try:
        handle = os.open(path, os.O_RDONLY | NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.read(handle, 200).decode(errors="replace").strip() or "another process"
        except OSError:
            return None
        return None  # nobody holds it: closing the descriptor below lets go of the lock just taken
    finally:
        os.close(handle)


def lock(handle: int):
    """Lock the open file `handle` for this process: True, None when another process holds it, False when locks are not
    available."""
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif msvcrt is not None:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        else:
            return False
    except (BlockingIOError, PermissionError):  # msvcrt says PermissionError where flock says BlockingIOError
        return None
    except OSError as error:
        if error.errno in NO_LOCKS:
            return False
        raise
    return True


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_directory(path: Path) -> None:
    """Make renames in `path` durable; platforms that cannot open a directory (Windows) skip it."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the renames are still atomic
    finally:
        os.close(handle)


def create_beside(path: Path) -> tuple:
    """(path, handle) of a new file beside `path`, under a hidden name, opened for writing: created exclusively and
    never through a symbolic link, with the permissions of the user's umask. `os.replace` later puts it at `path`."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | BINARY, 0o666)


def atomic_write(path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never a part.

    The data goes to a new hidden file, created exclusively and never through a symbolic link,
    with the permissions of the user's umask; `os.replace` then puts it in place, replacing a
    link at `path` rather than writing through it.
    """
    temporary, handle = create_beside(Path(path))
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def holds_run(folder: Path) -> bool:
    """Whether `folder` is a riskmin run or experiment: its config.toml beside a file that only riskmin writes there,
    or a checkpoint written whole (a fit from Python writes its settings last)."""
    try:
        return (
            (folder / "config.toml").is_file()
            and (
                any(os.path.lexists(folder / name) for name in RUN_MARKS) or any((folder / "checkpoint").glob("step-*"))
            )
            or stopped_run(folder)
        )
    except OSError:  # a folder that cannot be looked into is nobody's run
        return False


def enclosing_run(path) -> Optional[Path]:
    """The run or experiment folder that `path` is or lies in, or None.

    The path is read as given, where the write lands (its folder's links followed, not its last
    name's: a write replaces a link) and with every link followed, so that neither `..` nor a link
    to a run hides one. The folder is named as the user wrote it where that is how it was found.
    """
    path = Path(path)
    given = Path(os.path.normpath(path))
    landing = Path(os.path.realpath(path.parent)) / path.name
    for each in (given, landing, Path(os.path.realpath(path))):
        for folder in (each, *each.parents):
            if holds_run(folder):
                return folder
    return None


def named_folder(run: Path) -> str:
    """A run or experiment folder that `enclosing_run` found, as a message names it: "the run directory runs/a" or
    "the experiment directory runs/mc"."""
    return f"the {'experiment' if holds_experiment(Path(run)) else 'run'} directory {run}"


def inside(path, run: Path) -> str:
    """How `path` stands to the run folder that `enclosing_run` found for it: "is" the folder, or "is inside" it."""
    return "is" if Path(os.path.normpath(path)) == run else "is inside"


def check_destination(
    path, flag: str, overwrite: bool, inputs=(), run=None, what: str = "the file", asked: str = "--overwrite"
) -> None:
    """Refuse, before any work, a file that a command must not write: one inside a run or experiment (the `run` it reads
    above all, whatever that folder holds), one of its own input files, a folder, a file in a folder that does not
    exist, or an existing file without --overwrite (`asked`: how the caller asks for it, overwrite=True in Python)."""
    path = Path(path)
    landing = Path(os.path.realpath(path.parent)) / path.name
    if run is not None and landing.is_relative_to(os.path.realpath(run)):
        raise RiskminError(f"{flag} {path} is inside {named_folder(run)}; write {what} elsewhere")
    run = enclosing_run(path)
    if run is not None:
        raise RiskminError(f"{flag} {path} {inside(path, run)} {named_folder(run)}; write {what} elsewhere")
    for source in inputs:
        if os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise RiskminError(f"{flag} {path} is the input file {source}; write {what} to another file")
    if os.path.isdir(path):
        raise RiskminError(f"{flag} {path} is a folder; give the name of a file to write")
    if not os.path.isdir(path.parent):
        raise RiskminError(
            f"{flag} {path}: the folder {path.parent} does not exist; create it or choose another {flag}"
        )
    if os.path.lexists(path) and not overwrite:
        raise RiskminError(f"{path} already exists; pass {asked} to replace it or choose another {flag}")


def check_run_place(target, remedy: str) -> None:
    """Refuse a run or experiment folder `target` that would lie inside another one; `remedy` names what to change."""
    target = Path(target)
    run = enclosing_run(target.parent)
    if run is not None:
        raise RiskminError(f"{target} would be inside {named_folder(run)}; choose another {remedy}")
