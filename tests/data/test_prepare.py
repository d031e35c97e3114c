"""cardio-st prepare / prepare-icd10: the pipelines end to end through the CLI, resume without
regeneration, and bad input that stops with one line while keeping finished work."""

from __future__ import annotations

import json

import pytest
from datasets import load_from_disk
from fake_openai import MODEL, SENTENCES, SPECIAL, FakeServer
from typer.testing import CliRunner

from cardio_st.cli import app
from cardio_st.data.icd10 import category_of, is_held_out

runner = CliRunner()


@pytest.fixture
def server():
    fake = FakeServer(delay=0.005)
    yield fake
    fake.close()


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    sentences = SENTENCES[:24] + list(SPECIAL)
    for book in range(4):
        (folder / f"book{book}.txt").write_text("\n\n".join(sentences[book::4]) + "\n", encoding="utf-8")
    return folder


def _prepare(corpus, out, url, *extra):
    return runner.invoke(
        app,
        ["prepare", str(corpus), "--out", str(out), "--paraphraser", f"openai:{url}", "--model", MODEL,
         "--split", "ratio", "--ratios", "0.5,0.5,0", *extra],
    )  # fmt: skip


def test_prepare_icd10_writes_pairs_and_the_eval_set_and_reports_counts(tmp_path):
    result = runner.invoke(app, ["prepare-icd10", "--out", str(tmp_path / "icd"), "--scope", "cardio"])
    assert result.exit_code == 0, result.output
    pairs = load_from_disk(str(tmp_path / "icd"))
    summary = json.loads((tmp_path / "icd" / "summary.json").read_text())
    assert summary["rows: train"] == len(pairs["train"]) > 400
    assert f"{len(pairs['train'])}" in result.output and "rows: train" in result.output
    evaluation = load_from_disk(str(tmp_path / "icd" / "eval"))
    assert all(is_held_out(code) for code in evaluation["queries"]["code"])
    held_out_descriptions = {
        d for d, c in zip(evaluation["corpus"]["description"], evaluation["corpus"]["code"]) if is_held_out(c)
    }
    train_descriptions = {
        d
        for d, c in zip(evaluation["corpus"]["description"], evaluation["corpus"]["code"])
        if not is_held_out(c)
    }
    only_held_out = held_out_descriptions - train_descriptions
    assert not only_held_out & (set(pairs["train"]["positive"]) | set(pairs["train"]["negative"]))
    assert {category_of(c) for c in evaluation["queries"]["code"]}.isdisjoint(
        {category_of(c) for c in evaluation["corpus"]["code"] if not is_held_out(c)}
    )


def test_prepare_from_a_flaky_server_then_a_rerun_asks_for_nothing(corpus, tmp_path, server):
    out = tmp_path / "out"
    result = _prepare(corpus, out, server.url)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kept"] == 28 and summary["paraphrases accepted"] == 24
    for reason in ("refusal", "copy", "empty", "too long"):
        assert summary[f"paraphrases rejected: {reason}"] == 1
        assert f"paraphrases rejected: {reason}" in result.output
    assert server.failures > 0 and server.drops == 1
    data = load_from_disk(str(out))
    assert len(data["train"]) + len(data["validation"]) == 24
    assert not set(data["train"]["anchor"]) & set(data["validation"]["anchor"])
    # When the same command runs again
    server.forget()
    again = _prepare(corpus, out, server.url)
    # Then nothing is regenerated and the dataset is the same
    assert again.exit_code == 0, again.output
    assert server.asked == []
    assert load_from_disk(str(out))["train"].to_dict() == data["train"].to_dict()


def test_a_lost_server_stops_with_the_url_and_keeps_the_finished_paraphrases(corpus, tmp_path, server):
    out = tmp_path / "out"
    assert _prepare(corpus, out, server.url).exit_code == 0
    before = (out / "paraphrases.jsonl").read_bytes()
    (corpus / "book9.txt").write_text("Digoxin toxicity causes nausea and visual disturbances.\n")
    url = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    result = _prepare(corpus, out, url)
    assert result.exit_code == 1
    assert url in result.output and "Traceback" not in result.output
    assert (out / "paraphrases.jsonl").read_bytes() == before


