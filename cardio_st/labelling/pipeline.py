"""Relevance labels for a team's own corpus by several LLM judges, CMedTEB's method (arXiv 2604.10937):
candidates pooled from several retrievers, graded by every judge, majority-voted, with agreement
statistics, an expert-review round trip and a BEIR-format dataset to evaluate models on. Leaves out
asking the judges (judges.py), the vote statistics (votes.py), the files (dataset.py) and scoring models
(cardio_st.evaluation.graded).

Output folder (``label_corpus(..., out)``)::

    candidates.json          the pooled candidates per query, and how they were pooled
    judgements/<judge>.jsonl every judge's raw answers, appended as they arrive (resumable)
    labels.jsonl             one line per (query, passage): every judge's grade, the label, the flags
    dataset/                 corpus.jsonl, queries.jsonl, qrels/test.tsv (BEIR; graded 0-3)
    review-sample.csv        pairs for clinical experts to check (written once, never overwritten)
    review.json              the experts' grades, once imported (they override the votes)
    summary.json             counts, parse failures, agreement
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cardio_st.data.documents import load_documents
from cardio_st.errors import CardioSTError
from cardio_st.labelling.dataset import (  # noqa: F401 (export_review, import_review, load_labelled: old home)
    _apply_review,
    _read_json,
    _write_json,
    _write_outputs,
    _write_review,
    export_review,
    import_review,
    load_labelled,
)
from cardio_st.labelling.judges import judge_pairs
from cardio_st.labelling.prompt import GRADES
from cardio_st.labelling.votes import (  # noqa: F401 (Vote ... majority_vote: importable from here too)
    Pair,
    Vote,
    agreement,
    cohen_kappa,
    fleiss_kappa,
    majority_vote,
)
from cardio_st.retrieval.base import Encoder
from cardio_st.retrieval.named import load_retriever
from cardio_st.utils.files import claim_folder

__all__ = ["DEFAULT_RETRIEVERS", "LabelSummary", "label_corpus", "pool_candidates"]

#: Retrievers whose top-k are pooled by default: one lexical, one embedding model.
DEFAULT_RETRIEVERS = ("bm25", "minilm")


# --------------------------------------------------------------------------- candidates


def _ranked(retriever: Any, queries: list[str], corpus: list[str], k: int) -> list[list[int]]:
    """Each query's top-``k`` corpus rows, best first (lexical: only documents that share a term)."""
    if isinstance(retriever, Encoder):
        # retrieval.exact imports torch; pooling lexical candidates must not
        from cardio_st.retrieval.exact import semantic_search

        documents = retriever.encode_document(corpus, convert_to_tensor=True, show_progress_bar=False)
        embedded = retriever.encode_query(queries, convert_to_tensor=True, show_progress_bar=False)
        return [[hit.corpus_id for hit in hits] for hits in semantic_search(embedded, documents, top_k=k)]
    scores, indices = retriever.fit(corpus).topk(queries, k)
    return [
        [int(i) for i, score in zip(row, row_scores) if score > 0] for row, row_scores in zip(indices, scores)
    ]


def pool_candidates(
    queries: Mapping[str, str], corpus: Mapping[str, str], retrievers: Sequence[tuple[str, Any]], k: int = 10
) -> dict[str, list[str]]:
    """The union of every retriever's top-``k`` passages for each query, in round-robin rank order
    (every retriever's first hit, then every second hit, ...), each passage once.

    Pooling several kinds of retriever shows the judges hard candidates -- what some system would
    actually rank high -- rather than random passages, and keeps the labels from favouring one system.

    Args:
        queries: Query text by id.
        corpus: Passage text by id.
        retrievers: ``(name, retriever)``: a lexical retriever (``fit`` / ``topk``) or an embedding model
            (``encode_query`` / ``encode_document``).
        k: Passages taken from each retriever per query.
    """
    if k < 1:
        raise CardioSTError(f"k must be at least 1, got {k}")
    if not retrievers:
        raise CardioSTError("no retrievers to pool candidates from: give at least one (e.g. bm25)")
    query_ids, doc_ids = list(queries), list(corpus)
    rankings = [_ranked(r, list(queries.values()), list(corpus.values()), k) for _, r in retrievers]
    pooled = {}
    for row, query_id in enumerate(query_ids):
        seen: dict[str, None] = {}
        for rank in range(k):
            for ranking in rankings:
                if rank < len(ranking[row]):
                    seen.setdefault(doc_ids[ranking[row][rank]])
        pooled[query_id] = list(seen)
    return pooled


