"""Writing files so that nothing half-written is left behind: :func:`write_atomic` is genlab's
one atomic writer, and the helpers for text, JSON and safetensors files go through it."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch


def cache_dir() -> Path:
    """Where genlab keeps what it can make again (feature classifiers, decoded images):
    ``$GENLAB_CACHE`` if set, else ``~/.cache/genlab``."""
    env = os.environ.get("GENLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genlab"


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path`` (in the same folder, so the move
    is atomic), then move it into place; on any error the temporary file is removed and ``path``
    is left as it was. Creates the parent folders; returns the path.

    The file gets the permissions a plain ``open(path, "w")`` would give it: those of the file it
    replaces, or for a new file ``0o666`` less the umask (``open`` creates the temporary file so;
    reading the umask with ``os.umask`` would change it for a moment, for every thread), so weights
    are as readable as the config beside them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)   # a file replaced keeps its permissions
        except FileNotFoundError:
            mode = None
        with open(tmp, "xb") as f:   # created 0o666 less the umask, as open() does; its name is a path
            if mode is not None:
                os.chmod(f.fileno() if os.chmod in os.supports_fd else tmp, mode)
            write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """``text`` as UTF-8, atomically."""
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """``data`` as indented JSON (and a final newline), atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_weights_atomic(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                        metadata: dict[str, str] | None = None) -> Path:
    """Tensors as a safetensors file, atomically. safetensors takes contiguous tensors that share
    no memory, so each is copied first."""
    from safetensors.torch import save

    data = save({k: v.detach().contiguous().clone() for k, v in tensors.items()}, metadata=metadata)
    return write_atomic(path, lambda f: f.write(data))
