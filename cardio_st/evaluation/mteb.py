"""Models through mteb: mteb's own tasks and benchmarks by name, the local tasks by name, and run_mteb.
Leaves out building the local tasks (cardio_st.evaluation.mteb_tasks), result tables and leaderboards.

The local tasks ([icd10_task][cardio_st.evaluation.mteb_tasks.icd10_task],
[triplets_task][cardio_st.evaluation.mteb_tasks.triplets_task],
[labelled_task][cardio_st.evaluation.mteb_tasks.labelled_task], re-exported here) build their data in
memory and never touch the network; named tasks download theirs from the Hugging Face Hub on first use
(into the Hugging Face cache), so they need a connection once, and fail with one line saying so when
there is none.

Example:
    >>> from cardio_st.evaluation.mteb import get_tasks, icd10_task, run_mteb
    >>> scores = run_mteb(model, [icd10_task("cardio"), *get_tasks(["BIOSSES"])])  # doctest: +SKIP
    >>> icd10 = scores["CardioST-ICD10CM-Circulatory"]  # doctest: +SKIP
    >>> icd10.get("ndcg_at_10")  # doctest: +SKIP
    0.55
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.data.icd10_codes import chapters
from cardio_st.errors import CardioSTError
from cardio_st.evaluation.mteb_tasks import (
    ICD10_TASK_PREFIX,
    icd10_task,
    icd10_task_name,
    import_mteb,
    labelled_task,
    triplets_task,
)
from cardio_st.models.loader import load_model

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask

__all__ = [
    "get_tasks",
    "run_mteb",
    # re-exported from cardio_st.evaluation.mteb_tasks
    "ICD10_TASK_PREFIX",
    "icd10_task",
    "icd10_task_name",
    "labelled_task",
    "triplets_task",
]

# Exception classes (anywhere in the chain) that mean "the Hub could not be reached": builtins,
# huggingface_hub's, requests' and httpx's, matched by name so none of those need importing here.
_NETWORK_ERRORS = {
    "ConnectionError",
    "TimeoutError",
    "OfflineModeIsEnabled",
    "LocalEntryNotFoundError",
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "Timeout",
    "TransportError",
}


def _local_icd10_scopes() -> dict[str, str]:
    """Lower-cased local task name -> scope, for every chapter of the installed release."""
    scopes = {"all": "all", **{chapter.number: chapter.number for chapter in chapters()}}
    return {icd10_task_name(chapter).lower(): scope for chapter, scope in scopes.items()}


def get_tasks(names: Sequence[str]) -> list[AbsTask]:
    """mteb tasks and benchmarks by name, in order, each task once.

    Args:
        names: Task names (``"BIOSSES"``, ``"SciFact"``, ``"NFCorpus"``), benchmark names or aliases
            (``"MTEB(Medical, v1)"``, expanded to its tasks) and the local ICD-10-CM tasks
            (``"CardioST-ICD10CM-Circulatory"``, ``"CardioST-ICD10CM-All"``, any letter case).

    Returns:
        The task objects, for [run_mteb][cardio_st.evaluation.mteb.run_mteb] or ``mteb.evaluate``.

    Raises:
        CardioSTError: for a name that is neither, listing the closest known names; or mteb missing.
    """
    mteb = import_mteb()
    if isinstance(names, str):
        names = [names]
    tasks: dict[str, AbsTask] = {}
    for name in names:
        local_scope = _local_icd10_scopes().get(name.strip().lower())
        if local_scope is not None:
            found: Iterable[AbsTask] = [icd10_task(local_scope)]
        else:
            try:
                found = [mteb.get_task(name)]
            except KeyError:
                try:
                    found = mteb.get_benchmark(name).tasks
                except KeyError:
                    raise CardioSTError(_unknown_task_message(mteb, name)) from None
        for task in found:
            tasks.setdefault(task.metadata.name, task)
    return list(tasks.values())


def _unknown_task_message(mteb: Any, name: str) -> str:
    benchmarks = mteb.get_benchmarks()
    known = [task.metadata.name for task in mteb.get_tasks()]
    known += [benchmark.name for benchmark in benchmarks]
    known += [alias for benchmark in benchmarks for alias in benchmark.aliases or ()]
    known += [icd10_task_name(scope) for scope in ("9", "all")]
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "no close match"
    return (
        f"unknown mteb task or benchmark {name!r}: {hint} "
        "(see mteb.get_tasks() and mteb.get_benchmarks() for every name)"
    )


def _is_download_failure(error: BaseException) -> bool:
    """Whether ``error`` or anything in its cause/context chain is a failure to reach the Hub."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in _NETWORK_ERRORS for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a dependency of datasets
        return False
    flag = os.environ.get("HF_HUB_OFFLINE", os.environ.get("HF_DATASETS_OFFLINE", ""))
    return bool(constants.HF_HUB_OFFLINE) or flag.strip().lower() in ("1", "true", "yes", "on")


