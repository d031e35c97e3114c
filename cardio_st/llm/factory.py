"""A generation backend from a one-word spec (``hf:MODEL``, ``openai:URL`` or ``none``), as the command
line writes it. Leaves out the backends' own options, which pass through unchanged.
"""

from __future__ import annotations

from typing import Any

from cardio_st.errors import CardioSTError
from cardio_st.llm.base import Generator
from cardio_st.llm.local import HFGenerator
from cardio_st.llm.openai import OpenAIGenerator

__all__ = ["make_generator"]


def make_generator(
    spec: str,
    *,
    model: str | None = None,
    hf_class: type[HFGenerator] = HFGenerator,
    openai_class: type[OpenAIGenerator] = OpenAIGenerator,
    **options: Any,
) -> Generator | None:
    """Build a generator from a spec.

    Args:
        spec: ``hf:MODEL_ID_OR_PATH`` (local transformers), ``openai:URL`` (an OpenAI-compatible server;
            needs ``model``) or ``none`` (no generation: the caller does without).
        model: The server's model name for ``openai:``; for ``hf`` it may name the model instead of the spec.
        hf_class: The class built for ``hf:`` (a subclass of
            [HFGenerator][cardio_st.llm.local.HFGenerator] with other defaults, for instance).
        openai_class: The class built for ``openai:``
            ([OpenAIGenerator][cardio_st.llm.openai.OpenAIGenerator] or a subclass).
        **options: Passed to the class (``prompt``, ``system_prompt``, ``role``, ``batch_size``,
            ``concurrency``, ...); ``None`` values mean the default.

    Returns:
        The generator, or ``None`` for ``none``.

    Example:
        >>> make_generator("hf:Qwen/Qwen3-4B-Instruct-2507", role="judge").role
        'judge'
        >>> make_generator("none") is None
        True
    """
    options = {name: value for name, value in options.items() if value is not None}
    backend, _, target = (spec or "").strip().partition(":")
    backend = backend.lower()
    if backend == "none" and not target:
        return None
    if backend == "hf":
        if target and model and model != target:
            raise CardioSTError(f"{spec!r} already names the model: leave out `model={model!r}`")
        if not (target or model):
            raise CardioSTError(
                "hf: needs a model: use hf:MODEL_ID_OR_PATH, e.g. hf:Qwen/Qwen3-4B-Instruct-2507"
            )
        return hf_class(target or model, **options)
    if backend == "openai" and target:
        if not model:
            raise CardioSTError(
                f"{spec!r} needs a model name: pass `model='NAME'` with a model the server serves "
                f"(listed at {target.rstrip('/')}/models)"
            )
        return openai_class(target, model, **options)
    role = options.get("role", "LLM")
    raise CardioSTError(
        f"unknown {role} backend {spec!r}: use hf:MODEL_ID_OR_PATH, openai:URL (with `model='NAME'`) or none"
    )