def test_an_unknown_model_names_the_model_and_what_the_server_serves(corpus, tmp_path, server):
    result = runner.invoke(
        app,
        ["prepare", str(corpus), "--out", str(tmp_path / "o"), "--paraphraser", f"openai:{server.url}",
         "--model", "no-such-model", "--split", "ratio", "--ratios", "0.5,0.5,0"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "no-such-model" in result.output and MODEL in result.output


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no .txt"),
        ({"notes.csv": b"a,b\n"}, "no .txt"),
        ({"ok.txt": b"Aspirin is given early in STEMI care.\n", "scan.txt": b"\x00\x01binary"}, "scan.txt"),
        ({"latin.txt": "Patient had a caf\u00e9 au lait spot on exam.".encode("latin-1")}, "latin.txt"),
    ],
)
def test_bad_corpus_files_are_one_line_errors_naming_the_file(tmp_path, files, message):
    folder = tmp_path / "texts"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    result = runner.invoke(
        app, ["prepare", str(folder), "--out", str(tmp_path / "o"), "--paraphraser", "hf:x"]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_existing_pairs_become_triplets_by_source(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    with open(pairs, "w") as handle:
        for i, sentence in enumerate(SENTENCES):
            row = {"anchor": sentence, "positive": "Put differently: " + sentence, "source": f"s{i % 8}"}
            handle.write(json.dumps(row) + "\n")
    result = runner.invoke(
        app, ["prepare", str(pairs), "--out", str(tmp_path / "o"), "--paraphraser", "none"]
    )
    assert result.exit_code == 0, result.output
    data = load_from_disk(str(tmp_path / "o"))
    assert set(data) == {"train", "validation", "test"} and sum(len(s) for s in data.values()) == 40
    provenance = [
        json.loads(line) for line in (tmp_path / "o" / "provenance" / "test.jsonl").read_text().splitlines()
    ]
    assert all(p["source"] != p["negative_source"] for p in provenance)
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("Aspirin is given early in STEMI care.\n")
    result = runner.invoke(app, ["prepare", str(texts), "--out", str(tmp_path / "t")])
    assert (
        result.exit_code == 2
        and "holds texts" in result.output
        and "--paraphraser" in result.output
        and "'openai:URL'" in result.output
    )
    missing = tmp_path / "bad.jsonl"
    missing.write_text('{"text": "x"}\n')
    result = runner.invoke(
        app, ["prepare", str(missing), "--out", str(tmp_path / "p"), "--paraphraser", "none"]
    )
    assert result.exit_code == 2 and "missing ['anchor', 'positive']" in result.output


_KILLED_CHILD = r"""
import sys
from cardio_st.cli import main
main(sys.argv[1:])
"""


def test_prepare_killed_midway_then_rerun_gives_the_same_dataset_without_regenerating(
    corpus, tmp_path, server
):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["prepare", str(corpus), "--paraphraser", f"openai:{server.url}", "--model", MODEL,
            "--split", "ratio", "--ratios", "0.5,0.5,0", "--concurrency", "2"]  # fmt: skip
    # Given a run killed once its checkpoint holds 8 finished sentences
    killed = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(),
    )  # fmt: skip
    checkpoint = killed / "paraphrases.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if checkpoint.exists() and len(checkpoint.read_text().splitlines()) >= 9:
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    finished = {
        json_line["text"] for json_line in map(json.loads, checkpoint.read_text().splitlines()[1:] or [])
    }
    assert 8 <= len(finished) < 28
    # When the same command runs again
    server.forget()
    assert runner.invoke(app, [*args, "--out", str(killed)]).exit_code == 0
    # Then no finished sentence is asked for again, and the dataset equals an uninterrupted run's
    assert not finished & set(server.asked) and len(set(server.asked)) == 28 - len(finished)
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "whole")]).exit_code == 0
    for split in ("train", "validation"):
        assert (
            load_from_disk(str(killed))[split].to_dict()
            == load_from_disk(str(tmp_path / "whole"))[split].to_dict()
        )


