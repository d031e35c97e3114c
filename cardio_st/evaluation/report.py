"""Evaluation runs over several models and tasks, and their report: a JSON file, a markdown table and a
PNG chart (models side by side, and quality against query latency). Leaves out the metrics (icd10.py,
shorthand.py, retrieval.py, mteb.py), which it only calls.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cardio_st.data.pairs import load_splits
from cardio_st.errors import CardioSTError
from cardio_st.evaluation.checks import (
    _UNKNOWN_TASK,
    ICD10_TASKS,
    SHORTHAND_TASKS,
    check_report,
    check_tasks,
    report_extra_hint,
)
from cardio_st.evaluation.graded import evaluate_labelled
from cardio_st.evaluation.icd10 import evaluate_icd10
from cardio_st.evaluation.mteb import get_tasks, run_mteb
from cardio_st.evaluation.retrieval import PairRetrievalEvaluator, metrics_from_ranks
from cardio_st.evaluation.shorthand import evaluate_shorthand
from cardio_st.retrieval.base import Encoder, Retriever
from cardio_st.retrieval.named import load_retriever, resolve_retriever

__all__ = [
    "TaskResult",
    "check_report",
    "check_tasks",
    "evaluate_tasks",
    "query_latency_ms",
    "report_extra_hint",
    "write_report",
]

_NEITHER = "cannot evaluate a {kind}: pass a SentenceTransformer or a retriever"


@dataclass
class TaskResult:
    """One model on one task.

    Attributes:
        task: The task as asked (``icd10``, ``icd10-all``, ``shorthand``, ``triplets:DIR``, ``mteb:NAME``).
        model: The model's name.
        primary: The metric the report ranks and plots by.
        metrics: Every metric of the task.
        intervals: 95% bootstrap intervals, where the task has them (ICD-10-CM, shorthand).
        query_ms: Median wall time to embed one query alone on this machine, in milliseconds.
    """

    task: str
    model: str
    primary: str
    metrics: dict[str, float]
    intervals: dict[str, list[float]] = field(default_factory=dict)
    query_ms: float | None = None


def query_latency_ms(model: Any, queries: list[str], repeats: int = 32) -> float:
    """Median time to embed a single query (batch of one), as an online search does, in milliseconds."""
    model.encode_query(queries[:2])  # warm-up
    times = []
    for query in (queries * repeats)[:repeats]:
        start = time.perf_counter()
        model.encode_query([query])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _lexical_pair_metrics(retriever: Retriever, split: Any) -> dict[str, float]:
    """CardioEmbed's protocol for a lexical retriever: each anchor ranks all distinct positives."""
    anchors, positives = split[split.column_names[0]], split[split.column_names[1]]
    corpus = list(dict.fromkeys(positives))
    row = {text: i for i, text in enumerate(corpus)}
    _, indices = retriever.fit(corpus).topk(anchors, 10)
    ranks = [
        list(found).index(row[p]) + 1 if row[p] in found else math.inf for found, p in zip(indices, positives)
    ]
    return metrics_from_ranks(ranks, (1, 5, 10))


def _run(model: Any, name: str, task: str, batch_size: int, expand: bool = False) -> TaskResult:
    label = f"{task} (expanded)" if expand and (task in ICD10_TASKS or task in SHORTHAND_TASKS) else task
    if task in ICD10_TASKS:
        result = evaluate_icd10(model, ICD10_TASKS[task], name=name, batch_size=batch_size, expand=expand)
        intervals = {metric: list(interval) for metric, interval in result.intervals.items()}
        return TaskResult(label, name, "exact@1", result.metrics, intervals)
    if task in SHORTHAND_TASKS:
        shorthand = evaluate_shorthand(
            model, scope=SHORTHAND_TASKS[task], name=name, batch_size=batch_size, expand=expand
        )
        return TaskResult(label, name, "exact@1", shorthand.flat_metrics(), shorthand.flat_intervals())
    if task.startswith("triplets:"):
        data = load_splits(task.split(":", 1)[1])
        split = next(data[s] for s in ("test", "validation", "eval", "train") if s in data)
        if isinstance(model, Encoder):
            metrics = PairRetrievalEvaluator.from_dataset(split, name="", batch_size=batch_size)(model)
            metrics = {k.lstrip("_"): v for k, v in metrics.items()}
        elif isinstance(model, Retriever):
            metrics = _lexical_pair_metrics(model, split)
        else:
            raise CardioSTError(_NEITHER.format(kind=type(model).__name__))
        return TaskResult(task, name, "accuracy@1", metrics)
    if task.startswith("labels:"):
        metrics = evaluate_labelled(model, task.split(":", 1)[1], batch_size=batch_size)
        return TaskResult(task, name, "ndcg@10", metrics)
    if task.startswith("mteb:"):
        scores = run_mteb(model, get_tasks([task.split(":", 1)[1]]))
        metrics = {
            f"{task_name}:{metric}": value for task_name, m in scores.items() for metric, value in m.items()
        }
        primary = next(iter(metrics), "")
        return TaskResult(task, name, primary, metrics)
    raise CardioSTError(_UNKNOWN_TASK.format(task=task))


