"""cardio_st.evaluation.retrieval: known answers, a brute-force reference, equality with
sentence-transformers' InformationRetrievalEvaluator, use inside SentenceTransformerTrainer, and
query/document encoding of asymmetric models."""

from __future__ import annotations

import csv
import doctest
import math

import pytest
import torch
from datasets import Dataset

from cardio_st.errors import CardioSTError
from cardio_st.evaluation import retrieval
from cardio_st.evaluation.retrieval import PairRetrievalEvaluator, rank_of_relevant, retrieval_metrics

# The first rows of icd10_pairs("cardio", negatives=False)["train"] (ICD-10-CM April 2026), written out
# because building them parses the whole code tree (~5 s). Many terms share one description.
CLINICAL_PAIRS = [
    ("Mitral (valve) obstruction (rheumatic)", "Rheumatic mitral stenosis"),
    ("Rheumatic mitral incompetence", "Rheumatic mitral insufficiency"),
    ("Rheumatic mitral regurgitation", "Rheumatic mitral insufficiency"),
    (
        "Rheumatic mitral stenosis with incompetence or regurgitation",
        "Rheumatic mitral stenosis with insufficiency",
    ),
    ("Rheumatic mitral (valve) failure", "Other rheumatic mitral valve diseases"),
    ("Rheumatic mitral (valve) disorder (chronic) NOS", "Rheumatic mitral valve disease, unspecified"),
    ("high blood pressure", "Essential (primary) hypertension"),
    (
        "hypertension (arterial) (benign) (essential) (malignant) (primary) (systemic)",
        "Essential (primary) hypertension",
    ),
    ("Accelerated angina", "Unstable angina"),
    ("Crescendo angina", "Unstable angina"),
    ("De novo effort angina", "Unstable angina"),
    ("Intermediate coronary syndrome", "Unstable angina"),
    ("Preinfarction syndrome", "Unstable angina"),
    ("Worsening effort angina", "Unstable angina"),
    ("Angiospastic angina", "Angina pectoris with documented spasm"),
    ("Prinzmetal angina", "Angina pectoris with documented spasm"),
    ("Spasm-induced angina", "Angina pectoris with documented spasm"),
    ("Variant angina", "Angina pectoris with documented spasm"),
    (
        "Angina pectoris with coronary microvascular disease",
        "Angina pectoris with coronary microvascular dysfunction",
    ),
    ("Angina equivalent", "Other forms of angina pectoris"),
    ("Angina of effort", "Other forms of angina pectoris"),
    ("Coronary slow flow syndrome", "Other forms of angina pectoris"),
    ("Stable angina", "Other forms of angina pectoris"),
    ("Stenocardia", "Other forms of angina pectoris"),
    ("Angina NOS", "Angina pectoris, unspecified"),
    ("Anginal syndrome", "Angina pectoris, unspecified"),
    ("Cardiac angina", "Angina pectoris, unspecified"),
    ("Ischemic chest pain", "Angina pectoris, unspecified"),
    ("cardiac infarction", "Acute myocardial infarction"),
    ("coronary (artery) embolism", "Acute myocardial infarction"),
    ("coronary (artery) occlusion", "Acute myocardial infarction"),
    ("coronary (artery) thrombosis", "Acute myocardial infarction"),
    ("infarction of heart, myocardium, or ventricle", "Acute myocardial infarction"),
    (
        "Type 1 ST elevation myocardial infarction of anterior wall",
        "ST elevation (STEMI) myocardial infarction of anterior wall",
    ),
    (
        "ST elevation (STEMI) myocardial infarction involving diagonal coronary artery",
        "ST elevation (STEMI) myocardial infarction involving left anterior descending coronary artery",
    ),
    (
        "Acute transmural myocardial infarction of anterior wall",
        "ST elevation (STEMI) myocardial infarction involving other coronary artery of anterior wall",
    ),
]
ANCHORS = [anchor for anchor, _ in CLINICAL_PAIRS]
POSITIVES = [positive for _, positive in CLINICAL_PAIRS]
METRICS = ("accuracy@1", "accuracy@5", "accuracy@10", "mrr@10", "ndcg@10")


# --- retrieval_metrics: known answers -------------------------------------------------------------

