"""The one exception type that users see.

A :class:`GenlabError` carries a message that names the problem and the fix. The command line
prints it as a single line, without a traceback; the Python API lets it propagate.
"""


class GenlabError(Exception):
    """An error caused by input the user can correct (a name, a file, a setting)."""
