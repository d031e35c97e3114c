"""The cheap filters of paraphrase answers: the paraphrase inside a model's raw answer, and why it is
unusable. Leaves out generation and checkpoints (paraphrase.py) and judging clinical correctness.
"""

from __future__ import annotations

import re

__all__ = ["clean_output", "rejection_reason"]


_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_COURTESY = re.compile(r"^(?:sure|certainly|of course|okay|ok|absolutely)\s*[!.,:]+\s*", re.IGNORECASE)
_HERE_IS = re.compile(r"^here(?:['\u2019]s| is| are)\b[^:\n]{0,100}:\s*", re.IGNORECASE)
_LABEL = re.compile(
    r"^[*_#\s]*(?:(?:the |a )?(?:paraphrase[sd]?|rephrased|reworded|rewritten|rewrite)"
    r"(?: (?:sentence|version|text))?|answer)[*_\s]*:[*_\s]*",
    re.IGNORECASE,
)
_QUOTES = {
    '"': '"',
    "'": "'",
    "\u201c": "\u201d",
    "\u2018": "\u2019",
    "\u00ab": "\u00bb",
    "`": "`",
    "**": "**",
}


def clean_output(raw: str) -> str:
    """The paraphrase inside a model's raw answer.

    Removes ``<think>...</think>`` reasoning (and an unclosed or unopened block), preambles such as
    "Sure! Here is a paraphrase:" or "Paraphrase:", keeps the first paragraph only (its line breaks
    become spaces) and strips surrounding quotes.

    Example:
        >>> clean_output('Sure! Here is a paraphrase:\\n\\n"The patient has no fever."\\n\\nI kept it short.')
        'The patient has no fever.'
    """
    text = _THINK_BLOCK.sub("", raw or "")
    if "</think>" in text.lower():  # the template opened the block in the prompt
        text = text[text.lower().rfind("</think>") + len("</think>") :]
    if "<think>" in text.lower():  # cut off while reasoning
        text = text[: text.lower().find("<think>")]
    text = text.strip()
    previous = None
    while text != previous:
        previous = text
        for pattern in (_COURTESY, _HERE_IS, _LABEL):
            text = pattern.sub("", text, count=1).strip()
    paragraph = next((p for p in re.split(r"\n\s*\n", text) if p.strip()), "")
    text = " ".join(paragraph.split())
    changed = True
    while changed and text:
        changed = False
        for opening, closing in _QUOTES.items():
            if (
                len(text) > len(opening) + len(closing)
                and text.startswith(opening)
                and text.endswith(closing)
            ):
                text, changed = text[len(opening) : -len(closing)].strip(), True
    return text


_REFUSALS = re.compile(
    r"^sorry\b|\bI(?:'m| am) (?:sorry|unable|not able)\b|\bI (?:cannot|can't|can not|won't|will not)\b"
    r"|\bI apologi[sz]e\b|\bas an ai\b|\b(?:ai|large) language model\b",
    re.IGNORECASE,
)


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def rejection_reason(
    source: str, paraphrase: str, *, min_length_ratio: float = 0.5, max_length_ratio: float = 2.0
) -> str | None:
    """Why a cleaned paraphrase is unusable, or ``None`` when it is accepted.

    Checks, in order: ``"empty"``; ``"refusal"`` (an "I'm sorry", "I cannot", "As an AI" ... that the
    source does not itself contain); ``"copy"`` (equal to the source ignoring case, punctuation and
    spacing); ``"too short"`` / ``"too long"`` (word count over the source's outside
    ``[min_length_ratio, max_length_ratio]``).

    Example:
        >>> rejection_reason("No chest pain.", "I'm sorry, I can't help with that.")
        'refusal'
    """
    paraphrase = (paraphrase or "").strip()
    if not paraphrase:
        return "empty"
    straight = paraphrase.replace("\u2019", "'")
    match = _REFUSALS.search(straight)
    if match and not re.search(re.escape(match.group(0)), source.replace("\u2019", "'"), re.IGNORECASE):
        return "refusal"
    if _normalised(paraphrase) == _normalised(source):
        return "copy"
    source_words = len(source.split())
    if source_words:
        ratio = len(paraphrase.split()) / source_words
        if ratio < min_length_ratio:
            return "too short"
        if ratio > max_length_ratio:
            return "too long"
    return None
