"""cardio_st.llm.factory and cardio_st.llm.base: backends from specs, the protocol, prompt fingerprints."""

from __future__ import annotations

import pytest

from cardio_st.errors import CardioSTError
from cardio_st.llm import Generator, HFGenerator, OpenAIGenerator, make_generator
from cardio_st.llm.base import prompt_id


def test_make_generator_forms():
    assert make_generator("none") is None
    local = make_generator("hf:some/model", batch_size=4, device=None)
    assert isinstance(local, HFGenerator) and local.batch_size == 4
    assert local.name.startswith("hf:some/model#")
    assert local.prompt == "{text}" and local.system_prompt is None  # neutral defaults
    assert make_generator("hf:", model="some/model").model_name_or_path == "some/model"
    remote = make_generator("openai:http://127.0.0.1:9/v1/", model="qwen", concurrency=3, role="judge")
    assert isinstance(remote, OpenAIGenerator) and remote.base_url == "http://127.0.0.1:9/v1"
    assert isinstance(remote, Generator) and remote.name.startswith("openai:qwen#") and remote.role == "judge"
    with pytest.raises(CardioSTError, match=r"needs a model name: pass `model='NAME'`"):
        make_generator("openai:http://127.0.0.1:9/v1")
    with pytest.raises(CardioSTError, match=r"leave out `model='other'`"):
        make_generator("hf:some/model", model="other")
    with pytest.raises(CardioSTError, match=r"unknown judge backend 'gpt4': use hf:MODEL_ID_OR_PATH, openai"):
        make_generator("gpt4", role="judge")


def test_make_generator_builds_the_classes_it_is_given():
    class Local(HFGenerator):
        pass

    assert type(make_generator("hf:m", hf_class=Local)) is Local


def test_prompt_id_depends_on_prompt_and_system_message():
    ids = {prompt_id("{text}"), prompt_id("{text}", "You are terse."), prompt_id("Rewrite: {text}")}
    assert len(ids) == 3 and prompt_id("{text}", None) == prompt_id("{text}", "")
    with pytest.raises(CardioSTError, match=r"other than \{text\}"):
        prompt_id("{text} {other}")
