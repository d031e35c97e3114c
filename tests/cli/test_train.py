"""`cardio-st train`, `care align` and `care finetune`: one-line errors, the run folder, both CARE stages."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cardio_st.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "/no/such/data"], "--data /no/such/data does not exist"),
        (["--quantize", "2bit"], "--quantize must be 8bit, 4bit or none"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--temperature", "0"], "--temperature, --lr and --epochs must be positive"),
    ],
)
def test_train_bad_input_is_one_line(tmp_path, extra, message):
    (tmp_path / "data.parquet").write_bytes(b"")
    args = [
        "train",
        "--base",
        "org/model",
        "--data",
        str(tmp_path / "data.parquet"),
        "--out",
        str(tmp_path / "o"),
    ]
    result = runner.invoke(app, args + extra)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith("error: ") and message in result.stderr


def test_train_refuses_to_overwrite_a_finished_model(tmp_path):
    (tmp_path / "out" / "final").mkdir(parents=True)
    (tmp_path / "data.parquet").write_bytes(b"")
    result = runner.invoke(
        app,
        [
            "train",
            "--base",
            "org/model",
            "--data",
            str(tmp_path / "data.parquet"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 2 and "already holds a trained model: pass --overwrite" in result.stderr


def test_care_align_then_finetune_from_the_command_line(tiny_qwen3_path, minilm_path, tmp_path):
    from datasets import Dataset

    terms = ["heart attack", "high blood pressure", "irregular heartbeat", "heart failure", "angina"]
    names = [
        "Acute myocardial infarction",
        "Essential (primary) hypertension",
        "Atrial fibrillation",
        "Heart failure, unspecified",
        "Angina pectoris, unspecified",
    ]
    rows = {"anchor": terms * 8, "positive": names * 8, "negative": (names[1:] + names[:1]) * 8}
    Dataset.from_dict(rows).to_parquet(str(tmp_path / "pairs.parquet"))
    common = ["--data", str(tmp_path / "pairs.parquet"), "--batch-size", "4", "--max-steps", "2"]
    aligned = runner.invoke(
        app,
        ["care", "align", "--query", str(tiny_qwen3_path), "--document", str(minilm_path)]
        + ["--out", str(tmp_path / "stage1"), *common],
    )
    assert aligned.exit_code == 0, aligned.output
    assert "trained:" in aligned.stdout and (tmp_path / "stage1" / "document-targets.json").is_file()
    tuned = runner.invoke(
        app,
        ["care", "finetune", "--model", str(tmp_path / "stage1" / "final"), "--out", str(tmp_path / "stage2")]
        + common,
    )
    assert tuned.exit_code == 0, tuned.output
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tmp_path / "stage2" / "final"), device="cpu")
    assert model.encode_query(["heart attack"]).shape == (1, 64)
    again = runner.invoke(
        app,
        ["care", "finetune", "--model", str(tmp_path / "stage1" / "final"), "--out", str(tmp_path / "stage2")]
        + common,
    )
    assert again.exit_code == 2 and "pass --overwrite" in again.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--bridge", "pad"], "--bridge must be truncate or project"),
        (["--lr", "0"], "--lr must be positive"),
    ],
)
def test_care_align_bad_input_is_one_line(tmp_path, extra, message):
    (tmp_path / "data.parquet").write_bytes(b"")
    args = [
        "care",
        "align",
        "--query",
        "minilm",
        "--document",
        "minilm",
        "--data",
        str(tmp_path / "data.parquet"),
    ]
    result = runner.invoke(app, args + ["--out", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith("error: ") and message in result.stderr
    missing = runner.invoke(app, ["care", "finetune", "--model", "m", "--data", "nowhere", "--out", "o"])
    assert missing.exit_code == 2 and "--data nowhere does not exist" in missing.stderr