# Corpus: the 5 unit vectors, so query i's score for document j is queries[i, j] / |queries[i]|.
CORPUS = torch.eye(5)
QUERIES = torch.tensor(
    [
        [5.0, 4.0, 3.0, 2.0, 1.0],  # relevant 0 -> rank 1
        [5.0, 4.0, 3.0, 2.0, 1.0],  # relevant 2 -> rank 3
        [1.0, 2.0, 3.0, 4.0, 5.0],  # relevant 0 -> rank 5
        [1.0, 1.0, 0.0, 0.0, 0.0],  # relevant 1, tied with row 0 which ranks first -> rank 2
    ]
)
RELEVANT = [0, 2, 0, 1]


def test_known_answer_default_cutoffs():
    # Given ranks 1, 3, 5 and 2 (the last one behind a tie broken by corpus row)
    # When
    metrics = retrieval_metrics(QUERIES, CORPUS, RELEVANT)
    # Then
    assert list(metrics) == list(METRICS)
    assert metrics["accuracy@1"] == 0.25
    assert metrics["accuracy@5"] == 1.0
    assert metrics["accuracy@10"] == 1.0
    assert metrics["mrr@10"] == pytest.approx(0.5083333333333333, abs=1e-12)  # (1 + 1/3 + 1/5 + 1/2) / 4
    # (1 + 1/log2(4) + 1/log2(6) + 1/log2(3)) / 4
    assert metrics["ndcg@10"] == pytest.approx(0.6294456402014998, abs=1e-12)
    assert rank_of_relevant(QUERIES, CORPUS, RELEVANT).tolist() == [1.0, 3.0, 5.0, 2.0]


def test_known_answer_relevant_beyond_the_cutoff_counts_zero():
    # Given the same ranks, cut at 2: ranks 3 and 5 are not retrieved
    metrics = retrieval_metrics(QUERIES, CORPUS, RELEVANT, k_values=(2, 1))
    # Then they add 0 to MRR and nDCG
    assert metrics == {
        "accuracy@1": 0.25,
        "accuracy@2": 0.5,
        "mrr@2": pytest.approx(0.375, abs=1e-12),  # (1 + 0 + 0 + 1/2) / 4
        "ndcg@2": pytest.approx(0.4077324383928644, abs=1e-12),  # (1 + 1/log2(3)) / 4
    }
    assert rank_of_relevant(QUERIES, CORPUS, RELEVANT, top_k=2).tolist() == [1.0, math.inf, math.inf, 2.0]


def test_known_answer_dot_product_ranks_by_length_too():
    # Given a query along x, its relevant document along x and a longer document at 18 degrees
    queries, corpus = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [3.0, 1.0]])
    # Then cosine (1 > 0.949) ranks the relevant first, dot product (1 < 3) second
    assert retrieval_metrics(queries, corpus, [0], k_values=(1, 2))["accuracy@1"] == 1.0
    dot = retrieval_metrics(queries, corpus, [0], k_values=(1, 2), similarity="dot")
    assert dot == {
        "accuracy@1": 0.0,
        "accuracy@2": 1.0,
        "mrr@2": 0.5,
        "ndcg@2": pytest.approx(1 / math.log2(3)),
    }


def test_bad_inputs_name_the_fix():
    with pytest.raises(CardioSTError, match="4 queries"):
        retrieval_metrics(QUERIES, CORPUS, [0, 1])
    with pytest.raises(CardioSTError, match=r"\[0, 5\)"):
        retrieval_metrics(QUERIES, CORPUS, [0, 1, 2, 5])
    with pytest.raises(CardioSTError, match="positive"):
        retrieval_metrics(QUERIES, CORPUS, RELEVANT, k_values=(0, 5))
    with pytest.raises(CardioSTError, match="'cosine' or 'dot'"):
        retrieval_metrics(QUERIES, CORPUS, RELEVANT, similarity="euclidean")
    with pytest.raises(CardioSTError, match="one positive each"):
        PairRetrievalEvaluator(["a", "b"], ["c"])


