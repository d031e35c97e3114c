"""User-facing errors: one line that names the problem and the fix.

Deliberately leaves out error codes and hierarchies: the CLI prints the message and exits non-zero.
"""

from __future__ import annotations


class CardioSTError(ValueError):
    """A problem the user can fix, described in one line that says how.

    The CLI prints ``error: <message>`` without a traceback and exits with ``exit_code``
    (2 for bad input, 1 for a failure while running).

    Args:
        message: What is wrong and what to do about it, e.g. "unknown scope 'x': use cardio, all, ...".
        exit_code: Process exit status the CLI uses for this error.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
