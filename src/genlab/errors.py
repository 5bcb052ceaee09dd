"""The one exception type that users see.

A :class:`GenlabError` carries a message that names the problem and the fix. The command line
prints it as a single line, without a traceback; the Python API lets it propagate.
"""


class GenlabError(Exception):
    """An error caused by input the user can correct (a name, a file, a setting)."""


class GenlabWarning(UserWarning):
    """Something the user should know that does not stop the work (files skipped); the command
    line prints it as one line, ``genlab: note: ...``."""


def first_line(err: BaseException, limit: int = 120) -> str:
    """The first line of an exception's message (at most ``limit`` characters), for a one-line
    error; its type's name when the message is empty."""
    lines = str(err).splitlines()
    return lines[0][:limit] if lines and lines[0] else type(err).__name__


def check_seed(seed: int, name: str = "seed") -> int:
    """``seed``, if torch can take it (0 <= seed < 2**64); otherwise one clear line."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 64:
        raise GenlabError(f"`{name}` must be a non-negative integer below 2**64, got {seed!r}")
    return seed


def check_finite(value: float | None, name: str) -> float | None:
    """``value`` (None passes), if it is a finite number; otherwise one clear line naming the setting."""
    import math

    if value is not None and not math.isfinite(value):
        raise GenlabError(f"`{name}` must be a finite number, got {value}")
    return value


#: the errors of the operating system that a user's path or machine causes (and can correct)
_PATH_ERRNOS = {"EACCES", "EPERM", "EISDIR", "ENOTDIR", "EEXIST", "ENOENT", "ENAMETOOLONG", "ENOSPC", "EDQUOT",
                "EROFS", "ELOOP", "EFBIG", "EXDEV", "EBUSY", "ETXTBSY", "EIO", "EMFILE", "ENFILE", "ENOTEMPTY"}


def os_error_line(err: OSError) -> str | None:
    """One line for an error of the operating system about a path (``cannot write
    /proc/x/config.json: read-only file system``), or None for one that is not about a path the
    user gave (a bug: the caller reports it as such)."""
    import errno
    import os

    name = errno.errorcode.get(err.errno or -1)
    if name not in _PATH_ERRNOS:
        return None
    path = err.filename2 if err.filename2 is not None else err.filename   # os.replace: name the target
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    reason = (err.strerror or name).lower()
    if path is None:
        return reason
    path = str(path)
    shown = path if len(path) <= 160 else f"{path[:80]}...{path[-60:]}"
    if name == "EISDIR":
        return f"{shown} is a folder, where a file is needed"
    if name == "ENOTDIR":
        return f"{shown}: a part of this path is a file, where a folder is needed"
    if name == "EEXIST":
        return (f"{shown} is a file, where a folder is needed" if os.path.isfile(path)
                else f"{shown} already exists")
    if name == "ENAMETOOLONG":
        return f"{shown}: a file name is too long (at most 255 bytes a name on most file systems)"
    if name in ("ENOENT",):
        return f"no such file or folder: {shown}"
    if name in ("EACCES", "EPERM"):
        return f"permission denied: {shown}"
    return f"cannot write {shown}: {reason}" if name in ("EROFS", "ENOSPC", "EDQUOT", "EFBIG") else f"{shown}: {reason}"
