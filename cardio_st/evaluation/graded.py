"""Graded retrieval metrics on a labelled corpus, CMedTEB's: nDCG@10, MAP@10 and MRR@10 over 0-3 relevance
labels, computed as trec_eval (and so mteb) computes them. Leaves out making the labels
(cardio_st.labelling.pipeline).

Conventions (trec_eval's): nDCG's gain is the grade itself with a ``log2(rank + 1)`` discount, the ideal
ranking being the query's labelled passages sorted by grade; a passage is relevant for MAP and MRR when its
grade is 1 or more; MAP@k divides by all of the query's relevant passages, not by k; an unlabelled passage
counts as not relevant (pooling's assumption). Queries without any relevant passage are left out: no
ranking can score on them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cardio_st.errors import CardioSTError
from cardio_st.labelling.dataset import load_labelled
from cardio_st.retrieval.base import Encoder, Retriever
from cardio_st.retrieval.exact import semantic_search

__all__ = ["evaluate_labelled", "graded_metrics"]


def graded_metrics(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int = 10
) -> dict[str, float]:
    """Mean nDCG@k, MAP@k and MRR@k of ``rankings`` (passage ids per query, best first) against graded
    ``qrels`` (grade per passage id per query), over the queries with at least one relevant passage.

    Example:
        >>> rankings = {"q1": ["a", "b", "c"], "q2": ["x", "y"]}
        >>> qrels = {"q1": {"b": 3, "c": 1}, "q2": {"x": 0}}
        >>> metrics = graded_metrics(rankings, qrels)
        >>> round(metrics["mrr@10"], 4), metrics["queries"]  # q2 has nothing relevant: left out
        (0.5, 1.0)
    """
    ndcg, average_precision, reciprocal_rank = [], [], []
    for query_id, labels in qrels.items():
        relevant = {doc for doc, grade in labels.items() if grade > 0}
        if not relevant:
            continue
        ranked = list(rankings.get(query_id, []))[:k]
        gains = [labels.get(doc, 0) for doc in ranked]
        dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains))
        ideal = sorted((grade for grade in labels.values() if grade > 0), reverse=True)[:k]
        ndcg.append(dcg / sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal)))
        hits, precision_sum = 0, 0.0
        for rank, doc in enumerate(ranked, start=1):
            if doc in relevant:
                hits += 1
                precision_sum += hits / rank
        average_precision.append(precision_sum / len(relevant))
        first = next((rank for rank, doc in enumerate(ranked, start=1) if doc in relevant), None)
        reciprocal_rank.append(1 / first if first else 0.0)
    if not ndcg:
        raise CardioSTError("no query has a relevant passage (grade 1 or more): there is nothing to score")
    n = len(ndcg)
    return {
        f"ndcg@{k}": sum(ndcg) / n,
        f"map@{k}": sum(average_precision) / n,
        f"mrr@{k}": sum(reciprocal_rank) / n,
        "queries": float(n),
    }


def evaluate_labelled(
    model: Any, folder: str | os.PathLike, *, k: int = 10, batch_size: int = 64
) -> dict[str, float]:
    """Score an embedding model (an [Encoder][cardio_st.retrieval.base.Encoder]) or a lexical retriever
    (a [Retriever][cardio_st.retrieval.base.Retriever]) on a labelled dataset
    ([load_labelled][cardio_st.labelling.dataset.load_labelled]): every query searches the whole
    corpus; the metrics are [graded_metrics][cardio_st.evaluation.graded.graded_metrics]'."""
    queries, corpus, qrels = load_labelled(folder)
    query_ids, doc_ids = list(queries), list(corpus)
    if isinstance(model, Encoder):
        options = {"convert_to_tensor": True, "batch_size": batch_size, "show_progress_bar": False}
        documents = model.encode_document(list(corpus.values()), **options)
        hits = semantic_search(model.encode_query(list(queries.values()), **options), documents, top_k=k)
        ranked = [[doc_ids[hit.corpus_id] for hit in row] for row in hits]
    elif isinstance(model, Retriever):
        _, indices = model.fit(list(corpus.values())).topk(list(queries.values()), k)
        ranked = [[doc_ids[int(i)] for i in row] for row in indices]
    else:
        raise CardioSTError(
            f"cannot evaluate a {type(model).__name__}: pass a SentenceTransformer or a retriever"
        )
    return graded_metrics(dict(zip(query_ids, ranked)), {q: qrels.get(q, {}) for q in query_ids}, k)
