"""Hybrid retrieval: fuse a dense (embedding) and a lexical (TF-IDF, BM25) ranking of the same corpus.
Leaves out learned fusion, re-ranking models and tuning the weights (choose them on a validation set).

Dense embeddings and character n-grams fail on different queries: an embedding matches a rephrasing in
other words, n-grams match a shared word stem, an eponym or a misspelling that the embedding reads
poorly. Two fusions of their top candidates are offered:
[reciprocal_rank_fusion][cardio_st.retrieval.fusion.reciprocal_rank_fusion] (ranks only, scale-free) and
[normalized_score_fusion][cardio_st.retrieval.fusion.normalized_score_fusion] (min-max normalised scores).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.base import Encoder, Retriever
from cardio_st.retrieval.index import model_fingerprint
from cardio_st.retrieval.lexical import TfidfCharRetriever
from cardio_st.utils.topk import topk as dense_topk

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from typing_extensions import Self

__all__ = ["HybridRetriever", "normalized_score_fusion", "reciprocal_rank_fusion"]


def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise CardioSTError(f"got {len(weights)} weights for {n} rankings: pass one weight per ranking")
    if any(not w >= 0 for w in weights):  # also rejects NaN
        raise CardioSTError(f"weights must be non-negative, got {weights}")
    return weights


def _unique(ranking: Sequence[int], position: int) -> list[int]:
    rows = [int(row) for row in ranking]
    if len(set(rows)) != len(rows):
        raise CardioSTError(f"ranking {position} lists a corpus row twice: pass each row at most once")
    return rows


def _ordered(contributions: dict[int, list[float]]) -> list[tuple[int, float]]:
    # math.fsum is correctly rounded, so equal contributions give equal sums whatever their order;
    # ties then go to the lower corpus row, as everywhere else in cardio-st.
    fused = [(row, math.fsum(parts)) for row, parts in contributions.items()]
    return sorted(fused, key=lambda item: (-item[1], item[0]))


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], *, k: float = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009) of one query's rankings.

    ``score(d) = sum over rankings i that list d of weights[i] / (k + rank_i(d))``, ranks counted from 1.
    A document missing from a ranking gets nothing from it, so a document ranked first by one retriever
    and absent from the other still scores ``weights[i] / (k + 1)``. Only ranks matter: the retrievers'
    scores can be on any scale. A large ``k`` flattens the curve (rank 1 and rank 10 count almost alike);
    ``k = 60`` is the paper's value.

    Args:
        rankings: Per retriever, corpus rows best first (e.g. its top 100).
        k: Rank offset, at least 0.
        weights: One non-negative weight per ranking (default: 1 each, the original RRF).

    Returns:
        ``(corpus row, fused score)`` for every row listed by any ranking, by fused score descending
        and, among equal scores, by corpus row ascending.

    Raises:
        CardioSTError: for a negative ``k``, a weight count that differs from the ranking count, a
            negative weight, or a row listed twice in one ranking.

    Example:
        >>> reciprocal_rank_fusion([[3, 1, 2], [1, 4]], k=1)  # row 1: 1/(1+2) + 1/(1+1)
        [(1, 0.8333333333333333), (3, 0.5), (4, 0.3333333333333333), (2, 0.25)]
    """
    if not k >= 0:
        raise CardioSTError(f"k must be at least 0, got {k}")
    weights = _check_weights(weights, len(rankings))
    contributions: dict[int, list[float]] = {}
    for position, (ranking, weight) in enumerate(zip(rankings, weights)):
        for rank, row in enumerate(_unique(ranking, position), start=1):
            contributions.setdefault(row, []).append(weight / (k + rank))
    return _ordered(contributions)


