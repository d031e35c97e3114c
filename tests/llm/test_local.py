"""cardio_st.llm.local: a tiny random causal LM, with and without a chat template and a system message."""

from __future__ import annotations

import pytest
from fake_openai import SENTENCES

from cardio_st.llm import HFGenerator


@pytest.fixture(scope="module", params=["chat-template", "plain"])
def tiny_causal_lm(request, tmp_path_factory):
    """A 2-layer random Qwen3 causal LM with the project's tiny tokenizer, with or without a chat template."""
    from tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(
        tmp_path_factory.mktemp("tiny-causal-lm"), chat_template=request.param == "chat-template"
    )


@pytest.mark.parametrize("system_prompt", [None, "You are terse."])
def test_one_answer_per_text_with_or_without_a_system_message(tiny_causal_lm, system_prompt):
    generator = HFGenerator(
        str(tiny_causal_lm), batch_size=2, max_new_tokens=3, device="cpu", system_prompt=system_prompt
    )
    answers = dict(generator.stream(SENTENCES[:3]))
    assert sorted(answers) == [0, 1, 2] and all(isinstance(answer, str) for answer in answers.values())
    rendered = generator._render(generator._load()[0], "Chest pain.")
    assert "Chest pain." in rendered and (system_prompt is None) == ("You are terse." not in rendered)
