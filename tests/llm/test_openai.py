"""cardio_st.llm.openai: the OpenAI-compatible backend against a fake server on 127.0.0.1 -- retries,
unreachable servers, unknown models, API keys, URLs without /v1, and the messages it sends."""

from __future__ import annotations

import socket
import time

import pytest
from fake_openai import MODEL, SENTENCES, FakeServer, _fake_answer

from cardio_st.errors import CardioSTError
from cardio_st.llm.base import Unanswered
from cardio_st.llm.openai import OpenAIGenerator, _message_content, _names_unknown_model


def _client(server: FakeServer, **options) -> OpenAIGenerator:
    options = {"backoff": 0.01, "timeout": 5.0, **options}
    return OpenAIGenerator(server.url, options.pop("model", MODEL), **options)


def _generate(client: OpenAIGenerator, texts: list[str]) -> dict[int, str]:
    return dict(client.stream(texts))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"error": {"message": "The model `x` does not exist.", "code": 404}}', True),  # vLLM
        (
            '{"error": {"message": "The model `x` does not exist or you do not have access to it.", '
            '"code": "model_not_found"}}',
            True,
        ),  # OpenAI
        ('{"error": "model \\"x\\" not found, try pulling it first"}', True),  # Ollama
        ('{"error": {"message": "Invalid model name passed in model=x"}}', True),  # LiteLLM
        ('{"error": {"message": "max_tokens must be at least 1, got 0."}}', False),
        ('{"detail": "Not Found"}', False),
    ],
)
def test_unknown_model_answers_are_recognised(body, expected):
    assert _names_unknown_model(body.encode()) is expected


def test_every_text_gets_its_answer_through_failures_and_a_dropped_connection(server):
    texts = SENTENCES[:12]
    answers = _generate(_client(server, concurrency=4), texts)
    assert answers == {i: _fake_answer(text) for i, text in enumerate(texts)}
    assert server.failures > 0 and server.drops == 1 and set(server.asked) == set(texts)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"choices": [{"message": {"content": "No edema."}}]}, "No edema."),
        ({"choices": [{"message": {"content": "  "}}]}, "  "),  # an answer: the job's filters judge it
        ({"choices": [{"message": {"content": [{"type": "text", "text": "a "}, {"text": "b"}]}}]}, "a b"),
        ({"choices": [{"message": {"content": None, "refusal": "I can't help."}}]}, "I can't help."),
        ({"choices": [{"message": {"content": None}, "finish_reason": "length"}]}, Unanswered),
        ({"choices": [{"message": {"role": "assistant"}}]}, Unanswered),
        ({"choices": []}, Unanswered),
    ],
)  # fmt: skip
def test_answers_without_content_are_unanswered_not_empty(answer, expected):
    content = _message_content(answer)
    if expected is Unanswered:
        assert isinstance(content, Unanswered) and content.reason
    else:
        assert content == expected


def test_answers_without_content_are_retried(start_server):
    # Given a server whose answers come back with content null 30% of the time and without choices 10%
    server = start_server(null_rate=0.3, no_choices_rate=0.1, delay=0.0)
    texts = SENTENCES[:20]
    # When every text is asked for
    answers = _generate(_client(server, concurrency=4), texts)
    # Then each gets its real answer: the empty ones were asked again, not returned as ""
    assert server.nulls > 0 and server.no_choices > 0
    assert answers == {i: _fake_answer(text) for i, text in enumerate(texts)}


def test_a_text_never_answered_with_content_is_unanswered_and_the_others_go_on(start_server):
    server = start_server(null_rate=1.0, delay=0.0)
    answers = _generate(_client(server, max_retries=3, concurrency=2), SENTENCES[:3])
    assert set(answers) == {0, 1, 2}
    assert all(isinstance(a, Unanswered) and "content null" in a.reason for a in answers.values())
    assert len(server.asked) == 3 * 4  # retried like any transient failure, then reported, not raised


def test_the_system_message_is_sent_only_when_given(server):
    _generate(_client(server), SENTENCES[:2])
    _generate(_client(server, system_prompt="You are terse.", prompt="Rewrite: {text}"), SENTENCES[2:4])
    assert set(server.systems) == {None, "You are terse."}
    assert set(server.asked) == set(SENTENCES[:2]) | {f"Rewrite: {text}" for text in SENTENCES[2:4]}


def test_a_server_that_keeps_failing_is_an_error_after_the_retries(start_server):
    server = start_server(always_fail=True, delay=0.0)
    client = _client(server, max_retries=2, concurrency=1)
    with pytest.raises(CardioSTError, match=rf"{server.url} failed 3 times \(last: HTTP 500.*check the URL"):
        _generate(client, SENTENCES[:1])
    assert len(server.asked) == 3


def test_unreachable_server_fails_fast_naming_the_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    started = time.monotonic()
    with pytest.raises(CardioSTError, match=rf"{url}.*is the server running\? check the URL") as error:
        _generate(OpenAIGenerator(url, MODEL, timeout=2.0), SENTENCES[:3])
    assert time.monotonic() - started < 3 and error.value.exit_code == 1


def test_unknown_model_names_the_model_and_lists_the_servers(server):
    with pytest.raises(CardioSTError, match=rf"{server.url} does not serve model 'llama'.*`model='{MODEL}'`"):
        _generate(_client(server, model="llama"), SENTENCES[:3])
    assert server.asked == []  # found by the preflight


def test_unknown_model_without_a_models_endpoint(start_server):
    server = start_server(models=None)
    with pytest.raises(CardioSTError, match=r"does not serve model 'llama'.*`model='NAME'`"):
        _generate(_client(server, model="llama"), SENTENCES[:3])


def test_missing_api_key_says_how_to_set_it(start_server, monkeypatch):
    server = start_server(api_key="secret")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(CardioSTError, match=r"HTTP 401.*OPENAI_API_KEY or pass `api_key='KEY'`"):
        _generate(_client(server), SENTENCES[:3])
    monkeypatch.setenv("OPENAI_API_KEY", "secret")
    assert all(_generate(_client(server), SENTENCES[:3]).values())


def test_url_without_v1_is_explained(server):
    client = OpenAIGenerator(server.url.removesuffix("/v1"), MODEL, backoff=0.01)
    with pytest.raises(CardioSTError, match="must end in /v1"):
        _generate(client, SENTENCES[:3])


def test_bad_arguments_name_the_fix():
    with pytest.raises(CardioSTError, match="is not an http"):
        OpenAIGenerator("127.0.0.1:8000/v1", MODEL)
    with pytest.raises(CardioSTError, match="pass `model='NAME'`"):
        OpenAIGenerator("http://127.0.0.1:9/v1", "")
    with pytest.raises(CardioSTError, match=r"\{text\}"):
        OpenAIGenerator("http://127.0.0.1:9/v1", MODEL, prompt="Rewrite this.")
