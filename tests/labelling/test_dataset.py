"""cardio_st.labelling.dataset: the BEIR dataset and labels written from votes, read back, the expert
review round trip at the library level, and errors that name the fix in parameters, not flags."""

from __future__ import annotations

import csv
import json

import pytest

from cardio_st.errors import CardioSTError
from cardio_st.labelling.dataset import (
    _write_outputs,
    _write_review,
    export_review,
    import_review,
    load_labelled,
)
from cardio_st.labelling.votes import majority_vote

QUERIES = {"q1": "chest pain on exertion", "q2": "ankle swelling"}
CORPUS = {"d1": "Stable angina is chest pain on exertion.", "d2": "Oedema of the ankles.", "d3": "Unrelated."}
VOTES = {
    ("q1", "d1"): {"a": 3, "b": 3, "c": 2},
    ("q1", "d3"): {"a": 0, "b": 2, "c": 1},  # a tie, and low agreement
    ("q2", "d3"): {"a": 0, "b": 0, "c": 0},  # q2 has no relevant passage: not in the dataset
}


@pytest.fixture
def folder(tmp_path):
    """A labelled folder as label_corpus leaves it (without the judgements)."""
    labels = {pair: majority_vote(votes) for pair, votes in VOTES.items()}
    (tmp_path / "candidates.json").write_text(json.dumps({"queries": QUERIES}))
    _write_outputs(tmp_path, QUERIES, CORPUS, labels)
    _write_review(tmp_path / "review-sample.csv", labels, QUERIES, CORPUS, size=5, seed=0)
    return tmp_path


def test_the_dataset_holds_every_passage_and_the_scorable_queries(folder):
    queries, corpus, qrels = load_labelled(folder)
    assert queries == {"q1": QUERIES["q1"]} and corpus == CORPUS
    assert qrels == {"q1": {"d1": 3, "d3": 1}}
    assert load_labelled(folder / "dataset") == (queries, corpus, qrels)


def test_export_and_import_a_review(folder, tmp_path):
    path = export_review(folder, size=1, path=tmp_path / "review.csv")
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["query_id"], r["doc_id"], r["sampled"]) for r in rows][0] == ("q1", "d3", "tie")
    for row in rows:
        row["expert_grade"] = "0" if row["doc_id"] == "d3" else row["vote"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = import_review(folder, path)
    assert result["reviewed"] == len(rows) and result["changed"] >= 1
    assert load_labelled(folder)[2]["q1"] == {"d1": 3, "d3": 0}


def test_errors_name_parameters_not_flags(folder, tmp_path):
    with pytest.raises(CardioSTError, match=r"has no labels.jsonl: .*`out='") as error:
        import_review(tmp_path / "empty", tmp_path / "review.csv")
    with pytest.raises(CardioSTError, match=r"is not a labelled dataset \(missing corpus.jsonl"):
        load_labelled(tmp_path / "empty")
    bad = tmp_path / "bad.csv"
    bad.write_text("query_id,grade\nq1,3\n")
    with pytest.raises(CardioSTError, match=r"needs the columns \['doc_id', 'expert_grade', 'query_id'\]"):
        import_review(folder, bad)
    bad.write_text("query_id,doc_id,expert_grade\nq9,d1,2\n")
    with pytest.raises(
        CardioSTError, match=r"bad.csv, line 2: query 'q9' and passage 'd1' were never labelled"
    ):
        import_review(folder, bad)
    assert "--" not in str(error.value)
