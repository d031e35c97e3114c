"""``cardio-st search``, ``chapters``, ``index`` and ``export``: find codes or documents, list the scopes,
index a corpus, write a model out. Leaves out the searching itself (cardio_st.retrieval).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cardio_st.cli.base import friendly, quiet_libraries
from cardio_st.errors import CardioSTError

__all__ = ["chapters", "export", "index_command", "search"]

_MODEL_FLAG = {"name_or_path": "--model"}


@friendly(flags=_MODEL_FLAG)
def search(
    queries: Annotated[
        list[str],
        typer.Argument(
            help="One or more clinical phrases; '-' reads one query per line from stdin.", show_default=False
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model folder, Hub id or embedded alias: 'default' (icd10-minilm, all-MiniLM-L6-v2 "
            "fine-tuned on ICD-10-CM) or 'minilm' (the base all-MiniLM-L6-v2). With --index: the model "
            "to take the query encoder from (default: the one the index records).",
            show_default="default",
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope",
            "-s",
            help="cardio (I00-I99), all (~75k codes), or a chapter number or range (see `chapters`).",
            show_default="cardio",
        ),
    ] = None,
    index: Annotated[
        str | None,
        typer.Option(
            "--index",
            "-i",
            help="Search this index (from `cardio-st index`) instead of ICD-10-CM: only the query encoder "
            "is loaded.",
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Codes to show per query.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size (index build and queries).")] = 32,
    rebuild: Annotated[
        bool, typer.Option(help="Re-embed the descriptions even if a cached index exists.")
    ] = False,
    hybrid: Annotated[
        bool,
        typer.Option(
            help="Fuse the embedding scores with TF-IDF character n-gram scores of the descriptions; "
            "scores are then fused scores (0 to 1, 1 = first on both), not cosines."
        ),
    ] = False,
) -> None:
    """Find the ICD-10-CM codes a clinical phrase means (nearest official descriptions).

    The first run for a model and scope embeds the descriptions of the scope's billable codes and
    caches them (resumable if interrupted); later runs only embed the query.

    With `--index INDEX` it searches an index built by `cardio-st index` instead, loading only the
    query encoder of the model the index records (for an asymmetric CARE model, the small one).

    A query longer than the model's maximum sequence length (256 word pieces for the default) is
    truncated to it; a note on stderr says so.
    """
    from cardio_st.data.icd10 import resolve_scope
    from cardio_st.models.default import resolve_model
    from cardio_st.retrieval.icd10 import validate_queries

    if queries == ["-"]:
        queries = [line.strip() for line in sys.stdin if line.strip()]
    queries = validate_queries(queries)
    if top_k < 1:
        raise CardioSTError(f"--top-k must be at least 1, got {top_k}")
    if batch_size < 1:
        raise CardioSTError(f"--batch-size must be at least 1, got {batch_size}")
    if index is not None:
        for name, given in (("--scope", scope is not None), ("--rebuild", rebuild)):
            if given:
                raise CardioSTError(f"{name} does not apply to --index (the index holds its own corpus)")
        if not Path(index).is_file():
            raise CardioSTError(
                f"no index at {index}: build it with cardio-st index CORPUS --model M --out {index}"
            )
        if model is not None:
            resolve_model(model)
        quiet_libraries()
        from cardio_st.retrieval.documents import IndexSearch

        searcher = IndexSearch(index, model, batch_size=batch_size)
        labels = ("id", "text")
    else:
        scope = resolve_scope(scope or "cardio")
        quiet_libraries()  # before resolve_model: the default's first use merges it, loading weights
        source = resolve_model(model)

        from cardio_st.retrieval.icd10 import ICD10Search

        searcher = ICD10Search(source.path or source.hub_id, scope, batch_size=batch_size)
        if rebuild:
            searcher.build(rebuild=True)
        labels = ("code", "description")
    results = searcher.search(queries, top_k=top_k, hybrid=hybrid)
    if as_json:
        for query, hits in zip(queries, results):
            for rank, hit in enumerate(hits, start=1):
                record = {
                    "query": query,
                    "rank": rank,
                    labels[0]: hit.id,
                    labels[1]: hit.text,
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
        table.add_column(labels[0])
        table.add_column(labels[1])
        table.add_column("fused score" if hybrid else "score", justify="right")
        for rank, hit in enumerate(hits, start=1):
            table.add_row(str(rank), hit.id, hit.text, f"{hit.score:.3f}")
        console.print(table)


@friendly
def export(
    model: Annotated[
        str,
        typer.Argument(
            help="'default' (the embedded icd10-minilm), another embedded alias, a model folder or a Hub id.",
            show_default=False,
        ),
    ],
    out_dir: Annotated[str, typer.Argument(help="A new (or empty) folder to write.", show_default=False)],
) -> None:
    """Write a model as a standalone sentence-transformers folder: plain
    ``SentenceTransformer(OUT_DIR)`` loads it, without cardio-st.

    ``cardio-st export default OUT_DIR`` writes the embedded default model with its adapter merged
    into all-MiniLM-L6-v2, and its model card with the evaluation results it shipped with.
    """
    from cardio_st.models.default import export_model

    quiet_libraries()
    out = export_model(model, out_dir)
    typer.echo(f"wrote {model} to {out}")


@friendly(flags=_MODEL_FLAG)
def index_command(
    corpus: Annotated[
        str,
        typer.Argument(
            help="Documents: .jsonl (text, id), .csv/.tsv (header id,text), .txt (one a line), .parquet, "
            "a BEIR folder with corpus.jsonl, or icd10:SCOPE.",
            show_default=False,
        ),
    ],
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Model folder, Hub id or alias; for CARE, the trained router."),
    ],
    out: Annotated[str, typer.Option(help="The index file to write, e.g. corpus.safetensors.")],
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.")] = 32,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an index at OUT built from another corpus or model.")
    ] = False,
) -> None:
    """Embed a corpus with a model's document encoder into an index for `cardio-st search --index`.

    For an asymmetric (CARE) model only the document route embeds; the index records both encoders
    so that search can load the query encoder alone and refuse a model that does not match. Rerun
    the same command after an interruption to resume.
    """
    from cardio_st.models.default import resolve_model

    if batch_size < 1:
        raise CardioSTError(f"--batch-size must be at least 1, got {batch_size}")
    resolve_model(model)  # fail on a bad --model before importing torch
    quiet_libraries()
    from cardio_st.retrieval.documents import index_documents

    built = index_documents(model, corpus, out, batch_size=batch_size, overwrite=overwrite)
    typer.echo(f"indexed {len(built):,} documents ({built.dim} dimensions) into {out}")


@friendly
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