def evaluate_tasks(
    models: Sequence[str | tuple[str, Any]],
    tasks: list[str],
    *,
    batch_size: int = 64,
    latency: bool = True,
    expand: bool = False,
) -> list[TaskResult]:
    """Every model on every task, with each model's single-query latency when ``latency``.

    Args:
        models: ``(name, model)`` pairs (a SentenceTransformer or a retriever), or names that
            [load_retriever][cardio_st.retrieval.named.load_retriever] loads (``bm25``, ``tfidf``, a model
            alias, folder or Hub id): every name is checked before anything loads.
        tasks: ``icd10``, ``icd10-all``, ``shorthand`` (the clinical-shorthand test side: overall, then
            ``abbreviation:``, ``lay:`` and ``terse:`` metrics), ``triplets:DIR``, ``labels:DIR`` or
            ``mteb:NAME``.
        batch_size: Encoding batch size.
        latency: Measure each encoder's single-query latency.
        expand: Expand abbreviations in the ``icd10`` and ``shorthand`` queries first, as ``cardio-st
            search`` does (those tasks are then reported as ``"icd10 (expanded)"``, ...).

    Example:
        ```python
        from cardio_st.evaluation.report import evaluate_tasks

        results = evaluate_tasks(["default", "bm25"], ["icd10"])
        ```
    """
    for model in models:  # fail on a bad model name before loading anything
        if isinstance(model, str):
            resolve_retriever(model)
    check_tasks(tasks)
    models = [(model, load_retriever(model)) if isinstance(model, str) else model for model in models]
    results = []
    for name, model in models:
        milliseconds = None
        if latency and isinstance(model, Encoder):
            milliseconds = query_latency_ms(model, ["heart attack with ST elevation", "afib", "angina NOS"])
        for task in tasks:
            result = _run(model, name, task, batch_size, expand)
            result.query_ms = milliseconds
            results.append(result)
    return results


def _markdown(results: list[TaskResult]) -> str:
    lines = ["# cardio-st evaluation", ""]
    for task in dict.fromkeys(r.task for r in results):
        rows = [r for r in results if r.task == task]
        metrics = list(rows[0].metrics)[:8]
        lines += [f"## {task}", "", "| model | " + " | ".join(metrics) + " | query ms |"]
        lines.append("|---|" + "---:|" * (len(metrics) + 1))
        for r in rows:
            cells = []
            for metric in metrics:
                value = f"{r.metrics[metric]:.4f}"
                if metric in r.intervals:
                    low, high = r.intervals[metric]
                    value += f" [{low:.3f}, {high:.3f}]"
                cells.append(value)
            latency = f"{r.query_ms:.1f}" if r.query_ms is not None else "-"
            lines.append(f"| {r.model} | " + " | ".join(cells) + f" | {latency} |")
        lines.append("")
    return "\n".join(lines)


def _plot(results: list[TaskResult], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CardioSTError(f"the PNG report needs matplotlib: {report_extra_hint()}", exit_code=1) from None
    tasks = list(dict.fromkeys(r.task for r in results))
    with_latency = any(r.query_ms is not None for r in results)
    figure, axes = plt.subplots(
        1, len(tasks) + with_latency, figsize=(5 * (len(tasks) + with_latency), 4), squeeze=False
    )
    for axis, task in zip(axes[0], tasks):
        rows = [r for r in results if r.task == task]
        values = [r.metrics.get(r.primary, 0.0) for r in rows]
        errors = None
        if all(r.primary in r.intervals for r in rows):
            errors = [
                [v - r.intervals[r.primary][0] for v, r in zip(values, rows)],
                [r.intervals[r.primary][1] - v for v, r in zip(values, rows)],
            ]
        axis.bar([r.model for r in rows], values, yerr=errors, capsize=4, color="#4c72b0")
        for position, value in enumerate(values):
            axis.annotate(f"{value:.3f}", (position, value / 2), ha="center", color="white", fontsize=9)
        axis.set_title(task)
        axis.set_ylabel(rows[0].primary)
        axis.tick_params(axis="x", labelrotation=20, labelsize=8)
    if with_latency:
        axis = axes[0][-1]
        first = tasks[0]
        for r in (r for r in results if r.task == first and r.query_ms is not None):
            axis.scatter(r.query_ms, r.metrics.get(r.primary, 0.0))
            axis.annotate(r.model, (r.query_ms, r.metrics.get(r.primary, 0.0)), fontsize=8)
        axis.set_xlabel("query latency (ms, one query, this machine)")
        axis.set_ylabel(f"{first}: {next(r.primary for r in results if r.task == first)}")
        axis.set_title("quality vs query latency")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(results: list[TaskResult], out: str | os.PathLike) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` and ``report.png`` into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "markdown": out / "report.md", "png": out / "report.png"}
    payload = {"date": time.strftime("%Y-%m-%d"), "results": [asdict(r) for r in results]}
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(_markdown(results) + "\n", encoding="utf-8")
    _plot(results, paths["png"])
    return paths
