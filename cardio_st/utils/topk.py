"""Exact, tie-ordered top-k over embedding matrices: a chunked torch matmul with candidates rescored
in float64. Leaves out ids, texts and indexes (cardio_st.retrieval builds on this kernel).

The kernel sits in utils, below every layer, because building training data (hard-negative mining)
needs it as much as search does, as sentence-transformers keeps ``semantic_search`` and
``mine_hard_negatives`` in its ``util`` package.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from cardio_st.errors import CardioSTError

__all__ = ["topk"]


def _as_matrix(embeddings: Any, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(embeddings) if isinstance(embeddings, list) else embeddings)
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be a 2-d matrix (n, dim), got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must hold floating-point embeddings, got {tensor.dtype}")
    return tensor


def _ordered_topk(scores: torch.Tensor, k: int, columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of ``scores`` ordered by (score descending, column ascending).

    ``columns[i, j]`` is the corpus row that ``scores[i, j]`` belongs to (broadcastable), so ties are
    broken by corpus row even when ``scores`` holds a subset of candidates.
    """
    columns = columns.expand_as(scores)
    by_column = torch.sort(columns, dim=1)
    column_scores = scores.gather(1, by_column.indices)
    # A stable sort by score of the column-ordered row keeps the lower column first on ties; cutting
    # at k after it keeps the lowest columns of a tie at the k-th place too.
    order = torch.sort(column_scores, dim=1, descending=True, stable=True).indices[:, :k]
    return column_scores.gather(1, order), by_column.values.gather(1, order)


_CANDIDATE_PAD = 8


def _exact_scores(queries: torch.Tensor, corpus: torch.Tensor) -> torch.Tensor:
    # Products of float32 values are exact in float64 and the sum's rounding error (~1e-16) is far
    # below float32 resolution, so the result is the correctly rounded float32 of the exact dot
    # product: identical vectors tie exactly, and chunk sizes or BLAS code paths cannot change a
    # ranking (a float32 matmul differs by ~1e-7 between a matrix of queries and a single query).
    return (queries.double() @ corpus.double().T).to(torch.float32)


def _not_finite(queries: torch.Tensor, corpus: torch.Tensor, q_offset: int, c_offset: int) -> CardioSTError:
    """The error for a score that is NaN or infinite, naming the first row at fault."""
    for name, matrix, offset in (
        ("query_embeddings", queries, q_offset),
        ("corpus_embeddings", corpus, c_offset),
    ):
        bad = torch.nonzero(~torch.isfinite(matrix).all(dim=1)).flatten()
        if len(bad):
            return CardioSTError(
                f"{name} row {int(bad[0]) + offset} is NaN or infinite: such a vector cannot be ranked "
                "(NaN would rank first); re-embed it, or rebuild the index it came from",
                exit_code=1,
            )
    return CardioSTError(
        "a similarity score overflowed to infinity: scale the embeddings down, or pass `normalize=True`",
        exit_code=1,
    )


