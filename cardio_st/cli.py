"""The ``cardio-st`` command line: parses arguments and calls the Python API, nothing more.
Leaves out any logic the API lacks; imports torch only inside commands, so ``--help`` stays instant.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cardio_st import __version__
from cardio_st.errors import CardioSTError

app = typer.Typer(
    name="cardio-st",
    help="Clinical text embeddings on top of sentence-transformers. Offline ICD-10-CM semantic search first.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user-facing errors and Ctrl-C into one line on stderr and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CardioSTError as error:
            raise _fail(str(error), error.exit_code) from None
        except KeyboardInterrupt:
            raise _fail(
                "interrupted; finished work is saved, rerun the same command to resume", 130
            ) from None

    return wrapper


class _NoteHandler(logging.Handler):
    """cardio-st's warnings as ``note: ...`` lines on whatever stderr is current when they happen."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"note: {record.getMessage()}", err=True)


def _quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, CPU kernel notices) off the user's terminal."""
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


@app.command()
@_friendly
def search(
    queries: Annotated[
        list[str],
        typer.Argument(
            help="One or more clinical phrases; '-' reads one query per line from stdin.", show_default=False
        ),
    ],
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Model folder, Hub id or embedded alias ('minilm')."),
    ] = "default",
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            "-s",
            help="cardio (I00-I99), all (~75k codes), or a chapter number or range (see `chapters`).",
        ),
    ] = "cardio",
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Codes to show per query.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size (index build and queries).")] = 32,
    rebuild: Annotated[
        bool, typer.Option(help="Re-embed the descriptions even if a cached index exists.")
    ] = False,
) -> None:
    """Find the ICD-10-CM codes a clinical phrase means (nearest official descriptions).

    The first run for a model and scope embeds the descriptions of the scope's billable codes and
    caches them (resumable if interrupted); later runs only embed the query.

    A query longer than the model's maximum sequence length (256 word pieces for the default) is
    truncated to it; a note on stderr says so.
    """
    from cardio_st.data.icd10 import resolve_scope
    from cardio_st.icd10_search import validate_queries
    from cardio_st.models.default import resolve_model

    if queries == ["-"]:
        queries = [line.strip() for line in sys.stdin if line.strip()]
    queries = validate_queries(queries)
    if top_k < 1:
        raise CardioSTError(f"--top-k must be at least 1, got {top_k}")
    if batch_size < 1:
        raise CardioSTError(f"--batch-size must be at least 1, got {batch_size}")
    resolve_scope(scope)
    source = resolve_model(model)

    _quiet_libraries()
    from cardio_st.icd10_search import ICD10Search

    searcher = ICD10Search(source.path or source.hub_id, scope, batch_size=batch_size)
    if rebuild:
        searcher.build(rebuild=True)
    results = searcher.search(queries, top_k=top_k)
    if as_json:
        for query, hits in zip(queries, results):
            for rank, hit in enumerate(hits, start=1):
                record = {
                    "query": query,
                    "rank": rank,
                    "code": hit.id,
                    "description": hit.text,
                    "score": hit.score,
                }
                typer.echo(json.dumps(record, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for query, hits in zip(queries, results):
        title = query if len(query) <= 80 else query[:77] + "..."
        table = Table(title=title, title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("code")
        table.add_column("description")
        table.add_column("score", justify="right")
        for rank, hit in enumerate(hits, start=1):
            table.add_row(str(rank), hit.id, hit.text, f"{hit.score:.3f}")
        console.print(table)


@app.command()
@_friendly
def chapters() -> None:
    """List the ICD-10-CM chapters: the values `search --scope` accepts."""
    from rich.console import Console
    from rich.table import Table

    from cardio_st.data.icd10 import CIRCULATORY_CHAPTER
    from cardio_st.data.icd10 import chapters as list_chapters

    table = Table(title="ICD-10-CM chapters (--scope NUMBER or RANGE; 'cardio' = 9, 'all' = every chapter)")
    table.add_column("number", justify="right")
    table.add_column("range")
    table.add_column("title")
    for chapter in list_chapters():
        marker = " (cardio)" if chapter.number == CIRCULATORY_CHAPTER else ""
        table.add_row(chapter.number, chapter.code_range, chapter.title + marker)
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cardio-st`` script."""
    app(args=argv, prog_name="cardio-st")


if __name__ == "__main__":
    main()
