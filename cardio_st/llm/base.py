"""The protocol every text-generation backend follows, and the prompt fingerprint in its name.
Leaves out the backends themselves (local.py, openai.py) and what their answers are used for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cardio_st.errors import CardioSTError

__all__ = ["Generator", "Unanswered", "prompt_id"]


@dataclass(frozen=True)
class Unanswered:
    """What a backend yields for a text it got no answer for, after its own retries: a transient
    failure (an answer without content, e.g. ``content: null``, or with no choices), not an answer.

    A job records it as retryable -- never as a final verdict such as an empty answer -- so that a
    rerun asks again. It is not a ``str``: ``isinstance(raw, Unanswered)`` tells it apart.

    Attributes:
        reason: What came back instead of an answer, for the record.
    """

    reason: str


@runtime_checkable
class Generator(Protocol):
    """A text-generation backend: one raw answer per input text.

    Attributes:
        name: Identifies the backend, model and prompt (recorded in checkpoints; a checkpoint is only
            resumed by a generator of the same name).
    """

    name: str

    def stream(self, texts: Sequence[str]) -> Iterator[tuple[int, str | Unanswered]]:
        """Yield ``(index into texts, raw output)`` as results complete, in any order; the raw output is
        an [Unanswered][cardio_st.llm.base.Unanswered] for a text that got no answer after the retries.

        Raises:
            CardioSTError: for fatal problems (unreachable server after retries, unknown model).
        """
        ...


def prompt_id(prompt: str, system_prompt: str | None = None) -> str:
    """A short fingerprint of a prompt template (with a ``{text}`` field) and its system message.

    Raises:
        CardioSTError: when the template has no ``{text}`` field or another format field.

    Example:
        >>> len(prompt_id("Summarise: {text}", "You are terse."))
        8
    """
    if "{text}" not in prompt:
        raise CardioSTError("the prompt has no {text} field: put {text} where the input text goes")
    try:
        prompt.format(text="x")
    except (KeyError, IndexError, ValueError) as error:
        raise CardioSTError(
            f"the prompt has a format field other than {{text}} ({error!r}): "
            "write literal braces as {{ and }}"
        ) from error
    return hashlib.sha256(f"{system_prompt or ''}\0{prompt}".encode()).hexdigest()[:8]
