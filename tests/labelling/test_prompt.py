"""cardio_st.labelling.prompt: the strict parser of the judges' answers and the prompt it answers."""

from __future__ import annotations

import pytest

from cardio_st.labelling.prompt import MalformedAnswer, parse_grades, render_prompt


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("no json here", "no JSON object"),
        ('{"grades": [{"id": "P1", "grade": 3}', "invalid JSON"),
        ('{"grades": [{"id": "P1", "grade": 3},]}', "invalid JSON"),
        ('{"grade": []}', 'no "grades" list'),
        ('{"grades": [{"id": "P1", "grade": 4}, {"id": "P2", "grade": 0}]}', "grade 4 of P1"),
        ('{"grades": [{"id": "P1", "grade": 2.5}, {"id": "P2", "grade": 0}]}', "grade 2.5"),
        ('{"grades": [{"id": "P1", "grade": 1}]}', "incomplete: no grade for P2"),
        ('{"grades": [{"id": "P1", "grade": 1}, {"id": "P1", "grade": 2}]}', "P1 graded twice"),
        ('{"grades": [{"id": "P3", "grade": 1}, {"id": "P1", "grade": 2}]}', "unknown passage id 'P3'"),
        ('{"query_quality": "meh", "grades": []}', '"query_quality"'),
    ],
)
def test_the_parser_rejects_what_the_prompt_does_not_ask_for(raw, problem):
    with pytest.raises(MalformedAnswer, match=problem):
        parse_grades(raw, 2)


def test_the_parser_accepts_fences_reasoning_and_caps_vague_queries():
    answer = '{"grades": [{"id": "P2", "grade": "0"}, {"id": "P1", "grade": 3}]}'
    raw = f"<think>P2 is off topic.</think>\n```json\n{answer}\n```"
    assert parse_grades(raw, 2) == ([3, 0], False)
    low = '{"query_quality": "low", "grades": [{"id": "P1", "grade": 3}, {"id": "P2", "grade": 2}]}'
    assert parse_grades(low, 2) == ([1, 1], True)


def test_the_prompt_keeps_query_and_passages_apart_and_asks_for_json():
    prompt = render_prompt("chest pain\non exertion", ["one  passage", "two"])
    assert "Query: chest pain on exertion" in prompt and "[P1] one passage\n[P2] two" in prompt
    assert "Do not infer from a passage what the query must have meant" in prompt
    assert 'set "query_quality" to "low"' in prompt and "give no passage more than 1" in prompt
