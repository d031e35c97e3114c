"""cardio_st.labelling.pipeline and `cardio-st label`: three fake judges on 127.0.0.1 that disagree in known
ways; majority labels, ties and kappas equal hand computations; a killed run resumes without asking any
judge twice about a pair it answered; the expert review round trip; bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from fake_judges import DATA, MODEL, FakeJudge
from typer.testing import CliRunner

from cardio_st.cli import app
from cardio_st.labelling.dataset import load_labelled
from cardio_st.labelling.votes import cohen_kappa

runner = CliRunner()
CORPUS, QUERIES = str(DATA / "corpus.jsonl"), str(DATA / "queries.jsonl")
# What TF-IDF character n-grams pool from the tiny corpus with k=6 (checked below): 16 pairs.
CANDIDATES = {
    "q1": {"d1", "d2", "d4", "d5"},
    "q2": {f"d{i}" for i in range(1, 7)},
    "q3": {f"d{i}" for i in range(1, 7)},
}


@pytest.fixture
def panel():
    """Judges A (good), B (malformed JSON on its first answer about q2), C (slow)."""
    judges = [FakeJudge("A"), FakeJudge("B", "flaky"), FakeJudge("C", "slow", delay=0.05)]
    yield judges
    for judge in judges:
        judge.close()


def _args(panel, out, *extra):
    args = ["label", "--corpus", CORPUS, "--queries", QUERIES, "--out", str(out), "--retriever", "tfidf"]
    for judge in panel:
        args += ["--judge", f"openai:{judge.url}"]
    return [*args, "--model", MODEL, "--k", "6", "--batch-size", "5", *extra]


def test_majority_ties_and_kappas_equal_hand_computed_values(panel, tmp_path):
    result = runner.invoke(app, _args(panel, tmp_path / "out"))
    assert result.exit_code == 0, result.output
    labels = {
        (r["query_id"], r["doc_id"]): r for r in map(json.loads, (tmp_path / "out" / "labels.jsonl").open())
    }
    assert {q: {d for (qq, d) in labels if qq == q} for q in CANDIDATES} == CANDIDATES
    # By hand, from fake_judges.GRADES: the grade with two or three votes, and (q2, d6) = 0, 2, 1 tied,
    # labelled with the median vote.
    expected = {
        ("q1", "d1"): 3, ("q1", "d2"): 3, ("q1", "d4"): 0, ("q1", "d5"): 0,
        ("q2", "d1"): 0, ("q2", "d2"): 0, ("q2", "d3"): 1, ("q2", "d4"): 3, ("q2", "d5"): 0, ("q2", "d6"): 1,
        ("q3", "d1"): 0, ("q3", "d2"): 0, ("q3", "d3"): 0, ("q3", "d4"): 0, ("q3", "d5"): 3, ("q3", "d6"): 1,
    }  # fmt: skip
    assert {pair: record["label"] for pair, record in labels.items()} == expected
    assert [pair for pair, r in labels.items() if r["tie"]] == [("q2", "d6")]
    assert sorted(pair for pair, r in labels.items() if r["low_agreement"]) == [("q2", "d6"), ("q3", "d5")]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["grades"] == {"0": 9, "1": 3, "2": 0, "3": 4} and summary["ties"] == 1
    # Pairwise exact agreement, counted by hand over the 16 pairs: A-B 12, A-C 12, B-C 9.
    agreement = {tuple(p["judges"]): p["agreement"] for p in summary["agreement"]["pairwise"]}
    assert sorted(agreement.values()) == [9 / 16, 12 / 16, 12 / 16]
    # Fleiss' kappa by hand: P-bar = 11/16 (ten unanimous pairs, five 2-1 splits at 1/3, one 1-1-1 at 0);
    # category shares 26, 9, 4, 9 of 48 ratings, P-e = 854/2304; kappa = (11/16 - 854/2304) / (1 - 854/2304).
    assert summary["agreement"]["fleiss_kappa"] == pytest.approx(730 / 1450, abs=1e-12)
    assert summary["agreement"]["fleiss_pairs"] == 16
    # Judge B's malformed first answers about q2 were retried; nothing is left unparsed.
    assert all(report["unparsed"] == 0 and report["graded"] == 16 for report in summary["judges"].values())
    assert "Fleiss' kappa: 0.503" in result.output


def test_a_killed_run_resumes_without_asking_a_judge_twice_about_a_pair(panel, tmp_path):
    panel[2].delay = 0.6  # slow enough to kill the run midway
    command = [sys.executable, "-m", "cardio_st.cli", *_args(panel, tmp_path / "out", "--concurrency", "1")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoints = tmp_path / "out" / "judgements"
    deadline = time.time() + 120
    while time.time() < deadline:
        port = panel[2].url.split(":")[-1].split("/")[0]
        slow = [p for p in checkpoints.glob("*.jsonl") if f"-{port}-" in p.name]
        if slow and len(slow[0].read_text().splitlines()) >= 3:  # header + two of its six answers
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    answered = {
        judge.url: {
            (r["query"], d)
            for path in checkpoints.glob("*.jsonl")
            if judge.url.split("//")[1].split("/")[0].replace(":", "-") in path.name
            for r in map(json.loads, path.read_text().splitlines()[1:])
            if r["grades"] is not None
            for d in r["docs"]
        }
        for judge in panel
    }
    assert 0 < len(answered[panel[2].url]) < 16  # the slow judge was cut off midway
    for judge in panel:
        judge.phase = 2
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for judge in panel:
        asked_again = {(q, d) for q, d, phase in judge.asked if phase == 2}
        assert not asked_again & answered[judge.url], judge.url
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["labelled"] == 16 and summary["agreement"]["fleiss_kappa"] == pytest.approx(730 / 1450)


def test_expert_review_round_trip(panel, tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, _args(panel, out, "--review-sample", "4")).exit_code == 0
    with open(out / "review-sample.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    flagged = [r for r in rows if r["sampled"] != "random"]
    assert sorted((r["query_id"], r["doc_id"], r["sampled"]) for r in flagged) == [
        ("q2", "d6", "tie"),
        ("q3", "d5", "low agreement"),
    ]
    assert sum(r["sampled"] == "random" for r in rows) == 4 and rows[0]["query"] and rows[0]["passage"]
    # The experts grade (q2, d6) 2 and agree with the vote on the random rows but one.
    for row in rows:
        row["expert_grade"] = "2" if (row["query_id"], row["doc_id"]) == ("q2", "d6") else row["vote"]
    random_rows = [r for r in rows if r["sampled"] == "random"]
    random_rows[0]["expert_grade"] = str((int(random_rows[0]["vote"]) + 1) % 4)
    with open(tmp_path / "reviewed.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = runner.invoke(app, ["label-review", str(out), str(tmp_path / "reviewed.csv")])
    assert result.exit_code == 0, result.output
    assert "6 expert grades in force (2 differ from the vote)" in result.output
    assert "votes agreed with the experts 75.0%" in result.output
    _, _, qrels = load_labelled(out)
    assert qrels["q2"]["d6"] == 2
    summary = json.loads((out / "summary.json").read_text())
    votes = [int(r["vote"]) for r in random_rows]
    experts = [int(r["expert_grade"]) for r in random_rows]
    assert summary["expert_review"]["cohen_kappa"] == pytest.approx(cohen_kappa(votes, experts))
    # A rerun of the labelling keeps the experts' grades.
    assert runner.invoke(app, _args(panel, out)).exit_code == 0
    assert load_labelled(out)[2]["q2"]["d6"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("query_id,doc_id,expert_grade\nq2,d6,5\n")
    result = runner.invoke(app, ["label-review", str(out), str(bad)])
    assert result.exit_code == 2 and "line 2: expert_grade '5' is not 0, 1, 2 or 3" in result.output


def test_bad_input_is_named(panel, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    args = _args(panel, tmp_path / "o1")
    args[args.index("--corpus") + 1] = str(tmp_path / "empty.jsonl")
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "holds no documents" in result.output
    args = _args(panel, tmp_path / "o2")
    args[args.index("--queries") + 1] = str(tmp_path / "empty.jsonl")
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "queries" in result.output and "holds no queries" in result.output
    args = _args(panel, tmp_path / "o3")
    args[args.index("--judge") + 1] = "openai:http://127.0.0.1:9/v1"
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "cannot reach the judge server at http://127.0.0.1:9/v1" in result.output
    result = runner.invoke(app, [*_args(panel, tmp_path / "o4"), "--model", "other"])
    assert result.exit_code == 2 and "one --model per openai: judge" in result.output


def test_a_judge_that_always_answers_invalid_output_is_reported(tmp_path):
    judges = [FakeJudge("A"), FakeJudge("B"), FakeJudge("C", "invalid")]
    try:
        result = runner.invoke(app, [*_args(judges, tmp_path / "out"), "--max-attempts", "2"])
    finally:
        for judge in judges:
            judge.close()
    assert result.exit_code == 1
    assert (
        f"judge openai:{MODEL}@{judges[2].url.split('//')[1].split('/')[0]} gave no usable answer"
        in result.output
    )
    assert "no JSON object in the answer" in result.output and "--retry-unparsed" in result.output
    labels = [json.loads(line) for line in (tmp_path / "out" / "labels.jsonl").open()]
    assert len(labels) == 16 and all(len(r["votes"]) == 2 for r in labels)  # the other two judges' votes


def test_pooling_interleaves_the_retrievers_by_rank(minilm):
    from cardio_st.labelling.pipeline import pool_candidates
    from cardio_st.retrieval.exact import semantic_search
    from cardio_st.retrieval.lexical import BM25Retriever

    corpus = {r["id"]: r["text"] for r in map(json.loads, (DATA / "corpus.jsonl").open())}
    queries = {r["id"]: r["text"] for r in map(json.loads, (DATA / "queries.jsonl").open())}
    pooled = pool_candidates(queries, corpus, [("bm25", BM25Retriever()), ("minilm", minilm)], k=2)
    ids = list(corpus)
    scores, rows = BM25Retriever().fit(list(corpus.values())).topk(list(queries.values()), 2)
    hits = semantic_search(
        minilm.encode_query(list(queries.values())), minilm.encode_document(list(corpus.values())), 2
    )
    for n, query_id in enumerate(queries):
        lexical = [ids[i] for i, score in zip(rows[n], scores[n]) if score > 0]
        dense = [ids[hit.corpus_id] for hit in hits[n]]
        expected = list(dict.fromkeys([lexical[0], dense[0], *lexical[1:2], *dense[1:2]]))
        assert pooled[query_id] == expected


def test_label_refuses_a_folder_it_did_not_write_unless_overwrite(panel, tmp_path):
    # Given a prepare run's folder with a file of the user's
    out = tmp_path / "triplets"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"corpus": "texts", "paraphraser": "openai:x", "kept": 3}))
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # When label writes there, Then it refuses in one line before asking any judge
    result = runner.invoke(app, _args(panel, out))
    assert result.exit_code == 2 and f"{out} is not empty" in result.output and "--overwrite" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert all(judge.asked == [] for judge in panel)
    # With --overwrite it labels into it and deletes nothing of the user's
    result = runner.invoke(app, [*_args(panel, out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine" and (out / "labels.jsonl").is_file()
