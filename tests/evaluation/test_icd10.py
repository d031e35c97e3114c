"""ICD-10-CM rephrasing benchmark: character error rate known answers, metrics equal to a naive loop over
fixed rankings, euclidean search equal to brute force, seeded code-level bootstrap, a real MiniLM run."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from tiny_models import Memoised

from cardio_st.data.icd10 import icd10_eval_set
from cardio_st.errors import CardioSTError
from cardio_st.evaluation.icd10 import (
    METRICS,
    ICD10Evaluator,
    character_error_rate,
    evaluate_icd10,
    paired_bootstrap,
)
from cardio_st.retrieval.lexical import TfidfCharRetriever


def naive_levenshtein(a: str, b: str) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        for j in range(len(b) + 1):
            if i == 0 or j == 0:
                table[i][j] = i + j
            else:
                table[i][j] = min(
                    table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1])
                )
    return table[-1][-1]


@pytest.fixture(scope="module")
def cardio_set():
    evaluation = icd10_eval_set("cardio")
    return evaluation["queries"], evaluation["corpus"]


@pytest.mark.parametrize(
    ("hypothesis", "reference", "expected"),
    [
        ("kitten", "sitting", 3 / 7),
        ("sitting", "kitten", 3 / 6),
        ("Heart failure", "Heart failure", 0.0),
        ("", "Heart failure", 1.0),
        ("Heart failure", "", 1.0),
        ("", "", 0.0),
        ("abc", "xbz", 2 / 3),
    ],
)
def test_character_error_rate_known_answers(hypothesis, reference, expected):
    assert character_error_rate(hypothesis, reference) == pytest.approx(expected)


def test_character_error_rate_equals_a_full_table_on_random_strings():
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = "".join(rng.choice(list("abc "), size=rng.integers(0, 9)))
        b = "".join(rng.choice(list("abc "), size=rng.integers(1, 9)))
        assert character_error_rate(a, b) == pytest.approx(naive_levenshtein(a, b) / len(b))


class FixedRankings:
    """A retriever that returns rankings fixed in advance (rows of the corpus), one per query."""

    name = "fixed"
    similarity = "fixed"

    def __init__(self, rankings: np.ndarray) -> None:
        self.rankings = rankings
        self.fitted_on: list[str] | None = None

    def fit(self, corpus):
        self.fitted_on = list(corpus)
        return self

    def topk(self, queries, k):
        assert len(queries) == len(self.rankings) and k == 10
        return np.zeros(self.rankings.shape, dtype=np.float32), self.rankings


def crafted_rankings(queries, corpus, seed: int = 0) -> np.ndarray:
    """True code at rank 1, 3, 7 or absent; pattern 4 puts a sibling of the same category first."""
    rng = np.random.default_rng(seed)
    row_of = {code: row for row, code in enumerate(corpus["code"])}
    rankings = []
    for number, code in enumerate(queries["code"]):
        true_row = row_of[code]
        others = rng.permutation([row for row in range(len(corpus)) if row != true_row])[:10].tolist()
        pattern = number % 5
        if pattern in (0, 1, 2):
            others.insert((0, 2, 6)[pattern], true_row)
        elif pattern == 4:
            siblings = [r for c, r in row_of.items() if c[:3] == code[:3] and r != true_row]
            if siblings:
                others.insert(0, siblings[0])
        rankings.append(others[:10])
    return np.asarray(rankings)


def test_metrics_equal_a_naive_loop_over_fixed_rankings(cardio_set):
    # Given fixed rankings over the real "cardio" benchmark
    queries, corpus = cardio_set
    rankings = crafted_rankings(queries, corpus)
    retriever = FixedRankings(rankings)

    # When evaluated
    result = evaluate_icd10(retriever, "cardio", bootstrap=200)

    # Then every metric equals a naive per-query loop
    codes, descriptions = list(corpus["code"]), list(corpus["description"])
    sums = dict.fromkeys(METRICS, 0.0)
    for true_code, ranking in zip(queries["code"], rankings):
        retrieved = [codes[row] for row in ranking]
        sums["exact@1"] += retrieved[0] == true_code
        sums["category@1"] += retrieved[0][:3] == true_code[:3]
        sums["recall@5"] += true_code in retrieved[:5]
        sums["recall@10"] += true_code in retrieved
        sums["mrr@10"] += 1 / (retrieved.index(true_code) + 1) if true_code in retrieved else 0
        true_description = descriptions[codes.index(true_code)]
        sums["cer"] += naive_levenshtein(descriptions[ranking[0]], true_description) / len(true_description)
    expected = {metric: total / len(queries) for metric, total in sums.items()}
    assert result.metrics == pytest.approx(expected)
    assert retriever.fitted_on == descriptions
    assert result.codes == list(queries["code"]) and len(result.retrieved[0]) == 10
    assert (result.name, result.scope, result.distance) == ("fixed", "cardio", "fixed")
    # The crafted patterns make each metric informative (neither 0 nor 1).
    assert 0 < expected["exact@1"] < expected["category@1"] < 1
    for metric in METRICS:
        assert result.per_query(metric).mean() == pytest.approx(result.metrics[metric])
        low, high = result.intervals[metric]
        assert low <= result.metrics[metric] <= high and low < high


def test_intervals_are_seeded_and_resample_codes(cardio_set):
    queries, corpus = cardio_set
    rankings = crafted_rankings(queries, corpus)
    first = evaluate_icd10(FixedRankings(rankings), "cardio", bootstrap=200, seed=3)
    again = evaluate_icd10(FixedRankings(rankings), "cardio", bootstrap=200, seed=3)
    other = evaluate_icd10(FixedRankings(rankings), "cardio", bootstrap=200, seed=4)
    none = evaluate_icd10(FixedRankings(rankings), "cardio", bootstrap=0)
    assert first.intervals == again.intervals
    assert first.intervals != other.intervals
    assert none.intervals == {} and none.metrics == first.metrics
    json.dumps(first.to_dict())


def test_paired_bootstrap_sees_a_real_improvement(cardio_set):
    queries, corpus = cardio_set
    worse = evaluate_icd10(FixedRankings(crafted_rankings(queries, corpus)), "cardio", bootstrap=0)
    row_of = {code: row for row, code in enumerate(corpus["code"])}
    perfect = np.asarray([[row_of[code]] + list(range(9)) for code in queries["code"]])
    better = evaluate_icd10(FixedRankings(perfect), "cardio", bootstrap=0)
    assert better.metrics["exact@1"] == 1.0 and better.metrics["cer"] == 0.0
    comparison = paired_bootstrap(worse, better, "exact@1", resamples=300)
    assert comparison["difference"] == pytest.approx(1 - worse.metrics["exact@1"])
    assert 0 < comparison["low"] <= comparison["difference"] <= comparison["high"]
    assert comparison == paired_bootstrap(worse, better, "exact@1", resamples=300)


class RandomVectors:
    """A stand-in SentenceTransformer: a fixed random vector of varied norm per text."""

    def __init__(self, texts: list[str]) -> None:
        generator = torch.Generator().manual_seed(0)
        vectors = torch.randn(len(texts), 8, generator=generator)
        norms = torch.rand(len(texts), 1, generator=generator) * 3 + 0.1
        self.vectors = dict(zip(texts, vectors * norms))

    def _encode(self, texts, batch_size=32, show_progress_bar=False, convert_to_tensor=False):
        return torch.stack([self.vectors[text] for text in texts])

    encode_query = encode_document = _encode


def test_euclidean_is_the_smallest_l2_distance_on_unnormalised_embeddings(cardio_set):
    queries, corpus = cardio_set
    model = RandomVectors(list(queries["query"]) + list(corpus["description"]))
    euclidean = evaluate_icd10(model, "cardio", distance="euclidean", bootstrap=0, name="random")
    cosine = evaluate_icd10(model, "cardio", distance="cosine", bootstrap=0, name="random")

    query_vectors = model.encode_query(list(queries["query"])).double()
    corpus_vectors = model.encode_document(list(corpus["description"])).double()
    codes = list(corpus["code"])
    nearest = torch.cdist(query_vectors, corpus_vectors).argsort(dim=1, stable=True)[:, :10]
    assert euclidean.retrieved == [[codes[row] for row in ranking] for ranking in nearest.tolist()]
    assert euclidean.distance == "euclidean" and euclidean.name == "random"
    assert euclidean.retrieved != cosine.retrieved  # varied norms: the two rankings differ


def test_bad_arguments_name_the_fix():
    with pytest.raises(CardioSTError, match="cosine"):
        evaluate_icd10(TfidfCharRetriever(), "cardio", distance="manhattan")
    with pytest.raises(CardioSTError, match="embedding models only"):
        evaluate_icd10(TfidfCharRetriever(), "cardio", distance="euclidean")
    with pytest.raises(CardioSTError, match="fit"):
        evaluate_icd10(object(), "cardio")


@pytest.mark.slow
def test_minilm_and_tfidf_on_cardio(minilm):
    model = Memoised(minilm)
    cosine = evaluate_icd10(model, "cardio", name="minilm", bootstrap=200)
    euclidean = evaluate_icd10(model, "cardio", name="minilm", distance="euclidean", bootstrap=200)
    tfidf = evaluate_icd10(TfidfCharRetriever(), "cardio", bootstrap=200)
    print({f"{result.name} {result.distance}": result.metrics for result in (cosine, euclidean, tfidf)})

    assert len(cosine.codes) == 152
    assert 0.15 <= cosine.metrics["exact@1"] <= 0.6
    assert cosine.metrics["exact@1"] <= cosine.metrics["category@1"]
    assert cosine.metrics["recall@5"] <= cosine.metrics["recall@10"]
    # all-MiniLM-L6-v2 ends with Normalize: L2 distance ranks as cosine does.
    assert euclidean.metrics["exact@1"] == pytest.approx(cosine.metrics["exact@1"], abs=0.01)
    assert 0.15 <= tfidf.metrics["exact@1"] <= 0.6
    same = paired_bootstrap(cosine, cosine, "exact@1")
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0}
    with pytest.raises(CardioSTError, match="same scope"):
        paired_bootstrap(cosine, dataclasses.replace(cosine, codes=cosine.codes[:-1]))


def test_results_go_into_the_model_card_when_the_model_is_saved(tiny_qwen3, tmp_path):
    # Given a model evaluated twice on the held-out circulatory set and once through the evaluator
    first = evaluate_icd10(tiny_qwen3, "cardio", bootstrap=0)
    result = evaluate_icd10(tiny_qwen3, "cardio", bootstrap=0)
    assert first.metrics == result.metrics
    on_validation = ICD10Evaluator("cardio", side="validation", name="val")(tiny_qwen3)
    assert set(on_validation) == {f"val_{metric}" for metric in METRICS}
    # When it is saved
    tiny_qwen3.save(str(tmp_path))
    card = (tmp_path / "README.md").read_text()
    # Then the card's model-index carries each result once, under its own name
    header = card.split("---")[1]
    assert header.count("type: icd10-cardio\n") == 1
    assert header.count("type: val\n") == 1 and "icd10-cardio-validation" not in header
    assert f"value: {result.metrics['exact@1']}" in header
    assert "ICD-10-CM Rephrasing Retrieval" in card


def test_validation_side_follows_the_validation_fraction_of_the_training_pairs():
    from cardio_st.data.icd10 import category_of, validation_categories

    held_back = validation_categories("cardio", 0.3)
    result = evaluate_icd10(
        TfidfCharRetriever(), "cardio", side="validation", validation_fraction=0.3, bootstrap=0
    )
    usual = evaluate_icd10(TfidfCharRetriever(), "cardio", side="validation", bootstrap=0)
    assert {category_of(code) for code in result.codes} <= held_back
    assert len(result.codes) > len(usual.codes) > 0


def test_metric_docstring_examples():
    import doctest

    import cardio_st.evaluation.codes

    failures, tried = doctest.testmod(cardio_st.evaluation.codes, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
