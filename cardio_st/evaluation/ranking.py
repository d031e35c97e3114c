"""Ranking of code descriptions for benchmark queries by a model (cosine or euclidean) or a lexical retriever,
shared by the ICD-10-CM and clinical-shorthand benchmarks. Leaves out the queries and the metrics
(icd10.py, shorthand.py, codes.py).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cardio_st.errors import CardioSTError
from cardio_st.models.loader import load_model
from cardio_st.retrieval.base import Encoder, Retriever
from cardio_st.retrieval.exact import topk

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.retrieval.expansion import QueryExpander

__all__ = ["TOP_K", "Ranking", "rank_descriptions"]

#: Codes retrieved per query.
TOP_K = 10


@dataclass
class Ranking:
    """What [rank_descriptions][cardio_st.evaluation.ranking.rank_descriptions] found.

    Attributes:
        indices: ``(n_queries, TOP_K)`` corpus rows of each query, best first (ties by row).
        name: The model's or retriever's name.
        distance: ``"cosine"`` or ``"euclidean"`` for a model; the retriever's own similarity otherwise.
        seconds: Wall-clock time of fitting or encoding, and searching.
        model: The model or retriever that ranked (loaded, when a name was given).
        searched: What each query was searched as (after expansion, when an expander was given).
    """

    indices: np.ndarray
    name: str
    distance: str
    seconds: float
    model: Any
    searched: list[str]


def _encode(model: SentenceTransformer, texts: list[str], document: bool, batch_size: int, progress: bool):
    encode = model.encode_document if document else model.encode_query
    return encode(texts, batch_size=batch_size, show_progress_bar=progress, convert_to_tensor=True)


def _search_model(
    model: SentenceTransformer,
    queries: list[str],
    descriptions: list[str],
    distance: str,
    batch_size: int,
    show_progress: bool,
) -> np.ndarray:
    import torch

    corpus = _encode(model, descriptions, True, batch_size, show_progress).cpu().float()
    query_embeddings = _encode(model, queries, False, batch_size, show_progress).cpu().float()
    if distance == "cosine":
        _, indices = topk(query_embeddings, corpus, TOP_K, normalize=True)
    else:
        # argmin |q - d|^2 = argmax 2 q.d - |d|^2 (|q|^2 is the same for every d): one inner product of
        # [q, 1] with [2 d, -|d|^2], so the exact search with its ties-by-row rule does the work.
        ones = torch.ones(len(query_embeddings), 1)
        augmented_queries = torch.cat([query_embeddings, ones], dim=1)
        squared_norms = (corpus.double() ** 2).sum(dim=1, keepdim=True).float()
        augmented_corpus = torch.cat([2 * corpus, -squared_norms], dim=1)
        _, indices = topk(augmented_queries, augmented_corpus, TOP_K, normalize=False)
    return indices.numpy()


def model_name(model: SentenceTransformer) -> str:
    """A model's id from its card data (model id, else base model), else its class name."""
    card = getattr(model, "model_card_data", None)
    for value in (getattr(card, "model_id", None), getattr(card, "base_model", None)):
        if value:
            return str(value)
    return type(model).__name__


def rank_descriptions(
    retriever_or_model: Any,
    queries: list[str],
    descriptions: list[str],
    *,
    name: str | None = None,
    distance: str = "cosine",
    batch_size: int = 64,
    show_progress: bool = False,
    expander: QueryExpander | None = None,
) -> Ranking:
    """The top-10 ``descriptions`` rows of every query.

    A SentenceTransformer embeds the queries with ``encode_query`` and the descriptions with
    ``encode_document``; ``distance="cosine"`` ranks by cosine similarity, ``"euclidean"`` by the smallest
    L2 distance between the embeddings as the model outputs them. A lexical retriever (anything with
    ``fit(corpus)`` and ``topk(queries, k)``) is fitted on the descriptions and ranks by its own score.

    Args:
        retriever_or_model: A SentenceTransformer, a model name, folder or Hub id (loaded with
            [load_model][cardio_st.models.loader.load_model]), or a lexical retriever.
        queries: The query texts.
        descriptions: The corpus, one description a code.
        name: Name recorded in the ranking (default: the model's folder or id, or the retriever's name).
        distance: ``"cosine"`` or ``"euclidean"`` (models only).
        batch_size: Encoding batch size.
        show_progress: Progress bars while encoding.
        expander: Replaces abbreviations in the queries before they are searched
            ([QueryExpander][cardio_st.retrieval.expansion.QueryExpander]); ``None`` searches them as given.

    Raises:
        CardioSTError: for an unknown distance, euclidean with a lexical retriever, or something that
            is neither a model nor a retriever.
    """
    if distance not in ("cosine", "euclidean"):
        raise CardioSTError(f"unknown distance {distance!r}: use 'cosine' or 'euclidean'")
    if isinstance(retriever_or_model, (str, os.PathLike)):
        name = name or os.fspath(retriever_or_model)
        retriever_or_model, _ = load_model(retriever_or_model)
    if expander is not None:
        queries = [expansion.text for expansion in expander.expand_all(queries)]
    start = time.perf_counter()
    if isinstance(retriever_or_model, Encoder):
        name = name or model_name(retriever_or_model)
        indices = _search_model(
            retriever_or_model, queries, descriptions, distance, batch_size, show_progress
        )
    elif isinstance(retriever_or_model, Retriever):
        if distance != "cosine":
            raise CardioSTError(
                f"distance={distance!r} applies to embedding models only: "
                "leave it at 'cosine' for a lexical retriever"
            )
        distance = getattr(retriever_or_model, "similarity", "lexical")
        name = name or getattr(retriever_or_model, "name", type(retriever_or_model).__name__)
        retriever_or_model.fit(descriptions)
        _, indices = retriever_or_model.topk(queries, TOP_K)
        indices = np.asarray(indices)
    else:
        raise CardioSTError(
            f"cannot evaluate a {type(retriever_or_model).__name__}: pass a SentenceTransformer, a model "
            "name or folder, or a retriever with fit(corpus) and topk(queries, k)"
        )
    return Ranking(indices, name, distance, time.perf_counter() - start, retriever_or_model, queries)
