"""Lexical retrievers: BM25 known answers worked by hand, TF-IDF self-retrieval, chunked top-k equal to a
full sort with ties by corpus row."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.lexical import BM25Retriever, TfidfCharRetriever, tokenize

TOY = ["heart failure", "acute heart attack", "kidney failure kidney"]


def test_tokenize_keeps_digits_and_drops_punctuation():
    assert tokenize("Type 2 diabetes, NOS (E11.9)") == ["type", "2", "diabetes", "nos", "e11", "9"]


def test_bm25_known_answer_worked_by_hand():
    # Given three documents of 2, 3 and 3 tokens (avgdl = 8/3), k1 = 1.5, b = 0.75.
    # idf(failure) (n=2) = ln((3 - 2 + 0.5) / (2 + 0.5) + 1) = ln(1.6)  = 0.470003629
    # idf(kidney)  (n=1) = ln((3 - 1 + 0.5) / (1 + 0.5) + 1) = ln(8/3)  = 0.980829253
    # length norm K = 1.5 * (0.25 + 0.75 * dl / avgdl): dl=2 -> 1.21875, dl=3 -> 1.640625
    # d0 failure tf=1: 1 * 2.5 / (1 + 1.21875) = 80/71
    # d2 kidney tf=2: 2 * 2.5 / (2 + 1.640625) = 320/233; failure tf=1: 2.5 / 2.640625 = 160/169
    retriever = BM25Retriever().fit(TOY)

    # When the query "kidney failure" is scored
    scores = retriever.scores(["kidney failure"])

    # Then d0 = 0.470003629 * 80/71, d1 = 0 (no shared token),
    # d2 = 0.980829253 * 320/233 + 0.470003629 * 160/169
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores[0], [0.529581554, 0.0, 1.792035485], rtol=1e-6)
    assert math.isclose(0.470003629 * 80 / 71, 0.529581554, rel_tol=1e-8)


def test_bm25_counts_repeated_query_tokens_and_ignores_unknown_ones():
    retriever = BM25Retriever().fit(TOY)
    once, twice, unknown = retriever.scores(["failure", "failure failure zebra", "zebra"])
    np.testing.assert_allclose(twice, 2 * once, rtol=1e-6)
    assert not unknown.any()


def test_tfidf_query_identical_to_a_document_ranks_it_first():
    corpus = ["Acute myocardial infarction", "Atrial fibrillation", "Heart failure, unspecified"]
    retriever = TfidfCharRetriever().fit(corpus)
    scores, indices = retriever.topk(["Atrial fibrillation", "heart failure"], k=3)
    assert indices[:, 0].tolist() == [1, 2]
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert scores.dtype == np.float32 and np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("retriever", [TfidfCharRetriever(), BM25Retriever()], ids=["tfidf", "bm25"])
def test_chunked_topk_equals_full_sort_with_ties_by_row(retriever):
    # Duplicated documents tie exactly; the earlier row must come first, whatever the chunking.
    corpus = ["heart failure", "kidney failure", "heart failure", "acute heart attack", "stroke"] * 3
    queries = ["heart failure", "failure", "stroke", "zebra", "acute kidney", "heart"] * 3
    retriever.fit(corpus)
    full = retriever.scores(queries)
    expected = np.argsort(-full, axis=1, kind="stable")[:, :4]
    for chunk in (1, 4, 256):
        scores, indices = retriever.topk(queries, 4, query_chunk_size=chunk)
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_array_equal(scores, np.take_along_axis(full, expected, axis=1))
    assert retriever.topk(queries, 100)[1].shape == (len(queries), len(corpus))


def test_unfitted_retriever_names_the_fix():
    with pytest.raises(CardioSTError, match="call fit"):
        BM25Retriever().topk(["heart"], 1)
