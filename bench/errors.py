"""The one error type the command line turns into a one-line message and exit code 2."""

from __future__ import annotations


class BenchError(Exception):
    """A problem with the user's input (file, row, field, name) rather than a bug.

    The message must be one line that says what is wrong and where, e.g.
    ``data/interactions.csv: line 17: unknown behavior 'view' in column 'behavior'``.
    """