# --------------------------------------------------------------------------- the run


@dataclass
class LabelSummary:
    """What a [label_corpus][cardio_st.labelling.pipeline.label_corpus] run produced.

    Attributes:
        queries: Queries read.
        documents: Passages read.
        pairs: Candidate (query, passage) pairs shown to the judges.
        judges: Per judge: pairs graded, pairs unparsed (with an example error), pairs it got no
            answer for in this run (transient, asked again by a rerun), requests sent now, queries it
            found too vague.
        labelled: Pairs with a label (at least one judge answered).
        unlabelled: Pairs no judge answered validly.
        grades: How many labels of each grade.
        ties: Labelled pairs whose vote was tied.
        low_agreement: Labelled pairs whose grades span two or more levels.
        agreement: Pairwise agreement and Cohen's kappa of every two judges; Fleiss' kappa.
        scored_queries: Queries with at least one relevant passage (the dataset's queries).
        dataset: The BEIR dataset folder.
        review: The expert review file.
        expert_review: Agreement of the votes with the experts, once a review is imported.
    """

    queries: int
    documents: int
    pairs: int
    judges: dict[str, dict[str, Any]]
    labelled: int
    unlabelled: int
    grades: dict[str, int]
    ties: int
    low_agreement: int
    agreement: dict[str, Any]
    scored_queries: int
    dataset: str
    review: str | None = None
    expert_review: dict[str, Any] | None = field(default=None)

    def raise_for_silent_judge(self) -> None:
        """Fail when a judge gave no usable answer at all: its labels are missing, and so is its vote.

        The labels written come from the other judges; fixing the judge and rerunning with
        ``retry_unparsed=True`` asks it again about the pairs it failed on, and only those.

        Raises:
            CardioSTError: (``exit_code=1``) naming the first silent judge and its last parse error.
        """
        silent = [name for name, report in self.judges.items() if report["graded"] == 0]
        if silent:
            report = self.judges[silent[0]]
            last = report["unparsed_example"] or report.get("unanswered_example")
            raise CardioSTError(
                f"judge {silent[0]} gave no usable answer (last: {last}); the labels come from the other "
                "judges. Fix it, then rerun with `retry_unparsed=True` (pairs already graded are not asked "
                "again), or rerun without that judge",
                exit_code=1,
            )


def _is_label_folder(folder: Path) -> bool:
    """Whether an unmarked folder is an earlier ``label`` run's: its judgements, candidates or summary."""
    try:
        summary = _read_json(folder / "summary.json")
    except (OSError, ValueError):
        summary = None
    return (
        (folder / "judgements").is_dir()
        or (folder / "candidates.json").is_file()
        or (isinstance(summary, dict) and {"judges", "pairs", "dataset"} <= set(summary))
    )


def _candidates(
    folder: Path, queries: dict[str, str], corpus: dict[str, str], retrievers: Sequence[str], k: int
) -> dict[str, list[str]]:
    """The pooled candidates, from candidates.json when it was made from these texts and settings."""
    key = hashlib.sha256(
        json.dumps([queries, corpus, list(retrievers), k], sort_keys=True).encode()
    ).hexdigest()
    path = folder / "candidates.json"
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf8"))
        if saved.get("key") == key:
            return saved["candidates"]
    candidates = pool_candidates(queries, corpus, [(name, load_retriever(name)) for name in retrievers], k)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"key": key, "retrievers": list(retrievers), "k": k, "queries": queries}
    _write_json(path, {**settings, "candidates": candidates})
    return candidates


