"""Models through mteb: the ICD-10-CM benchmark and saved pairs as local mteb retrieval tasks, and mteb's own
tasks and benchmarks by name. Leaves out result tables and leaderboards (mteb's) and mteb itself (an extra).

Local tasks build their data in memory and never touch the network; named tasks download theirs from the
Hugging Face Hub on first use (into the Hugging Face cache), so they need a connection once, and fail with
one line saying so when there is none.

Example:
    >>> from cardio_st.evaluation.mteb import get_tasks, icd10_task, run_mteb
    >>> scores = run_mteb(model, [icd10_task("cardio"), *get_tasks(["BIOSSES"])])  # doctest: +SKIP
    >>> icd10 = scores["CardioST-ICD10CM-Circulatory"]  # doctest: +SKIP
    >>> icd10.get("ndcg_at_10")  # doctest: +SKIP
    0.55
"""

from __future__ import annotations

import datetime
import difflib
import os
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.citations import ICD10_SEMANTIC_SEARCH
from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask, AbsTaskRetrieval

__all__ = ["ICD10_TASK_PREFIX", "get_tasks", "icd10_task", "labelled_task", "run_mteb", "triplets_task"]

#: Name prefix of the local ICD-10-CM tasks: ``-Circulatory`` (scope ``cardio``), ``-All``, ``-Chapter<n>``.
ICD10_TASK_PREFIX = "CardioST-ICD10CM"

_INSTALL_HINT = 'pip install "cardio-st[mteb]"'
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

#: A local task's data: ``(queries {id: text}, corpus {id: text}, qrels {query id: {doc id: 1}})``.
_Data = tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]

_ICD10_CITATION = f"\n{ICD10_SEMANTIC_SEARCH}\n"


def _import_mteb():
    try:
        import mteb
    except ImportError as error:
        raise CardioSTError(f"mteb is not installed: {_INSTALL_HINT}", exit_code=1) from error
    return mteb


@lru_cache(maxsize=1)
def _in_memory_task_class() -> type:
    """The base of the local tasks, made once mteb is importable (it cannot be defined at import time)."""
    from mteb.abstasks import AbsTaskRetrieval

    class InMemoryRetrievalTask(AbsTaskRetrieval):
        """A single-split retrieval task whose data ``_build()`` makes in memory: nothing is downloaded.

        Subclasses set ``metadata`` (a class attribute, since mteb's ``unload_data`` drops any instance
        copy) and ``_build``; the data is rebuilt if mteb unloads it between runs.
        """

        _build: Callable[[], _Data]

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            if self.data_loaded:
                return
            from datasets import Dataset
            from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

            queries, corpus, qrels = type(self)._build()
            split = RetrievalSplitData(
                queries=Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
                corpus=Dataset.from_dict({"id": list(corpus), "text": list(corpus.values())}),
                relevant_docs=qrels,
                top_ranked=None,
            )
            self.dataset = {"default": {name: split for name in self.metadata.eval_splits}}
            self.data_loaded = True

    return InMemoryRetrievalTask


def _local_task(build: Callable[[], _Data], **metadata: Any) -> AbsTaskRetrieval:
    """An instance of a fresh in-memory task class carrying ``metadata`` and ``build``."""
    from mteb.abstasks.task_metadata import TaskMetadata

    fields = {
        "type": "Retrieval",
        "category": "t2t",
        "modalities": ["text"],
        "eval_langs": ["eng-Latn"],
        # The main score of (nearly) every mteb retrieval task, so local scores sit beside theirs.
        "main_score": "ndcg_at_10",
        "dialect": [],
        "task_subtypes": [],
        **metadata,
    }
    base = _in_memory_task_class()
    class_name = "".join(char for char in fields["name"] if char.isascii() and char.isalnum()) + "Task"
    attributes = {"metadata": TaskMetadata(**fields), "_build": staticmethod(build), "__module__": __name__}
    return type(class_name if class_name[0].isalpha() else f"Local{class_name}", (base,), attributes)()


def _icd10_task_name(chapter: str) -> str:
    from cardio_st.data.icd10 import CIRCULATORY_CHAPTER

    if chapter == "all":
        return f"{ICD10_TASK_PREFIX}-All"
    if chapter == CIRCULATORY_CHAPTER:
        return f"{ICD10_TASK_PREFIX}-Circulatory"
    return f"{ICD10_TASK_PREFIX}-Chapter{chapter}"


def _release_date(release: str) -> tuple[str, str] | None:
    """``("2026-04-01", "2026-04-01")`` from ``"icd10c-tabular-April-1-2026"``; None if not in that form."""
    try:
        day = datetime.datetime.strptime(release.split("tabular-")[-1], "%B-%d-%Y").date().isoformat()
    except ValueError:
        return None
    return day, day


