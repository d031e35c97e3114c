"""Searching an embedding index with a query encoder: the query checks, the hybrid set-up and the search
that ICD-10-CM search and document indexes share. Leaves out where an index comes from (icd10, documents).

[ICD10Search][cardio_st.retrieval.icd10.ICD10Search] and
[IndexSearch][cardio_st.retrieval.documents.IndexSearch] differ only in how they find their index and
their model; once they have both, a query is checked, warned about when the model would truncate it,
and searched exactly (cosine) or by fusion with TF-IDF, here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.expansion import Expansion, QueryExpander
from cardio_st.retrieval.fusion import HybridRetriever

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.retrieval.base import Hit
    from cardio_st.retrieval.index import EmbeddingIndex

__all__ = [
    "HYBRID_METHOD",
    "HYBRID_WEIGHT",
    "IndexQueries",
    "truncated_queries",
    "validate_queries",
    "warn_truncated",
]

logger = logging.getLogger(__name__)

# Fusion behind search(..., hybrid=True), chosen on the validation side of the ICD-10-CM split (all
# chapters, 554 queries): min-max score fusion at dense weight 0.6 had the best exact@1 and mrr@10 of
# RRF and score fusion at dense weights 0.3-0.9; RRF at equal weights was below the dense model alone.
HYBRID_METHOD = "score"
HYBRID_WEIGHT = 0.6


def validate_queries(queries: str | Sequence[str]) -> list[str]:
    """Check queries before any model work: a list of non-empty strings.

    Raises:
        CardioSTError: for an empty list, or an empty or blank query (naming which).
    """
    if isinstance(queries, str):
        queries = [queries]
    queries = list(queries)
    if not queries:
        raise CardioSTError(
            'no query given: pass a clinical phrase, e.g. cardio-st search "chest pain on exertion"'
        )
    for number, query in enumerate(queries, start=1):
        if not isinstance(query, str) or not query.strip():
            which = "the query" if len(queries) == 1 else f"query {number}"
            raise CardioSTError(
                f'{which} is empty: pass a clinical phrase, e.g. cardio-st search "chest pain on exertion"'
            )
    return queries


def truncated_queries(model: SentenceTransformer, queries: Sequence[str]) -> list[tuple[int, int, int]]:
    """Queries longer than ``model`` reads: ``(position, tokens, max_seq_length)`` for each.

    The model reads the first ``max_seq_length`` tokens of such a query and ignores the rest.
    """
    limit = getattr(model, "max_seq_length", None)
    tokenizer = getattr(model, "tokenizer", None)
    if not limit or tokenizer is None:
        return []
    prompt = (model.prompts or {}).get("query", "")
    found = []
    for position, query in enumerate(queries):
        length = len(tokenizer(prompt + query, add_special_tokens=True)["input_ids"])
        if length > limit:
            found.append((position, length, limit))
    return found


def warn_truncated(model: SentenceTransformer, queries: Sequence[str]) -> None:
    """Log a warning for each query longer than ``model`` reads
    ([truncated_queries][cardio_st.retrieval.queries.truncated_queries])."""
    for position, length, limit in truncated_queries(model, queries):
        logger.warning(
            "query %d is %d tokens long; the model reads only the first %d (its max_seq_length) "
            "and ignores the rest",
            position + 1,
            length,
            limit,
        )


class IndexQueries:
    """The search shared by every searcher of an [EmbeddingIndex][cardio_st.retrieval.index.EmbeddingIndex]
    with a query encoder: subclasses set ``model`` (the query encoder), ``batch_size`` and ``index`` (an
    attribute, or a property that loads or builds it on first use, after the queries are checked), and
    ``expander`` (a [QueryExpander][cardio_st.retrieval.expansion.QueryExpander], or None to search the
    queries as typed).
    """

    model: SentenceTransformer
    batch_size: int
    index: EmbeddingIndex
    expander: QueryExpander | None = None
    _hybrid: HybridRetriever | None = None

    def expand(self, queries: str | Sequence[str]) -> list[Expansion]:
        """What each query is searched as: its abbreviations replaced by their readings
        ([QueryExpander][cardio_st.retrieval.expansion.QueryExpander]), or the query itself when expansion
        is off.

        Raises:
            CardioSTError: for an empty list or an empty query.
        """
        queries = validate_queries(queries)
        expander = self.expander
        return expander.expand_all(queries) if expander is not None else [Expansion(q, q) for q in queries]

    def _fitted_hybrid(self) -> HybridRetriever:
        """Score fusion (dense weight 0.6) of the index and TF-IDF over its texts, fitted once and kept."""
        if self._hybrid is None:
            index = self.index
            retriever = HybridRetriever(
                self.model, method=HYBRID_METHOD, weight=HYBRID_WEIGHT, batch_size=self.batch_size
            )
            self._hybrid = retriever.fit(index.texts, embeddings=index.embeddings)
        return self._hybrid

    def _search(
        self,
        queries: str | Sequence[str],
        top_k: int,
        hybrid: bool,
        expansions: list[Expansion] | None = None,
    ) -> list[list[Hit]]:
        """Search the queries, or ``expansions`` of them a caller already made (``expand(queries)``)."""
        queries = validate_queries(queries)
        if top_k < 1:
            raise CardioSTError(f"top_k must be at least 1, got {top_k}")
        expansions = expansions if expansions is not None else self.expand(queries)
        queries = [expansion.text for expansion in expansions]
        warn_truncated(self.model, queries)
        index = self.index
        if hybrid:
            return index.hits(*self.hybrid_retriever.topk(queries, top_k))
        embeddings = self.model.encode_query(
            queries, batch_size=self.batch_size, convert_to_tensor=True, show_progress_bar=False
        )
        return index.search(embeddings, top_k)

    @property
    def hybrid_retriever(self) -> HybridRetriever:
        """The [HybridRetriever][cardio_st.retrieval.fusion.HybridRetriever] behind ``hybrid=True``."""
        return self._fitted_hybrid()
