"""LLM relevance judges in the style of CMedTEB (arXiv 2604.10937): each judge grades a query's candidate
passages in batches through a strict-JSON prompt; answers are parsed strictly, retried when malformed, and
checkpointed the moment they arrive. Leaves out choosing candidates and voting (cardio_st.labelling.pipeline)
and the prompt and parser themselves (cardio_st.labelling.prompt).

The backends are the generation backends of cardio_st.llm (an OpenAI-compatible server, or a local
transformers LM) with the judge's system prompt: one client for every LLM job cardio-st runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardio_st.data.checkpoint import JsonlCheckpoint
from cardio_st.errors import CardioSTError
from cardio_st.labelling.prompt import (  # noqa: F401 (GRADES ... render_prompt: importable from here too)
    GRADES,
    JUDGE_PROMPT,
    JUDGE_SYSTEM_PROMPT,
    LOW_QUALITY_CAP,
    MalformedAnswer,
    parse_grades,
    prompt_id,
    render_prompt,
)
from cardio_st.llm.base import Unanswered
from cardio_st.llm.factory import make_generator

__all__ = ["Judge", "JudgeRun", "judge_pairs", "make_judge"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class Judge:
    """One LLM judge.

    Attributes:
        name: Identifies the judge in checkpoints, labels and reports (backend, model and server).
        backend: Anything with ``stream(texts) -> (index, raw answer)``: a
            [make_judge][cardio_st.labelling.judges.make_judge] backend or a test double.
    """

    name: str
    backend: Any

    @property
    def slug(self) -> str:
        """A file name for the judge's checkpoint."""
        readable = re.sub(r"[^A-Za-z0-9._-]+", "-", self.name).strip("-")[:60]
        return f"{readable}-{hashlib.sha256(self.name.encode()).hexdigest()[:6]}"


def make_judge(spec: str, *, model: str | None = None, **options: Any) -> Judge:
    """A judge from a command-line spec: ``openai:URL`` (an OpenAI-compatible server; needs ``model``) or
    ``hf:MODEL`` (a local transformers LM). Greedy decoding by default (``temperature=0``).

    Args:
        spec: The backend, as for [make_generator][cardio_st.llm.factory.make_generator].
        model: The model name on an ``openai:`` server.
        **options: Passed to the backend: for ``openai:`` ``concurrency``, ``timeout``, ``max_retries``,
            ``api_key``, ``max_tokens``; for ``hf:`` ``max_new_tokens``, ``batch_size``, ``device`` (the
            others are ignored, so one set of command-line options serves both).
    """
    if (spec or "").strip().lower() == "none":
        raise CardioSTError("a judge needs a model: use openai:URL with `model='NAME'`, or hf:MODEL")
    local = spec.strip().lower().startswith("hf:")
    options = {k: v for k, v in options.items() if v is not None}
    if local:  # a local LM decodes greedily by default; only the generation length and batch apply
        options = {k: v for k, v in options.items() if k in ("max_new_tokens", "batch_size", "device")}
        settings = {"max_new_tokens": 768, **options}
    else:
        settings = {"temperature": 0.0, "max_tokens": 768, **options}
    backend = make_generator(
        spec, model=model, prompt="{text}", system_prompt=JUDGE_SYSTEM_PROMPT, role="judge", **settings
    )
    if local:
        name = f"hf:{backend.model_name_or_path}"
    else:
        name = f"openai:{backend.model}@{urllib.parse.urlparse(backend.base_url).netloc}"
    return Judge(name, backend)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class JudgeRun:
    """What [judge_pairs][cardio_st.labelling.judges.judge_pairs] obtained.

    Attributes:
        grades: ``grades[judge name][(query id, doc id)]``: the judge's grade of that pair.
        unparsed: ``unparsed[judge name][(query id, doc id)]``: the last error of pairs the judge never
            answered validly within ``max_attempts``.
        low_quality: ``(judge name, query id)`` for queries a judge found too vague (grades capped).
        asked: Requests sent in this run, per judge (0 for a finished checkpoint).
        unanswered: ``unanswered[judge name][(query id, doc id)]``: why the backend got no answer at all
            for the pair in this run (a transient failure such as ``content: null``, after its retries;
            not an unparsed answer: it does not count against ``max_attempts`` and a rerun asks again).
    """

    grades: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)
    unparsed: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)
    unanswered: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)
    low_quality: set[tuple[str, str]] = field(default_factory=set)
    asked: dict[str, int] = field(default_factory=dict)


