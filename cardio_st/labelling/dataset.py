"""The files of a labelled folder: labels.jsonl, the BEIR dataset (corpus, queries, graded qrels), the
expert-review round trip, and reading a labelled dataset back. Leaves out judging and voting.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cardio_st.data.readers import read_rows
from cardio_st.errors import CardioSTError
from cardio_st.labelling.votes import Pair, Vote, cohen_kappa, majority_vote
from cardio_st.utils.files import atomic_write

__all__ = ["export_review", "import_review", "load_labelled"]


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
        raise CardioSTError(
            f"{folder} has no labels.jsonl: label a corpus into it first, with `out='{folder}'`"
        )
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
    [label_corpus][cardio_st.labelling.pipeline.label_corpus] writes (or its parent), or any BEIR folder
    (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``)."""
    folder = Path(folder)
    if (folder / "dataset" / "corpus.jsonl").is_file():
        folder = folder / "dataset"
    files = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / "test.tsv"]
    missing = [str(path.relative_to(folder)) for path in files if not path.is_file()]
    if missing:
        raise CardioSTError(
            f"{folder} is not a labelled dataset (missing {', '.join(missing)}): pass the folder "
            "a labelling run wrote, or a BEIR folder"
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
        CardioSTError: for a missing or empty file, one without the columns, a malformed or non-UTF-8
            row, a grade outside 0-3, or a pair that was never labelled, naming the file and line.
    """
    folder, path = Path(folder), Path(path)
    labels = _read_labels(folder)
    if not path.is_file():
        raise CardioSTError(
            f"review file {path} not found: pass the review-sample.csv of the labelling run, with its "
            "expert_grade column filled in"
        )
    reviewed = _read_json(folder / "review.json")
    random_rows: list[tuple[int, int]] = []
    needed = {"query_id", "doc_id", "expert_grade"}
    rows = 0
    for where, _, row in read_rows(path):
        if not rows and not needed <= set(row):
            raise CardioSTError(
                f"{path}: needs the columns {sorted(needed)}, as in the review-sample.csv of a labelling run"
            )
        rows += 1
        cell = (row["expert_grade"] or "").strip()
        if not cell:
            continue
        if cell not in {"0", "1", "2", "3"}:
            raise CardioSTError(f"{where}: expert_grade {cell!r} is not 0, 1, 2 or 3")
        pair = (row["query_id"], row["doc_id"])
        if pair not in labels:
            raise CardioSTError(
                f"{where}: query {pair[0]!r} and passage {pair[1]!r} were never labelled in {folder}"
            )
        reviewed[f"{pair[0]}\t{pair[1]}"] = int(cell)
        if row.get("sampled", "random") == "random":  # the votes' own label, even after an earlier review
            random_rows.append((majority_vote(labels[pair].votes).label, int(cell)))
    if not rows:
        raise CardioSTError(
            f"{path} holds no rows: pass the review-sample.csv of the labelling run "
            "(a header and one row a pair)"
        )
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
