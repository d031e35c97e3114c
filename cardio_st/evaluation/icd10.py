"""The ICD-10-CM rephrasing benchmark of arXiv 2401.01943: exact-code, category, rank and character-error
metrics with code-level bootstrap intervals. Leaves out building the query set (cardio_st.data.icd10)
and the metric arithmetic ([codes][cardio_st.evaluation.codes]).

Queries and corpus come from [icd10_eval_set][cardio_st.data.icd10.icd10_eval_set]: each alternative
term of a held-out billable code, searched against every billable code of the scope.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sentence_transformers.base.evaluation import BaseEvaluator

from cardio_st.compat import forget_loaded_card
from cardio_st.data.icd10 import icd10_eval_set
from cardio_st.errors import CardioSTError
from cardio_st.evaluation.codes import (  # METRICS and TOP_K stay importable from here, their old home
    METRICS,  # noqa: F401
    bootstrap_means,
    character_error_rate,
    code_resamples,
    per_query,
    percentile_interval,
    summarise,
)
from cardio_st.evaluation.ranking import TOP_K, rank_descriptions  # noqa: F401
from cardio_st.retrieval.icd10 import icd10_expander

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.data.abbreviations import Lexicon
    from cardio_st.evaluation.shorthand import ShorthandResult

__all__ = ["ICD10Evaluator", "ICD10Result", "evaluate_icd10", "paired_bootstrap"]


@dataclass
class ICD10Result:
    """What [evaluate_icd10][cardio_st.evaluation.icd10.evaluate_icd10] measured.

    Attributes:
        name: The model or retriever evaluated.
        scope: The ICD-10-CM scope (``"cardio"``, ``"all"``, ...).
        distance: ``"cosine"`` or ``"euclidean"`` for a model; the retriever's own similarity
            (``"cosine"`` for TF-IDF, ``"bm25"``) for a lexical retriever.
        codes: The true code of each query.
        retrieved: The top-10 retrieved codes of each query, best first.
        metrics: ``exact@1`` (top-1 is the true code), ``category@1`` (top-1 shares its 3-character
            category), ``recall@5`` / ``recall@10`` (true code in the top 5 / 10), ``mrr@10`` (1 / rank
            of the true code, 0 beyond 10), ``cer`` (mean character error rate of the top-1
            description against the true description, 0 = identical; lower is better).
        intervals: Bootstrap 95% percentile interval of each metric, resampling codes (all queries of
            a drawn code go together, since one code's rephrasings are not independent); empty when
            evaluated with ``bootstrap=0``.
        seconds: Wall-clock time of fitting or encoding, and searching.
        cer_values: Character error rate of each query (the one per-query value that the codes alone
            do not determine).
        bootstrap: Resamples behind ``intervals``.
        seed: Seed of the resampling.
        side: ``"test"`` (held out) or ``"validation"``.
        expanded: Whether abbreviations in the queries were expanded first.
    """

    name: str
    scope: str
    distance: str
    codes: list[str]
    retrieved: list[list[str]]
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    seconds: float
    cer_values: list[float] = field(default_factory=list, repr=False)
    bootstrap: int = 1000
    seed: int = 0
    side: str = "test"
    expanded: bool = False

    def per_query(self, metric: str) -> np.ndarray:
        """Per-query values of ``metric`` (one of ``METRICS``), in query order: their mean is
        ``metrics[metric]``. For paired comparisons of two results on the same queries."""
        return per_query(self.codes, self.retrieved, self.cer_values, metric)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (intervals as ``[low, high]`` lists)."""
        data = asdict(self)
        data["intervals"] = {metric: list(interval) for metric, interval in self.intervals.items()}
        return data


def evaluate_icd10(
    retriever_or_model: Any,
    scope: str = "cardio",
    *,
    name: str | None = None,
    distance: Literal["cosine", "euclidean"] = "cosine",
    batch_size: int = 64,
    bootstrap: int = 1000,
    seed: int = 0,
    show_progress: bool = False,
    side: Literal["test", "validation"] = "test",
    validation_fraction: float = 0.1,
    expand: bool = False,
    lexicon: Lexicon | str | os.PathLike | None = None,
) -> ICD10Result:
    """Run the ICD-10-CM rephrasing benchmark on the held-out side of the fixed split.

    A SentenceTransformer embeds the queries with ``encode_query`` and the descriptions with
    ``encode_document`` (the corpus once per call, in batches). ``distance="cosine"`` ranks by cosine
    similarity; ``"euclidean"`` by the smallest L2 distance between the embeddings *as the model outputs
    them*, as arXiv 2401.01943 did -- unnormalised, unless the model ends with a ``Normalize`` module
    (all-MiniLM-L6-v2 does), in which case the ranking equals cosine's up to rounding. A lexical
    retriever (a [Retriever][cardio_st.retrieval.base.Retriever]: any object with ``fit(corpus)`` and
    ``topk(queries, k)``, e.g. [TfidfCharRetriever][cardio_st.retrieval.lexical.TfidfCharRetriever]) is
    fitted on the corpus descriptions and ranks by its own score.

    Should two billable codes share a description (none do in the April 2026 release), exact match
    is still judged on codes, so retrieving that same description under another
    code counts as wrong for ``exact@1`` and ranks, while its character error rate is 0. Ties in
    score are broken by corpus row (tabular-list order), so results are reproducible.

    Args:
        retriever_or_model: A SentenceTransformer, a model name, folder or Hub id (loaded with
            [load_model][cardio_st.models.loader.load_model]), or a lexical retriever.
        scope: ``"cardio"`` (circulatory chapter: 152 queries over 1,427 codes), ``"all"`` (3,224
            queries over 74,714 codes) or a chapter.
        name: Name recorded in the result (default: the model's folder or id, or the retriever's name).
        distance: ``"cosine"`` or ``"euclidean"`` (models only).
        batch_size: Encoding batch size.
        bootstrap: Resamples for the 95% intervals (0 to skip them).
        seed: Seed of the resampling.
        show_progress: Progress bars while encoding.
        side: ``"test"`` (the held-out side, for reporting) or ``"validation"`` (train-side validation
            categories against train-side codes, for choosing hyperparameters; see
            [icd10_eval_set][cardio_st.data.icd10.icd10_eval_set]).
        validation_fraction: With ``side="validation"``, the share of train-side categories held
            back -- the ``validation_fraction`` the model's training pairs were built with
            ([icd10_pairs][cardio_st.data.icd10.icd10_pairs]).
        expand: Replace abbreviations in the queries first, as ``cardio-st search`` does
            ([icd10_expander][cardio_st.retrieval.icd10.icd10_expander]); off by default, so the model
            is measured on the queries as written.
        lexicon: The lexicon, or a user lexicon file, for ``expand=True``.

    Returns:
        An [ICD10Result][cardio_st.evaluation.icd10.ICD10Result]. A model's metrics are also recorded in
        its model card data (``model.model_card_data``), so the next ``model.save`` or ``push_to_hub``
        writes them into the card's table and ``model-index`` metadata.

    Raises:
        CardioSTError: for an unknown distance, euclidean with a lexical retriever, or something that
            is neither a model nor a retriever.

    Example:
        >>> from cardio_st.retrieval.lexical import TfidfCharRetriever
        >>> result = evaluate_icd10(TfidfCharRetriever(), "cardio")
        >>> sorted(result.metrics)
        ['category@1', 'cer', 'exact@1', 'mrr@10', 'recall@10', 'recall@5']
    """
    if bootstrap < 0:
        raise CardioSTError(f"bootstrap must be 0 (no intervals) or a number of resamples, got {bootstrap}")
    if distance not in ("cosine", "euclidean"):
        raise CardioSTError(f"unknown distance {distance!r}: use 'cosine' or 'euclidean'")
    evaluation = icd10_eval_set(scope, side=side, validation_fraction=validation_fraction)
    queries, corpus = evaluation["queries"], evaluation["corpus"]
    query_texts, codes = list(queries["query"]), list(queries["code"])
    corpus_codes, descriptions = list(corpus["code"]), list(corpus["description"])
    ranking = rank_descriptions(
        retriever_or_model,
        query_texts,
        descriptions,
        name=name,
        distance=distance,
        batch_size=batch_size,
        show_progress=show_progress,
        expander=icd10_expander(scope, lexicon) if expand else None,
    )
    name, distance, seconds = ranking.name, ranking.distance, ranking.seconds
    retriever_or_model = ranking.model  # loaded, when a name was given

    retrieved = [[corpus_codes[int(i)] for i in row] for row in ranking.indices]
    description_of = dict(zip(corpus_codes, descriptions))
    cer_values = [
        character_error_rate(description_of[top[0]], description_of[code]) if top else 1.0
        for code, top in zip(codes, retrieved)
    ]
    metrics, intervals = summarise(codes, retrieved, cer_values, bootstrap=bootstrap, seed=seed)
    result = ICD10Result(
        name=name,
        scope=scope,
        distance=distance,
        codes=codes,
        retrieved=retrieved,
        metrics=metrics,
        intervals=intervals,
        seconds=seconds,
        cer_values=cer_values,
        bootstrap=bootstrap,
        seed=seed,
        side=side,
        expanded=expand,
    )
    if hasattr(retriever_or_model, "model_card_data") and not expand:
        ICD10Evaluator(scope, distance=distance, side=side).record(retriever_or_model, result.metrics)
    return result


def paired_bootstrap(
    a: ICD10Result | ShorthandResult,
    b: ICD10Result | ShorthandResult,
    metric: str = "exact@1",
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """How much better ``b`` is than ``a`` on ``metric``, with a paired bootstrap 95% interval.

    Both results must come from the same queries (same scope and side; for the shorthand benchmark,
    [ShorthandResult][cardio_st.evaluation.shorthand.ShorthandResult]s of the same side). Each resample
    draws codes (for shorthand, first accepted codes: concepts) with replacement -- the same draws for
    both results -- and takes the mean per-query difference over the drawn codes' queries. An interval
    that excludes 0 means the difference is unlikely to be noise.
    For ``cer`` a negative difference means ``b`` is better.

    Returns:
        ``{"difference": mean(b - a), "low": ..., "high": ...}``.

    Raises:
        CardioSTError: when the results cover different queries.
    """
    if a.codes != b.codes or a.side != b.side:
        raise CardioSTError(
            f"cannot pair results over different queries ({a.name}: {len(a.codes)} on the {a.side} side, "
            f"{b.name}: {len(b.codes)} on the {b.side} side): evaluate both on the same scope and side"
        )
    if resamples < 1:
        raise CardioSTError(f"resamples must be at least 1, got {resamples}")
    differences = b.per_query(metric) - a.per_query(metric)
    if not differences.size:
        return {"difference": 0.0, "low": 0.0, "high": 0.0}
    units = [code if isinstance(code, str) else code[0] for code in a.codes]  # shorthand: first accepted
    groups, draws = code_resamples(units, resamples, seed)
    low, high = percentile_interval(bootstrap_means(differences, groups, draws))
    return {"difference": float(differences.mean()), "low": low, "high": high}


class ICD10Evaluator(BaseEvaluator):
    """The ICD-10-CM rephrasing benchmark as a sentence-transformers evaluator.

    Pass it to ``SentenceTransformerTrainer(evaluator=...)`` to score a model during training (use
    ``side="validation"`` there, so checkpoints are chosen without the held-out side), or call it on
    a model. Either way the metrics (``icd10-cardio_exact@1``, ...) land in
    the model's card data, so a saved or pushed model carries them in its model card and
    ``model-index`` metadata. Intervals are skipped here (``bootstrap=0``): call
    [evaluate_icd10][cardio_st.evaluation.icd10.evaluate_icd10] for them.

    Args:
        scope: ``"cardio"``, ``"all"`` or a chapter.
        distance: ``"cosine"`` or ``"euclidean"``.
        batch_size: Encoding batch size.
        side: ``"test"`` (held out) or ``"validation"``.
        name: Metric prefix (default ``"icd10-{scope}"``, with ``"-validation"`` for that side).

    Example:
        >>> from cardio_st.evaluation.icd10 import ICD10Evaluator
        >>> evaluator = ICD10Evaluator("cardio")
        >>> evaluator.primary_metric
        'exact@1'
    """

    def __init__(
        self,
        scope: str = "cardio",
        *,
        distance: str = "cosine",
        batch_size: int = 64,
        side: Literal["test", "validation"] = "test",
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.scope = scope
        self.distance = distance
        self.batch_size = batch_size
        self.side = side
        self.name = name or f"icd10-{scope}" + ("-validation" if side == "validation" else "")
        self.primary_metric = "exact@1"
        self.greater_is_better = True

    @property
    def description(self) -> str:
        return "ICD-10-CM Rephrasing Retrieval"

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        result = evaluate_icd10(
            model, self.scope, distance=self.distance, batch_size=self.batch_size, bootstrap=0, side=self.side
        )
        return self.record(model, result.metrics, epoch, steps)

    def record(
        self, model: SentenceTransformer, metrics: dict[str, float], epoch: int = 0, steps: int = 0
    ) -> dict[str, float]:
        """Store ``metrics`` (unprefixed, e.g. ``{"exact@1": 0.5}``) in ``model``'s card data, replacing
        earlier ones of the same scope, side and distance; returns them prefixed with the evaluator's
        name."""
        metrics = self.prefix_name_to_metrics(dict(metrics), self.name)
        card = model.model_card_data
        same = (self.scope, self.side, self.distance)
        for earlier in [e for e in card.eval_results_dict if isinstance(e, ICD10Evaluator)]:
            if (earlier.scope, earlier.side, earlier.distance) == same:
                del card.eval_results_dict[earlier]
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        # A model loaded from a folder re-saves that folder's README unless it was trained; the card
        # must be generated afresh to show these results.
        forget_loaded_card(model)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "side": self.side, "distance": self.distance}