def normalized_score_fusion(
    rankings: Sequence[Sequence[int]],
    scores: Sequence[Sequence[float]],
    *,
    weights: Sequence[float] | None = None,
) -> list[tuple[int, float]]:
    """Weighted sum of min-max normalised scores (convex combination fusion) of one query's candidates.

    Each retriever's scores are mapped to [0, 1] over *its own candidates*: its best candidate gets 1,
    its worst 0 (all 1 when they are all equal, e.g. a single candidate). Cosines of an embedding model
    and of TF-IDF vectors live on different scales (MiniLM's top cosines crowd near 0.6-0.9, TF-IDF's
    spread lower), so raw sums would let one retriever dominate; after min-max a weight means the same
    for both. The range is taken over the candidates, not the whole corpus, because the corpus
    minimum is an outlier that would squash every candidate near 1. A document missing from a
    retriever's candidates scores 0 there, as its worst candidate does: its true score is at most that.

    ``fused(d) = sum over retrievers i of weights[i] * (s_i(d) - min_i) / (max_i - min_i)``.

    Args:
        rankings: Per retriever, its candidate corpus rows (any order).
        scores: Per retriever, the score of each of its candidates (higher is better), parallel to
            ``rankings``.
        weights: One non-negative weight per retriever (default: 1 each).

    Returns:
        ``(corpus row, fused score)`` for every candidate of any retriever, by fused score descending
        and, among equal scores, by corpus row ascending.

    Raises:
        CardioSTError: for rankings and scores of different lengths, a weight count that differs from
            the retriever count, a negative weight, or a row listed twice by one retriever.

    Example:
        >>> normalized_score_fusion([[0, 1, 2], [2, 3]], [[4.0, 3.0, 2.0], [8.0, 2.0]], weights=[0.75, 0.25])
        [(0, 0.75), (1, 0.375), (2, 0.25), (3, 0.0)]
    """
    if len(rankings) != len(scores):
        raise CardioSTError(
            f"got {len(scores)} score lists for {len(rankings)} rankings: pass one per ranking"
        )
    weights = _check_weights(weights, len(rankings))
    contributions: dict[int, list[float]] = {}
    for position, (ranking, values, weight) in enumerate(zip(rankings, scores, weights)):
        rows = _unique(ranking, position)
        values = [float(v) for v in values]
        if len(values) != len(rows):
            raise CardioSTError(
                f"ranking {position} has {len(rows)} rows but {len(values)} scores: pass one score per row"
            )
        if not rows:
            continue
        low, high = min(values), max(values)
        for row, value in zip(rows, values):
            normalized = (value - low) / (high - low) if high > low else 1.0
            contributions.setdefault(row, []).append(weight * normalized)
    for parts in contributions.values():
        parts.extend([0.0] * (len(rankings) - len(parts)))  # absent from a retriever: 0 there
    return _ordered(contributions)


def _model_label(model: Any) -> str:
    card = getattr(model, "model_card_data", None)
    for value in (getattr(card, "model_id", None), getattr(card, "base_model", None)):
        if value:
            return str(value).rsplit("/", 1)[-1]
    return type(model).__name__


