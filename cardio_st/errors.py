"""User-facing errors: one line that names the problem and the fix.

Deliberately leaves out error codes and hierarchies: the CLI prints the message and exits non-zero.

Messages speak the library's language: a fix that is a parameter is written as a Python keyword in
backticks, e.g. ``pass `base_model_id='org/name'` ``. The CLI shows the same message with each such
span as its flag, without the backticks (``pass --base-model-id org/name``; ``overwrite=True``
becomes ``--overwrite``), so a Python user never reads a flag and a CLI user never reads a keyword.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["CardioSTError", "as_flags"]

_KEYWORD = re.compile(r"`([a-z][a-z0-9_]*)=([^`]*)`")


class CardioSTError(ValueError):
    """A problem the user can fix, described in one line that says how.

    The CLI prints ``error: <message>`` without a traceback and exits with ``exit_code``
    (2 for bad input, 1 for a failure while running).

    Args:
        message: What is wrong and what to do about it, e.g. "unknown scope 'x': use cardio, all, ...";
            parameters in backticks as Python keywords (see the module docstring).
        exit_code: Process exit status the CLI uses for this error.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def as_flags(message: str, flags: Mapping[str, str] | None = None) -> str:
    """``message`` with each backticked ``name=value`` keyword written as its command-line flag (plain,
    as a terminal shows it: the backticks go).

    Args:
        message: A [CardioSTError][cardio_st.errors.CardioSTError] message.
        flags: Parameter name -> flag, where the flag is not ``--`` plus the name with dashes
            (e.g. ``{"output_dir": "--out"}``).

    Example:
        >>> as_flags("a local base needs its Hub id: pass `base_model_id='org/name'`")
        'a local base needs its Hub id: pass --base-model-id org/name'
        >>> as_flags("OUT exists: rerun with `overwrite=True`")
        'OUT exists: rerun with --overwrite'
    """
    flags = flags or {}

    def flag(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2).strip()
        option = flags.get(name, "--" + name.replace("_", "-"))
        if value == "True":
            return option
        if value == "False":
            return f"--no-{option.removeprefix('--')}"
        if value == "None":  # the CLI's own spelling of "no value", as in --quantize none
            value = "none"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return f"{option} {value}"

    return _KEYWORD.sub(flag, message)
