"""The clinical-shorthand benchmark (``cardio-st evaluate --task shorthand``): abbreviations, lay phrases and
terse clinical terms against every billable code of the scope, with the ICD-10-CM benchmark's metrics
overall and by kind. Leaves out the items and their split (cardio_st.data.shorthand), the ranking
(ranking.py) and the metric arithmetic (codes.py).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cardio_st.data.icd10_codes import load_codes
from cardio_st.data.shorthand import KINDS, load_shorthand
from cardio_st.errors import CardioSTError
from cardio_st.evaluation.codes import character_error_rate, per_query, summarise
from cardio_st.evaluation.ranking import rank_descriptions
from cardio_st.retrieval.icd10 import icd10_expander

if TYPE_CHECKING:
    from cardio_st.data.abbreviations import Lexicon

__all__ = ["ShorthandResult", "evaluate_shorthand"]


@dataclass
class ShorthandResult:
    """What [evaluate_shorthand][cardio_st.evaluation.shorthand.evaluate_shorthand] measured.

    Attributes:
        name: The model or retriever evaluated.
        side: ``"test"`` (reported) or ``"validation"`` (for choices).
        distance: ``"cosine"`` or ``"euclidean"`` for a model; the retriever's own similarity otherwise.
        queries: The query of each item, in file order.
        kinds: The kind of each item.
        codes: The accepted codes of each item.
        retrieved: The top-10 retrieved codes of each query, best first.
        metrics: Over all items: ``exact@1`` (top-1 is an accepted code), ``category@1`` (top-1 shares
            the category of an accepted code), ``recall@5`` / ``recall@10``, ``mrr@10`` (by the
            best-ranked accepted code), ``cer`` (character error rate of the top-1 description against
            the nearest accepted description; lower is better).
        intervals: Bootstrap 95% interval of each metric, resampling concepts (the items of one first
            accepted code go together: "afib" and "atrial fibrillation" are not independent); empty
            with ``bootstrap=0``.
        by_kind: The same metrics for each kind (``abbreviation``, ``lay``, ``terse``).
        by_kind_intervals: Their intervals.
        counts: Items of each kind; they add up to ``len(queries)``.
        seconds: Wall-clock time of fitting or encoding, and searching.
        cer_values: Character error rate of each query.
        bootstrap: Resamples behind the intervals.
        seed: Seed of the resampling.
        expanded: Whether abbreviations were expanded before searching.
        searched: What each query was searched as (the query itself without expansion).
    """

    name: str
    side: str
    distance: str
    queries: list[str]
    kinds: list[str]
    codes: list[list[str]]
    retrieved: list[list[str]]
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    by_kind: dict[str, dict[str, float]]
    by_kind_intervals: dict[str, dict[str, tuple[float, float]]]
    counts: dict[str, int]
    seconds: float
    cer_values: list[float] = field(default_factory=list, repr=False)
    bootstrap: int = 1000
    seed: int = 0
    expanded: bool = False
    searched: list[str] = field(default_factory=list)

    def per_query(self, metric: str) -> np.ndarray:
        """Per-query values of ``metric``, in item order (their mean is ``metrics[metric]``)."""
        return per_query(self.codes, self.retrieved, self.cer_values, metric)

    def flat_metrics(self) -> dict[str, float]:
        """Overall metrics, each kind's ``exact@1``, then the rest of each kind's as ``"{kind}:{metric}"``:
        one flat dict for a report (whose tables show the first few)."""
        flat = dict(self.metrics)
        flat.update({f"{kind}:exact@1": metrics["exact@1"] for kind, metrics in self.by_kind.items()})
        for kind, metrics in self.by_kind.items():
            flat.update({f"{kind}:{metric}": value for metric, value in metrics.items()})
        return flat

    def flat_intervals(self) -> dict[str, list[float]]:
        """The intervals of [flat_metrics][cardio_st.evaluation.shorthand.ShorthandResult.flat_metrics]."""
        flat = {metric: list(interval) for metric, interval in self.intervals.items()}
        for kind, intervals in self.by_kind_intervals.items():
            flat.update({f"{kind}:{metric}": list(interval) for metric, interval in intervals.items()})
        return flat

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (intervals as ``[low, high]`` lists)."""
        data = asdict(self)
        data["intervals"] = {metric: list(interval) for metric, interval in self.intervals.items()}
        data["by_kind_intervals"] = {
            kind: {metric: list(interval) for metric, interval in intervals.items()}
            for kind, intervals in self.by_kind_intervals.items()
        }
        return data


