"""cardio_st.evaluation.report and `cardio-st evaluate`: tasks side by side, and a report whose JSON,
markdown and PNG agree."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset, DatasetDict
from typer.testing import CliRunner

from cardio_st.cli import app
from cardio_st.errors import CardioSTError
from cardio_st.evaluation.report import evaluate_tasks, write_report
from cardio_st.retrieval.lexical import TfidfCharRetriever

runner = CliRunner()


@pytest.fixture
def triplets(tmp_path):
    rows = {
        "anchor": ["heart attack", "high blood pressure", "afib", "chest pain on effort"],
        "positive": [
            "Acute myocardial infarction",
            "Essential hypertension",
            "Atrial fibrillation",
            "Angina",
        ],
        "negative": ["Hypotension", "Hypotension", "Atrial flutter", "Pericarditis"],
    }
    DatasetDict({"train": Dataset.from_dict(rows), "test": Dataset.from_dict(rows)}).save_to_disk(
        str(tmp_path / "t")
    )
    return tmp_path / "t"


def test_report_files_agree_with_the_results(tiny_qwen3, triplets, tmp_path):
    models = [("tiny", tiny_qwen3), ("tfidf", TfidfCharRetriever())]
    results = evaluate_tasks(models, ["icd10", f"triplets:{triplets}"], batch_size=64)
    assert [(r.model, r.task.split(":")[0]) for r in results] == [
        ("tiny", "icd10"), ("tiny", "triplets"), ("tfidf", "icd10"), ("tfidf", "triplets")
    ]  # fmt: skip
    assert results[0].query_ms > 0 and results[2].query_ms is None
    assert (
        results[0].intervals["exact@1"][0]
        <= results[0].metrics["exact@1"]
        <= results[0].intervals["exact@1"][1]
    )
    paths = write_report(results, tmp_path / "report")
    saved = json.loads(paths["json"].read_text())["results"]
    for result, row in zip(results, saved):
        assert row["metrics"] == pytest.approx(result.metrics)
    markdown = paths["markdown"].read_text()
    assert f"| tfidf | {results[2].metrics['exact@1']:.4f}" in markdown
    from matplotlib.image import imread

    image = imread(paths["png"])
    assert image.shape[0] > 200 and image.shape[1] > 600  # two task panels and the latency chart


def test_unknown_task_and_missing_matplotlib_are_clear_errors(tiny_qwen3, tmp_path, monkeypatch):
    with pytest.raises(
        CardioSTError,
        match="unknown task 'icd11'.*icd10-all, shorthand, triplets:DIR, labels:DIR or mteb:NAME",
    ):
        evaluate_tasks([("tiny", tiny_qwen3)], ["icd11"])
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    results = evaluate_tasks([("tfidf", TfidfCharRetriever())], ["icd10"])
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    # the install hint fits this installation: a clone here (pip install "cardio-st[report]" from a wheel)
    with pytest.raises(CardioSTError, match=r'pip install (-e "\.\[report\]"|"cardio-st\[report\]")'):
        write_report(results, tmp_path / "r")


def test_cli_evaluate_json_and_one_line_errors(tiny_qwen3_path, tmp_path):
    result = runner.invoke(app, ["evaluate", "--model", str(tiny_qwen3_path), "--compare", "bm25", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("[") :])
    assert [r["model"] for r in rows] == [str(tiny_qwen3_path), "bm25"] and rows[1]["metrics"][
        "exact@1"
    ] > 0.2
    bad = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "not found" in bad.output
    bad = runner.invoke(app, ["evaluate", "--model", "bm25", "--task", "nope"])
    assert bad.exit_code == 2 and "unknown task 'nope'" in bad.output


def test_cli_mteb_task_without_network_says_so_and_exits_non_zero(tiny_qwen3_path):
    pytest.importorskip("mteb")
    result = runner.invoke(app, ["evaluate", "--model", str(tiny_qwen3_path), "--task", "mteb:BIOSSES"])
    assert result.exit_code == 1, result.output
    assert "BIOSSES" in result.output and "Traceback" not in result.output
