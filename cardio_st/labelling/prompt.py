"""The judges' grading scale, their prompt and the strict parser of their answers (CMedTEB's 0-3 scale,
arXiv 2604.10937). Leaves out asking the judges and checkpointing their answers (judges.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence

__all__ = [
    "GRADES",
    "JUDGE_PROMPT",
    "JUDGE_SYSTEM_PROMPT",
    "LOW_QUALITY_CAP",
    "MalformedAnswer",
    "parse_grades",
    "prompt_id",
    "render_prompt",
]

#: The graded relevance scale, CMedTEB's four levels.
GRADES = {
    0: "unrelated to the query",
    1: "on the query's topic, but does not answer it",
    2: "answers the query in part",
    3: "answers the query fully",
}
#: The highest grade a passage can get when the judge finds the query itself too vague to answer.
LOW_QUALITY_CAP = 1

JUDGE_SYSTEM_PROMPT = (
    "You are an expert clinical information-retrieval assessor. You grade how well passages answer a "
    "search query. You answer with JSON only."
)

JUDGE_PROMPT = """Grade how well each passage below answers the query.

Rules:
1. Read the query and each passage independently. Do not use one passage to understand another.
2. Judge only what the passage says. Do not infer from a passage what the query must have meant: a
   passage on a related topic that does not answer the query is not relevant.
3. Grades: 3 = answers the query fully; 2 = answers it in part; 1 = on the query's topic but does not
   answer it; 0 = unrelated.
4. If the query is too vague, ambiguous or garbled to be answered, set "query_quality" to "low" and
   give no passage more than 1.
5. Reply with one JSON object and nothing else, with one entry for every passage, in this form:
   {"query_quality": "ok", "grades": [{"id": "P1", "grade": 0}, {"id": "P2", "grade": 3}]}

Query: <<QUERY>>

Passages:
<<PASSAGES>>
"""
"""The user prompt; ``<<QUERY>>`` and ``<<PASSAGES>>`` are replaced (not ``str.format``: the JSON
example has braces)."""


def prompt_id() -> str:
    """A fingerprint of the scale and prompts, recorded in every judge checkpoint."""
    text = f"{JUDGE_SYSTEM_PROMPT}\0{JUDGE_PROMPT}\0{sorted(GRADES.items())}\0{LOW_QUALITY_CAP}"
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def render_prompt(query: str, passages: Sequence[str]) -> str:
    """The judge's user message for one query and a batch of passages, labelled ``P1``, ``P2``, ..."""
    listed = "\n".join(f"[P{i}] {' '.join(text.split())}" for i, text in enumerate(passages, start=1))
    return JUDGE_PROMPT.replace("<<QUERY>>", " ".join(query.split())).replace("<<PASSAGES>>", listed)


class MalformedAnswer(ValueError):
    """A judge's answer that is not the JSON the prompt asks for; the message says what is wrong."""


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def parse_grades(raw: str, n: int) -> tuple[list[int], bool]:
    """The grades of passages ``P1`` .. ``Pn`` in a judge's raw answer, and whether it found the query of
    low quality (then every grade is capped at ``LOW_QUALITY_CAP``, whatever the judge wrote).

    Accepts the JSON object alone, or inside a code fence or after a ``<think>`` block. Rejects
    anything else: no JSON object, invalid JSON, a grade outside 0-3 or not a whole number, an unknown,
    repeated or missing passage id.

    Raises:
        MalformedAnswer: naming the first problem found.

    Example:
        >>> parse_grades('{"grades": [{"id": "P1", "grade": 3}, {"id": "P2", "grade": 0}]}', 2)
        ([3, 0], False)
        >>> parse_grades('{"query_quality": "low", "grades": [{"id": "P1", "grade": 3}]}', 1)
        ([1], True)
    """
    text = _THINK.sub("", raw or "").strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise MalformedAnswer("no JSON object in the answer")
    try:
        answer = json.loads(text[start : end + 1])
    except ValueError as error:
        raise MalformedAnswer(f"invalid JSON ({error.msg})") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("grades"), list):
        raise MalformedAnswer('no "grades" list')
    quality = answer.get("query_quality", "ok")
    if quality not in ("ok", "low"):
        raise MalformedAnswer(f'"query_quality" is {quality!r}, not "ok" or "low"')
    grades: dict[int, int] = {}
    for item in answer["grades"]:
        if not isinstance(item, dict):
            raise MalformedAnswer("a grades entry is not an object")
        match = re.fullmatch(r"P(\d+)", str(item.get("id", "")).strip())
        if not match or not 1 <= int(match.group(1)) <= n:
            raise MalformedAnswer(f"unknown passage id {item.get('id')!r}")
        grade = item.get("grade")
        if isinstance(grade, str) and grade.strip().isdigit():
            grade = int(grade)
        if isinstance(grade, bool) or not isinstance(grade, int) or grade not in GRADES:
            raise MalformedAnswer(f"grade {grade!r} of {item['id']} is not one of {sorted(GRADES)}")
        if int(match.group(1)) in grades:
            raise MalformedAnswer(f"{item['id']} graded twice")
        grades[int(match.group(1))] = grade
    missing = [f"P{i}" for i in range(1, n + 1) if i not in grades]
    if missing:
        raise MalformedAnswer(f"incomplete: no grade for {', '.join(missing)}")
    low = quality == "low"
    return [min(grades[i], LOW_QUALITY_CAP) if low else grades[i] for i in range(1, n + 1)], low