def test_docstring_examples():
    failures, tried = doctest.testmod(retrieval, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


# --- retrieval_metrics: brute-force reference ------------------------------------------------------


def _naive_metrics(queries, corpus, relevant, k_values, similarity):
    """Rank of the relevant row by a full sort of all scores (float64), ties by corpus row."""
    queries, corpus = queries.double(), corpus.double()
    if similarity == "cosine":
        queries = queries / queries.norm(dim=1, keepdim=True)
        corpus = corpus / corpus.norm(dim=1, keepdim=True)
    ranks = []
    for query, target in zip(queries, relevant):
        scores = [float(query @ document) for document in corpus]
        order = sorted(range(len(corpus)), key=lambda row: (-scores[row], row))
        ranks.append(order.index(target) + 1)
    top = max(k_values)
    metrics = {f"accuracy@{k}": sum(rank <= k for rank in ranks) / len(ranks) for k in sorted(k_values)}
    metrics[f"mrr@{top}"] = sum(1 / rank for rank in ranks if rank <= top) / len(ranks)
    metrics[f"ndcg@{top}"] = sum(1 / math.log2(rank + 1) for rank in ranks if rank <= top) / len(ranks)
    return metrics


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize(
    ("n_queries", "n_corpus", "k_values"), [(60, 40, (1, 3, 5, 10)), (20, 6, (1, 5, 10))]
)
def test_equals_brute_force_reference(similarity, n_queries, n_corpus, k_values):
    # Given seeded random embeddings with exact ties (duplicated corpus rows, some relevant to a query)
    generator = torch.Generator().manual_seed(n_queries + n_corpus)
    corpus = torch.randn(n_corpus, 8, generator=generator)
    copies = list(range(n_corpus // 2, n_corpus, 3))
    corpus[copies] = corpus[1].clone()  # copies of row 1 below it: row 1 outranks them on a tie
    relevant = torch.randint(0, n_corpus, (n_queries,), generator=generator)
    # queries near their relevant document, so ranks spread over 1..n rather than sitting at the bottom
    queries = corpus[relevant] + 1.5 * torch.randn(n_queries, 8, generator=generator)
    queries[:3] = corpus[1]
    relevant[:3] = torch.tensor([1, copies[0], copies[-1]])
    # When
    metrics = retrieval_metrics(queries, corpus, relevant.tolist(), k_values=k_values, similarity=similarity)
    # Then
    expected = _naive_metrics(queries, corpus, relevant.tolist(), k_values, similarity)
    assert list(metrics) == list(expected)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key
    assert 0 < metrics["accuracy@1"] < metrics[f"accuracy@{max(k_values)}"]  # the data is not trivial


# --- PairRetrievalEvaluator -------------------------------------------------------------------------


def test_equals_sentence_transformers_information_retrieval_evaluator(minilm, tmp_path):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    # Given real clinical pairs where many terms share one description
    corpus_ids: dict[str, str] = {}
    for positive in POSITIVES:
        corpus_ids.setdefault(positive, f"d{len(corpus_ids):03d}")  # id order = first appearance
    reference = InformationRetrievalEvaluator(
        queries={f"q{i}": anchor for i, anchor in enumerate(ANCHORS)},
        corpus={doc_id: text for text, doc_id in corpus_ids.items()},
        relevant_docs={f"q{i}": {corpus_ids[positive]} for i, positive in enumerate(POSITIVES)},
        name="icd10",
        accuracy_at_k=[1, 5, 10],
        precision_recall_at_k=[1],
        mrr_at_k=[10],
        ndcg_at_k=[10],
        map_at_k=[10],
    )
    evaluator = PairRetrievalEvaluator(ANCHORS, POSITIVES, name="icd10")
    # When
    expected = reference(minilm)
    metrics = evaluator(minilm, output_path=str(tmp_path))
    # Then the corpus holds each description once and every metric agrees
    assert len(evaluator.corpus) == len(corpus_ids) == 15 < len(ANCHORS)
    assert evaluator.primary_metric == "icd10_accuracy@1"
    assert evaluator.greater_is_better is True
    assert list(metrics) == [f"icd10_{key}" for key in METRICS]
    for key in METRICS:
        assert metrics[f"icd10_{key}"] == pytest.approx(expected[f"icd10_cosine_{key}"], abs=1e-6), key
    assert 0.3 < metrics["icd10_accuracy@1"] < 1  # MiniLM is good but not perfect here: a real test
    # and, like sentence-transformers' evaluators, it writes a CSV and fills the model card
    with open(tmp_path / "Pair-Retrieval_evaluation_icd10_results.csv") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["epoch", "steps", *METRICS]
    assert float(rows[1][2]) == pytest.approx(metrics["icd10_accuracy@1"])
    assert minilm.model_card_data.eval_results_dict[evaluator] == metrics


def test_from_dataset_uses_anchor_and_positive_or_the_first_two_columns():
    named = Dataset.from_dict({"id": ["1", "2"], "positive": ["p", "p"], "anchor": ["a", "b"]})
    evaluator = PairRetrievalEvaluator.from_dataset(named, k_values=(1, 3))
    assert evaluator.queries == ["a", "b"] and evaluator.corpus == ["p"] and evaluator.relevant == [0, 0]
    assert evaluator.name == "held-out" and evaluator.metric_names == [
        "accuracy@1",
        "accuracy@3",
        "mrr@3",
        "ndcg@3",
    ]
    unnamed = Dataset.from_dict(
        {"term": ["a", "a", "b"], "description": ["p", "q", "p"], "negative": ["x"] * 3}
    )
    evaluator = PairRetrievalEvaluator.from_dataset(unnamed, name="")
    # a repeated anchor is embedded once but stays one query per pair
    assert evaluator.queries == ["a", "b"] and evaluator.query_rows == [0, 0, 1]
    assert evaluator.corpus == ["p", "q"] and evaluator.relevant == [0, 1, 0]


def test_asymmetric_model_embeds_queries_and_documents_with_their_own_prompts(tiny_qwen3):
    # Given a model whose query prompt differs from its document prompt, and anchors equal to positives
    tiny_qwen3.prompts = {"query": "Instruct: Retrieve the ICD-10-CM description\nQuery:", "document": ""}
    texts = sorted(set(POSITIVES))
    evaluator = PairRetrievalEvaluator(texts, texts, name="asym")
    # When
    metrics = evaluator(tiny_qwen3)
    # Then it equals the metrics of embeddings made by hand with encode_query / encode_document
    queries = tiny_qwen3.encode_query(texts, convert_to_tensor=True)
    documents = tiny_qwen3.encode_document(texts, convert_to_tensor=True)
    by_hand = retrieval_metrics(queries, documents, list(range(len(texts))))
    assert metrics == {f"asym_{key}": pytest.approx(value, abs=1e-9) for key, value in by_hand.items()}
    # and not those of one encoder for both sides, where every text finds itself first
    symmetric = tiny_qwen3.encode(texts, convert_to_tensor=True)
    assert retrieval_metrics(symmetric, symmetric, list(range(len(texts))))["accuracy@1"] == 1.0
    assert metrics["asym_accuracy@1"] < 1.0


def test_reports_inside_sentence_transformer_trainer(tiny_qwen3, tmp_path):
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    # Given a 2-step run that evaluates after every step
    train = Dataset.from_dict({"anchor": ANCHORS[:8], "positive": POSITIVES[:8]})
    held_out = Dataset.from_dict({"anchor": ANCHORS[8:], "positive": POSITIVES[8:]})
    evaluator = PairRetrievalEvaluator.from_dataset(held_out)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="no",
        logging_steps=1,
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=tiny_qwen3,
        args=args,
        train_dataset=train,
        loss=MultipleNegativesRankingLoss(tiny_qwen3),
        evaluator=evaluator,
    )
    # When
    trainer.train()
    # Then each evaluation logs every metric with the trainer's eval_ prefix
    evaluations = [log for log in trainer.state.log_history if "eval_held-out_accuracy@1" in log]
    assert [log["step"] for log in evaluations] == [1, 2]
    for log in evaluations:
        for key in METRICS:
            assert 0.0 <= log[f"eval_held-out_{key}"] <= 1.0
    with open(tmp_path / "eval" / "Pair-Retrieval_evaluation_held-out_results.csv") as file:
        assert [row[1] for row in csv.reader(file)] == ["steps", "1", "2"]