def icd10_task(scope: str = "cardio") -> AbsTaskRetrieval:
    """The ICD-10-CM rephrasing benchmark as a local mteb retrieval task (nothing to download).

    The data of [icd10_eval_set][cardio_st.data.icd10.icd10_eval_set]: queries are the alternative terms
    of the held-out billable codes (ids ``q0``, ``q1``, ...), the corpus is every billable description of
    the scope (ids are the codes) and each query's one relevant document is its own code. The main score
    is ``ndcg_at_10``, as for nearly every mteb retrieval task; ``mrr_at_10`` and ``recall_at_10`` equal
    [evaluate_icd10][cardio_st.evaluation.icd10.evaluate_icd10]'s ``mrr@10`` and ``recall@10`` up to ties
    in score (mteb breaks them by code, descending; evaluate_icd10 by tabular-list order) and the 5-decimal
    rounding mteb applies to recall and nDCG.

    The task is named ``CardioST-ICD10CM-Circulatory`` (scope ``cardio``), ``CardioST-ICD10CM-All`` or
    ``CardioST-ICD10CM-Chapter<n>``; its dataset revision is the installed ICD-10-CM release, so results
    of different releases are never mixed.

    Args:
        scope: ``"cardio"`` (152 queries over 1,427 codes), ``"all"`` or a chapter (see
            [resolve_scope][cardio_st.data.icd10.resolve_scope]).

    Returns:
        An ``AbsTaskRetrieval`` for ``mteb.evaluate`` or [run_mteb][cardio_st.evaluation.mteb.run_mteb].

    Raises:
        CardioSTError: for an unknown scope, or when mteb is not installed.
    """
    _import_mteb()
    from cardio_st.data.icd10 import data_release, icd10_eval_set, resolve_scope

    chapter = resolve_scope(scope)
    release = data_release()

    def build() -> _Data:
        evaluation = icd10_eval_set(scope)
        queries, corpus = evaluation["queries"], evaluation["corpus"]
        query_ids = [f"q{i}" for i in range(len(queries))]
        return (
            dict(zip(query_ids, queries["query"])),
            dict(zip(corpus["code"], corpus["description"])),
            {query_id: {code: 1} for query_id, code in zip(query_ids, queries["code"])},
        )

    where = "all chapters" if chapter == "all" else f"chapter {chapter}"
    return _local_task(
        build,
        name=_icd10_task_name(chapter),
        description=(
            f"ICD-10-CM rephrasing retrieval ({where}, release {release}): each human-written alternative "
            "term of a held-out billable code retrieves that code's official description among every "
            "billable description of the scope. Held out by 3-character category (cardio-st's fixed "
            "split). The task of arXiv 2401.01943 with the tabular list's own terms as rephrasings."
        ),
        reference="https://arxiv.org/abs/2401.01943",
        dataset={"path": "simple-icd-10-cm", "revision": release},
        eval_splits=["test"],
        date=_release_date(release),
        domains=["Medical", "Government", "Written"],
        # ICD-10-CM is a US government work (CDC/NCHS), in the public domain; mteb has no id for that.
        license="https://www.cdc.gov/nchs/icd/icd-10-cm/index.html",
        annotations_creators="derived",
        sample_creation="found",
        bibtex_citation=_ICD10_CITATION,
        adapted_from=["arXiv:2401.01943"],
    )