def evaluate_shorthand(
    retriever_or_model: Any,
    *,
    side: Literal["test", "validation"] = "test",
    scope: str = "cardio",
    name: str | None = None,
    distance: Literal["cosine", "euclidean"] = "cosine",
    batch_size: int = 64,
    bootstrap: int = 1000,
    seed: int = 0,
    show_progress: bool = False,
    expand: bool = False,
    lexicon: Lexicon | str | os.PathLike | None = None,
) -> ShorthandResult:
    """Run the clinical-shorthand benchmark on one side of its fixed split.

    Every item's query is searched against the descriptions of all billable codes of ``scope`` (1,427
    for the circulatory chapter), as the ICD-10-CM benchmark does, and ranked exactly as
    [evaluate_icd10][cardio_st.evaluation.icd10.evaluate_icd10] ranks (same encoders, distance and
    ties-by-row rule). Unlike it, an item may accept several codes, and a model's card data is left
    alone.

    Args:
        retriever_or_model: A SentenceTransformer, a model name, folder or Hub id, or a lexical
            retriever (``fit(corpus)`` and ``topk(queries, k)``).
        side: ``"test"`` (reported, never tuned on) or ``"validation"`` (for every choice).
        scope: The items' scope; ``"cardio"`` is the one shipped.
        name: Name recorded in the result.
        distance: ``"cosine"`` or ``"euclidean"`` (models only).
        batch_size: Encoding batch size.
        bootstrap: Resamples for the 95% intervals (0 to skip them).
        seed: Seed of the resampling.
        show_progress: Progress bars while encoding.
        expand: Replace abbreviations first, as ``cardio-st search`` does
            ([icd10_expander][cardio_st.retrieval.icd10.icd10_expander], ambiguous ones by the scope).
        lexicon: The lexicon, or a user lexicon file, for ``expand=True``.

    Raises:
        CardioSTError: for a side other than test or validation, a negative ``bootstrap``, or what
            [rank_descriptions][cardio_st.evaluation.ranking.rank_descriptions] rejects.

    Example:
        >>> from cardio_st.retrieval.lexical import TfidfCharRetriever
        >>> result = evaluate_shorthand(TfidfCharRetriever(), side="validation", bootstrap=0)
        >>> sorted(result.by_kind), sum(result.counts.values()) == len(result.queries)
        (['abbreviation', 'lay', 'terse'], True)
    """
    if side not in ("test", "validation"):
        raise CardioSTError(f"unknown side {side!r}: pass `side='test'` or `side='validation'`")
    if bootstrap < 0:
        raise CardioSTError(f"pass `bootstrap=0` (no intervals) or a number of resamples, not {bootstrap}")
    items = load_shorthand(side, scope=scope)
    corpus = load_codes(scope, billable_only=True)
    corpus_codes, descriptions = [c.code for c in corpus], [c.description for c in corpus]
    description_of = dict(zip(corpus_codes, descriptions))
    unknown = sorted({code for item in items for code in item.codes} - set(description_of))
    if unknown:
        raise CardioSTError(
            f"accepted codes {', '.join(unknown)} are not billable codes of scope {scope!r} in this "
            "ICD-10-CM release: the shorthand items need the release they were written for",
            exit_code=1,
        )
    ranking = rank_descriptions(
        retriever_or_model,
        [item.query for item in items],
        descriptions,
        name=name,
        distance=distance,
        batch_size=batch_size,
        show_progress=show_progress,
        expander=icd10_expander(scope, lexicon) if expand else None,
    )
    retrieved = [[corpus_codes[int(i)] for i in row] for row in ranking.indices]
    codes = [list(item.codes) for item in items]
    cer_values = [
        min(character_error_rate(description_of[top[0]], description_of[code]) for code in accepted)
        if top
        else 1.0
        for accepted, top in zip(codes, retrieved)
    ]
    concepts = [item.codes[0] for item in items]
    metrics, intervals = summarise(
        codes, retrieved, cer_values, bootstrap=bootstrap, seed=seed, groups=concepts
    )
    by_kind, by_kind_intervals, counts = {}, {}, {}
    for kind in KINDS:
        rows = [i for i, item in enumerate(items) if item.kind == kind]
        counts[kind] = len(rows)
        by_kind[kind], by_kind_intervals[kind] = summarise(
            [codes[i] for i in rows],
            [retrieved[i] for i in rows],
            [cer_values[i] for i in rows],
            bootstrap=bootstrap,
            seed=seed,
            groups=[concepts[i] for i in rows],
        )
    return ShorthandResult(
        name=ranking.name,
        side=side,
        distance=ranking.distance,
        queries=[item.query for item in items],
        kinds=[item.kind for item in items],
        codes=codes,
        retrieved=retrieved,
        metrics=metrics,
        intervals=intervals,
        by_kind=by_kind,
        by_kind_intervals=by_kind_intervals,
        counts=counts,
        seconds=ranking.seconds,
        cer_values=cer_values,
        bootstrap=bootstrap,
        seed=seed,
        expanded=expand,
        searched=ranking.searched,
    )