class HybridRetriever(Retriever):
    """Dense embeddings and a lexical retriever, fused: a [Retriever][cardio_st.retrieval.base.Retriever]
    like the lexical ones (``fit(corpus)`` / ``topk(queries, k)`` / ``search``), so
    [evaluate_icd10][cardio_st.evaluation.icd10.evaluate_icd10] takes it unchanged.

    For each query the dense side (``encode_query`` against the ``encode_document`` corpus embeddings,
    exact cosine top-k of [topk][cardio_st.utils.topk.topk]) and the lexical side each propose their top
    ``candidates`` rows; those are fused by reciprocal rank (``method="rrf"``) or by min-max normalised
    score (``method="score"``), the dense side weighted ``weight`` and the lexical side ``1 - weight``.
    Lexical candidates scored 0 (no shared n-gram or word) get nothing from the lexical side: reciprocal
    rank fusion leaves them out (their ranks would only follow corpus order), score fusion normalises
    them to 0 (the candidates' minimum is then 0). A document outside both candidate lists is never
    returned, so ``k`` results come from at most ``2 * candidates`` documents.

    The scores ``topk`` returns are the fused scores -- not cosines: with ``method="rrf"`` at most
    ``1 / (rrf_k + 1)`` (0.0164 at ``rrf_k=60``), with ``method="score"`` between 0 and 1.

    The defaults are textbook RRF. On the validation side of the ICD-10-CM split (all chapters,
    all-MiniLM-L6-v2) score fusion at ``weight=0.6`` ranked better and equal-weight RRF worse than the
    dense model alone; [ICD10Search][cardio_st.retrieval.icd10.ICD10Search] uses the former.

    Args:
        model: The embedding model (a SentenceTransformer; anything with ``encode_query`` and
            ``encode_document`` will do).
        lexical: A lexical retriever with ``fit`` / ``topk`` and non-negative scores, 0 meaning no match
            (default: [TfidfCharRetriever][cardio_st.retrieval.lexical.TfidfCharRetriever] over
            character 3-5-grams).
        method: ``"rrf"`` (reciprocal rank fusion) or ``"score"`` (normalised score fusion).
        weight: Weight of the dense side, in [0, 1]; the lexical side gets ``1 - weight``.
        candidates: Rows each side proposes per query (at least ``k`` of ``topk`` are used).
        rrf_k: The rank offset of reciprocal rank fusion.
        batch_size: Encoding batch size.
        show_progress: Progress bar while embedding the corpus.

    Example:
        >>> from cardio_st.models.default import load_model
        >>> model, _ = load_model("minilm")
        >>> corpus = ["Acute myocardial infarction", "Atrial fibrillation", "Essential hypertension"]
        >>> retriever = HybridRetriever(model).fit(corpus)
        >>> scores, rows = retriever.topk(["atrial fibrilation", "high blood pressure"], k=2)
        >>> rows.tolist()
        [[1, 0], [2, 0]]
        >>> round(float(scores[0, 0]), 4)  # first on both sides: 0.5 / 61 + 0.5 / 61
        0.0164
    """

    def __init__(
        self,
        model: SentenceTransformer,
        lexical: Retriever | None = None,
        *,
        method: Literal["rrf", "score"] = "rrf",
        weight: float = 0.5,
        candidates: int = 100,
        rrf_k: float = 60,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> None:
        if method not in ("rrf", "score"):
            raise CardioSTError(f"unknown fusion method {method!r}: use 'rrf' or 'score'")
        if not 0 <= weight <= 1:
            raise CardioSTError(f"weight (of the dense side) must be in [0, 1], got {weight}")
        if candidates < 1:
            raise CardioSTError(f"candidates must be at least 1, got {candidates}")
        if not rrf_k >= 0:
            raise CardioSTError(f"rrf_k must be at least 0, got {rrf_k}")
        if lexical is None:
            lexical = TfidfCharRetriever((3, 5))
        self.model = model
        self.lexical = lexical
        self.method = method
        self.weight = float(weight)
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._embeddings = None

    @property
    def name(self) -> str:
        """E.g. ``hybrid-rrf(all-MiniLM-L6-v2+tfidf-char-3-5)``, recorded in evaluation results."""
        lexical = getattr(self.lexical, "name", type(self.lexical).__name__)
        return f"hybrid-{self.method}({_model_label(self.model)}+{lexical})"

    @property
    def similarity(self) -> str:
        """What the scores are: ``"rrf"`` or ``"score-fusion"``."""
        return "rrf" if self.method == "rrf" else "score-fusion"

    def get_config_dict(self) -> dict[str, Any]:
        """The settings behind ``fingerprint``: the fusion's, the lexical side's fingerprint and the
        model's identity ([model_fingerprint][cardio_st.retrieval.index.model_fingerprint], a hash of its
        weights, computed on each call; a stand-in without weights is named instead)."""
        lexical = getattr(self.lexical, "fingerprint", None) or getattr(self.lexical, "name", None)
        is_model = isinstance(self.model, Encoder) and callable(getattr(self.model, "state_dict", None))
        return {
            "method": self.method,
            "weight": self.weight,
            "candidates": self.candidates,
            "rrf_k": self.rrf_k,
            "lexical": lexical or type(self.lexical).__name__,
            "model": model_fingerprint(self.model) if is_model else _model_label(self.model),
        }

    def fit(self, corpus: Sequence[str], *, embeddings: Any = None) -> Self:
        """Embed ``corpus`` with ``model.encode_document`` (once) and fit the lexical retriever on it.

        Args:
            corpus: The documents.
            embeddings: Precomputed ``encode_document`` embeddings of ``corpus`` by the same model, one
                row per document (e.g. a cached
                [EmbeddingIndex][cardio_st.retrieval.index.EmbeddingIndex]'s), to skip embedding.

        Raises:
            CardioSTError: for an empty corpus, or embeddings whose row count differs from the corpus.
        """
        corpus = list(corpus)
        if not corpus:
            raise CardioSTError("cannot fit on an empty corpus: pass at least one document")
        if embeddings is None:
            embeddings = self.model.encode_document(
                corpus,
                batch_size=self.batch_size,
                show_progress_bar=self.show_progress,
                convert_to_tensor=True,
            )
        embeddings = torch.as_tensor(np.asarray(embeddings) if isinstance(embeddings, list) else embeddings)
        if embeddings.ndim != 2 or len(embeddings) != len(corpus):
            raise CardioSTError(
                f"embeddings have shape {tuple(embeddings.shape)} for {len(corpus)} documents: "
                "pass one embedding row per document"
            )
        self.lexical.fit(corpus)
        self._embeddings = embeddings.detach().to("cpu", torch.float32)
        self.corpus = corpus
        return self

    def topk(self, queries: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` documents of each query by fused score.

        Returns:
            ``(scores, indices)``, both ``(n_queries, min(k, n_corpus))``; each row ordered by fused score
            descending and, among equal scores, by corpus row ascending. ``scores`` are float64 fused
            scores, not cosines.

        Raises:
            CardioSTError: before ``fit``, or for ``k`` below 1.
        """
        if self._embeddings is None:
            raise CardioSTError("HybridRetriever is not fitted: call fit(corpus) before searching")
        if k < 1:
            raise CardioSTError(f"k must be at least 1, got {k}")
        queries = [queries] if isinstance(queries, str) else list(queries)
        n_corpus = len(self._embeddings)
        width = min(k, n_corpus)
        out_scores = np.zeros((len(queries), width), dtype=np.float64)
        out_indices = np.zeros((len(queries), width), dtype=np.int64)
        if not queries:
            return out_scores, out_indices
        depth = max(self.candidates, k)
        query_embeddings = self.model.encode_query(
            queries, batch_size=self.batch_size, show_progress_bar=False, convert_to_tensor=True
        )
        dense_scores, dense_rows = dense_topk(
            query_embeddings.detach().cpu().float(), self._embeddings, depth
        )
        lexical_scores, lexical_rows = self.lexical.topk(queries, depth)
        weights = [self.weight, 1.0 - self.weight]
        for q in range(len(queries)):
            lexical_row_scores = np.asarray(lexical_scores[q], dtype=np.float64)
            if self.method == "rrf":
                keep = lexical_row_scores > 0
            else:
                # Zero scores make the minimum 0, so they normalise to 0; only all-zero lists (which
                # min-max would lift to 1) are left out.
                keep = np.full(lexical_row_scores.shape, lexical_row_scores.max(initial=0.0) > 0)
            rankings = [dense_rows[q].tolist(), np.asarray(lexical_rows[q])[keep].tolist()]
            if self.method == "rrf":
                fused = reciprocal_rank_fusion(rankings, k=self.rrf_k, weights=weights)
            else:
                scores = [dense_scores[q].tolist(), lexical_row_scores[keep].tolist()]
                fused = normalized_score_fusion(rankings, scores, weights=weights)
            # The dense side alone proposes min(depth, n_corpus) >= width rows, so a row is never short.
            out_indices[q] = [row for row, _ in fused[:width]]
            out_scores[q] = [score for _, score in fused[:width]]
        return out_scores, out_indices
