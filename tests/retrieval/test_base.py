"""The Retriever protocol: what counts as a retriever, fingerprints of settings, search as Hits, and the
docstring example."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.base import Encoder, Hit, Retriever
from cardio_st.retrieval.fusion import HybridRetriever
from cardio_st.retrieval.lexical import BM25Retriever, TfidfCharRetriever

CORPUS = ["Acute myocardial infarction", "Atrial fibrillation", "Essential hypertension"]


class HandMade:
    """A ranking written by hand, with no base class: fit and topk only."""

    def fit(self, corpus):
        return self

    def topk(self, queries, k):
        return np.zeros((len(queries), 1)), np.zeros((len(queries), 1), dtype=np.int64)


def test_what_counts_as_a_retriever(tiny_qwen3):
    # Given the engines, a hand-made ranking and an embedding model
    # Then the engines and the hand-made ranking are retrievers, the model is an encoder and not a retriever
    for retriever in (BM25Retriever(), TfidfCharRetriever(), HybridRetriever(tiny_qwen3), HandMade()):
        assert isinstance(retriever, Retriever) and not isinstance(retriever, Encoder)
    assert isinstance(tiny_qwen3, Encoder) and not isinstance(tiny_qwen3, Retriever)
    assert not isinstance("bm25", Retriever) and not isinstance(object(), Encoder)


def test_fingerprints_follow_settings_not_instances(tiny_qwen3):
    # Equal settings -> equal fingerprints, across instances and fitting; other settings -> other ones
    assert BM25Retriever().fingerprint == BM25Retriever().fit(CORPUS).fingerprint
    assert BM25Retriever().fingerprint != BM25Retriever(k1=1.2).fingerprint
    assert TfidfCharRetriever().fingerprint != TfidfCharRetriever((2, 4)).fingerprint
    assert BM25Retriever().fingerprint != TfidfCharRetriever().fingerprint
    assert len(BM25Retriever().fingerprint) == 24
    hybrid = HybridRetriever(tiny_qwen3, method="score", weight=0.6)
    assert hybrid.fingerprint == HybridRetriever(tiny_qwen3, method="score", weight=0.6).fingerprint
    assert hybrid.fingerprint != HybridRetriever(tiny_qwen3, method="rrf", weight=0.6).fingerprint
    assert (
        hybrid.fingerprint
        != HybridRetriever(tiny_qwen3, BM25Retriever(), method="score", weight=0.6).fingerprint
    )
    assert hybrid.get_config_dict()["lexical"] == TfidfCharRetriever().fingerprint


def test_search_returns_the_hits_of_topk(tiny_qwen3):
    for retriever in (BM25Retriever(), TfidfCharRetriever(), HybridRetriever(tiny_qwen3)):
        retriever.fit(CORPUS)
        scores, rows = retriever.topk(["atrial fibrillation", "hypertension"], 2)
        hits = retriever.search(["atrial fibrillation", "hypertension"], top_k=2)
        assert [[hit.corpus_id for hit in row] for row in hits] == rows.tolist()
        np.testing.assert_allclose([[hit.score for hit in row] for row in hits], scores, rtol=1e-6)
        assert all(isinstance(hit, Hit) and hit.text == CORPUS[hit.id] for row in hits for hit in row)
        assert retriever.search("atrial fibrillation", top_k=1)[0][0].text == "Atrial fibrillation"
    with pytest.raises(CardioSTError, match="not fitted"):
        BM25Retriever().search("heart")


def test_names():
    assert (BM25Retriever().name, TfidfCharRetriever().name) == ("bm25", "tfidf-char-3-5")


def test_docstring_examples():
    import cardio_st.retrieval.base

    failures, tried = doctest.testmod(cardio_st.retrieval.base, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