class _JudgeWork:
    """One judge's part: its checkpoint, what it has graded, and the loop that asks for the rest."""

    def __init__(
        self,
        judge: Judge,
        folder: Path,
        queries: Mapping[str, str],
        corpus: Mapping[str, str],
        retry_unparsed: bool = False,
    ):
        self.judge, self.queries, self.corpus = judge, queries, corpus
        header = {
            "format": FORMAT_VERSION,
            "judge": judge.name,
            "prompt": prompt_id(),
            "scale": sorted(GRADES),
        }
        self.store = JsonlCheckpoint(
            folder / f"{judge.slug}.jsonl", header, identity="judge", what="judgement"
        )
        self.grades: dict[tuple[str, str], int] = {}
        self.failures: dict[tuple[str, str], list[str]] = {}
        self.unanswered: dict[tuple[str, str], str] = {}  # this run's transient failures
        self.low: set[str] = set()
        self.asked = 0
        stale = 0
        for record in self.store.records:
            if record.get("transient"):
                continue  # no answer came (content null, ...): asked again, never counted as malformed
            if retry_unparsed and record.get("grades") is None:
                continue  # earlier malformed answers do not count against a fixed judge
            fresh = self._unchanged(record)
            stale += len(record.get("docs") or []) - len(fresh)
            self._take(record, fresh)
        if stale:
            logger.warning(
                "%s: %d grades concern texts that changed since; those pairs are asked again",
                self.store.path,
                stale,
            )

    def _fingerprint(self, query_id: Any, docs: Sequence[Any]) -> tuple[str | None, list[str | None]]:
        query = _digest(self.queries[query_id]) if query_id in self.queries else None
        return query, [_digest(self.corpus[doc]) if doc in self.corpus else None for doc in docs]

    def _unchanged(self, record: dict[str, Any]) -> set[int]:
        """Positions in a record's batch whose query and passage texts are what the judge saw (grades are
        per passage: a changed neighbour does not void them)."""
        query, docs = self._fingerprint(record.get("query"), record.get("docs") or [])
        if query is None or query != record.get("query_sha"):
            return set()
        seen = record.get("doc_sha") or []
        return {
            i for i, digest in enumerate(docs) if digest is not None and i < len(seen) and digest == seen[i]
        }

    def _take(self, record: dict[str, Any], positions: set[int]) -> None:
        query_id, docs = record["query"], record["docs"]
        if record.get("grades") is not None:
            for i, (doc, grade) in enumerate(zip(docs, record["grades"])):
                if i in positions:
                    self.grades[(query_id, doc)] = int(grade)
                    self.failures.pop((query_id, doc), None)
            if record.get("low_quality") and positions:
                self.low.add(query_id)
        else:
            for i, doc in enumerate(docs):
                if i in positions and (query_id, doc) not in self.grades:
                    self.failures.setdefault((query_id, doc), []).append(str(record.get("error")))

    def batches(
        self, pairs: Mapping[str, Sequence[str]], size: int, attempts: int
    ) -> list[tuple[str, list[str]]]:
        todo = []
        for query_id, docs in pairs.items():
            pending = [
                doc
                for doc in docs
                if (query_id, doc) not in self.grades
                and (query_id, doc) not in self.unanswered
                and len(self.failures.get((query_id, doc), [])) < attempts
            ]
            todo += [(query_id, pending[i : i + size]) for i in range(0, len(pending), size)]
        return todo

    def run(
        self, pairs: Mapping[str, Sequence[str]], size: int, attempts: int, stop: threading.Event, bar: Any
    ) -> None:
        while not stop.is_set():
            todo = self.batches(pairs, size, attempts)
            if not todo:
                return
            prompts = [render_prompt(self.queries[q], [self.corpus[d] for d in docs]) for q, docs in todo]
            stream = self.judge.backend.stream(prompts)
            answered: set[int] = set()
            try:
                for index, raw in stream:
                    if stop.is_set():
                        return
                    self.asked += 1
                    answered.add(index)
                    if isinstance(raw, Unanswered):
                        bar.update(self._unanswered(*todo[index], raw.reason, attempts))
                        continue
                    bar.update(self._record(*todo[index], str(raw or ""), attempts))
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            for index in set(range(len(todo))) - answered:  # a backend that skipped some: no endless loop
                bar.update(self._record(*todo[index], "", attempts))

    def _finished(self, pair: tuple[str, str], attempts: int) -> bool:
        return pair in self.grades or pair in self.unanswered or len(self.failures.get(pair, [])) >= attempts

    def _unanswered(self, query_id: str, docs: list[str], reason: str, attempts: int) -> int:
        """Record a batch the backend got no answer for (kept in the file, skipped when resuming, so a
        rerun asks again); not asked again in this run. Returns how many of its pairs it settled."""
        before = sum(self._finished((query_id, doc), attempts) for doc in docs)
        query_sha, doc_sha = self._fingerprint(query_id, docs)
        self.store.append(
            {
                "key": f"{query_id}|{'|'.join(docs)}|unanswered",
                "query": query_id,
                "docs": docs,
                "query_sha": query_sha,
                "doc_sha": doc_sha,
                "raw": None,
                "grades": None,
                "error": reason,
                "transient": True,
            }
        )
        for doc in docs:
            if (query_id, doc) not in self.grades:
                self.unanswered[(query_id, doc)] = reason
        return sum(self._finished((query_id, doc), attempts) for doc in docs) - before

    def _record(self, query_id: str, docs: list[str], raw: str, attempts: int) -> int:
        """Append one answer to the checkpoint; returns how many of its pairs it finished."""
        before = sum(self._finished((query_id, doc), attempts) for doc in docs)
        attempt = 1 + max((len(self.failures.get((query_id, doc), [])) for doc in docs), default=0)
        query_sha, doc_sha = self._fingerprint(query_id, docs)
        record: dict[str, Any] = {
            "key": f"{query_id}|{'|'.join(docs)}|{attempt}",
            "query": query_id,
            "docs": docs,
            "query_sha": query_sha,
            "doc_sha": doc_sha,
            "attempt": attempt,
            "raw": raw,
        }
        try:
            grades, low = parse_grades(raw, len(docs))
            record.update(grades=grades, low_quality=low, error=None)
        except MalformedAnswer as error:
            record.update(grades=None, low_quality=False, error=str(error))
        self.store.append(record)
        self._take(record, set(range(len(docs))))
        return sum(self._finished((query_id, doc), attempts) for doc in docs) - before


