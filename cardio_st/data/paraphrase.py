"""Resumable paraphrase generation for training pairs, with the paraphrase prompt and output filters.
Leaves out the LLM client (cardio_st.llm) and judging clinical correctness: only cheap filters.

CardioEmbed (arXiv 2511.10930) pairs each textbook sentence with an LLM paraphrase of it. Generating
150k paraphrases takes hours, so [generate_paraphrases][cardio_st.data.paraphrase.generate_paraphrases]
appends every result to a JSONL checkpoint the moment it arrives; a rerun of the same call asks the
backend only for what is missing.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardio_st.data.checkpoint import JsonlCheckpoint
from cardio_st.errors import CardioSTError
from cardio_st.llm.base import Generator
from cardio_st.llm.factory import make_generator
from cardio_st.llm.local import HFGenerator
from cardio_st.llm.openai import OpenAIGenerator

__all__ = [
    "DEFAULT_PROMPT",
    "SYSTEM_PROMPT",
    "HFParaphraser",
    "OpenAIParaphraser",
    "ParaphraseResult",
    "Paraphraser",
    "clean_output",
    "generate_paraphrases",
    "make_paraphraser",
    "rejection_reason",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1

SYSTEM_PROMPT = (
    "You are a careful medical editor. You rewrite clinical text in new words without changing its meaning."
)
"""The system message sent with every paraphrase request (folded into the user turn for chat
templates without a system role)."""

DEFAULT_PROMPT = (
    "Paraphrase the clinical sentence below. Keep its meaning exactly: the same facts, numbers, units, "
    "doses, drug names, laterality and negations. Use different wording and sentence structure. Do not "
    "add, remove, explain or comment on anything. Reply with the paraphrase only: one version, without "
    "quotes or preamble.\n\nSentence: {text}"
)
"""The default user prompt; ``{text}`` is replaced by the sentence."""

Paraphraser = Generator
"""A paraphrase backend: any [Generator][cardio_st.llm.base.Generator] (the name from before the
backends moved to cardio_st.llm)."""

_DEFAULTS = {"prompt": DEFAULT_PROMPT, "system_prompt": SYSTEM_PROMPT, "role": "paraphrase"}


class HFParaphraser(HFGenerator):
    """An [HFGenerator][cardio_st.llm.local.HFGenerator] whose ``prompt``, ``system_prompt`` and ``role``
    default to [DEFAULT_PROMPT][cardio_st.data.paraphrase.DEFAULT_PROMPT],
    [SYSTEM_PROMPT][cardio_st.data.paraphrase.SYSTEM_PROMPT] and ``"paraphrase"``."""

    def __init__(self, model_name_or_path: str, **options: Any) -> None:
        super().__init__(model_name_or_path, **{**_DEFAULTS, **options})


class OpenAIParaphraser(OpenAIGenerator):
    """An [OpenAIGenerator][cardio_st.llm.openai.OpenAIGenerator] whose ``prompt``, ``system_prompt`` and
    ``role`` default to [DEFAULT_PROMPT][cardio_st.data.paraphrase.DEFAULT_PROMPT],
    [SYSTEM_PROMPT][cardio_st.data.paraphrase.SYSTEM_PROMPT] and ``"paraphrase"``."""

    def __init__(self, base_url: str, model: str, **options: Any) -> None:
        super().__init__(base_url, model, **{**_DEFAULTS, **options})


def make_paraphraser(spec: str, *, model: str | None = None, **kwargs: Any) -> Paraphraser | None:
    """A paraphraser from a command-line spec, or ``None`` for ``none`` (the caller uses existing pairs).

    [make_generator][cardio_st.llm.factory.make_generator] building an
    [HFParaphraser][cardio_st.data.paraphrase.HFParaphraser] for ``hf:MODEL_ID_OR_PATH`` or an
    [OpenAIParaphraser][cardio_st.data.paraphrase.OpenAIParaphraser] for ``openai:URL`` (with
    ``model``); ``kwargs`` go to the class, ``None`` values meaning the default.
    """
    options = {"role": "paraphrase", **kwargs}
    classes = {"hf_class": HFParaphraser, "openai_class": OpenAIParaphraser}
    return make_generator(spec, model=model, **classes, **options)


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


@dataclass(frozen=True)
class ParaphraseResult:
    """One item's outcome: exactly one of ``paraphrase`` and ``rejected`` is set.

    Attributes:
        key: The caller's id of the item.
        text: The source sentence.
        paraphrase: The cleaned, accepted paraphrase, or ``None`` when rejected.
        rejected: Why it was rejected ("empty", "refusal", "copy", "too short", "too long",
            "low similarity"), or ``None``.
    """

    key: str
    text: str
    paraphrase: str | None
    rejected: str | None


def _verdict(
    source: str, raw: str, min_length_ratio: float, max_length_ratio: float
) -> tuple[str | None, str | None]:
    cleaned = clean_output(raw)
    reason = rejection_reason(
        source, cleaned, min_length_ratio=min_length_ratio, max_length_ratio=max_length_ratio
    )
    return (None, reason) if reason else (cleaned, None)


def _similarities(model: Any, sources: list[str], paraphrases: list[str], show_progress: bool) -> list[float]:
    """Cosine similarity of each (source, paraphrase) pair, embedded in batches."""
    options = {"convert_to_tensor": True, "normalize_embeddings": True, "show_progress_bar": show_progress}
    a = model.encode(sources, **options)
    b = model.encode(paraphrases, **options)
    return (a * b).sum(-1).float().cpu().tolist()


def generate_paraphrases(
    texts: Sequence[str],
    paraphraser: Paraphraser,
    checkpoint: str | os.PathLike,
    *,
    keys: Sequence[str] | None = None,
    similarity_model: Any = None,
    min_similarity: float | None = None,
    min_length_ratio: float = 0.5,
    max_length_ratio: float = 2.0,
    show_progress: bool = True,
) -> list[ParaphraseResult]:
    """Paraphrase every text once, resumably: one accepted paraphrase or an explicit rejection per item.

    The checkpoint is a JSONL file. Its first line is a header ``{"format": 1, "paraphraser": name,
    "filters": {...}}`` (the filters of the run that created it, for the record). Every later line is
    one finished item ``{"key", "text", "raw", "paraphrase", "rejected"}``, appended and flushed the
    moment its result arrives and fsynced at least once a second. A rerun skips finished keys (the
    backend is never asked for them again), drops a cut-off or damaged last line (the file is truncated
    back to its last complete line and that item regenerated) and refuses a checkpoint written by
    another paraphraser (unless it holds no items yet) or whose item text changed under the same key.
    Items in the checkpoint whose keys are not among ``keys`` are ignored and kept.

    Filters are re-applied from ``"raw"`` on every run, so changing them costs no generation:
    [clean_output][cardio_st.data.paraphrase.clean_output], then
    [rejection_reason][cardio_st.data.paraphrase.rejection_reason] with the length ratios (the
    verdict written in each line is this one, at the time it was written), then, with a
    ``similarity_model`` and ``min_similarity``, a cosine floor between source and paraphrase
    (``"low similarity"``), computed in one batched pass over all accepted items at the end.

    On Ctrl-C or any error everything already appended stays in the file and the exception propagates;
    rerun the same call to resume. A summary of rejection reasons is logged at the end.

    Args:
        texts: Source sentences.
        paraphraser: The backend ([make_paraphraser][cardio_st.data.paraphrase.make_paraphraser]).
        checkpoint: Path of the JSONL checkpoint (created if missing).
        keys: A unique id per text (default ``"0"``, ``"1"``, ...); resuming matches items by key.
        similarity_model: A SentenceTransformer for the similarity floor.
        min_similarity: Cosine floor; needs ``similarity_model``.
        min_length_ratio: Smallest accepted paraphrase/source word-count ratio.
        max_length_ratio: Largest accepted paraphrase/source word-count ratio.
        show_progress: Show a tqdm bar (total: all items; initial: those already finished).

    Returns:
        One [ParaphraseResult][cardio_st.data.paraphrase.ParaphraseResult] per text, in input order.

    Raises:
        CardioSTError: bad arguments, a checkpoint from another paraphraser or other texts, or a fatal
            backend problem.
    """
    from tqdm.auto import tqdm

    texts = list(texts)
    keys = [str(i) for i in range(len(texts))] if keys is None else [str(k) for k in keys]
    if len(keys) != len(texts):
        raise CardioSTError(f"{len(texts)} texts but {len(keys)} keys: pass one key per text")
    if len(set(keys)) != len(keys):
        duplicate = next(k for k, n in Counter(keys).items() if n > 1)
        raise CardioSTError(f"key {duplicate!r} occurs more than once: give every text a unique key")
    if not 0 <= min_length_ratio <= max_length_ratio:
        raise CardioSTError(
            f"length ratios {min_length_ratio}..{max_length_ratio} are not a range: "
            "use 0 <= min_length_ratio <= max_length_ratio"
        )
    if min_similarity is not None and similarity_model is None:
        raise CardioSTError("min_similarity needs a similarity model: pass one, or leave out min_similarity")
    if not texts:
        return []
    use_similarity = similarity_model is not None and min_similarity is not None
    filters = {
        "min_length_ratio": min_length_ratio,
        "max_length_ratio": max_length_ratio,
        "min_similarity": min_similarity if use_similarity else None,
    }
    path = Path(checkpoint)
    header = {"format": FORMAT_VERSION, "paraphraser": paraphraser.name, "filters": filters}
    store = JsonlCheckpoint(path, header, identity="paraphraser", what="paraphrase")
    finished: dict[str, dict] = {}
    for record in store.records:
        finished.setdefault(record["key"], record)
    raws: list[str | None] = [None] * len(texts)
    try:
        for i, (key, text) in enumerate(zip(keys, texts)):
            record = finished.get(key)
            if record is None:
                continue
            if record.get("text") != text:
                raise CardioSTError(
                    f"{path} has item {key!r} paraphrased from other text ({str(record.get('text'))[:60]!r} "
                    f"vs {text[:60]!r}): the input changed: delete the checkpoint, or write to another one"
                )
            raws[i] = str(record.get("raw") or "")
        ignored = len(finished) - sum(raw is not None for raw in raws)
        if ignored:
            logger.info("%s: %d finished items are not in this input; ignored", path, ignored)
        pending = [i for i, raw in enumerate(raws) if raw is None]
        bar = tqdm(
            total=len(texts),
            initial=len(texts) - len(pending),
            desc="Paraphrasing",
            unit="sentence",
            disable=not show_progress,
            smoothing=0.05,
        )
        with bar:
            if pending:
                stream = paraphraser.stream([texts[i] for i in pending])
                try:
                    for j, raw in stream:
                        i = pending[j]
                        if raws[i] is not None:
                            continue
                        raw = "" if raw is None else str(raw)
                        paraphrase, rejected = _verdict(texts[i], raw, min_length_ratio, max_length_ratio)
                        record = {"key": keys[i], "text": texts[i], "raw": raw}
                        store.append({**record, "paraphrase": paraphrase, "rejected": rejected})
                        raws[i] = raw
                        bar.update(1)
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
        missing = sum(raw is None for raw in raws)
        if missing:
            raise CardioSTError(
                f"{paraphraser.name} returned no output for {missing} texts: rerun to retry them", exit_code=1
            )
    finally:
        store.close()

    verdicts = [
        _verdict(text, raw or "", min_length_ratio, max_length_ratio) for text, raw in zip(texts, raws)
    ]
    if use_similarity:
        accepted = [i for i, (paraphrase, _) in enumerate(verdicts) if paraphrase is not None]
        if accepted:
            scores = _similarities(
                similarity_model,
                [texts[i] for i in accepted],
                [verdicts[i][0] for i in accepted],
                show_progress,
            )
            for i, score in zip(accepted, scores):
                if score < min_similarity:
                    verdicts[i] = (None, "low similarity")
    results = [
        ParaphraseResult(key, text, paraphrase, rejected)
        for key, text, (paraphrase, rejected) in zip(keys, texts, verdicts)
    ]
    reasons = Counter(r.rejected for r in results if r.rejected)
    summary = ", ".join(f"{reason}: {n}" for reason, n in reasons.most_common()) or "none"
    logger.info(
        "paraphrases: %d accepted, %d rejected (%s); %d generated now, %d from %s",
        len(results) - sum(reasons.values()),
        sum(reasons.values()),
        summary,
        len(pending),
        len(texts) - len(pending),
        path,
    )
    if sum(reasons.values()) > len(results) / 2:
        logger.warning(
            "most paraphrases were rejected (%s): check the model, the prompt and the filters", summary
        )
    return results
