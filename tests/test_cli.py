"""cardio-st command line: output formats, one-line errors, instant --help, resumable --scope all."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from typer.testing import CliRunner

from cardio_st.cli import app

runner = CliRunner()


def _cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cardio_st.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
        **kwargs,
    )


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from cardio_st.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "search" in result.stdout and result.stdout.strip().endswith("NO-TORCH")


def test_search_json_lines(tiny_qwen3_path):
    result = runner.invoke(
        app, ["search", "atrial fibrillation", "-m", str(tiny_qwen3_path), "-k", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["rank"] for r in records] == [1, 2, 3]
    assert all(r["query"] == "atrial fibrillation" and r["code"].startswith("I") for r in records)
    assert records[0]["score"] >= records[1]["score"] >= records[2]["score"]


def test_search_hybrid_json_and_table(tiny_qwen3_path):
    result = runner.invoke(
        app, ["search", "afib", "-m", str(tiny_qwen3_path), "-k", "3", "--hybrid", "--json"]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["rank"] for r in records] == [1, 2, 3]
    assert all(r["query"] == "afib" and r["code"].startswith("I") and r["description"] for r in records)
    assert 1 >= records[0]["score"] >= records[1]["score"] >= records[2]["score"] > 0
    table = runner.invoke(app, ["search", "afib", "-m", str(tiny_qwen3_path), "-k", "2", "--hybrid"])
    assert table.exit_code == 0, table.output
    assert "fused score" in table.stdout


def test_search_table_and_stdin_queries(tiny_qwen3_path):
    result = runner.invoke(
        app, ["search", "-", "-m", str(tiny_qwen3_path), "-k", "2"], input="angina\n\nstroke\n"
    )
    assert result.exit_code == 0, result.output
    assert "angina" in result.stdout and "stroke" in result.stdout and "code" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", ""], "the query is empty"),
        (["search", "   "], "the query is empty"),
        (["search", "angina", "--scope", "cardiology"], "unknown scope 'cardiology': use cardio"),
        (["search", "angina", "--scope", "23"], "unknown scope '23'"),
        (["search", "angina", "--model", "./no/such/model"], "not found: no such folder"),
        (["search", "angina", "--top-k", "0"], "--top-k must be at least 1"),
    ],
)
def test_bad_input_gets_one_line_naming_the_fix(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_errors_from_the_installed_entry_point_have_no_traceback(tmp_path):
    (tmp_path / "not-a-model").mkdir()
    result = _cli("search", "angina", "--model", str(tmp_path / "not-a-model"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'not-a-model'} is a folder but not a model: it has no modules.json "
        "(sentence-transformers) or config.json (Hugging Face); pass the folder a model was saved to"
    )


def test_ten_thousand_character_query_is_truncated_with_a_note(tiny_qwen3_path):
    query = ("worsening dyspnoea and orthopnoea with bilateral ankle oedema " * 200)[:10_000]
    result = runner.invoke(app, ["search", query, "-m", str(tiny_qwen3_path), "-k", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert "note: query 1 is" in result.stderr and "reads only the first 64" in result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_chapters_lists_every_scope():
    result = runner.invoke(app, ["chapters"])
    assert result.exit_code == 0
    assert "I00-I99" in result.stdout and "Z00-Z99" in result.stdout


@pytest.mark.slow
def test_scope_all_shows_an_eta_and_resumes_after_being_killed(tiny_qwen3_path, tmp_path):
    # Given a `--scope all` build that is killed (SIGKILL) once its first chunk is on disk
    env = {"CARDIO_ST_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    args = ["search", "angina", "--scope", "all", "-m", str(tiny_qwen3_path), "--batch-size", "128", "--json"]
    stderr_file = open(tmp_path / "stderr.txt", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "cardio_st.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr_file,
        env={**os.environ, **env},
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.glob("indexes/*.partial/chunk-000001.safetensors")):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stderr_file.seek(0)
    progress = stderr_file.read()
    # Then it had shown progress with an ETA, left finished chunks and no index
    assert re.search(r"Embedding ICD-10-CM \(all\).*\d+/74714 \[\d\d:\d\d<\d\d:\d\d", progress), progress[
        -500:
    ]
    assert not list(tmp_path.glob("indexes/*.safetensors"))
    finished = len(list(tmp_path.glob("indexes/*.partial/chunk-*.safetensors")))
    assert 2 <= finished < 37
    # When the same command runs again
    rerun = _cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    # Then it resumed from the saved chunks, and the index is correct
    assert re.search(rf"\|\s*{finished * 2048}/74714 \[", rerun.stderr), rerun.stderr[:500]
    from sentence_transformers import SentenceTransformer

    from cardio_st.index import EmbeddingIndex

    (index_path,) = tmp_path.glob("indexes/*.safetensors")
    index = EmbeddingIndex.load(index_path)
    assert len(index) == 74714 and index.metadata["scope"] == "all"
    sample = list(range(0, 74714, 97))
    model = SentenceTransformer(str(tiny_qwen3_path), device="cpu")
    expected = model.encode_document([index.texts[i] for i in sample], convert_to_tensor=True)
    assert torch.allclose(index.embeddings[sample], expected, atol=1e-5)
    assert not list(tmp_path.glob("indexes/*.partial"))


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


def test_export_writes_a_folder_and_will_not_overwrite_one(tmp_path):
    out = tmp_path / "minilm"
    result = runner.invoke(app, ["export", "minilm", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "modules.json").is_file() and f"to {out}" in result.stdout
    again = runner.invoke(app, ["export", "minilm", str(out)])
    assert again.exit_code == 2
    assert (
        again.stderr.strip()
        == f"error: {out} already exists and is not an empty folder: choose a new output folder"
    )


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


def test_index_then_search_the_index_with_the_query_encoder_alone(care_folder, tmp_path):
    from tiny_models import write_corpus

    from cardio_st.document_index import IndexSearch
    from cardio_st.modules.routes import read_layout

    # Given a corpus indexed by the document encoder of a CARE model
    corpus = write_corpus(
        tmp_path / "corpus.jsonl", ["Acute myocardial infarction", "Atrial fibrillation", "Angina"]
    )
    out = tmp_path / "corpus.safetensors"
    built = runner.invoke(app, ["index", str(corpus), "--model", str(care_folder), "--out", str(out)])
    assert built.exit_code == 0, built.output
    assert f"indexed 3 documents (64 dimensions) into {out}" in built.stdout
    expected = [hit.id for hit in IndexSearch(out).search(["heart attack"], top_k=3)[0]]
    # When a query server has only the query encoder's files, and runs in a fresh process
    served = shutil.copytree(care_folder, tmp_path / "query-only")
    for part in read_layout(served).route_parts("document"):
        shutil.rmtree(served / part)
    result = _cli("search", "heart attack", "--index", str(out), "--model", str(served), "-k", "3", "--json")
    # Then it answers as the full model does
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == expected and records[0]["text"] in corpus.read_text()
    table = runner.invoke(app, ["search", "angina", "--index", str(out), "-k", "2"])
    assert table.exit_code == 0 and "text" in table.stdout, table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "angina", "--index", "{out}", "--scope", "all"], "--scope does not apply to --index"),
        (["search", "angina", "--index", "{tmp}/none.safetensors"], "no index at"),
        (["search", "angina", "--index", "{out}", "--model", "minilm"], "built by another document encoder"),
        (
            ["index", "{tmp}/none.jsonl", "--model", "{care}", "--out", "{tmp}/x.safetensors"],
            "not found: pass a file",
        ),
        (
            ["index", "{corpus}", "--model", "./no/model", "--out", "{tmp}/x.safetensors"],
            "not found: no such folder",
        ),
        (
            ["index", "{corpus}", "--model", "{care}", "--out", "{tmp}"],
            "is a folder: give the index file's path",
        ),
    ],
)
def test_index_and_search_index_bad_input_is_one_line(care_folder, tmp_path, args, message):
    from tiny_models import write_corpus

    corpus = write_corpus(tmp_path / "corpus.jsonl", ["Acute myocardial infarction", "Atrial fibrillation"])
    out = tmp_path / "corpus.safetensors"
    assert (
        runner.invoke(app, ["index", str(corpus), "--model", str(care_folder), "--out", str(out)]).exit_code
        == 0
    )
    fill = {"out": str(out), "tmp": str(tmp_path), "care": str(care_folder), "corpus": str(corpus)}
    result = runner.invoke(app, [arg.format(**fill) for arg in args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
