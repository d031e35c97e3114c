"""Resumable paraphrase generation for training pairs, with the paraphrase prompt; the output filters
are paraphrase_filters' (re-exported). Leaves out the LLM client (cardio_st.llm) and judging clinical
correctness.

CardioEmbed (arXiv 2511.10930) pairs each textbook sentence with an LLM paraphrase of it. Generating
150k paraphrases takes hours, so [generate_paraphrases][cardio_st.data.paraphrase.generate_paraphrases]
appends every result to a JSONL checkpoint the moment it arrives; a rerun of the same call asks the
backend only for what is missing, and for what got no answer (a transient failure, never a rejection).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardio_st.data.checkpoint import JsonlCheckpoint
from cardio_st.data.paraphrase_filters import clean_output, rejection_reason
from cardio_st.errors import CardioSTError
from cardio_st.llm.base import Generator, Unanswered
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


@dataclass(frozen=True)
class ParaphraseResult:
    """One item's outcome: exactly one of ``paraphrase``, ``rejected`` and ``failed`` is set.

    Attributes:
        key: The caller's id of the item.
        text: The source sentence.
        paraphrase: The cleaned, accepted paraphrase, or ``None``.
        rejected: Why the answer was rejected ("empty", "refusal", "copy", "too short", "too long",
            "low similarity"), or ``None``.
        failed: Why no answer came (a transient failure after the backend's retries, e.g. ``content:
            null``), or ``None``; a rerun asks again for it.
    """

    key: str
    text: str
    paraphrase: str | None
    rejected: str | None
    failed: str | None = None


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
    retry_rejected: bool = False,
    retry_unparsed: bool = False,
    show_progress: bool = True,
) -> list[ParaphraseResult]:
    """Paraphrase every text once, resumably: one accepted paraphrase or an explicit rejection per item.

    The checkpoint is a JSONL file. Its first line is a header ``{"format": 1, "paraphraser": name,
    "filters": {...}}`` (the filters of the run that created it, for the record). Every later line is
    one item ``{"key", "text", "raw", "paraphrase", "rejected"}``, appended and flushed the
    moment its result arrives and fsynced at least once a second; the last line of a key is the one
    that counts. A rerun skips finished keys (the backend is never asked for them again), drops a
    cut-off or damaged last line (the file is truncated back to its last complete line and that item
    regenerated) and refuses a checkpoint written by another paraphraser (unless it holds no items yet)
    or whose item text changed under the same key. Items in the checkpoint whose keys are not among
    ``keys`` are ignored and kept.

    A text the backend got no answer for after its own retries (an
    [Unanswered][cardio_st.llm.base.Unanswered]: ``content: null``, no choices) is written as
    ``{"key", "text", "raw": null, "failed": reason}``: not finished, so every rerun asks again for it,
    and returned with ``failed`` set, never as a rejection. ``retry_unparsed`` and ``retry_rejected`` ask
    again, on this run, for finished items whose answer held no paraphrase at all ("empty": blank, cut
    off while reasoning, or a ``content: null`` that an earlier version recorded so) or was rejected by
    the other cheap filters (refusal, copy, too short, too long); "low similarity" is decided after
    generation and is not asked again.

    Filters are re-applied from ``"raw"`` on every run, so changing them costs no generation:
    [clean_output][cardio_st.data.paraphrase_filters.clean_output], then
    [rejection_reason][cardio_st.data.paraphrase_filters.rejection_reason] with the length ratios (the
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
        retry_rejected: Ask again for finished items whose answer the filters rejected (refusal, copy,
            too short, too long).
        retry_unparsed: Ask again for finished items whose answer held no paraphrase ("empty").
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
        if record.get("failed") is None:  # a transient failure is not finished: asked again
            finished[record["key"]] = record  # the last answer of a key counts (retry_* append more)
    raws: list[str | None] = [None] * len(texts)
    failures: dict[int, str] = {}
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
        if retry_rejected or retry_unparsed:
            for i, raw in enumerate(raws):
                reason = (
                    None if raw is None else _verdict(texts[i], raw, min_length_ratio, max_length_ratio)[1]
                )
                if reason is not None and (retry_unparsed if reason == "empty" else retry_rejected):
                    raws[i] = None
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
                        if raws[i] is not None or i in failures:
                            continue
                        if isinstance(raw, Unanswered):  # transient: recorded, not finished
                            record = {"key": keys[i], "text": texts[i], "raw": None, "paraphrase": None}
                            store.append({**record, "rejected": None, "failed": raw.reason})
                            failures[i] = raw.reason
                            bar.update(1)
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
        missing = sum(raw is None for i, raw in enumerate(raws) if i not in failures)
        if missing:
            raise CardioSTError(
                f"{paraphraser.name} returned no output for {missing} texts: rerun to retry them", exit_code=1
            )
    finally:
        store.close()

    verdicts = [
        (None, None) if i in failures else _verdict(text, raw or "", min_length_ratio, max_length_ratio)
        for i, (text, raw) in enumerate(zip(texts, raws))
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
        ParaphraseResult(key, text, paraphrase, rejected, failures.get(i))
        for i, (key, text, (paraphrase, rejected)) in enumerate(zip(keys, texts, verdicts))
    ]
    reasons = Counter(r.rejected for r in results if r.rejected)
    summary = ", ".join(f"{reason}: {n}" for reason, n in reasons.most_common()) or "none"
    logger.info(
        "paraphrases: %d accepted, %d rejected (%s), %d without an answer; %d generated now, %d from %s",
        len(results) - sum(reasons.values()) - len(failures),
        sum(reasons.values()),
        summary,
        len(failures),
        len(pending),
        len(texts) - len(pending),
        path,
    )
    if failures:
        logger.warning(
            "%d sentences got no answer from %s after its retries (last: %s): they are not rejected; "
            "rerun the same command to ask again for them",
            len(failures),
            paraphraser.name,
            next(iter(failures.values())),
        )
    if sum(reasons.values()) > len(results) / 2:
        logger.warning(
            "most paraphrases were rejected (%s): check the model, the prompt and the filters", summary
        )
    return results