def label_corpus(
    corpus: str | os.PathLike,
    queries: str | os.PathLike,
    judges: Sequence[Any],
    out: str | os.PathLike,
    *,
    retrievers: Sequence[str] = DEFAULT_RETRIEVERS,
    k: int = 10,
    batch_size: int = 5,
    max_attempts: int = 3,
    review_size: int = 200,
    seed: int = 0,
    retry_unparsed: bool = False,
    overwrite: bool = False,
    show_progress: bool = True,
) -> LabelSummary:
    """Label a corpus for retrieval evaluation with several LLM judges, resumably.

    Candidates are pooled from ``retrievers``
    ([pool_candidates][cardio_st.labelling.pipeline.pool_candidates]), every judge grades every candidate
    ([judge_pairs][cardio_st.labelling.judges.judge_pairs]: a rerun asks no judge again about a pair it
    answered), each pair gets the majority grade ([majority_vote][cardio_st.labelling.votes.majority_vote];
    expert grades imported with [import_review][cardio_st.labelling.dataset.import_review] override it),
    and the labels are written with the agreement statistics and a BEIR dataset (see the module's folder
    layout). Pairs a judge got no answer for (``content: null`` and other transient failures, after the
    backend's retries) are reported as ``unanswered`` and asked again by the next run.

    ``out`` is claimed with [claim_folder][cardio_st.utils.files.claim_folder]: a new or empty folder, or
    an earlier ``label`` run's (resumed); any other non-empty folder is refused unless
    ``overwrite=True``, which writes into it without deleting anything else there.

    Args:
        corpus: Passages: a file [load_documents][cardio_st.data.documents.load_documents] reads, or a
            BEIR folder.
        queries: Queries, in the same formats (``id`` and ``text``).
        judges: [Judge][cardio_st.labelling.judges.Judge]s, e.g. from
            [make_judge][cardio_st.labelling.judges.make_judge]; three, as CMedTEB used, make ties rare.
        out: Output folder (resumes what is there).
        retrievers: ``bm25``, ``tfidf``, or model names / folders / Hub ids.
        k: Passages each retriever contributes per query.
        batch_size: Passages per judge request.
        max_attempts: Answers asked for per pair before it counts as unparsed.
        review_size: Randomly sampled pairs in the expert review file (flagged pairs come on top).
        seed: Seed of the review sample.
        retry_unparsed: Ask again about pairs a judge answered malformed ``max_attempts`` times.
        overwrite: Write into a non-empty folder that is not an earlier ``label`` run's.
        show_progress: Progress bar while judging.

    Returns:
        A [LabelSummary][cardio_st.labelling.pipeline.LabelSummary] (also written to ``summary.json``).
    """
    folder = claim_folder(out, owner="label", overwrite=overwrite, recognise=_is_label_folder)
    corpus_documents = load_documents(corpus, kind="corpus")
    query_documents = load_documents(queries, kind="queries")
    passages = dict(zip(corpus_documents.ids, corpus_documents.texts))
    questions = dict(zip(query_documents.ids, query_documents.texts))
    candidates = _candidates(folder, questions, passages, retrievers, k)
    run = judge_pairs(
        judges,
        candidates,
        questions,
        passages,
        folder / "judgements",
        batch_size=batch_size,
        max_attempts=max_attempts,
        retry_unparsed=retry_unparsed,
        show_progress=show_progress,
    )
    pairs = [(q, d) for q, docs in candidates.items() for d in docs]
    labels: dict[Pair, Vote] = {}
    for pair in pairs:
        votes = {name: grades[pair] for name, grades in run.grades.items() if pair in grades}
        if votes:
            labels[pair] = majority_vote(votes)
    voted = dict(labels)  # before the experts' grades replace any vote
    _apply_review(labels, _read_json(folder / "review.json"))
    dataset = _write_outputs(folder, questions, passages, labels)
    review = folder / "review-sample.csv"
    if not review.exists() and labels:
        _write_review(review, labels, questions, passages, review_size, seed)
    judge_report = {}
    for judge in judges:
        unparsed = run.unparsed.get(judge.name, {})
        unanswered = run.unanswered.get(judge.name, {})
        judge_report[judge.name] = {
            "graded": len(run.grades.get(judge.name, {})),
            "unparsed": len(unparsed),
            "unparsed_example": next(iter(unparsed.values()), None),
            "unanswered": len(unanswered),
            "unanswered_example": next(iter(unanswered.values()), None),
            "asked_now": run.asked.get(judge.name, 0),
            "low_quality_queries": sum(1 for name, _ in run.low_quality if name == judge.name),
        }
    summary = LabelSummary(
        queries=len(questions),
        documents=len(passages),
        pairs=len(pairs),
        judges=judge_report,
        labelled=len(labels),
        unlabelled=len(pairs) - len(labels),
        grades={str(grade): sum(v.label == grade for v in labels.values()) for grade in GRADES},
        ties=sum(v.tie for v in voted.values()),
        low_agreement=sum(v.low_agreement for v in voted.values()),
        agreement=agreement(run.grades, sorted(GRADES)),
        scored_queries=len({q for (q, _), v in labels.items() if v.label > 0}),
        dataset=str(dataset),
        review=str(review) if review.exists() else None,
    )
    summary.expert_review = _read_json(folder / "summary.json").get("expert_review")
    _write_json(folder / "summary.json", asdict(summary))
    return summary
