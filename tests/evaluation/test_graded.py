"""cardio_st.evaluation.graded, `cardio-st evaluate --task labels:DIR` and the labelled mteb task: a corpus
labelled end to end by three fake judges, scored, and the scores equal a hand computation."""

from __future__ import annotations

import json
from math import log2

import pytest
from fake_judges import DATA, MODEL, FakeJudge
from typer.testing import CliRunner

from cardio_st.cli import app
from cardio_st.errors import CardioSTError
from cardio_st.evaluation.graded import evaluate_labelled, graded_metrics

runner = CliRunner()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """The tiny corpus shipped in tests/data/labelling, labelled by the three fake judges."""
    judges = [FakeJudge("A"), FakeJudge("B", "flaky"), FakeJudge("C")]
    out = tmp_path_factory.mktemp("labelled") / "out"
    args = ["label", "--corpus", str(DATA / "corpus.jsonl"), "--queries", str(DATA / "queries.jsonl")]
    for judge in judges:
        args += ["--judge", f"openai:{judge.url}"]
    try:
        result = runner.invoke(
            app, [*args, "--model", MODEL, "--out", str(out), "--retriever", "tfidf", "--k", "6"]
        )
    finally:
        for judge in judges:
            judge.close()
    assert result.exit_code == 0, result.output
    return out


def test_graded_metrics_by_hand():
    rankings = {"q1": ["a", "b", "c", "d"], "q2": ["x", "y"], "q3": ["m"]}
    qrels = {"q1": {"b": 3, "d": 1, "e": 2}, "q2": {"x": 0}, "q3": {"m": 2}}
    metrics = graded_metrics(rankings, qrels)
    # q1: gains 0, 3, 0, 1 against the ideal 3, 2, 1 (e is relevant but not retrieved); q2 has nothing
    # relevant and is left out; q3 is perfect.
    ndcg_q1 = (3 / log2(3) + 1 / log2(5)) / (3 + 2 / log2(3) + 1 / log2(4))
    assert metrics["ndcg@10"] == pytest.approx((ndcg_q1 + 1) / 2)
    assert metrics["map@10"] == pytest.approx(((1 / 2 + 2 / 4) / 3 + 1) / 2)  # divided by all 3 relevant
    assert metrics["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert metrics["queries"] == 2
    with pytest.raises(CardioSTError, match="nothing to score"):
        graded_metrics(rankings, {"q2": {"x": 0}})


def test_cli_scores_the_labels_as_computed_by_hand(labelled):
    result = runner.invoke(app, ["evaluate", "--task", f"labels:{labelled}", "--model", "bm25", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)[0]["metrics"]
    # BM25 ranks (zero scores in corpus order): q1 d2 d5 d1 d3 d4 d6; q2 d4 d3 d5 d1 d2 d6;
    # q3 d5 d4 d2 d1 d3 d6. Labels: q1 d1=3 d2=3; q2 d3=1 d4=3 d6=1; q3 d5=3 d6=1 (the rest 0).
    ndcg = [
        (3 + 3 / log2(4)) / (3 + 3 / log2(3)),
        (3 + 1 / log2(3) + 1 / log2(7)) / (3 + 1 / log2(3) + 1 / log2(4)),
        (3 + 1 / log2(7)) / (3 + 1 / log2(3)),
    ]
    average_precision = [(1 + 2 / 3) / 2, (1 + 1 + 3 / 6) / 3, (1 + 2 / 6) / 2]
    assert metrics["ndcg@10"] == pytest.approx(sum(ndcg) / 3)
    assert metrics["map@10"] == pytest.approx(sum(average_precision) / 3)
    assert metrics["mrr@10"] == pytest.approx(1.0) and metrics["queries"] == 3


@pytest.mark.slow
def test_the_labelled_mteb_task_scores_as_cardio_st_does(labelled, minilm):
    from cardio_st.evaluation.mteb import labelled_task, run_mteb

    ours = evaluate_labelled(minilm, labelled)
    theirs = run_mteb(minilm, [labelled_task(labelled, name="CardioST-Labels-tiny")])["CardioST-Labels-tiny"]
    for metric in ("ndcg", "map", "mrr"):
        assert theirs[f"{metric}_at_10"] == pytest.approx(ours[f"{metric}@10"], abs=1e-4), metric


def test_not_a_labelled_folder(tmp_path):
    with pytest.raises(CardioSTError, match="is not a labelled dataset"):
        evaluate_labelled(object(), tmp_path)
