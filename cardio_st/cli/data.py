"""``cardio-st prepare`` and ``prepare-icd10``: turn texts or ICD-10-CM into training data and print
what was written. Leaves out the preparation itself (cardio_st.data.prepare, cardio_st.training.recipes).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cardio_st.cli.base import friendly, quiet_datasets, quiet_libraries
from cardio_st.errors import CardioSTError

__all__ = ["prepare", "prepare_icd10"]


def _print_summary(title: str, summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("step")
    table.add_column("count", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)


def _parse_ratios(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise CardioSTError(f"--ratios {text!r}: give three numbers, e.g. 0.85,0.1,0.05") from None


@friendly(flags={"spec": "--paraphraser"})
def prepare(
    corpus: Annotated[
        str,
        typer.Argument(
            help="Folder of .txt/.md/.pdf texts, one source per file (with --paraphraser none: "
            "pairs as .jsonl/.csv/.parquet with anchor, positive[, source]).",
            show_default=False,
        ),
    ],
    out: Annotated[str, typer.Option(help="Output folder: triplets, paraphrase checkpoint, summary.json.")],
    paraphraser: Annotated[
        str,
        typer.Option(help="hf:MODEL (local transformers LM), openai:URL (with --model), or none."),
    ] = "none",
    model: Annotated[
        str | None, typer.Option(help="Model name on the openai: server (e.g. what vLLM serves).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key for openai: (default: $OPENAI_API_KEY).", show_default=False)
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Parallel requests to an openai: server.")] = 8,
    batch_size: Annotated[int, typer.Option(help="Sentences per generate() call of an hf: model.")] = 8,
    min_words: Annotated[int, typer.Option(help="Drop sentences shorter than this.")] = 3,
    max_words: Annotated[int, typer.Option(help="Drop sentences longer than this.")] = 500,
    skip_unreadable: Annotated[
        bool, typer.Option(help="Skip binary or non-UTF-8 files (with a note) instead of stopping.")
    ] = False,
    split: Annotated[
        str, typer.Option(help="Split by 'source' (whole files) or by 'ratio' (random).")
    ] = "source",
    ratios: Annotated[str, typer.Option(help="Train,validation,test shares (the paper's by default).")] = (
        "0.85,0.1,0.05"
    ),
    length_match: Annotated[
        bool, typer.Option(help="Draw negatives among other-source sentences of similar length.")
    ] = True,
    mine_with: Annotated[
        str | None, typer.Option(help="Mine hard negatives with this embedding model (folder or Hub id).")
    ] = None,
    min_similarity: Annotated[
        float | None,
        typer.Option(
            help="Reject paraphrases whose cosine to the sentence is below this (needs --similarity-model)."
        ),
    ] = None,
    similarity_model: Annotated[
        str | None, typer.Option(help="Embedding model for --min-similarity (default: the embedded MiniLM).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and the negatives.")] = 0,
    retry_rejected: Annotated[
        bool,
        typer.Option(help="Ask again for sentences whose paraphrase was rejected (refusal, copy, length)."),
    ] = False,
    retry_unparsed: Annotated[
        bool, typer.Option(help="Ask again for sentences whose answer held no paraphrase (empty).")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Write into a non-empty OUT that an earlier prepare did not write (deletes nothing)."
        ),
    ] = False,
) -> None:
    """Turn your clinical texts into CardioEmbed training triplets.

    Reads and cleans the texts into sentences, asks an LLM for one meaning-preserving paraphrase of
    each (the positive), and pairs each sentence with a sentence of another source (the negative).
    Every paraphrase is appended to OUT/paraphrases.jsonl as it arrives: rerun the same command after
    a crash or Ctrl-C and it resumes without regenerating finished sentences; sentences the server
    gave no answer for (e.g. `content: null`) are asked again on every rerun. Then
    `cardio-st train --data OUT ...`.
    """
    if split not in ("source", "ratio"):
        raise CardioSTError(f"--split must be 'source' or 'ratio', got {split!r}")
    parsed_ratios = _parse_ratios(ratios)
    quiet_libraries()
    from cardio_st.training.recipes import prepare_training_data

    summary = prepare_training_data(
        corpus,
        out,
        paraphraser=paraphraser,
        model=model,
        api_key=api_key,
        concurrency=concurrency,
        batch_size=batch_size,
        mine_with=mine_with,
        similarity_model=similarity_model,
        min_similarity=min_similarity,
        min_words=min_words,
        max_words=max_words,
        skip_unreadable=skip_unreadable,
        split=split,
        ratios=parsed_ratios,
        seed=seed,
        length_match=length_match,
        retry_rejected=retry_rejected,
        retry_unparsed=retry_unparsed,
        overwrite=overwrite,
    )
    _print_summary(f"triplets written to {out} (cardio-st train --data {out})", summary)


@friendly
def prepare_icd10(
    out: Annotated[str, typer.Option(help="Output folder: pairs (train, validation), eval/, summary.json.")],
    scope: Annotated[
        str, typer.Option(help="all, cardio, a chapter (10, J00-J99), chapters (9-10), categories (I20-I25).")
    ] = "all",
    negatives: Annotated[
        bool, typer.Option(help="Add a negative column: a sibling code's description, same category.")
    ] = True,
    validation_fraction: Annotated[
        float, typer.Option(help="Share of train-side categories held back for validation.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for validation categories and negatives.")] = 0,
    overwrite: Annotated[
        bool,
        typer.Option(help="Write into a non-empty OUT that prepare-icd10 did not write (deletes nothing)."),
    ] = False,
) -> None:
    """Build ICD-10-CM training pairs (alternative term -> official description) from the train side of
    the fixed split, and the evaluation set from its held-out side. Offline, from the installed
    ICD-10-CM release. Then `cardio-st train --data OUT ...`.
    """
    quiet_datasets()
    from cardio_st.data.prepare import prepare_icd10 as run_prepare_icd10

    summary = run_prepare_icd10(
        out,
        scope=scope,
        negatives=negatives,
        validation_fraction=validation_fraction,
        seed=seed,
        overwrite=overwrite,
    )
    _print_summary(f"ICD-10-CM pairs written to {out} (cardio-st train --data {out})", summary)
