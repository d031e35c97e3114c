"""Retrievers by name: ``bm25`` and ``tfidf`` are the lexical retrievers, any other name is a model
(alias, folder or Hub id). Leaves out the retrievers themselves (cardio_st.retrieval.lexical, models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cardio_st.models.default import ModelSource, load_model, resolve_model
from cardio_st.retrieval.lexical import LEXICAL_RETRIEVERS, BM25Retriever, TfidfCharRetriever

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["load_retriever", "resolve_retriever"]


def resolve_retriever(name: str) -> type[BM25Retriever | TfidfCharRetriever] | ModelSource:
    """What ``name`` names, without loading anything (imports neither torch nor sentence-transformers).

    Args:
        name: ``bm25``, ``tfidf``, or a model name, folder or Hub id.

    Returns:
        The lexical retriever's class, or the model's ``ModelSource`` (where its files are).

    Raises:
        CardioSTError: for a model that cannot be found, naming what to do.
    """
    if name in LEXICAL_RETRIEVERS:
        return LEXICAL_RETRIEVERS[name]
    return resolve_model(name)


def load_retriever(name: str) -> BM25Retriever | TfidfCharRetriever | SentenceTransformer:
    """A fresh (unfitted) lexical retriever for ``bm25`` / ``tfidf``, else the model ``name`` loads.

    Args:
        name: ``bm25``, ``tfidf``, or a model name, folder or Hub id
            ([load_model][cardio_st.models.loader.load_model]).

    Example:
        >>> type(load_retriever("bm25")).__name__
        'BM25Retriever'

    Raises:
        CardioSTError: for a model that cannot be found or loaded.
    """
    if name in LEXICAL_RETRIEVERS:
        return LEXICAL_RETRIEVERS[name]()
    return load_model(name)[0]
