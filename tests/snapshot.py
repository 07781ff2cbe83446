"""What a folder holds, to check that a command left it exactly as it was."""

import hashlib
import os
from pathlib import Path


def tree(folder: Path) -> dict:
    """Every path under `folder`, hidden ones too (links as links), with the SHA-256 of what it holds."""
    state = {}
    for path in sorted(Path(folder).rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            state[name] = "-> " + os.readlink(path)
        elif path.is_file():
            state[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[name] = "folder"
    return state
