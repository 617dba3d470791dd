"""The one error type the command line turns into a one-line message and exit code 2."""

from __future__ import annotations


class BenchError(Exception):
    """A problem with the user's input (file, row, field, name) rather than a bug.

    The message must be one line that says what is wrong and where, e.g.
    ``data/interactions.csv: line 17: unknown behavior 'view' in column 'behavior'``.
    """


class NumericalError(RuntimeError):
    """Training or evaluation produced a non-finite number (loss, gradient norm, scores).

    Not the user's input but the run's failure: the run stops, nothing of it is saved as a result, the
    command exits 1 and the details go to the run's ``seed<S>.error.log``.
    """
