"""cardio_st.data.paraphrase: output cleaning, filters, resumable checkpoints through the HTTP and local
backends (whose own tests are in tests/llm), and the old backend names."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from fake_openai import MODEL, SENTENCES, SPECIAL, FakeServer, _reworded

from cardio_st.data.paraphrase import (
    DEFAULT_PROMPT,
    SYSTEM_PROMPT,
    HFParaphraser,
    OpenAIParaphraser,
    Paraphraser,
    ParaphraseResult,
    clean_output,
    generate_paraphrases,
    make_paraphraser,
    rejection_reason,
)
from cardio_st.errors import CardioSTError
from cardio_st.llm import Generator, HFGenerator, OpenAIGenerator


def _client(server: FakeServer, **options) -> OpenAIParaphraser:
    options = {"backoff": 0.01, "timeout": 5.0, **options}
    return OpenAIParaphraser(server.url, options.pop("model", MODEL), **options)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


# Known answers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  The patient has no fever.  ", "The patient has no fever."),
        ('"The patient has no fever."', "The patient has no fever."),
        ("\u201cNo chest pain at rest.\u201d", "No chest pain at rest."),
        ("Paraphrase: Aspirin 75 mg daily.", "Aspirin 75 mg daily."),
        ("**Paraphrased sentence:** Aspirin 75 mg daily.", "Aspirin 75 mg daily."),
        ("Here is a paraphrase:\n\nAspirin 75 mg daily.", "Aspirin 75 mg daily."),
        ("Here\u2019s a paraphrased version of the sentence: Aspirin 75 mg daily.", "Aspirin 75 mg daily."),
        ('Sure! Here is the paraphrase:\n\n"No edema."\n\nI kept the negation.', "No edema."),
        ("Certainly.\nThe heart\nbeats regularly.", "The heart beats regularly."),
        ("<think>\nKeep the dose.\n</think>\n\nAspirin 75 mg daily.", "Aspirin 75 mg daily."),
        ("<think>\n\n</think>\n\nNo edema.", "No edema."),
        ("keep the dose...</think>No edema.", "No edema."),
        ("<think>still reasoning when the tokens ran out", ""),
        ("Dose: 5 mg daily.", "Dose: 5 mg daily."),  # a colon in the content is not a preamble
        ("First paragraph.\n\nSecond paragraph.", "First paragraph."),
        ("", ""),
    ],
)
def test_clean_output_known_answers(raw, expected):
    assert clean_output(raw) == expected


SOURCE = "The patient denies chest pain and takes aspirin 75 mg daily."


@pytest.mark.parametrize(
    ("paraphrase", "expected"),
    [
        ("Chest pain is denied by the patient, who takes 75 mg of aspirin each day.", None),
        ("", "empty"),
        ("   ", "empty"),
        ("I'm sorry, but I can't help with that.", "refusal"),
        ("I cannot provide medical advice.", "refusal"),
        ("As an AI language model, I must note the patient denies chest pain.", "refusal"),
        ("Sorry, here it is.", "refusal"),
        ("the patient DENIES chest pain, and takes aspirin 75 mg daily", "copy"),
        ("No chest pain.", "too short"),
        (" ".join([SOURCE] * 3), "too long"),
    ],
)
def test_rejection_reason_known_answers(paraphrase, expected):
    assert rejection_reason(SOURCE, paraphrase) == expected


def test_rejection_reason_keeps_a_refusal_phrase_the_source_contains():
    source = "The patient said: I cannot breathe when lying flat at night."
    assert rejection_reason(source, "The patient reported: I cannot breathe lying flat at night.") is None


def test_rejection_reason_ratio_bounds():
    assert rejection_reason("one two three four", "a b", min_length_ratio=0.5) is None
    assert rejection_reason("one two three four", "a b", min_length_ratio=0.6) == "too short"
    assert rejection_reason("one two", "a b c d", max_length_ratio=2.0) is None
    assert rejection_reason("one two", "a b c d e", max_length_ratio=2.0) == "too long"


def test_the_old_names_are_the_llm_backends_with_the_paraphrase_defaults():
    assert Paraphraser is Generator
    assert issubclass(HFParaphraser, HFGenerator) and issubclass(OpenAIParaphraser, OpenAIGenerator)
    local, remote = HFParaphraser("some/model"), OpenAIParaphraser("http://127.0.0.1:9/v1", "qwen")
    for backend in (local, remote):
        assert (backend.prompt, backend.system_prompt, backend.role) == (
            DEFAULT_PROMPT,
            SYSTEM_PROMPT,
            "paraphrase",
        )
    assert HFParaphraser("some/model", role="judge").role == "judge"


def test_make_paraphraser_forms():
    assert make_paraphraser("none") is None
    local = make_paraphraser("hf:some/model", batch_size=4, device=None)
    assert (
        isinstance(local, HFParaphraser) and local.batch_size == 4 and local.name.startswith("hf:some/model#")
    )
    remote = make_paraphraser("openai:http://127.0.0.1:9/v1/", model="qwen", concurrency=3)
    assert isinstance(remote, OpenAIParaphraser) and remote.base_url == "http://127.0.0.1:9/v1"
    assert isinstance(remote, Paraphraser) and remote.name.startswith("openai:qwen#")
    with pytest.raises(CardioSTError, match="`model='NAME'`"):
        make_paraphraser("openai:http://127.0.0.1:9/v1")
    with pytest.raises(CardioSTError, match=r"hf:MODEL_ID_OR_PATH, openai:URL .* or none"):
        make_paraphraser("gpt4")
    with pytest.raises(CardioSTError, match=r"\{text\}"):
        make_paraphraser("hf:x", prompt="Paraphrase this.")


# Generation through a stub backend


class _Stub:
    """A backend that answers from a table, last text first, and records what it was asked."""

    def __init__(
        self, answers: dict[str, str] | None = None, name: str = "stub", interrupt_after: int | None = None
    ):
        self.name, self.answers, self.interrupt_after = name, answers or {}, interrupt_after
        self.asked: list[str] = []

    def stream(self, texts):
        for n, i in enumerate(reversed(range(len(texts)))):
            if n == self.interrupt_after:
                raise KeyboardInterrupt
            self.asked.append(texts[i])
            yield i, self.answers.get(texts[i], _reworded(texts[i]))


def test_ctrl_c_keeps_finished_items_and_a_rerun_asks_only_for_the_rest(tmp_path):
    path = tmp_path / "p.jsonl"
    # Given a run interrupted after three results
    with pytest.raises(KeyboardInterrupt):
        generate_paraphrases(SENTENCES[:10], _Stub(interrupt_after=3), path, show_progress=False)
    assert len(_lines(path)) == 1 + 3
    # When it runs again
    stub = _Stub()
    results = generate_paraphrases(SENTENCES[:10], stub, path, show_progress=False)
    # Then only the seven unfinished texts are asked for
    assert sorted(stub.asked) == sorted(SENTENCES[:7])
    assert [r.paraphrase for r in results] == [_reworded(t) for t in SENTENCES[:10]]


def test_filters_are_reapplied_from_raw_without_regeneration(tmp_path):
    path = tmp_path / "p.jsonl"
    texts = SENTENCES[:6]
    answers = {
        texts[0]: "Something unrelated entirely: the weather in Paris was mild and sunny all day long."
    }
    first = generate_paraphrases(texts, _Stub(answers), path, show_progress=False)
    assert all(r.rejected is None for r in first)

    class Embedder:  # "unrelated" points one way, everything else the other
        def encode(self, sentences, **kwargs):
            import torch

            return torch.tensor([[0.0, 1.0] if "unrelated" in s else [1.0, 0.0] for s in sentences])

    stub = _Stub(answers)
    strict = generate_paraphrases(
        texts, stub, path, similarity_model=Embedder(), min_similarity=0.5, show_progress=False
    )
    assert stub.asked == []
    assert [r.rejected for r in strict] == ["low similarity"] + [None] * 5
    too_long = generate_paraphrases(texts, stub, path, max_length_ratio=1.0, show_progress=False)
    assert stub.asked == [] and {r.rejected for r in too_long} == {"too long"}
    with pytest.raises(CardioSTError, match="similarity model"):
        generate_paraphrases(texts, stub, path, min_similarity=0.5, show_progress=False)


def test_keys_must_be_unique_and_match_texts(tmp_path):
    with pytest.raises(CardioSTError, match="'a' occurs more than once"):
        generate_paraphrases(["x", "y"], _Stub(), tmp_path / "p.jsonl", keys=["a", "a"], show_progress=False)
    with pytest.raises(CardioSTError, match="2 texts but 1 keys"):
        generate_paraphrases(["x", "y"], _Stub(), tmp_path / "p.jsonl", keys=["a"], show_progress=False)
    results = generate_paraphrases(
        SENTENCES[:2], _Stub(), tmp_path / "p.jsonl", keys=["b", "a"], show_progress=False
    )
    assert [r.key for r in results] == ["b", "a"]


def test_changed_text_under_a_finished_key_is_an_error(tmp_path):
    path = tmp_path / "p.jsonl"
    generate_paraphrases(SENTENCES[:3], _Stub(), path, show_progress=False)
    with pytest.raises(CardioSTError, match=r"item '1' paraphrased from other text.*delete the checkpoint"):
        generate_paraphrases([SENTENCES[0], "changed", SENTENCES[2]], _Stub(), path, show_progress=False)


def test_checkpoint_of_another_paraphraser_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "p.jsonl"
    generate_paraphrases(SENTENCES[:3], _Stub(name="openai:other#prompt=1"), path, show_progress=False)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.raises(CardioSTError, match=rf"{path}.*'openai:other#prompt=1'.*delete it to start over"):
        generate_paraphrases(SENTENCES[:3], _Stub(name="stub"), path, show_progress=False)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_a_file_that_is_not_a_checkpoint_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("A line of the user's corpus, not JSON.")
    with pytest.raises(CardioSTError, match="not a cardio-st paraphrase checkpoint"):
        generate_paraphrases(SENTENCES[:3], _Stub(), path, show_progress=False)
    assert path.read_text() == "A line of the user's corpus, not JSON."


def test_a_checkpoint_with_only_a_header_restarts_under_the_new_paraphraser(tmp_path):
    # e.g. the first run named a model the server does not serve, and the rerun fixes the model name
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"format": 1, "paraphraser": "openai:wrong#prompt=1", "filters": {}}) + "\n")
    results = generate_paraphrases(SENTENCES[:2], _Stub(), path, show_progress=False)
    assert all(r.paraphrase for r in results) and _lines(path)[0]["paraphraser"] == "stub"


def test_damaged_middle_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    generate_paraphrases(SENTENCES[:3], _Stub(), path, show_progress=False)
    lines = path.read_bytes().split(b"\n")
    lines[2] = b'{"key": "1", "te'
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CardioSTError, match=rf"{path} line 3 is not valid JSON"):
        generate_paraphrases(SENTENCES[:3], _Stub(), path, show_progress=False)


# Resumable generation through the OpenAI-compatible backend and the fake server


def test_server_run_gives_every_item_one_outcome(server, tmp_path):
    texts = SENTENCES + list(SPECIAL)
    path = tmp_path / "p.jsonl"
    results = generate_paraphrases(texts, _client(server), path, show_progress=False)
    # Every item has exactly one outcome, in input order
    assert [r.text for r in results] == texts and [r.key for r in results] == [
        str(i) for i in range(len(texts))
    ]
    assert all((r.paraphrase is None) != (r.rejected is None) for r in results)
    for result in results:
        if result.text in SPECIAL:
            assert (result.paraphrase, result.rejected) == (None, SPECIAL[result.text])
        else:
            assert result.paraphrase == _reworded(result.text)
    # The server really failed, dropped a connection and was retried; every text was asked for
    assert server.failures > 0 and server.drops == 1 and len(server.asked) > len(texts)
    assert set(server.asked) == set(texts)
    # The checkpoint holds the header and one line per item
    header, *records = _lines(path)
    assert header["format"] == 1 and header["paraphraser"] == _client(server).name
    assert sorted(r["key"] for r in records) == sorted(r.key for r in results)


_CHILD = r"""
import json, sys
from cardio_st.data.paraphrase import OpenAIParaphraser, generate_paraphrases
url, texts, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
client = OpenAIParaphraser(url, "fake-model", backoff=0.01, concurrency=2)
generate_paraphrases(texts, client, out, show_progress=False)
"""


def _finished(path) -> dict[str, str]:
    """key -> text of the complete item lines in a checkpoint."""
    complete = path.read_bytes().split(b"\n")[1:-1]
    return {record["key"]: record["text"] for record in map(json.loads, complete)}


def test_killed_run_resumes_without_asking_again(start_server, tmp_path):
    server = start_server(delay=0.1)
    path = tmp_path / "killed.jsonl"
    # Given a run in another process, killed once ten items are finished
    child = subprocess.Popen([sys.executable, "-c", _CHILD, server.url, json.dumps(SENTENCES), str(path)])
    try:
        deadline = time.monotonic() + 30
        while not (path.exists() and path.read_bytes().count(b"\n") >= 11):
            assert child.poll() is None and time.monotonic() < deadline, "the child ended before being killed"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    finished = _finished(path)
    assert 10 <= len(finished) < len(SENTENCES)
    # When the same call runs again
    server.forget()
    server.delay = 0.0
    resumed = generate_paraphrases(SENTENCES, _client(server), path, show_progress=False)
    # Then no finished item is asked for again and the result equals an uninterrupted run
    assert not set(server.asked) & set(finished.values())
    assert set(server.asked) == set(SENTENCES) - set(finished.values())
    fresh = generate_paraphrases(SENTENCES, _client(server), tmp_path / "fresh.jsonl", show_progress=False)
    assert resumed == fresh
    assert all(isinstance(r, ParaphraseResult) and r.paraphrase == _reworded(r.text) for r in resumed)
    # And a third run asks for nothing
    server.forget()
    assert generate_paraphrases(SENTENCES, _client(server), path, show_progress=False) == fresh
    assert server.asked == []


def test_truncated_last_line_is_dropped_and_regenerated(server, tmp_path):
    path = tmp_path / "p.jsonl"
    texts = SENTENCES[:12]
    complete = generate_paraphrases(texts, _client(server), path, show_progress=False)
    last = _lines(path)[-1]
    path.write_bytes(path.read_bytes()[:-20])  # killed in the middle of writing the last line
    server.forget()
    resumed = generate_paraphrases(texts, _client(server), path, show_progress=False)
    assert set(server.asked) == {last["text"]}
    assert resumed == complete
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 1 + len(texts) + 1  # header, items, nothing cut off
    assert all(json.loads(line) for line in lines[:-1])


# Generation through the local transformers backend


@pytest.fixture(scope="module", params=["chat-template", "plain"])
def tiny_causal_lm(request, tmp_path_factory):
    """A 2-layer random Qwen3 causal LM with the project's tiny tokenizer, with or without a chat template."""
    from tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(
        tmp_path_factory.mktemp("tiny-causal-lm"), chat_template=request.param == "chat-template"
    )


def test_local_model_end_to_end_reports_rejections(tiny_causal_lm, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cardio_st.data.paraphrase")
    texts = SENTENCES[:5]
    paraphraser = make_paraphraser(f"hf:{tiny_causal_lm}", batch_size=2, max_new_tokens=4, device="cpu")
    results = generate_paraphrases(texts, paraphraser, tmp_path / "p.jsonl", show_progress=False)
    # Four random tokens are at most four words: every item is rejected, and says why
    assert [r.text for r in results] == texts
    assert all(r.paraphrase is None and r.rejected in {"empty", "too short"} for r in results)
    assert "0 accepted, 5 rejected" in caplog.text and "most paraphrases were rejected" in caplog.text
    records = _lines(tmp_path / "p.jsonl")[1:]
    assert len(records) == 5 and all(isinstance(r["raw"], str) and r["rejected"] for r in records)