def judge_pairs(
    judges: Sequence[Judge],
    pairs: Mapping[str, Sequence[str]],
    queries: Mapping[str, str],
    corpus: Mapping[str, str],
    folder: str | os.PathLike,
    *,
    batch_size: int = 5,
    max_attempts: int = 3,
    retry_unparsed: bool = False,
    show_progress: bool = True,
) -> JudgeRun:
    """Ask every judge to grade every ``(query, passage)`` pair, resumably.

    Each judge gets one checkpoint, ``folder/<judge>.jsonl``: a header, then one line per answer (its
    batch, raw text, parsed grades or the parse error), appended as answers arrive. Judges run at the
    same time, each with its backend's own concurrency. A batch whose answer is malformed is asked
    again, up to ``max_attempts`` answers in all per pair; pairs still without a valid grade are
    reported in ``unparsed``. A batch the backend got no answer for after its own retries (an
    [Unanswered][cardio_st.llm.base.Unanswered]: ``content: null``, no choices) is not a malformed
    answer: it is reported in ``unanswered``, recorded as transient, and asked again by the next run.
    A rerun asks nobody about a pair it already has a grade for (or has asked
    ``max_attempts`` times), unless the query's or passage's text changed since.

    Args:
        judges: The judges ([make_judge][cardio_st.labelling.judges.make_judge]); names must differ.
        pairs: Candidate passage ids per query id, in the order they are shown.
        queries: Query text by id.
        corpus: Passage text by id.
        folder: Where the checkpoints go.
        batch_size: Passages per request.
        max_attempts: Answers asked for per pair before it counts as unparsed.
        retry_unparsed: Forget the malformed answers in the checkpoints (they stay in the file): pairs
            a judge never answered validly get ``max_attempts`` new tries.
        show_progress: A progress bar over judge-pair grades.

    Raises:
        CardioSTError: for repeated judge names, bad sizes, a missing text, or a judge backend failing
            (unreachable, refusing the key); every answer received so far stays in the checkpoints.
    """
    from tqdm.auto import tqdm

    names = [judge.name for judge in judges]
    if not judges or len(set(names)) != len(names):
        raise CardioSTError(f"judges {names}: give at least one judge, each once")
    if batch_size < 1 or max_attempts < 1:
        raise CardioSTError(
            f"batch_size and max_attempts must be at least 1, got {batch_size}, {max_attempts}"
        )
    for query_id, docs in pairs.items():
        if query_id not in queries or any(doc not in corpus for doc in docs):
            raise CardioSTError(f"query {query_id!r} or one of its candidates has no text: check the ids")
    folder = Path(folder)
    works = [_JudgeWork(judge, folder, queries, corpus, retry_unparsed) for judge in judges]
    total = sum(len(docs) for docs in pairs.values()) * len(judges)
    done = sum(
        work._finished((q, d), max_attempts) for work in works for q, docs in pairs.items() for d in docs
    )
    stop = threading.Event()
    errors: list[BaseException] = []
    try:
        with tqdm(total=total, initial=done, desc="Judging", unit="grade", disable=not show_progress) as bar:

            def run(work: _JudgeWork) -> None:
                try:
                    work.run(pairs, batch_size, max_attempts, stop, bar)
                except BaseException as error:  # reported by the main thread
                    errors.append(error)
                    stop.set()

            threads = [threading.Thread(target=run, args=(work,), daemon=True) for work in works]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.5)  # a timed wait keeps Ctrl-C responsive
    except BaseException:
        stop.set()
        raise
    finally:
        for work in works:
            work.store.close()
    if errors:
        error = errors[0]
        if isinstance(error, CardioSTError):
            raise CardioSTError(
                f"{error} -- every answer received so far is saved in {folder}; rerun to resume",
                exit_code=error.exit_code,
            ) from error
        raise error
    run_result = JudgeRun()
    for work in works:
        name = work.judge.name
        wanted = {(q, d) for q, docs in pairs.items() for d in docs}
        run_result.grades[name] = {pair: grade for pair, grade in work.grades.items() if pair in wanted}
        run_result.unparsed[name] = {
            pair: tried[-1]
            for pair, tried in work.failures.items()
            if pair in wanted and pair not in work.grades
        }
        run_result.unanswered[name] = {
            pair: reason
            for pair, reason in work.unanswered.items()
            if pair in wanted and pair not in work.grades
        }
        run_result.low_quality |= {(name, query_id) for query_id in work.low if query_id in pairs}
        run_result.asked[name] = work.asked
    return run_result
