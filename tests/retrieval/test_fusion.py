"""Hybrid retrieval: RRF and score-fusion known answers, fusion invariants, HybridRetriever against plain
dense and lexical search on a tiny model, and a real MiniLM run on the ICD-10-CM benchmark."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from tiny_models import Memoised

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.exact import topk
from cardio_st.retrieval.fusion import HybridRetriever, normalized_score_fusion, reciprocal_rank_fusion
from cardio_st.retrieval.lexical import BM25Retriever, TfidfCharRetriever

CORPUS = [
    "Acute myocardial infarction",
    "Atrial fibrillation",
    "Essential hypertension",
    "Atrial flutter",
    "Heart failure, unspecified",
    "Ventricular fibrillation",
    "Angina pectoris",
    "Wolff-Parkinson-White syndrome",
]
QUERIES = ["atrial fibrilation", "high blood pressure", "WPW syndrome", "heart failure"]


def test_rrf_known_answer():
    # Given two rankings that share rows 10 and 12
    rankings = [[10, 11, 12], [12, 10, 13]]
    # When they are fused with the default k = 60 and weight 1 each
    fused = reciprocal_rank_fusion(rankings)
    # Then score(d) = sum over rankings of 1 / (60 + rank)
    assert fused == [
        (10, pytest.approx(1 / 61 + 1 / 62)),
        (12, pytest.approx(1 / 63 + 1 / 61)),
        (11, pytest.approx(1 / 62)),
        (13, pytest.approx(1 / 63)),
    ]
    assert [row for row, _ in fused] == [10, 12, 11, 13]


def test_weighted_rrf_known_answer():
    fused = reciprocal_rank_fusion([[1, 2], [2, 3]], k=0, weights=[0.75, 0.25])
    # row 1: 0.75 / 1; row 2: 0.75 / 2 + 0.25 / 1; row 3: 0.25 / 2
    assert fused == [(1, 0.75), (2, 0.625), (3, 0.125)]


def test_rrf_ties_go_to_the_lower_row_whatever_the_order_of_the_terms():
    # Row 5 gets 1/61 + 1/62 and row 2 gets 1/62 + 1/61: exactly equal, so row 2 comes first.
    assert [row for row, _ in reciprocal_rank_fusion([[5, 2], [2, 5]])] == [2, 5]
    three = reciprocal_rank_fusion([[9, 4, 7], [4, 7, 9], [7, 9, 4]])
    assert [row for row, _ in three] == [4, 7, 9]
    assert three[0][1] == three[1][1] == three[2][1]


def test_score_fusion_known_answer():
    # Given dense scores on [0, 1] and lexical scores on another scale
    rankings = [[0, 1, 2], [2, 3]]
    scores = [[0.9, 0.7, 0.5], [5.0, 1.0]]
    # When fused with equal weights
    fused = normalized_score_fusion(rankings, scores, weights=[0.5, 0.5])
    # Then each side is min-max normalised over its candidates (0 -> 1, 1 -> 0.5, 2 -> 0; 2 -> 1, 3 -> 0),
    # absent rows score 0 there, and the 0.5 tie of rows 0 and 2 goes to row 0
    assert fused == [(0, pytest.approx(0.5)), (2, pytest.approx(0.5)), (1, pytest.approx(0.25)), (3, 0.0)]
    assert [row for row, _ in fused] == [0, 2, 1, 3]


def test_score_fusion_of_equal_scores_gives_each_candidate_the_full_weight():
    assert normalized_score_fusion([[4], [4, 6]], [[0.3], [2.0, 2.0]], weights=[0.5, 0.25]) == [
        (4, 0.75),
        (6, 0.25),
    ]


@pytest.mark.parametrize("method", ["rrf", "score"])
def test_two_equal_rankings_fuse_into_the_same_ranking(method):
    ranking = np.random.default_rng(0).permutation(50).tolist()
    scores = np.linspace(1.0, 0.1, 50).tolist()
    if method == "rrf":
        fused = reciprocal_rank_fusion([ranking, ranking], weights=[0.3, 0.7])
    else:
        fused = normalized_score_fusion([ranking, ranking], [scores, [10 * s for s in scores]])
    assert [row for row, _ in fused] == ranking


def test_a_row_missing_from_one_ranking_still_gets_its_share_of_the_other():
    # Row 7 is first for the first retriever and not a candidate of the second.
    rrf = dict(reciprocal_rank_fusion([[7, 1, 2], [1, 2, 3]], weights=[0.5, 0.5]))
    assert rrf[7] == pytest.approx(0.5 / 61)
    assert rrf[1] == pytest.approx(0.5 / 62 + 0.5 / 61)
    fused = dict(normalized_score_fusion([[7, 1, 2], [1, 2, 3]], [[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]]))
    assert fused[7] == pytest.approx(1.0)
    assert fused[3] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: reciprocal_rank_fusion([[1, 2, 1]]), "lists a corpus row twice"),
        (lambda: reciprocal_rank_fusion([[1], [2]], weights=[1.0]), "1 weights for 2 rankings"),
        (lambda: reciprocal_rank_fusion([[1]], weights=[-1.0]), "non-negative"),
        (lambda: reciprocal_rank_fusion([[1]], k=-1), "k must be at least 0"),
        (lambda: normalized_score_fusion([[1, 2]], [[0.5]]), "2 rows but 1 scores"),
        (lambda: normalized_score_fusion([[1], [2]], [[0.5]]), "1 score lists for 2 rankings"),
    ],
)
def test_bad_fusion_input_names_the_fix(call, message):
    with pytest.raises(CardioSTError, match=message):
        call()


def test_empty_rankings_fuse_to_nothing():
    assert reciprocal_rank_fusion([[], []]) == []
    assert normalized_score_fusion([[], []], [[], []]) == []


@pytest.mark.parametrize("method", ["rrf", "score"])
def test_retriever_returns_ordered_fused_scores(tiny_qwen3, method):
    retriever = HybridRetriever(tiny_qwen3, method=method, candidates=5).fit(CORPUS)
    scores, rows = retriever.topk(QUERIES, k=4)
    assert scores.shape == rows.shape == (4, 4) and rows.dtype == np.int64
    for row_scores, row_rows in zip(scores, rows):
        assert len(set(row_rows.tolist())) == 4
        order = sorted(zip((-row_scores).tolist(), row_rows.tolist()))
        assert [r for _, r in order] == row_rows.tolist()  # score descending, ties by row
    ceiling = 1 / 61 if method == "rrf" else 1.0
    assert (scores <= ceiling + 1e-12).all() and (scores >= 0).all()
    assert retriever.name == f"hybrid-{method}(SentenceTransformer+tfidf-char-3-5)"
    # More results than candidates: each side proposes max(candidates, k) rows.
    assert retriever.topk(QUERIES[:1], k=8)[1].shape == (1, 8)
    assert retriever.topk(QUERIES[:1], k=50)[1].shape == (1, len(CORPUS))


@pytest.mark.parametrize("method", ["rrf", "score"])
def test_all_weight_on_one_side_gives_that_sides_ranking(tiny_qwen3, method):
    dense = HybridRetriever(tiny_qwen3, method=method, weight=1.0, batch_size=32).fit(CORPUS)
    embeddings = tiny_qwen3.encode_document(CORPUS, convert_to_tensor=True)
    _, expected = topk(tiny_qwen3.encode_query(QUERIES, convert_to_tensor=True), embeddings, 5)
    assert dense.topk(QUERIES, k=5)[1].tolist() == expected.tolist()

    lexical = HybridRetriever(tiny_qwen3, BM25Retriever(), method=method, weight=0.0).fit(CORPUS)
    queries = [
        "atrial fibrillation",
        "ventricular fibrillation",
    ]  # at least two documents share a word with each
    _, expected = BM25Retriever().fit(CORPUS).topk(queries, 2)
    assert lexical.topk(queries, k=2)[1].tolist() == expected.tolist()


@pytest.mark.parametrize("method", ["rrf", "score"])
def test_a_query_without_lexical_match_keeps_the_dense_ranking(tiny_qwen3, method):
    query = ["qqqq xxxx"]  # no character 3-gram of it occurs in the corpus
    assert not TfidfCharRetriever().fit(CORPUS).scores(query).any()
    embeddings = tiny_qwen3.encode_document(CORPUS, convert_to_tensor=True)
    _, expected = topk(tiny_qwen3.encode_query(query, convert_to_tensor=True), embeddings, 5)
    hybrid = HybridRetriever(tiny_qwen3, method=method, batch_size=32).fit(CORPUS, embeddings=embeddings)
    assert hybrid.topk(query, k=5)[1].tolist() == expected.tolist()


def test_precomputed_embeddings_skip_encoding_and_give_the_same_results(tiny_qwen3):
    embedded = HybridRetriever(tiny_qwen3).fit(CORPUS)
    embeddings = tiny_qwen3.encode_document(CORPUS, convert_to_numpy=True)
    tiny_qwen3.encode_document = None  # would fail if called
    given = HybridRetriever(tiny_qwen3).fit(CORPUS, embeddings=embeddings)
    for a, b in zip(embedded.topk(QUERIES, 3), given.topk(QUERIES, 3)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_misuse_names_the_fix(tiny_qwen3):
    with pytest.raises(CardioSTError, match="not fitted: call fit"):
        HybridRetriever(tiny_qwen3).topk(QUERIES)
    with pytest.raises(CardioSTError, match="one embedding row per document"):
        HybridRetriever(tiny_qwen3).fit(CORPUS, embeddings=np.zeros((3, 32), dtype=np.float32))
    with pytest.raises(CardioSTError, match="empty corpus"):
        HybridRetriever(tiny_qwen3).fit([])
    with pytest.raises(CardioSTError, match="use 'rrf' or 'score'"):
        HybridRetriever(tiny_qwen3, method="max")
    with pytest.raises(CardioSTError, match=r"in \[0, 1\]"):
        HybridRetriever(tiny_qwen3, weight=1.5)
    with pytest.raises(CardioSTError, match="k must be at least 1"):
        HybridRetriever(tiny_qwen3).fit(CORPUS).topk(QUERIES, k=0)


@pytest.mark.slow
def test_minilm_hybrid_on_cardio(minilm):
    from cardio_st.evaluation.icd10 import evaluate_icd10, paired_bootstrap

    model = Memoised(minilm)
    dense = evaluate_icd10(model, "cardio", name="minilm")
    tfidf = evaluate_icd10(TfidfCharRetriever(), "cardio")
    hybrids = {
        method: evaluate_icd10(HybridRetriever(model, method=method), "cardio", name=f"hybrid-{method}")
        for method in ("rrf", "score")
    }
    report = {result.name: result.metrics for result in (dense, tfidf, *hybrids.values())}
    for method, hybrid in hybrids.items():
        report[f"{method} - dense"] = paired_bootstrap(dense, hybrid)
        report[f"{method} - tfidf"] = paired_bootstrap(tfidf, hybrid)
    print(report)

    for hybrid in hybrids.values():
        assert hybrid.codes == dense.codes and len(hybrid.codes) == 152
        assert hybrid.metrics["exact@1"] > 0.2
        assert hybrid.metrics["exact@1"] <= hybrid.metrics["category@1"]
        assert hybrid.metrics["recall@5"] <= hybrid.metrics["recall@10"]
    assert hybrids["rrf"].distance == "rrf" and hybrids["score"].distance == "score-fusion"


@pytest.mark.slow
def test_docstring_examples():
    import cardio_st.retrieval.fusion

    failures, tried = doctest.testmod(cardio_st.retrieval.fusion, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
