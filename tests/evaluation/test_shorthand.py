"""The clinical-shorthand benchmark: accepted-code metrics known answers, a lexical run whose metrics are in
range and whose kinds add up, the report task and the `cardio-st evaluate --task shorthand` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cardio_st.cli import app
from cardio_st.data.shorthand import KINDS, load_shorthand
from cardio_st.errors import CardioSTError
from cardio_st.evaluation.codes import METRICS, per_query, summarise
from cardio_st.evaluation.icd10 import paired_bootstrap
from cardio_st.evaluation.report import evaluate_tasks
from cardio_st.evaluation.shorthand import evaluate_shorthand
from cardio_st.retrieval.lexical import TfidfCharRetriever

runner = CliRunner()


def test_any_accepted_code_counts():
    # Given two queries with two accepted codes each, and fixed rankings
    codes = [["I82.409", "I82.819"], ["I61.9", "I62.9"]]
    retrieved = [["I82.819", "I82.409"], ["I60.9", "I63.9", "I62.9"]]
    # Then the first is right at 1, the second is found at rank 3 and shares no category at 1
    assert per_query(codes, retrieved, [0.0, 0.5], "exact@1").tolist() == [1.0, 0.0]
    assert per_query(codes, retrieved, [0.0, 0.5], "category@1").tolist() == [1.0, 0.0]
    assert per_query(codes, retrieved, [0.0, 0.5], "mrr@10").tolist() == pytest.approx([1.0, 1 / 3])
    assert per_query(codes, retrieved, [0.0, 0.5], "recall@5").tolist() == [1.0, 1.0]
    # And a single code as a string scores as before
    assert per_query(["I10"], [["I11.9", "I10"]], [0.2], "mrr@10").tolist() == [0.5]


@pytest.fixture(scope="module")
def tfidf_test():
    return evaluate_shorthand(TfidfCharRetriever(), side="test", bootstrap=200)


def test_lexical_run_metrics_in_range_and_kinds_add_up(tfidf_test):
    result = tfidf_test
    items = load_shorthand("test")
    assert result.queries == [item.query for item in items] and result.side == "test"
    assert sum(result.counts.values()) == len(items) and set(result.counts) == set(KINDS)
    assert all(result.counts[kind] > 0 for kind in KINDS)
    for metric in METRICS:
        assert 0.0 <= result.metrics[metric] <= (np.inf if metric == "cer" else 1.0)
        assert result.per_query(metric).mean() == pytest.approx(result.metrics[metric])
        low, high = result.intervals[metric]
        assert low <= result.metrics[metric] <= high
        weighted = sum(result.by_kind[k][metric] * result.counts[k] for k in KINDS) / len(items)
        assert weighted == pytest.approx(result.metrics[metric])
    m = result.metrics
    assert m["exact@1"] <= m["category@1"] and m["exact@1"] <= m["recall@5"] <= m["recall@10"]
    assert 0.05 < m["exact@1"] < 0.6  # lexical matching finds the spelled-out terms, not the abbreviations
    assert all(len(top) == 10 for top in result.retrieved)
    json.dumps(result.to_dict())


def test_validation_side_is_the_rest_and_seeded(tfidf_test):
    validation = evaluate_shorthand(TfidfCharRetriever(), side="validation", bootstrap=0)
    assert not set(validation.queries) & set(tfidf_test.queries) and validation.intervals == {}
    again = summarise(
        tfidf_test.codes,
        tfidf_test.retrieved,
        tfidf_test.cer_values,
        bootstrap=200,
        seed=0,
        groups=[codes[0] for codes in tfidf_test.codes],
    )
    assert again == (tfidf_test.metrics, tfidf_test.intervals)


def test_bad_arguments_name_the_parameter():
    with pytest.raises(CardioSTError, match="`side='test'`"):
        evaluate_shorthand(TfidfCharRetriever(), side="train")
    with pytest.raises(CardioSTError, match="`bootstrap=0`"):
        evaluate_shorthand(TfidfCharRetriever(), bootstrap=-1)


def test_report_task_flattens_kinds():
    (result,) = evaluate_tasks([("tfidf", TfidfCharRetriever())], ["shorthand"], latency=False)
    assert result.primary == "exact@1" and list(result.metrics)[:6] == list(METRICS)
    assert {f"{kind}:exact@1" for kind in KINDS} <= set(result.metrics) <= set(result.intervals)


def test_cli_evaluate_shorthand_with_tfidf():
    result = runner.invoke(app, ["evaluate", "--model", "tfidf", "--task", "shorthand", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output[result.output.index("[") :])
    assert row["task"] == "shorthand" and 0 < row["metrics"]["exact@1"] < 1
    assert row["metrics"]["lay:exact@1"] >= 0 and len(row["intervals"]["exact@1"]) == 2
    table = runner.invoke(app, ["evaluate", "--model", "tfidf", "--task", "shorthand"])
    assert table.exit_code == 0 and "shorthand" in table.output and "exact@1" in table.output


def test_expansion_is_measured_side_by_side_and_pairs_with_a_bootstrap():
    # Given TF-IDF on the validation part, with the queries as typed and expanded
    plain = evaluate_shorthand(TfidfCharRetriever(), side="validation", bootstrap=0)
    expanded = evaluate_shorthand(TfidfCharRetriever(), side="validation", bootstrap=0, expand=True)
    # Then the expanded run records what it searched, and abbreviations are found more often
    assert not plain.expanded and plain.searched == plain.queries
    assert expanded.expanded and "atrial fibrillation" in expanded.searched[expanded.queries.index("afib")]
    assert expanded.by_kind["abbreviation"]["exact@1"] > plain.by_kind["abbreviation"]["exact@1"]
    assert expanded.by_kind["lay"] == plain.by_kind["lay"]  # no abbreviation in a lay phrase to expand
    # And the paired bootstrap resamples concepts of the same items
    difference = paired_bootstrap(plain, expanded, resamples=200)
    assert difference["low"] <= difference["difference"] <= difference["high"]
    assert difference["difference"] == pytest.approx(expanded.metrics["exact@1"] - plain.metrics["exact@1"])
    with pytest.raises(CardioSTError, match="cannot pair results over different queries"):
        paired_bootstrap(plain, evaluate_shorthand(TfidfCharRetriever(), side="test", bootstrap=0))


def test_cli_evaluate_expand_labels_the_task():
    result = runner.invoke(app, ["evaluate", "--model", "tfidf", "--task", "shorthand", "--expand", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output[result.output.index("[") :])
    assert row["task"] == "shorthand (expanded)" and 0 < row["metrics"]["abbreviation:exact@1"] < 1