def triplets_task(
    path: str | os.PathLike, *, split: str = "test", name: str | None = None
) -> AbsTaskRetrieval:
    """Any pairs or triplets dataset as a local mteb retrieval task: CardioEmbed's held-out protocol.

    Each anchor of ``split`` is a query whose one relevant document is its own positive, searched among
    all distinct positives of the split (identical positives become one document, ``d0``, ``d1``, ...
    in order of first appearance). Negatives are ignored. An anchor that appears with two positives makes
    two queries, as in [PairRetrievalEvaluator][cardio_st.evaluation.retrieval.PairRetrievalEvaluator],
    whose accuracy@k, MRR@10 and nDCG@10 this task's ``recall_at_k``, ``mrr_at_10`` and ``ndcg_at_10``
    match up to ties in score.

    Args:
        path: What ``cardio-st prepare`` saved (a ``save_to_disk`` folder with train / validation / test
            splits) or ``.parquet`` / ``.jsonl`` / ``.csv`` files, read and checked as
            [load_pairs][cardio_st.training.load_pairs] does (``anchor`` and ``positive`` columns, else
            the first two text columns).
        split: The split to evaluate; it is also the mteb split name in the results.
        name: The task name (default ``CardioST-Pairs-<folder or file name>-<split>``).

    Returns:
        An ``AbsTaskRetrieval`` for ``mteb.evaluate`` or [run_mteb][cardio_st.evaluation.mteb.run_mteb].

    Raises:
        CardioSTError: when the path or split does not exist, a text cell is empty, or mteb is missing.
    """
    _import_mteb()
    from cardio_st.training import load_splits

    path = Path(path)
    if not path.exists():
        raise CardioSTError(f"pairs dataset {path} does not exist: give the folder `cardio-st prepare` wrote")
    data = load_splits(path)
    if split not in data:
        raise CardioSTError(f"{path} has splits {list(data)}, none named {split!r}: pick one with split=...")
    pairs = data[split]
    named = {"anchor", "positive"} <= set(pairs.column_names)
    anchor, positive = ("anchor", "positive") if named else pairs.column_names[:2]
    anchors, positives = list(pairs[anchor]), list(pairs[positive])

    def build() -> _Data:
        documents: dict[str, str] = {}
        for text in positives:
            documents.setdefault(text, f"d{len(documents)}")
        queries = {f"q{i}": anchor for i, anchor in enumerate(anchors)}
        qrels = {f"q{i}": {documents[positive]: 1} for i, positive in enumerate(positives)}
        return queries, {doc_id: text for text, doc_id in documents.items()}, qrels

    return _local_task(
        build,
        name=name or f"CardioST-Pairs-{path.stem}-{split}",
        description=(
            f"Held-out pair retrieval on {path.name} [{split}] ({len(anchors)} pairs): each anchor "
            "retrieves its positive among all distinct positives of the split (CardioEmbed's protocol, "
            "arXiv 2511.10930)."
        ),
        reference="https://arxiv.org/abs/2511.10930",
        dataset={"path": str(path), "revision": "local"},
        eval_splits=[split],
        license="not specified",
        annotations_creators="derived",
        sample_creation="found",
        bibtex_citation="",
    )


def labelled_task(path: str | os.PathLike, *, name: str | None = None) -> AbsTaskRetrieval:
    """A corpus labelled by ``cardio-st label`` (or any BEIR folder) as a local mteb retrieval task with
    graded relevance: mteb's ``ndcg_at_10``, ``map_at_10`` and ``mrr_at_10`` then equal cardio-st's
    [evaluate_labelled][cardio_st.evaluation.graded.evaluate_labelled] up to the order of tied scores.

    Args:
        path: The ``--out`` folder of ``cardio-st label`` (its ``dataset``), or a BEIR folder.
        name: The task name (default ``CardioST-Labels-<folder name>``).
    """
    _import_mteb()
    from cardio_st.data.labelling import load_labelled

    path = Path(path)
    queries, corpus, qrels = load_labelled(path)
    scored = {
        q: labels for q, labels in qrels.items() if q in queries and any(g > 0 for g in labels.values())
    }

    def build() -> _Data:
        return {q: queries[q] for q in scored}, corpus, scored

    return _local_task(
        build,
        name=name or f"CardioST-Labels-{path.resolve().name}",
        description=(
            f"Retrieval on {path.name}: {len(scored)} queries over {len(corpus)} passages, graded 0-3 by a "
            "majority of LLM judges (CMedTEB's method, arXiv 2604.10937)."
        ),
        reference="https://arxiv.org/abs/2604.10937",
        dataset={"path": str(path), "revision": "local"},
        eval_splits=["test"],
        license="not specified",
        annotations_creators="LM-generated",
        sample_creation="found",
        bibtex_citation="",
    )


def _local_icd10_scopes() -> dict[str, str]:
    """Lower-cased local task name -> scope, for every chapter of the installed release."""
    from cardio_st.data.icd10 import chapters

    scopes = {"all": "all", **{chapter.number: chapter.number for chapter in chapters()}}
    return {_icd10_task_name(chapter).lower(): scope for chapter, scope in scopes.items()}


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
    mteb = _import_mteb()
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
    known += [_icd10_task_name(scope) for scope in ("9", "all")]
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
            [load_model][cardio_st.models.default.load_model]).
        tasks: Task objects ([icd10_task][cardio_st.evaluation.mteb.icd10_task],
            [triplets_task][cardio_st.evaluation.mteb.triplets_task], ``mteb.get_task(...)``) and/or names
            (see [get_tasks][cardio_st.evaluation.mteb.get_tasks]).
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
    mteb = _import_mteb()
    if isinstance(tasks, mteb.Benchmark):
        tasks = list(tasks.tasks)
    elif isinstance(tasks, (str, mteb.AbsTask)):
        tasks = [tasks]
    resolved = [found for task in tasks for found in (get_tasks([task]) if isinstance(task, str) else [task])]
    if isinstance(model, (str, os.PathLike)):
        from cardio_st.models.default import load_model

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
