"""Local mteb retrieval tasks built in memory: the ICD-10-CM benchmark, saved pairs and labelled corpora.
Leaves out mteb's named tasks and running models (cardio_st.evaluation.mteb), and mteb itself (an extra).

Local tasks build their data in memory and never touch the network; their scores sit beside those of
mteb's own retrieval tasks (main score ``ndcg_at_10``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.citations import ICD10_SEMANTIC_SEARCH
from cardio_st.data.icd10 import icd10_eval_set
from cardio_st.data.icd10_codes import CIRCULATORY_CHAPTER, data_release, resolve_scope, scope_title
from cardio_st.data.pairs import load_splits
from cardio_st.errors import CardioSTError
from cardio_st.labelling.dataset import load_labelled

if TYPE_CHECKING:
    from mteb.abstasks import AbsTaskRetrieval

__all__ = [
    "ICD10_TASK_PREFIX",
    "icd10_task",
    "icd10_task_name",
    "import_mteb",
    "labelled_task",
    "triplets_task",
]

#: Name prefix of the local ICD-10-CM tasks: ``-Circulatory`` (scope ``cardio``), ``-All``, ``-Chapter<n>``.
ICD10_TASK_PREFIX = "CardioST-ICD10CM"

_INSTALL_HINT = 'pip install "cardio-st[mteb]"'

#: A local task's data: ``(queries {id: text}, corpus {id: text}, qrels {query id: {doc id: 1}})``.
_Data = tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]

_ICD10_CITATION = f"\n{ICD10_SEMANTIC_SEARCH}\n"


def import_mteb() -> Any:
    """The ``mteb`` module, imported on first use.

    Raises:
        CardioSTError: (exit code 1) saying how to install the extra, when mteb is not installed.
    """
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


def icd10_task_name(scope: str = "cardio") -> str:
    """The name of the local ICD-10-CM task of a scope: the key of its scores in
    [run_mteb][cardio_st.evaluation.mteb.run_mteb]'s result.

    Args:
        scope: ``"cardio"`` (``CardioST-ICD10CM-Circulatory``), ``"all"`` (``CardioST-ICD10CM-All``), a
            chapter (``CardioST-ICD10CM-Chapter<n>``) or any other scope
            (``CardioST-ICD10CM-Scope-<pieces joined by +>``; see
            [resolve_scope][cardio_st.data.icd10_codes.resolve_scope]).

    Raises:
        CardioSTError: for an unknown scope.
    """
    chapter = resolve_scope(scope)
    if chapter == "all":
        return f"{ICD10_TASK_PREFIX}-All"
    if chapter == CIRCULATORY_CHAPTER:
        return f"{ICD10_TASK_PREFIX}-Circulatory"
    if chapter.isdigit():
        return f"{ICD10_TASK_PREFIX}-Chapter{chapter}"
    return f"{ICD10_TASK_PREFIX}-Scope-{chapter.replace(',', '+')}"  # "9,I20-I25" -> "...-Scope-9+I20-I25"


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
            [resolve_scope][cardio_st.data.icd10_codes.resolve_scope]).

    Returns:
        An ``AbsTaskRetrieval`` for ``mteb.evaluate`` or [run_mteb][cardio_st.evaluation.mteb.run_mteb].

    Raises:
        CardioSTError: for an unknown scope, or when mteb is not installed.
    """
    import_mteb()
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

    where = f"chapter {chapter}" if chapter.isdigit() else scope_title(chapter)
    return _local_task(
        build,
        name=icd10_task_name(chapter),
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
            [load_pairs][cardio_st.data.pairs.load_pairs] does (``anchor`` and ``positive`` columns, else
            the first two text columns).
        split: The split to evaluate; it is also the mteb split name in the results.
        name: The task name (default ``CardioST-Pairs-<folder or file name>-<split>``).

    Returns:
        An ``AbsTaskRetrieval`` for ``mteb.evaluate`` or [run_mteb][cardio_st.evaluation.mteb.run_mteb].

    Raises:
        CardioSTError: when the path or split does not exist, a text cell is empty, or mteb is missing.
    """
    import_mteb()
    path = Path(path)
    if not path.exists():
        raise CardioSTError(f"pairs dataset {path} does not exist: give the folder `cardio-st prepare` wrote")
    data = load_splits(path)
    if split not in data:
        raise CardioSTError(
            f"{path} has splits {list(data)}, none named {split!r}: pick one with `split=...`"
        )
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
        path: The ``out`` folder of [label_corpus][cardio_st.labelling.pipeline.label_corpus] (``cardio-st
            label``; its ``dataset``), or a BEIR folder.
        name: The task name (default ``CardioST-Labels-<folder name>``).
    """
    import_mteb()
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