def _download_error(task: AbsTask, error: BaseException) -> CardioSTError:
    name = task.metadata.name
    dataset = task.metadata.dataset.get("path", "?")
    if _hub_offline():
        why, connect = "offline mode is on (HF_HUB_OFFLINE=1)", "unset HF_HUB_OFFLINE with a connection"
    else:
        why, connect = "the Hub cannot be reached", "connect to the internet"
    return CardioSTError(
        f"mteb task {name!r} needs its data ({dataset}) from the Hugging Face Hub, but {why}: {connect}, "
        "or download the data beforehand into the Hugging Face cache on a connected machine (python -c "
        f"\"import mteb; mteb.get_task('{name}').load_data()\") and copy that cache (HF_HOME) here",
        exit_code=1,
    )


def _scores(result: Any, main_score: str) -> dict[str, float]:
    """``{metric: value}`` of one mteb TaskResult, main score first; numbers only, averaged over the
    splits and subsets it holds (one for most tasks)."""
    totals: dict[str, list[float]] = {}
    for entries in result.scores.values():
        for entry in entries:
            for metric, value in entry.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and metric != "main_score":
                    totals.setdefault(metric, []).append(float(value))
    scores = {metric: sum(values) / len(values) for metric, values in totals.items()}
    if main_score not in scores:
        scores[main_score] = float(result.get_score())
    return {main_score: scores.pop(main_score), **scores}


def run_mteb(
    model: Any,
    tasks: AbsTask | str | Sequence[AbsTask | str],
    *,
    output_folder: str | os.PathLike | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Evaluate a model on mteb tasks with ``mteb.evaluate``, one task at a time.

    A SentenceTransformer is evaluated as mteb does (queries through ``encode_query``, documents through
    ``encode_document``). Each task's data is loaded just before mteb runs it, here rather than inside mteb
    (which swallows some loading errors), so a task that cannot download it fails with a message saying
    how to get it. Tasks run in order: those before a failing one are done (and saved, with
    ``output_folder``).

    Args:
        model: A SentenceTransformer, or a model name, folder or Hub id (loaded with
            [load_model][cardio_st.models.loader.load_model]).
        tasks: Task objects ([icd10_task][cardio_st.evaluation.mteb_tasks.icd10_task],
            [triplets_task][cardio_st.evaluation.mteb_tasks.triplets_task], ``mteb.get_task(...)``) and/or
            names (see [get_tasks][cardio_st.evaluation.mteb.get_tasks]).
        output_folder: Save mteb's result files here, in mteb's layout:
            ``<folder>/results/<model>/<revision>/<task>.json``, the model named by its model card
            (``model.model_card_data.model_name``, else ``no_model_name__available``); a rerun overwrites
            them. None saves nothing.
        batch_size: Encoding batch size.
        show_progress: Progress bars.

    Returns:
        ``{task name: {metric: value}}``, the task's main score first (``ndcg_at_10`` for retrieval,
        ``cosine_spearman`` for STS, ...), averaged over its splits and subsets.

    Raises:
        CardioSTError: (exit code 1) naming the task, when its data must be downloaded from the Hugging
            Face Hub and the Hub is offline or unreachable; for unknown names or a missing mteb.
    """
    mteb = import_mteb()
    if isinstance(tasks, mteb.Benchmark):
        tasks = list(tasks.tasks)
    elif isinstance(tasks, (str, mteb.AbsTask)):
        tasks = [tasks]
    resolved = [found for task in tasks for found in (get_tasks([task]) if isinstance(task, str) else [task])]
    if isinstance(model, (str, os.PathLike)):
        model, _ = load_model(model)
    cache = mteb.ResultCache(cache_path=Path(output_folder)) if output_folder is not None else None
    encode_kwargs = {"batch_size": batch_size, "show_progress_bar": show_progress}
    scores: dict[str, dict[str, float]] = {}
    for task in resolved:
        loaded_here = False
        try:
            if not task.is_aggregate and not task.data_loaded:
                task.load_data()  # here, not inside mteb, so a download failure is reported, not swallowed
                loaded_here = True
            result = mteb.evaluate(
                model,
                task,
                cache=cache,
                overwrite_strategy="always",
                co2_tracker=False,
                encode_kwargs=dict(encode_kwargs),
                show_progress_bar=show_progress,
            )
        except CardioSTError:
            raise
        except Exception as error:
            if _is_download_failure(error):
                raise _download_error(task, error) from error
            raise
        finally:
            if loaded_here and task.data_loaded:
                task.unload_data()
        for task_result in result.task_results:
            scores[task_result.task_name] = _scores(task_result, task.metadata.main_score)
    return scores
