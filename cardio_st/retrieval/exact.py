"""Exact top-k search over embeddings: a chunked torch matmul with ties broken by corpus position.
Leaves out approximate indexes (HNSW, IVF): exact search is fast enough below about a million vectors.

Results equal sentence-transformers' ``util.semantic_search`` (cosine) on the same embeddings; where
scores tie, the earlier corpus entry ranks first, whatever the chunk sizes or backend, so a ranking
never changes between runs or machines. A NaN or infinite vector is an error naming its row, never a
hit: NaN compares as the largest score and would rank first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from cardio_st.retrieval.base import Hit
from cardio_st.utils.topk import topk

__all__ = ["Hit", "semantic_search", "topk"]


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    *,
    corpus_ids: Sequence[Any] | None = None,
    corpus_texts: Sequence[str] | None = None,
    normalize: bool = True,
    backend: Literal["torch", "faiss"] = "torch",
    query_chunk_size: int = 256,
    corpus_chunk_size: int = 16_384,
) -> list[list[Hit]]:
    """Exact nearest neighbours of each query, with the caller's ids and texts attached.

    Args:
        query_embeddings: ``(n_queries, dim)`` tensor or array.
        corpus_embeddings: ``(n_corpus, dim)`` tensor or array.
        top_k: Results per query.
        corpus_ids: Optional id of each corpus row (e.g. ICD-10-CM codes).
        corpus_texts: Optional text of each corpus row.
        normalize: Cosine similarity (True) or raw dot product (False).
        backend: ``"torch"`` (default; exact, deterministic ties, fastest on CPU below ~1M vectors) or
            ``"faiss"`` (exact ``IndexFlatIP``; needs the ``faiss`` extra; which of several vectors tied
            at the k-th place is returned is faiss's choice).
        query_chunk_size: Queries scored at once (torch backend).
        corpus_chunk_size: Corpus rows scored at once (torch backend).

    Returns:
        One list of [Hit][cardio_st.retrieval.base.Hit] per query, best first; every score finite.

    Raises:
        CardioSTError: for a NaN or infinite query or corpus embedding, naming its row.

    Examples:
        >>> import torch
        >>> corpus = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> hits = semantic_search(torch.tensor([[1.0, 0.1]]), corpus, top_k=2, corpus_ids=["a", "b", "c"])
        >>> [hit.id for hit in hits[0]]
        ['a', 'c']
    """
    n_corpus = len(corpus_embeddings)
    for name, values in (("corpus_ids", corpus_ids), ("corpus_texts", corpus_texts)):
        if values is not None and len(values) != n_corpus:
            raise ValueError(f"{name} has {len(values)} entries for {n_corpus} corpus embeddings")
    scores, indices = topk(
        query_embeddings,
        corpus_embeddings,
        top_k,
        normalize=normalize,
        backend=backend,
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
    )
    results = []
    for row_scores, row_indices in zip(scores.tolist(), indices.tolist()):
        results.append(
            [
                Hit(
                    corpus_id=index,
                    score=score,
                    id=corpus_ids[index] if corpus_ids is not None else index,
                    text=corpus_texts[index] if corpus_texts is not None else None,
                )
                for score, index in zip(row_scores, row_indices)
            ]
        )
    return results
