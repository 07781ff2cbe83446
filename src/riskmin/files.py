"""Files that cannot be half written or run code: atomic writes, safetensors in and out, checksums, the run lock.

Every file is written to a temporary name, fsynced and renamed into place. Tensors are read
only through safetensors; a pickle is refused before anything in it can run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes

from .config import RiskminError

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
                      torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def safetensors_bytes(tensors: dict, metadata: dict) -> bytes:
    """The safetensors encoding of CPU `tensors` and string `metadata`, in one pass.

    The format is an 8-byte little-endian header length, a JSON header of dtype, shape and
    byte offsets, then the raw bytes. `safetensors.torch.save` writes the same format but
    costs about a millisecond more per checkpoint of a small model; files from either load
    through the same `safetensors` reader.
    """
    header, parts, offset = {"__metadata__": metadata}, [], 0
    for name, tensor in tensors.items():
        plain = tensor.contiguous()
        raw = (plain.view(torch.int16) if plain.dtype == torch.bfloat16 else plain).numpy().tobytes()  # NumPy has no bfloat16
        header[name] = {"dtype": SAFETENSORS_DTYPES[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + len(raw)]}
        parts.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference writer does
    return b"".join([len(text).to_bytes(8, "little"), text, *parts])


def load_tensors(path) -> dict:
    """Tensors from a safetensors file. Anything else, a pickle above all, is refused and never executed."""
    path = Path(path)
    with open(path, "rb") as file:
        head = file.read(9)
    size = path.stat().st_size
    # a safetensors file opens with its header's length (8 bytes, little-endian) and the header's "{"
    if len(head) < 9 or head[8:9] != b"{" or int.from_bytes(head[:8], "little") + 8 > size:
        if head[:1] == b"\x80" or head[:2] == b"PK":  # pickle protocol 2+, or torch.save's zip of pickles
            raise RiskminError(f"{path} holds a pickle payload; riskmin loads tensors only from safetensors and never unpickles")
        raise RiskminError(f"{path} is not a safetensors file; the file is damaged or not riskmin's")
    try:
        # read into memory, not mapped: the checkpoint writer later overwrites retired files in place, and tensors
        # mapped from one (best weights that rode through a resume) would change under the run
        return load_bytes(path.read_bytes())
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise RiskminError(f"{path} is not a readable safetensors file ({error}); the file is damaged or not riskmin's") from None


class RunLock:
    """One writer per run directory: an exclusive lock on <run>/.lock, held while training."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / ".lock"
        self.file = None

    def __enter__(self):
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            owner = self.file.read().strip() or "another process"
            self.file.close()
            raise RiskminError(f"run directory {self.path.parent} is being written by {owner}; wait for it to finish or choose another --name") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"riskmin process {os.getpid()}")
        self.file.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_directory(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


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


def write_over(spare: str, path: str, data: bytes) -> None:
    """`atomic_write` through a spare file when there is one: overwrite it in place, fsync, rename it to `path`."""
    try:
        handle = os.open(spare, os.O_WRONLY)
    except FileNotFoundError:
        return atomic_write(path, data)
    try:
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.write(handle, view[written:])
        os.ftruncate(handle, len(data))
        os.fsync(handle)
    finally:
        os.close(handle)
    os.replace(spare, path)
