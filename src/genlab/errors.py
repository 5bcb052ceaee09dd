"""The one exception type that users see.

A :class:`GenlabError` carries a message that names the problem and the fix. The command line
prints it as a single line, without a traceback; the Python API lets it propagate.
"""


class GenlabError(Exception):
    """An error caused by input the user can correct (a name, a file, a setting)."""


def first_line(err: BaseException, limit: int = 120) -> str:
    """The first line of an exception's message (at most ``limit`` characters), for a one-line
    error; its type's name when the message is empty."""
    lines = str(err).splitlines()
    return lines[0][:limit] if lines and lines[0] else type(err).__name__
