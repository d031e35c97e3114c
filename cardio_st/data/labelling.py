"""Relevance labels for a team's own corpus by several LLM judges, CMedTEB's method (arXiv 2604.10937):
candidates pooled from several retrievers, graded by every judge, majority-voted, with agreement
statistics, an expert-review round trip and a BEIR-format dataset to evaluate models on. Leaves out
asking the judges (cardio_st.data.judges) and scoring models (cardio_st.evaluation.graded).

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

import csv
import hashlib
import json
import math
import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from cardio_st.data.checkpoint import atomic_write
from cardio_st.errors import CardioSTError

__all__ = [
    "DEFAULT_RETRIEVERS",
    "LabelSummary",
    "Vote",
    "cohen_kappa",
    "export_review",
    "fleiss_kappa",
    "import_review",
    "label_corpus",
    "load_labelled",
    "majority_vote",
    "pool_candidates",
]

#: Retrievers whose top-k are pooled by default: one lexical, one embedding model.
DEFAULT_RETRIEVERS = ("bm25", "minilm")
_LEXICAL = ("bm25", "tfidf")
Pair = tuple[str, str]


# --------------------------------------------------------------------------- candidates


def _retriever(name: str) -> Any:
    if name in _LEXICAL:
        from cardio_st.evaluation.lexical import BM25Retriever, TfidfCharRetriever

        return BM25Retriever() if name == "bm25" else TfidfCharRetriever()
    from cardio_st.models.default import load_model

    return load_model(name)[0]


def _ranked(retriever: Any, queries: list[str], corpus: list[str], k: int) -> list[list[int]]:
    """Each query's top-``k`` corpus rows, best first (lexical: only documents that share a term)."""
    if hasattr(retriever, "encode_query"):
        from cardio_st.search import semantic_search

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


# --------------------------------------------------------------------------- votes and agreement


@dataclass
class Vote:
    """The label of one (query, passage) pair.

    Attributes:
        label: The majority grade (0-3), or the expert's.
        votes: Each judge's grade (judges without a valid answer are absent).
        tie: No grade had more votes than every other; the label is then the median vote, rounded down.
        low_agreement: The judges' grades span two or more levels (e.g. 0 and 2).
        source: ``"vote"`` or ``"expert"``.
    """

    label: int
    votes: dict[str, int]
    tie: bool
    low_agreement: bool
    source: str = "vote"