def test_prepare_with_a_local_model_reports_that_every_paraphrase_was_rejected(corpus, tmp_path):
    from tiny_models import build_tiny_causal_lm

    model = build_tiny_causal_lm(tmp_path / "lm")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["prepare", str(corpus), "--out", str(out), "--paraphraser", f"hf:{model}", "--split", "ratio",
         "--ratios", "0.5,0.5,0"],
    )  # fmt: skip
    # Gibberish from a random model: each output rejected, the reasons reported, not hidden
    assert result.exit_code == 1
    assert "every paraphrase was rejected (" in result.output and "paraphrases.jsonl" in result.output
    summary = json.loads((out / "summary.json").read_text())
    rejected = sum(v for k, v in summary.items() if k.startswith("paraphrases rejected: "))
    assert summary["paraphrases accepted"] == 0 and rejected == summary["kept"] == 28
    lines = (out / "paraphrases.jsonl").read_text().splitlines()[1:]
    assert len(lines) == 28 and all(json.loads(line)["rejected"] for line in lines)


def test_prepare_training_data_takes_names_and_writes_what_the_command_writes(
    corpus, tmp_path, server, minilm_path
):
    from cardio_st.training.recipes import prepare_training_data

    # Given a paraphraser spec and a miner given by folder, as the command gets them
    summary = prepare_training_data(
        corpus, tmp_path / "lib", paraphraser=f"openai:{server.url}", model=MODEL,
        mine_with=minilm_path, split="ratio", ratios=(0.5, 0.5, 0), show_progress=False,
    )  # fmt: skip
    server.forget()
    result = _prepare(corpus, tmp_path / "cli", server.url, "--mine-with", str(minilm_path))
    # Then the library call writes the command's triplets and counts
    assert result.exit_code == 0, result.output
    ours, theirs = load_from_disk(str(tmp_path / "lib")), load_from_disk(str(tmp_path / "cli"))
    assert {name: ours[name].to_dict() for name in ours} == {name: theirs[name].to_dict() for name in theirs}
    written = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k != "seconds"} == {
        k: v for k, v in written.items() if k != "seconds"
    }


# Transient answers, retries on request, the split first, output folders


def _flaky_paraphraser(url, **options):
    from cardio_st.data.paraphrase import OpenAIParaphraser

    return OpenAIParaphraser(url, MODEL, backoff=0.001, timeout=5.0, **{"max_retries": 1, **options})


def _unanswered(out) -> set[str]:
    """Texts whose latest line in the checkpoint is a transient failure (with its reason)."""
    latest = {}
    for line in (out / "paraphrases.jsonl").read_text().splitlines()[1:]:
        record = json.loads(line)
        latest[record["text"]] = record
    assert all(
        "content null" in r["failed"] or "no choices" in r["failed"]
        for r in latest.values()
        if r.get("failed")
    )
    return {text for text, record in latest.items() if record.get("failed")}


def test_answers_without_content_are_asked_again_and_no_sentence_is_lost(corpus, tmp_path, start_server):
    from cardio_st.data.prepare import UNANSWERED, prepare_corpus

    # Given a server that answers content null 30% of the time and no choices 10%, on every attempt
    server = start_server(null_rate=0.3, no_choices_rate=0.1, fail_rate=0.0, delay=0.0)
    out = tmp_path / "out"
    options = {"split": "ratio", "ratios": (0.5, 0.5, 0), "show_progress": False}
    # When prepare runs with one retry per request
    summary = prepare_corpus(corpus, out, paraphraser=_flaky_paraphraser(server.url), **options)
    # Then no empty answer became a rejection: only the sentence whose real answer is blank is "empty"
    assert server.nulls > 0 and server.no_choices > 0
    rejected = {k.split(": ")[1]: v for k, v in summary.items() if k.startswith("paraphrases rejected: ")}
    assert rejected.get("empty", 0) <= 1 and set(rejected) <= {"empty", "refusal", "copy", "too long"}
    unanswered = summary.get(UNANSWERED, 0)
    assert 0 < unanswered and summary["paraphrases accepted"] + unanswered + sum(rejected.values()) == 28
    failed = _unanswered(out)
    assert len(failed) == unanswered
    # And each rerun asks again for exactly what got no answer, until every sentence has one
    for _ in range(10):
        server.forget()
        summary = prepare_corpus(corpus, out, paraphraser=_flaky_paraphraser(server.url), **options)
        assert set(server.asked) == failed
        failed = _unanswered(out)
        assert summary.get(UNANSWERED, 0) == len(failed)
        if not failed:
            break
    assert summary["paraphrases accepted"] == 24 and UNANSWERED not in summary
    assert all(summary[f"paraphrases rejected: {r}"] == 1 for r in ("empty", "refusal", "copy", "too long"))
    assert len(load_from_disk(str(out))["train"]) + len(load_from_disk(str(out))["validation"]) == 24


