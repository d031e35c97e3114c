"""``cardio-st label`` and ``label-review``: label a corpus with LLM judges, import experts' grades, and
print the agreement. Leaves out the labelling itself (cardio_st.labelling).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cardio_st.cli.base import friendly, quiet_libraries
from cardio_st.errors import CardioSTError

__all__ = ["label", "label_review"]


def _judges(specs: list[str], models: list[str], **options: Any) -> list[Any]:
    """Pair each openai: judge with its --model, in order (one --model serves them all)."""
    from cardio_st.labelling.judges import make_judge

    remote = [spec for spec in specs if spec.lower().startswith("openai:")]
    if models and len(models) not in (1, len(remote)):
        raise CardioSTError(
            f"{len(remote)} openai: judges but {len(models)} --model values: give one --model per openai: "
            "judge, in the same order (or one for all)"
        )
    names = iter(models if len(models) != 1 else models * len(remote))
    return [
        make_judge(spec, model=next(names, None) if spec in remote else None, **options) for spec in specs
    ]


@friendly(flags={"spec": "--judge"})
def label(
    corpus: Annotated[
        str, typer.Option(help="Passages: .jsonl (id, text), .csv/.tsv, .txt, .parquet or a BEIR folder.")
    ],
    queries: Annotated[str, typer.Option(help="Queries, in the same formats (id, text).")],
    judge: Annotated[
        list[str],
        typer.Option(
            help="openai:URL (an OpenAI-compatible server) or hf:MODEL; repeat for each judge (3 advised)."
        ),
    ],
    out: Annotated[str, typer.Option(help="Output folder (a rerun resumes it).")],
    model: Annotated[
        list[str] | None, typer.Option(help="Model name on each openai: judge's server, in --judge order.")
    ] = None,
    retriever: Annotated[
        list[str] | None,
        typer.Option(
            help="Retrievers whose top-k are pooled: bm25, tfidf, or a model. Default: bm25 and minilm."
        ),
    ] = None,
    k: Annotated[int, typer.Option(help="Passages each retriever contributes per query.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Passages per judge request.")] = 5,
    max_attempts: Annotated[
        int, typer.Option(help="Answers asked for per pair before it counts as unparsed.")
    ] = 3,
    review_sample: Annotated[
        int, typer.Option(help="Random pairs in the expert review file (flagged pairs come on top).")
    ] = 200,
    api_key: Annotated[
        str | None, typer.Option(help="Bearer token for the servers (default: OPENAI_API_KEY).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight per judge.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per request before a retry.")] = 120.0,
    retry_unparsed: Annotated[
        bool, typer.Option(help="Ask again about pairs a judge answered malformed --max-attempts times.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Write into a non-empty OUT that label did not write (deletes nothing).")
    ] = False,
) -> None:
    """Label your corpus for retrieval evaluation with several LLM judges (CMedTEB's method).

    Candidates are pooled from the retrievers' top-k, every judge grades every candidate 0-3 in
    batches (strict JSON, retried when malformed, checkpointed as answers arrive), and each pair gets
    the majority grade. Writes labels, agreement statistics (pairwise, Fleiss' kappa), a review file for
    experts (import it with `cardio-st label-review`) and a dataset for
    `cardio-st evaluate --task labels:OUT`.
    """
    for name, value in (("--k", k), ("--batch-size", batch_size), ("--max-attempts", max_attempts)):
        if value < 1:
            raise CardioSTError(f"{name} must be at least 1, got {value}")
    if review_sample < 0:
        raise CardioSTError(f"--review-sample must be 0 or more, got {review_sample}")
    judges = _judges(judge, model or [], api_key=api_key, concurrency=concurrency, timeout=timeout)
    quiet_libraries()
    from cardio_st.labelling.pipeline import DEFAULT_RETRIEVERS, label_corpus

    summary = label_corpus(
        corpus,
        queries,
        judges,
        out,
        retrievers=retriever or DEFAULT_RETRIEVERS,
        k=k,
        batch_size=batch_size,
        max_attempts=max_attempts,
        review_size=review_sample,
        retry_unparsed=retry_unparsed,
        overwrite=overwrite,
    )
    _print_labels(summary)
    summary.raise_for_silent_judge()


def _print_labels(summary: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"{summary.pairs:,} pairs: {summary.queries:,} queries x candidates", title_justify="left"
    )
    for column in ("judge", "graded", "unparsed", "no answer", "asked now", "vague queries"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    for name, report in summary.judges.items():
        table.add_row(
            name,
            f"{report['graded']:,}",
            f"{report['unparsed']:,}",
            f"{report.get('unanswered', 0):,}",
            f"{report['asked_now']:,}",
            f"{report['low_quality_queries']:,}",
        )
    console.print(table)
    grades = ", ".join(f"{grade}: {count:,}" for grade, count in summary.grades.items())
    console.print(
        f"labels: {summary.labelled:,} ({grades}); unlabelled {summary.unlabelled:,}; ties "
        f"{summary.ties:,}; low agreement {summary.low_agreement:,}"
    )
    for pair in summary.agreement["pairwise"]:
        kappa = pair["cohen_kappa"]
        console.print(
            f"agreement {pair['judges'][0]} / {pair['judges'][1]}: "
            + (f"{pair['agreement']:.3f}" if pair["agreement"] is not None else "-")
            + f" over {pair['pairs']:,} pairs (Cohen's kappa {'-' if kappa is None else f'{kappa:.3f}'})"
        )
    fleiss = summary.agreement["fleiss_kappa"]
    if fleiss is not None:
        console.print(f"Fleiss' kappa: {fleiss:.3f} over {summary.agreement['fleiss_pairs']:,} pairs")
    unanswered = sum(report.get("unanswered", 0) for report in summary.judges.values())
    if unanswered:
        console.print(
            f"{unanswered:,} judge-pair grades got no answer from the server (transient): rerun the same "
            "command to ask again for them"
        )
    console.print(f"dataset: {summary.dataset} ({summary.scored_queries:,} queries with a relevant passage)")
    if summary.review:
        console.print(
            f"expert review file: {summary.review} (fill expert_grade, then cardio-st label-review)"
        )


@friendly
def label_review(
    out: Annotated[str, typer.Argument(help="The folder cardio-st label wrote.", show_default=False)],
    reviewed: Annotated[
        str, typer.Argument(help="The review CSV with the expert_grade column filled in.", show_default=False)
    ],
) -> None:
    """Import experts' grades: they override the votes, and the votes are measured against them."""
    from cardio_st.labelling.pipeline import import_review

    result = import_review(out, reviewed)
    agreement = result["agreement"]
    kappa = result["cohen_kappa"]
    typer.echo(
        f"{result['reviewed']} expert grades in force ({result['changed']} differ from the vote); on "
        f"{result['random_rows']} randomly sampled pairs the votes agreed with the experts "
        + ("-" if agreement is None else f"{agreement:.1%}")
        + f" of the time (Cohen's kappa {'-' if kappa is None else f'{kappa:.3f}'})"
    )
