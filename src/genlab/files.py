"""Writing files so that nothing half-written is left behind."""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Callable


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path`` (in the same folder, so the move
    is atomic), then move it into place; on any error the temporary file is removed and ``path``
    is left as it was. Creates the parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