def majority_vote(votes: Mapping[str, int]) -> Vote:
    """The majority grade of the judges' ``votes``.

    A tie (two grades with the most votes, or all different) goes to the median vote rounded down: the
    cautious reading of a split panel, and the same whatever order the judges come in.

    Example:
        >>> majority_vote({"a": 2, "b": 2, "c": 0})
        Vote(label=2, votes={'a': 2, 'b': 2, 'c': 0}, tie=False, low_agreement=True, source='vote')
        >>> majority_vote({"a": 0, "b": 1, "c": 3}).label
        1
    """
    if not votes:
        raise CardioSTError("no votes to count")
    counts = Counter(votes.values())
    top = max(counts.values())
    winners = [grade for grade, count in counts.items() if count == top]
    ordered = sorted(votes.values())
    label = winners[0] if len(winners) == 1 else ordered[(len(ordered) - 1) // 2]
    return Vote(label, dict(votes), len(winners) > 1, ordered[-1] - ordered[0] >= 2)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of ``counts[item][category]`` (how many raters put each item in each category; the
    same number of raters for every item). None when undefined (one item, or every rating in one
    category).

    Example (Fleiss 1971, as on Wikipedia: 10 subjects, 14 raters, 5 categories):
        >>> table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        ...          [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
        >>> round(fleiss_kappa(table), 3)
        0.21
    """
    rows = [list(row) for row in counts]
    if len(rows) < 1:
        return None
    raters = sum(rows[0])
    if raters < 2 or any(sum(row) != raters for row in rows):
        raise CardioSTError("Fleiss' kappa needs the same number (at least 2) of ratings for every item")
    items = len(rows)
    agreement = sum((sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in rows) / items
    shares = [sum(row[j] for row in rows) / (items * raters) for j in range(len(rows[0]))]
    chance = sum(p * p for p in shares)
    if math.isclose(chance, 1.0):
        return None
    return (agreement - chance) / (1 - chance)


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items; None when undefined (chance agreement 1)."""
    if len(a) != len(b):
        raise CardioSTError(f"{len(a)} labels against {len(b)}: give one label per item from each rater")
    if not a:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / len(a)
    count_a, count_b = Counter(a), Counter(b)
    chance = sum(count_a[c] * count_b[c] for c in set(a) | set(b)) / (len(a) * len(a))
    return None if math.isclose(chance, 1.0) else (observed - chance) / (1 - chance)


def _agreement(grades: Mapping[str, Mapping[Pair, int]], scale: Sequence[int]) -> dict[str, Any]:
    """Pairwise exact agreement and Cohen's kappa of every two judges, and Fleiss' kappa over the pairs
    every judge graded."""
    pairwise = []
    for a, b in combinations(grades, 2):
        common = sorted(set(grades[a]) & set(grades[b]))
        x, y = [grades[a][p] for p in common], [grades[b][p] for p in common]
        pairwise.append(
            {
                "judges": [a, b],
                "pairs": len(common),
                "agreement": sum(i == j for i, j in zip(x, y)) / len(common) if common else None,
                "cohen_kappa": cohen_kappa(x, y),
            }
        )
    everyone = set.intersection(*(set(g) for g in grades.values())) if grades else set()
    table = [[sum(grades[j][pair] == grade for j in grades) for grade in scale] for pair in sorted(everyone)]
    fleiss = fleiss_kappa(table) if len(grades) >= 2 and table else None
    return {"pairwise": pairwise, "fleiss_kappa": fleiss, "fleiss_pairs": len(table)}


# --------------------------------------------------------------------------- files


def _write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    atomic_write(path, lambda tmp: tmp.write_text(lines, encoding="utf8"))


def _write_json(path: Path, value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf8"))


def _read_json(path: Path) -> Any:
    """A JSON file this module wrote, or ``{}`` when it is not there yet."""
    return json.loads(path.read_text(encoding="utf8")) if path.is_file() else {}


def _read_labels(folder: Path) -> dict[Pair, Vote]:
    path = folder / "labels.jsonl"
    if not path.is_file():
        raise CardioSTError(f"{folder} has no labels.jsonl: run cardio-st label first, with --out {folder}")
    labels = {}
    for line in path.read_text(encoding="utf8").splitlines():
        record = json.loads(line)
        labels[(record["query_id"], record["doc_id"])] = Vote(
            record["label"], record["votes"], record["tie"], record["low_agreement"], record["source"]
        )
    return labels


def _write_outputs(
    folder: Path, queries: Mapping[str, str], corpus: Mapping[str, str], labels: Mapping[Pair, Vote]
) -> Path:
    """labels.jsonl and the BEIR dataset: every passage, the queries with at least one relevant passage
    (grade 1 or more; the others cannot be scored), and every labelled pair of those queries."""
    records = [{"query_id": q, "doc_id": d, **asdict(vote)} for (q, d), vote in sorted(labels.items())]
    _write_jsonl(folder / "labels.jsonl", records)
    dataset = folder / "dataset"
    (dataset / "qrels").mkdir(parents=True, exist_ok=True)
    scored = {q for (q, _), vote in labels.items() if vote.label > 0}
    _write_jsonl(dataset / "corpus.jsonl", [{"_id": d, "title": "", "text": t} for d, t in corpus.items()])
    _write_jsonl(
        dataset / "queries.jsonl", [{"_id": q, "text": t} for q, t in queries.items() if q in scored]
    )
    rows = [[q, d, vote.label] for (q, d), vote in sorted(labels.items()) if q in scored]
    _write_table(dataset / "qrels" / "test.tsv", ["query-id", "corpus-id", "score"], rows, delimiter="\t")
    return dataset


def _write_table(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str = ","
) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf8", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    atomic_write(path, write)


def load_labelled(
    folder: str | os.PathLike,
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """``(queries, corpus, qrels)`` of a labelled dataset: the ``dataset`` folder
    [label_corpus][cardio_st.data.labelling.label_corpus] writes (or its parent), or any BEIR folder
    (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``)."""
    folder = Path(folder)
    if (folder / "dataset" / "corpus.jsonl").is_file():
        folder = folder / "dataset"
    files = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / "test.tsv"]
    missing = [str(path.relative_to(folder)) for path in files if not path.is_file()]
    if missing:
        raise CardioSTError(
            f"{folder} is not a labelled dataset (missing {', '.join(missing)}): pass the folder "
            "cardio-st label wrote (--out), or a BEIR folder"
        )

    def read(path: Path) -> dict[str, str]:
        rows = [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
        return {str(row["_id"]): " ".join(p for p in (row.get("title"), row["text"]) if p) for row in rows}

    qrels: dict[str, dict[str, int]] = {}
    with open(files[2], encoding="utf8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if number == 1 and row and row[0] == "query-id":
                continue
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
            except (IndexError, ValueError):
                raise CardioSTError(
                    f"{files[2]}, line {number}: expected query-id, corpus-id, score"
                ) from None
    return read(files[1]), read(files[0]), qrels


# --------------------------------------------------------------------------- expert review


def export_review(
    folder: str | os.PathLike, size: int = 200, *, seed: int = 0, path: str | os.PathLike | None = None
) -> Path:
    """Write pairs for clinical experts to grade: every flagged pair (ties, low agreement) and a random
    sample of ``size`` of the others, as CSV with an empty ``expert_grade`` column.

    The random rows measure how often the votes are right (as CMedTEB's experts did on a sample); the
    flagged ones are where an expert's grade changes the most. ``sampled`` says which is which.
    """
    folder = Path(folder)
    queries, corpus = _texts(folder)
    out = Path(path) if path is not None else folder / "review-sample.csv"
    _write_review(out, _read_labels(folder), queries, corpus, size, seed)
    return out


def _write_review(
    path: Path,
    labels: Mapping[Pair, Vote],
    queries: Mapping[str, str],
    corpus: Mapping[str, str],
    size: int,
    seed: int,
) -> None:
    judges = sorted({judge for vote in labels.values() for judge in vote.votes})
    flagged = [pair for pair, vote in sorted(labels.items()) if vote.tie or vote.low_agreement]
    rest = [pair for pair, vote in sorted(labels.items()) if not (vote.tie or vote.low_agreement)]
    sampled = sorted(random.Random(seed).sample(rest, min(size, len(rest))))
    rows = []
    for pair in [*flagged, *sampled]:
        vote = labels[pair]
        reason = "tie" if vote.tie else "low agreement" if vote.low_agreement else "random"
        grades = [vote.votes.get(judge, "") for judge in judges]
        rows.append([pair[0], queries[pair[0]], pair[1], corpus[pair[1]], *grades, vote.label, reason, ""])
    header = ["query_id", "query", "doc_id", "passage", *judges, "vote", "sampled", "expert_grade"]
    _write_table(path, header, rows)


def _texts(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Every query (from candidates.json) and every passage (from the dataset) of a labelled folder."""
    queries = json.loads((folder / "candidates.json").read_text(encoding="utf8"))["queries"]
    rows = (
        json.loads(line)
        for line in (folder / "dataset" / "corpus.jsonl").read_text(encoding="utf8").splitlines()
    )
    return queries, {row["_id"]: row["text"] for row in rows}


def import_review(folder: str | os.PathLike, path: str | os.PathLike) -> dict[str, Any]:
    """Read experts' grades (the ``expert_grade`` column of an exported review file; empty cells are
    skipped), let them override the votes, rewrite the labels and the dataset, and measure the votes
    against the experts on the randomly sampled rows.

    Returns:
        ``{"reviewed", "changed", "random_rows", "agreement", "cohen_kappa"}``, also stored in
        ``summary.json``.

    Raises:
        CardioSTError: for a file without the columns, a grade outside 0-3, or a pair that was never
            labelled, naming the line.
    """
    folder, path = Path(folder), Path(path)
    labels = _read_labels(folder)
    reviewed = _read_json(folder / "review.json")
    random_rows: list[tuple[int, int]] = []
    with open(path, encoding="utf8", newline="") as handle:
        reader = csv.DictReader(handle)
        needed = {"query_id", "doc_id", "expert_grade"}
        if not needed <= set(reader.fieldnames or []):
            raise CardioSTError(
                f"{path}: needs the columns {sorted(needed)} (export one with --review-sample)"
            )
        for row in reader:
            cell = (row["expert_grade"] or "").strip()
            if not cell:
                continue
            if cell not in {"0", "1", "2", "3"}:
                raise CardioSTError(
                    f"{path}, line {reader.line_num}: expert_grade {cell!r} is not 0, 1, 2 or 3"
                )
            pair = (row["query_id"], row["doc_id"])
            if pair not in labels:
                raise CardioSTError(
                    f"{path}, line {reader.line_num}: query {pair[0]!r} and passage {pair[1]!r} were never "
                    f"labelled in {folder}"
                )
            reviewed[f"{pair[0]}\t{pair[1]}"] = int(cell)
            if row.get("sampled", "random") == "random":  # the votes' own label, even after an earlier review
                random_rows.append((majority_vote(labels[pair].votes).label, int(cell)))
    _write_json(folder / "review.json", reviewed)
    changed = _apply_review(labels, reviewed)
    queries, corpus = _texts(folder)
    _write_outputs(folder, queries, corpus, labels)
    result = {
        "reviewed": len(reviewed),
        "changed": changed,
        "random_rows": len(random_rows),
        "agreement": sum(v == e for v, e in random_rows) / len(random_rows) if random_rows else None,
        "cohen_kappa": cohen_kappa([v for v, _ in random_rows], [e for _, e in random_rows]),
    }
    _write_json(folder / "summary.json", {**_read_json(folder / "summary.json"), "expert_review": result})
    return result


def _apply_review(labels: dict[Pair, Vote], reviewed: Mapping[str, int]) -> int:
    changed = 0
    for key, grade in reviewed.items():
        pair = tuple(key.split("\t", 1))
        if pair in labels:
            vote = labels[pair]
            changed += vote.label != grade
            labels[pair] = Vote(grade, vote.votes, vote.tie, vote.low_agreement, "expert")
    return changed


# --------------------------------------------------------------------------- the run


@dataclass
class LabelSummary:
    """What a [label_corpus][cardio_st.data.labelling.label_corpus] run produced.

    Attributes:
        queries: Queries read.
        documents: Passages read.
        pairs: Candidate (query, passage) pairs shown to the judges.
        judges: Per judge: pairs graded, pairs unparsed (with an example error), requests sent now,
            queries it found too vague.
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
    candidates = pool_candidates(queries, corpus, [(name, _retriever(name)) for name in retrievers], k)
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
    show_progress: bool = True,
) -> LabelSummary:
    """Label a corpus for retrieval evaluation with several LLM judges, resumably.

    Candidates are pooled from ``retrievers`` ([pool_candidates][cardio_st.data.labelling.pool_candidates]),
    every judge grades every candidate ([judge_pairs][cardio_st.data.judges.judge_pairs]: a rerun asks
    no judge again about a pair it answered), each pair gets the majority grade
    ([majority_vote][cardio_st.data.labelling.majority_vote]; expert grades imported with
    [import_review][cardio_st.data.labelling.import_review] override it), and the labels are written
    with the agreement statistics and a BEIR dataset (see the module's folder layout).

    Args:
        corpus: Passages: a file [load_documents][cardio_st.data.documents.load_documents] reads, or a
            BEIR folder.
        queries: Queries, in the same formats (``id`` and ``text``).
        judges: [Judge][cardio_st.data.judges.Judge]s, e.g. from
            [make_judge][cardio_st.data.judges.make_judge]; three, as CMedTEB used, make ties rare.
        out: Output folder (resumes what is there).
        retrievers: ``bm25``, ``tfidf``, or model names / folders / Hub ids.
        k: Passages each retriever contributes per query.
        batch_size: Passages per judge request.
        max_attempts: Answers asked for per pair before it counts as unparsed.
        review_size: Randomly sampled pairs in the expert review file (flagged pairs come on top).
        seed: Seed of the review sample.
        retry_unparsed: Ask again about pairs a judge answered malformed ``max_attempts`` times.
        show_progress: Progress bar while judging.

    Returns:
        A [LabelSummary][cardio_st.data.labelling.LabelSummary] (also written to ``summary.json``).
    """
    from cardio_st.data.documents import load_documents
    from cardio_st.data.judges import GRADES, judge_pairs

    folder = Path(out)
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
        judge_report[judge.name] = {
            "graded": len(run.grades.get(judge.name, {})),
            "unparsed": len(unparsed),
            "unparsed_example": next(iter(unparsed.values()), None),
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
        agreement=_agreement(run.grades, sorted(GRADES)),
        scored_queries=len({q for (q, _), v in labels.items() if v.label > 0}),
        dataset=str(dataset),
        review=str(review) if review.exists() else None,
    )
    summary.expert_review = _read_json(folder / "summary.json").get("expert_review")
    _write_json(folder / "summary.json", asdict(summary))
    return summary