def test_retry_rejected_and_retry_unparsed_ask_again_for_those_only(corpus, tmp_path, server):
    out = tmp_path / "out"
    assert _prepare(corpus, out, server.url).exit_code == 0
    # When rerun with --retry-unparsed: only the sentence whose answer held no paraphrase is asked again
    server.forget()
    result = _prepare(corpus, out, server.url, "--retry-unparsed")
    assert result.exit_code == 0, result.output
    assert [SPECIAL[text] for text in server.asked] == ["empty"]
    # When rerun with --retry-rejected: the refusal, the copy and the too long one
    server.forget()
    result = _prepare(corpus, out, server.url, "--retry-rejected")
    assert result.exit_code == 0, result.output
    assert sorted(SPECIAL[text] for text in server.asked) == ["copy", "refusal", "too long"]
    # And without a flag nothing is asked; the verdicts are those of the latest answers
    server.forget()
    assert _prepare(corpus, out, server.url).exit_code == 0 and server.asked == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paraphrases accepted"] == 24
    assert all(summary[f"paraphrases rejected: {reason}"] == 1 for reason in ("refusal", "copy", "empty"))


def test_a_bad_split_fails_before_any_paraphrase_is_asked_for(corpus, tmp_path, server):
    # Given four books, and a split by source into train, validation and test (six needed)
    result = runner.invoke(
        app,
        ["prepare", str(corpus), "--out", str(tmp_path / "out"), "--paraphraser", f"openai:{server.url}",
         "--model", MODEL, "--split", "source"],
    )  # fmt: skip
    # Then it fails at once, naming the fix, and the server was asked for nothing
    assert result.exit_code == 2, result.output
    assert "4 source(s) cannot fill the 3 splits" in result.output and "--split ratio" in result.output
    assert server.asked == [] and not (tmp_path / "out" / "paraphrases.jsonl").exists()
    # And a ratio split that leaves one split with a single source is refused just as early
    result = _prepare(corpus, tmp_path / "out", server.url, "--ratios", "0.99,0.01,0")
    assert result.exit_code == 2 and "validation split would hold no source" in result.output
    assert server.asked == []


def _labelling_folder(folder):
    folder.mkdir()
    summary = {"queries": 3, "documents": 6, "pairs": 16, "judges": {"A": {"graded": 16}}}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "notes.txt").write_text("mine")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_prepare_and_prepare_icd10_refuse_a_folder_they_did_not_write(corpus, tmp_path, server):
    # Given a folder that holds a labelling run's summary.json and a file of the user's
    folder = tmp_path / "labels"
    before = _labelling_folder(folder)
    # When prepare-icd10 and prepare are pointed at it, Then both refuse in one line, writing nothing
    for result in (
        runner.invoke(app, ["prepare-icd10", "--out", str(folder), "--scope", "cardio"]),
        _prepare(corpus, folder, server.url),
    ):
        assert result.exit_code == 2, result.output
        assert f"{folder} is not empty" in result.output and "--overwrite" in result.output
        assert "Traceback" not in result.output and "`overwrite=True`" not in result.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and server.asked == []
    # When --overwrite is given, Then they write their outputs and delete nothing else
    result = runner.invoke(app, ["prepare-icd10", "--out", str(folder), "--scope", "cardio", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (folder / "notes.txt").read_text() == "mine" and "release" in json.loads(
        (folder / "summary.json").read_text()
    )
    assert load_from_disk(str(folder))["train"].num_rows > 400


def test_a_folder_of_another_command_is_refused_and_earlier_runs_are_resumed(corpus, tmp_path, server):
    from cardio_st.utils.files import FOLDER_MARKER, folder_owner

    out = tmp_path / "out"
    assert _prepare(corpus, out, server.url).exit_code == 0
    assert folder_owner(out) == "prepare"
    # A prepare folder is not prepare-icd10's
    result = runner.invoke(app, ["prepare-icd10", "--out", str(out), "--scope", "cardio"])
    assert result.exit_code == 2 and "output folder of cardio-st prepare" in result.output
    # A folder written before the marker existed is still recognised by its checkpoint and resumed
    (out / FOLDER_MARKER).unlink()
    server.forget()
    result = _prepare(corpus, out, server.url)
    assert result.exit_code == 0, result.output
    assert server.asked == [] and folder_owner(out) == "prepare"
