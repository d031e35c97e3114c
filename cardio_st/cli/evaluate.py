"""``cardio-st evaluate``: score models (and the lexical baselines) on benchmark tasks side by side and
print or write the report. Leaves out the tasks and metrics (cardio_st.evaluation).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cardio_st.cli.base import friendly, quiet_libraries

__all__ = ["evaluate"]


@friendly(flags={"name_or_path": "--model"})
def evaluate(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Model folder, Hub id, embedded alias ('default', 'minilm'), tfidf or bm25."
        ),
    ] = "default",
    task: Annotated[
        list[str] | None,
        typer.Option(
            help="icd10 (circulatory chapter, held out), icd10-all, shorthand (clinical abbreviations, "
            "lay and terse phrases, circulatory chapter, test side: overall and by kind), "
            "triplets:DIR (held-out pairs), "
            "labels:DIR (a corpus labelled by `cardio-st label`: nDCG@10, MAP@10, MRR@10), mteb:NAME. "
            "Repeat for several.",
        ),
    ] = None,
    compare: Annotated[
        list[str] | None, typer.Option(help="More models (or tfidf, bm25) to evaluate side by side.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    report: Annotated[
        str | None, typer.Option(help="Write results.json, report.md and report.png into this folder.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.")] = 64,
    expand: Annotated[
        bool,
        typer.Option(
            help="Expand abbreviations in the icd10 and shorthand queries first, as `cardio-st search` does "
            "(off: the model is measured on the queries as written)."
        ),
    ] = False,
) -> None:
    """Evaluate models on the ICD-10-CM rephrasing benchmark (arXiv 2401.01943), the clinical-shorthand
    benchmark, held-out pairs (CardioEmbed's protocol) or mteb tasks, side by side, with 95% bootstrap
    intervals where the task has them.
    """
    from cardio_st.evaluation.checks import check_report, check_tasks
    from cardio_st.retrieval.named import resolve_retriever

    tasks = task or ["icd10"]
    if report:
        check_report()  # the [report] extra is there before hours of evaluation, not after
    check_tasks(tasks)  # task names and data paths before any model
    names = [model, *(compare or [])]
    for name in names:  # fail on a bad model name before importing torch
        resolve_retriever(name)
    quiet_libraries()
    from cardio_st.evaluation.report import evaluate_tasks, write_report

    results = evaluate_tasks(names, tasks, batch_size=batch_size, expand=expand)
    if report:
        paths = write_report(results, report)
        typer.echo(f"report written: {', '.join(str(p) for p in paths.values())}", err=True)
    if as_json:
        from dataclasses import asdict

        typer.echo(json.dumps([asdict(r) for r in results], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    for task_name in dict.fromkeys(r.task for r in results):
        rows = [r for r in results if r.task == task_name]
        metrics = list(rows[0].metrics)[:6]
        table = Table(title=task_name, title_justify="left")
        table.add_column("model")
        for metric in metrics:
            table.add_column(metric, justify="right")
        table.add_column("query ms", justify="right")
        for r in rows:
            cells = []
            for metric in metrics:
                cell = f"{r.metrics[metric]:.3f}"
                if metric == r.primary and metric in r.intervals:
                    cell += " [{:.3f}, {:.3f}]".format(*r.intervals[metric])
                cells.append(cell)
            table.add_row(r.model, *cells, f"{r.query_ms:.1f}" if r.query_ms is not None else "-")
        Console().print(table)
