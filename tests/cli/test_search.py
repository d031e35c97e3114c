"""`cardio-st search`, `chapters`, `index`, `export`: output formats, one-line errors, resumable builds."""

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


def test_search_json_shows_expansion_billable_category_and_matched_term(tiny_qwen3_path, tmp_path):
    result = runner.invoke(
        app, ["search", "afib w/ RVR", "-m", str(tiny_qwen3_path), "-k", "2", "--json", "--explain"]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2
    for record in records:
        assert record["query"] == "afib w/ RVR"
        assert record["searched"] == "atrial fibrillation with rapid ventricular response"
        assert [e["abbreviation"] for e in record["expansions"]] == ["afib", "w/", "RVR"]
        assert record["expansions"][0]["reading"] == "atrial fibrillation"
        assert record["billable"] is True and record["category"] == record["code"][:3]
        assert record["category_title"] and record["matched"]
    # --no-expand searches the query as typed; a user lexicon overrides the default
    plain = runner.invoke(
        app, ["search", "afib", "-m", str(tiny_qwen3_path), "-k", "1", "--json", "--no-expand"]
    )
    record = json.loads(plain.stdout.splitlines()[0])
    assert record["searched"] == "afib" and record["expansions"] == [] and "matched" not in record
    lexicon = tmp_path / "ward.tsv"
    lexicon.write_text("afib\tatrial flutter\n", encoding="utf-8")
    mine = runner.invoke(
        app, ["search", "afib", "-m", str(tiny_qwen3_path), "-k", "1", "--json", "--lexicon", str(lexicon)]
    )
    assert mine.exit_code == 0, mine.output
    assert json.loads(mine.stdout.splitlines()[0])["searched"] == "atrial flutter"


def test_search_table_shows_what_was_expanded(tiny_qwen3_path):
    result = runner.invoke(app, ["search", "CHF", "-m", str(tiny_qwen3_path), "-k", "2", "--explain"])
    assert result.exit_code == 0, result.output
    assert "expanded: CHF -> congestive heart failure" in result.stdout
    assert "billable" in result.stdout and "category" in result.stdout and "matched term" in result.stdout


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
        (["search", "afib", "--lexicon", "./no/such.json"], "no lexicon file at ./no/such.json"),
        (
            ["search", "afib", "--no-expand", "--lexicon", "x.json"],
            "--lexicon does not apply with --no-expand",
        ),
    ],
)
def test_bad_input_gets_one_line_naming_the_fix(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output


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
    from safetensors import safe_open

    # Given a `--scope all` build that is killed (SIGKILL) once two of its chunks are on disk
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
    while time.time() < deadline and len(list(tmp_path.glob("indexes/*.partial/chunk-*.safetensors"))) < 2:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stderr_file.seek(0)
    progress = stderr_file.read()
    # Then it had said what it does, shown progress with an ETA, left finished chunks and no index
    assert "note: embedding 74,714 ICD-10-CM descriptions of all chapters" in progress, progress[:500]
    assert re.search(r"Embedding ICD-10-CM \(all\).*\d+/74714 \[\d\d:\d\d<\d\d:\d\d", progress), progress[
        -500:
    ]
    assert not list(tmp_path.glob("indexes/*.safetensors"))
    chunks = list(tmp_path.glob("indexes/*.partial/chunk-*.safetensors"))
    kept = 0
    for chunk in chunks:  # chunks of 256 texts, the last one shorter
        with safe_open(str(chunk), framework="pt") as handle:
            kept += int(handle.metadata()["rows"])
    assert 2 <= len(chunks) < 292
    # When the same command runs again
    rerun = _cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    # Then it resumed from the saved chunks, and the index is correct
    assert re.search(rf"\|\s*{kept}/74714 \[", rerun.stderr), rerun.stderr[:500]
    from sentence_transformers import SentenceTransformer

    from cardio_st.retrieval.index import EmbeddingIndex

    (index_path,) = tmp_path.glob("indexes/*.safetensors")
    index = EmbeddingIndex.load(index_path)
    assert len(index) == 74714 and index.metadata["scope"] == "all"
    sample = list(range(0, 74714, 97))
    model = SentenceTransformer(str(tiny_qwen3_path), device="cpu")
    expected = model.encode_document([index.texts[i] for i in sample], convert_to_tensor=True)
    assert torch.allclose(index.embeddings[sample], expected, atol=1e-5)
    assert not list(tmp_path.glob("indexes/*.partial"))


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


def test_index_then_search_the_index_with_the_query_encoder_alone(care_folder, tmp_path):
    from tiny_models import write_corpus

    from cardio_st.models.routes import read_layout
    from cardio_st.retrieval.documents import IndexSearch

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
