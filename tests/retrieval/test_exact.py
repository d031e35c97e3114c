"""cardio_st.retrieval.exact: exact top-k equal to sentence-transformers' semantic_search, deterministic
ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import util

from cardio_st.retrieval.exact import Hit, semantic_search, topk


def _reference(queries, corpus, k):
    results = util.semantic_search(queries, corpus, top_k=k)
    ids = torch.tensor([[hit["corpus_id"] for hit in row] for row in results])
    scores = torch.tensor([[hit["score"] for hit in row] for row in results])
    return scores, ids


@pytest.mark.parametrize("k", [1, 5, 37])
@pytest.mark.parametrize(("query_chunk", "corpus_chunk"), [(256, 16_384), (3, 100), (1, 7)])
def test_equals_sentence_transformers_semantic_search(k, query_chunk, corpus_chunk):
    # Given random embeddings (no ties) that are not normalised
    generator = torch.Generator().manual_seed(0)
    corpus = torch.randn(2_000, 48, generator=generator) * 3
    queries = torch.randn(20, 48, generator=generator)
    # When both search
    scores, ids = topk(queries, corpus, k, query_chunk_size=query_chunk, corpus_chunk_size=corpus_chunk)
    ref_scores, ref_ids = _reference(queries, corpus, k)
    # Then the same rows come back in the same order with the same cosine scores
    assert torch.equal(ids, ref_ids)
    assert torch.allclose(scores, ref_scores, atol=1e-6)


def test_ties_rank_the_earlier_corpus_row_first_and_match_reference_scores():
    # Given a corpus where row 3 is repeated at rows 10, 500 and 1999
    generator = torch.Generator().manual_seed(1)
    corpus = torch.randn(2_000, 32, generator=generator)
    for row in (10, 500, 1999):
        corpus[row] = corpus[3]
    query = corpus[3] + 0.01 * torch.randn(32, generator=generator)
    # When searching with several chunkings
    rankings = {
        tuple(topk(query, corpus, 4, corpus_chunk_size=size)[1][0].tolist()) for size in (16_384, 600, 7, 1)
    }
    # Then the four copies tie exactly and always come in corpus order
    assert rankings == {(3, 10, 500, 1999)}
    scores, _ = topk(query, corpus, 4)
    assert len(set(scores[0].tolist())) == 1
    ref_scores, ref_ids = _reference(query.unsqueeze(0), corpus, 4)
    assert set(ref_ids[0].tolist()) == {3, 10, 500, 1999}
    assert torch.allclose(scores, ref_scores, atol=1e-6)


def test_tie_at_the_cut_keeps_the_lowest_rows():
    # Given 30 identical vectors and a k that cuts through them
    corpus = torch.cat([torch.ones(30, 4), -torch.ones(5, 4)])
    corpus = corpus[torch.randperm(35, generator=torch.Generator().manual_seed(2))]
    copies = sorted(torch.nonzero(corpus[:, 0] > 0).flatten().tolist())
    # When
    _, ids = topk(torch.ones(1, 4), corpus, 12, corpus_chunk_size=9)
    # Then the 12 lowest rows among the copies are returned, in order
    assert ids[0].tolist() == copies[:12]


def test_single_query_and_batch_give_identical_results():
    generator = torch.Generator().manual_seed(3)
    corpus = torch.randn(5_000, 64, generator=generator)
    queries = torch.randn(50, 64, generator=generator)
    batch_scores, batch_ids = topk(queries, corpus, 10)
    for row in range(0, 50, 7):
        scores, ids = topk(queries[row], corpus, 10)
        assert torch.equal(ids[0], batch_ids[row]) and torch.equal(scores[0], batch_scores[row])


def test_dot_product_without_normalisation():
    corpus = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    scores, ids = topk(torch.tensor([1.0, 0.5]), corpus, 3, normalize=False)
    assert ids[0].tolist() == [1, 0, 2]
    assert scores[0].tolist() == [3.0, 1.0, 1.0]


def test_hits_carry_ids_and_texts_and_k_is_capped():
    corpus = np.eye(3, dtype=np.float32)
    hits = semantic_search(
        np.array([[0.0, 1.0, 0.1]]), corpus, 10, corpus_ids=["a", "b", "c"], corpus_texts=["A", "B", "C"]
    )
    assert [(h.id, h.text, h.corpus_id) for h in hits[0]] == [("b", "B", 1), ("c", "C", 2), ("a", "A", 0)]
    assert isinstance(hits[0][0], Hit) and hits[0][0].score == pytest.approx(1 / np.sqrt(1.01))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"corpus_ids": ["a"]}, "corpus_ids has 1 entries for 3"),
        ({"corpus_texts": ["a", "b"]}, "corpus_texts has 2 entries for 3"),
        ({"backend": "annoy"}, "unknown backend"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        semantic_search(torch.ones(1, 2), torch.ones(3, 2), 2, **kwargs)


def test_dimension_mismatch_and_bad_k_are_named():
    with pytest.raises(ValueError, match="query dimension 3 != corpus dimension 2"):
        topk(torch.ones(1, 3), torch.ones(4, 2))
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        topk(torch.ones(1, 2), torch.ones(4, 2), 0)
    with pytest.raises(ValueError, match="floating-point"):
        topk(torch.ones(1, 2, dtype=torch.long), torch.ones(4, 2))


def test_faiss_backend_equals_torch_backend():
    pytest.importorskip("faiss")
    generator = torch.Generator().manual_seed(4)
    corpus = torch.randn(3_000, 32, generator=generator)
    queries = torch.randn(25, 32, generator=generator)
    ours = semantic_search(queries, corpus, 8)
    theirs = semantic_search(queries, corpus, 8, backend="faiss")
    assert [[h.corpus_id for h in row] for row in ours] == [[h.corpus_id for h in row] for row in theirs]
    assert np.allclose(
        [[h.score for h in row] for row in ours], [[h.score for h in row] for row in theirs], atol=1e-5
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("normalize", [True, False])
def test_a_non_finite_vector_is_an_error_never_a_hit(bad, normalize):
    from cardio_st.errors import CardioSTError

    # Given a corpus whose row 1,234 (in the second chunk) holds one NaN or infinite value
    corpus = torch.randn(2_000, 8, generator=torch.Generator().manual_seed(1))
    corpus[1_234, 3] = bad
    # When it is searched, then it is refused naming the row (NaN used to rank first, with score nan)
    with pytest.raises(CardioSTError, match="corpus_embeddings row 1234 is NaN or infinite"):
        semantic_search(torch.randn(3, 8), corpus, 5, normalize=normalize, corpus_chunk_size=1_000)
    # and a non-finite query likewise
    queries = torch.randn(3, 8)
    queries[2, 0] = bad
    with pytest.raises(CardioSTError, match="query_embeddings row 2 is NaN or infinite"):
        topk(queries, torch.randn(50, 8), 5, normalize=normalize, query_chunk_size=2)
