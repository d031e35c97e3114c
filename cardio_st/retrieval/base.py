"""What a retriever is: one small abstract interface that the lexical retrievers and the hybrid fusion
implement, the search result they share, and what an embedding model offers. Leaves out every engine.

A [Retriever][cardio_st.retrieval.base.Retriever] is fitted on a corpus and ranks it for queries:
``fit(corpus)``, ``topk(queries, k)`` (corpus rows and scores), ``search(queries, top_k)``
([Hit][cardio_st.retrieval.base.Hit]s), a ``name`` for results and a ``fingerprint`` of its settings for
caches. An embedding model is not a retriever but an [Encoder][cardio_st.retrieval.base.Encoder]: the
evaluations search its embeddings exactly. The engines live in modules of their own (lexical, fusion),
as PyLate keeps one abstract index in ``pylate/indexes/base.py`` and each engine beside it.

This module imports neither torch nor scipy, so checking what an object is costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from typing_extensions import Self

__all__ = ["Encoder", "Hit", "Retriever"]


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        corpus_id: Row of the corpus embedding matrix.
        score: Cosine similarity (or dot product with ``normalize=False``).
        id: The caller's id of that row (``corpus_ids[corpus_id]``), else the row number.
        text: The caller's text of that row (``corpus_texts[corpus_id]``), else None.
    """

    corpus_id: int
    score: float
    id: Any
    text: str | None = None


@runtime_checkable
class Encoder(Protocol):
    """An embedding model: anything with sentence-transformers' ``encode_query`` and ``encode_document``
    (a ``SentenceTransformer``, or a stand-in in a test)."""

    def encode_query(self, sentences: Any, **kwargs: Any) -> Any: ...

    def encode_document(self, sentences: Any, **kwargs: Any) -> Any: ...


class Retriever(ABC):
    """A ranking of a corpus for queries, fitted on that corpus.

    Subclasses implement ``name``, ``get_config_dict``, ``fit`` and ``topk``; ``search`` and
    ``fingerprint`` follow from them. Any object with ``fit`` and ``topk`` methods counts as a retriever
    for ``isinstance`` (as ``collections.abc.Iterable`` recognises any object with ``__iter__``), so a
    hand-written ranking serves the evaluations without subclassing; it then lacks ``search`` and
    ``fingerprint``, and the evaluations read its ``name`` and ``similarity`` when it has them.

    Attributes:
        similarity: What the scores are (``"cosine"``, ``"bm25"``, ...), recorded in evaluation results.
        corpus: The documents of the last ``fit``, or None before it.

    Examples:
        >>> from cardio_st.retrieval.lexical import BM25Retriever
        >>> retriever = BM25Retriever().fit(["Acute myocardial infarction", "Atrial fibrillation"])
        >>> isinstance(retriever, Retriever), retriever.search("atrial fibrillation", top_k=1)[0][0].id
        (True, 1)
    """

    similarity: str = "score"
    corpus: list[str] | None = None

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        if cls is Retriever:
            return all(callable(getattr(other, method, None)) for method in ("fit", "topk")) or NotImplemented
        return NotImplemented

    @property
    @abstractmethod
    def name(self) -> str:
        """A short name for results and reports, e.g. ``bm25``."""

    @abstractmethod
    def get_config_dict(self) -> dict[str, Any]:
        """The settings the ranking depends on (JSON-ready), behind ``fingerprint``."""

    @abstractmethod
    def fit(self, corpus: Sequence[str]) -> Self:
        """Index ``corpus`` (and keep it as ``self.corpus``); returns the retriever."""

    @abstractmethod
    def topk(self, queries: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` corpus rows of each query: ``(scores, indices)``, both
        ``(n_queries, min(k, n_corpus))``, each row by score descending and, among equal scores, by
        corpus row ascending."""

    @property
    def fingerprint(self) -> str:
        """A stable hash of the retriever's class and settings: equal for two retrievers that rank any
        corpus alike, so a cache of rankings can be keyed by it (the corpus is not part of it)."""
        settings = {"class": type(self).__name__, "config": self.get_config_dict()}
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def search(self, queries: str | Sequence[str], top_k: int = 10) -> list[list[Hit]]:
        """The ``top_k`` best documents of each query as [Hit][cardio_st.retrieval.base.Hit]s:
        ``corpus_id`` and ``id`` the corpus row, ``text`` the document, ``score`` the retriever's score.

        Raises:
            CardioSTError: before ``fit``, or for ``top_k`` below 1 (from ``topk``).
        """
        queries = [queries] if isinstance(queries, str) else list(queries)
        scores, indices = self.topk(queries, top_k)
        corpus = self.corpus
        return [
            [
                Hit(int(row), float(score), int(row), corpus[int(row)] if corpus is not None else None)
                for score, row in zip(row_scores, row_indices)
            ]
            for row_scores, row_indices in zip(scores.tolist(), indices.tolist())
        ]
