"""What every ``cardio-st`` command shares: the Typer app, the error wrapper that turns library errors
into one line with flags, quiet third-party logging, and ``--version``. Leaves out the commands.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer

from cardio_st import __version__
from cardio_st.errors import CardioSTError, as_flags

__all__ = ["FLAGS", "app", "cli_message", "fail", "friendly", "quiet_datasets", "quiet_libraries"]

app = typer.Typer(
    name="cardio-st",
    help="Clinical text embeddings on top of sentence-transformers. Offline ICD-10-CM semantic search first.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)

#: Library parameters whose flag is not ``--`` + the name with dashes, in every command that passes
#: them (a command adds its own with ``friendly(flags=...)``).
FLAGS = {
    "output_dir": "--out",  # train, care align, care finetune
    "quantization": "--quantize",  # train (cardioembed)
    "r": "--lora-r",  # train (cardioembed)
    "judges": "--judge",  # label
    "retrievers": "--retriever",  # label
    "review_size": "--review-sample",  # label
    "tasks": "--task",  # evaluate
    "datasets": "--dataset",  # push
}

#: Library booleans whose flag says the opposite: ``resume=False`` is ``--overwrite``.
_OPPOSITES = {"resume": "overwrite"}
_OPPOSITE = re.compile(r"`(" + "|".join(_OPPOSITES) + r")=(True|False)`")


def cli_message(message: str, flags: Mapping[str, str] | None = None) -> str:
    """A library message in the CLI's words: each backticked ``name=value`` keyword as its flag.

    Args:
        message: A [CardioSTError][cardio_st.errors.CardioSTError] message or a logged warning.
        flags: The command's own parameter -> flag names, on top of ``FLAGS``.

    Example:
        >>> cli_message("pass `overwrite=True` to train again, or `output_dir='runs/b'`")
        'pass --overwrite to train again, or --out runs/b'
        >>> cli_message("resuming from runs/a/checkpoint-3 (pass `resume=False` to start over)")
        'resuming from runs/a/checkpoint-3 (pass --overwrite to start over)'
    """

    def flip(match: re.Match[str]) -> str:
        return f"`{_OPPOSITES[match.group(1)]}={match.group(2) != 'True'}`"

    return as_flags(_OPPOSITE.sub(flip, message), {**FLAGS, **(flags or {})})


def fail(message: str, code: int) -> typer.Exit:
    """``error: message`` on stderr, and the exit to raise with ``code``."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def friendly(command: Callable[..., Any] | None = None, *, flags: Mapping[str, str] | None = None) -> Any:
    """Turn user-facing errors and Ctrl-C into one line on stderr and a non-zero exit.

    Use as ``@friendly``, or as ``@friendly(flags={"max_seq_length": "--max-length"})`` for a command
    whose flags name library parameters differently from other commands.
    """
    if command is None:
        return functools.partial(friendly, flags=flags)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CardioSTError as error:
            raise fail(cli_message(str(error), flags), error.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted; finished work is saved, rerun the same command to resume", 130) from None

    return wrapper


class _NoteHandler(logging.Handler):
    """cardio-st's warnings as ``note: ...`` lines on whatever stderr is current when they happen."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"note: {cli_message(record.getMessage())}", err=True)


def quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, CPU kernel notices) off the user's terminal.

    Imports transformers and datasets: call it inside a command, never at import (``--help`` stays
    instant).
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    package_logger = logging.getLogger("cardio_st")
    if not any(isinstance(handler, _NoteHandler) for handler in package_logger.handlers):
        package_logger.addHandler(_NoteHandler())
    package_logger.setLevel(logging.WARNING)
    package_logger.propagate = False
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    quiet_datasets()


def quiet_datasets() -> None:
    """No "Saving the dataset" bars: the commands print their own summary."""
    import datasets

    datasets.disable_progress_bars()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cardio-st {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Clinical text embeddings on top of sentence-transformers."""