def _chunk_topk(
    queries: torch.Tensor, corpus: torch.Tensor, k: int, q_offset: int = 0, c_offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact, tie-ordered top-k of one query chunk against one corpus chunk.

    A float32 matmul finds ``k + pad`` candidates; they are rescored exactly. A row whose candidates
    might miss a true top-k entry (the float32 error bound exceeds the gap below the k-th score,
    e.g. many duplicates) is scored exactly against the whole chunk instead. A score that is not
    finite is an error, never a result: checking the score matrix costs one sum over it, ``1/dim`` of
    the matmul.
    """
    approx = queries @ corpus.T
    # One sum is non-finite if any score is (then, or if the sum of huge scores overflowed, look closer).
    if not math.isfinite(float(approx.sum())) and not bool(torch.isfinite(approx).all()):
        raise _not_finite(queries, corpus, q_offset, c_offset)
    m = min(k + _CANDIDATE_PAD, corpus.shape[0])
    values, candidates = torch.topk(approx, m, dim=1)
    # Rigorous bound on |float32 dot - exact dot| for unit vectors of dimension d: gamma_d = d*u/(1-d*u).
    d, u = queries.shape[1], 2.0**-24
    delta = d * u / (1 - d * u)
    scale = queries.norm(dim=1, keepdim=True) * corpus.norm(dim=1).max()
    safe = (values[:, m - 1 : m] < values[:, k - 1 : k] - 2 * delta * scale).squeeze(1)
    if m == corpus.shape[0]:
        safe[:] = True
    exact = torch.empty_like(values)
    queries64 = queries.double()
    for j in range(m):
        exact[:, j] = (queries64 * corpus[candidates[:, j]].double()).sum(dim=1).to(torch.float32)
    out_values, out_indices = _ordered_topk(exact, k, candidates)
    for row in torch.nonzero(~safe, as_tuple=True)[0].tolist():
        row_scores = _exact_scores(queries[row : row + 1], corpus)
        columns = torch.arange(corpus.shape[0], device=corpus.device).unsqueeze(0)
        out_values[row], out_indices[row] = (t[0] for t in _ordered_topk(row_scores, k, columns))
    return out_values, out_indices


def topk(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    *,
    normalize: bool = True,
    backend: Literal["torch", "faiss"] = "torch",
    query_chunk_size: int = 256,
    corpus_chunk_size: int = 16_384,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k scores and corpus rows for each query.

    Memory stays bounded by ``query_chunk_size x corpus_chunk_size`` scores, whatever the corpus size.
    Scores are computed in float64 and rounded to float32, so they are reproducible to the last bit
    and ties between identical vectors are exact.

    Args:
        query_embeddings: ``(n_queries, dim)`` tensor or array (a single vector is one query).
        corpus_embeddings: ``(n_corpus, dim)`` tensor or array.
        top_k: Results per query (fewer if the corpus is smaller).
        normalize: L2-normalise both sides first, so scores are cosine similarities.
        backend: ``"torch"`` (chunked, exact ties) or ``"faiss"`` (exact ``IndexFlatIP``, the
            ``faiss`` extra; ties at the k-th place are faiss's choice).
        query_chunk_size: Queries scored at once.
        corpus_chunk_size: Corpus rows scored at once.

    Returns:
        ``(scores, indices)``, both ``(n_queries, k)``, each row ordered by score descending and, among
        equal scores, by corpus row ascending; every score finite.

    Raises:
        CardioSTError: for a NaN or infinite query or corpus vector (naming its row), which would
            otherwise rank first.
    """
    queries = _as_matrix(query_embeddings, "query_embeddings")
    corpus = _as_matrix(corpus_embeddings, "corpus_embeddings")
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"query dimension {queries.shape[1]} != corpus dimension {corpus.shape[1]}: "
            "embed queries and corpus with the same model"
        )
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if backend == "faiss":
        return _faiss_topk(queries, corpus, min(top_k, corpus.shape[0]), normalize)
    if backend != "torch":
        raise ValueError(f"unknown backend {backend!r}: use 'torch' or 'faiss'")
    queries = queries.to(corpus.device, torch.float32)
    if normalize:
        queries = F.normalize(queries, p=2, dim=1)
    k = min(top_k, corpus.shape[0])
    n_queries = queries.shape[0]
    best_values = torch.empty((n_queries, 0), dtype=torch.float32, device=corpus.device)
    best_indices = torch.empty((n_queries, 0), dtype=torch.long, device=corpus.device)
    # Corpus chunks outside, so each is normalised once for all queries.
    for c_start in range(0, corpus.shape[0], corpus_chunk_size):
        corpus_chunk = corpus[c_start : c_start + corpus_chunk_size].to(torch.float32)
        if normalize:
            corpus_chunk = F.normalize(corpus_chunk, p=2, dim=1)
        chunk_values, chunk_indices = [], []
        for q_start in range(0, n_queries, query_chunk_size):
            query_chunk = queries[q_start : q_start + query_chunk_size]
            values, indices = _chunk_topk(
                query_chunk, corpus_chunk, min(k, corpus_chunk.shape[0]), q_start, c_start
            )
            chunk_values.append(values)
            chunk_indices.append(indices + c_start)
        # Earlier chunks hold lower rows; a stable sort of [earlier, this] keeps that order on ties.
        merged_values = torch.cat([best_values, torch.cat(chunk_values)], dim=1)
        merged_indices = torch.cat([best_indices, torch.cat(chunk_indices)], dim=1)
        order = torch.sort(merged_values, dim=1, descending=True, stable=True).indices[:, :k]
        best_values = merged_values.gather(1, order)
        best_indices = merged_indices.gather(1, order)
    return best_values, best_indices


def _faiss_topk(queries: torch.Tensor, corpus: torch.Tensor, k: int, normalize: bool):
    try:
        import faiss
    except ImportError as error:
        raise ImportError("backend='faiss' needs faiss: pip install 'cardio-st[faiss]'") from error
    q = queries.detach().cpu().numpy().astype(np.float32)
    c = corpus.detach().cpu().numpy().astype(np.float32)
    if not (np.isfinite(q).all() and np.isfinite(c).all()):
        raise _not_finite(queries, corpus, 0, 0)
    if normalize:
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(c.shape[1])
    index.add(c)
    values, indices = index.search(q, k)
    # faiss orders ties arbitrarily: reorder each row by (score desc, row asc) as the torch path does.
    values_t, indices_t = torch.from_numpy(values), torch.from_numpy(indices).long()
    by_row = torch.sort(indices_t, dim=1).indices
    values_t, indices_t = values_t.gather(1, by_row), indices_t.gather(1, by_row)
    order = torch.sort(values_t, dim=1, descending=True, stable=True).indices
    return values_t.gather(1, order), indices_t.gather(1, order)
