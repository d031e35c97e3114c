"""CardioEmbed's held-out evaluation: each anchor retrieves its positive among all positives (accuracy@k,
MRR, nDCG). Leaves out graded or multiple relevance, precision/recall and MAP: one relevant document a query.

The protocol of arXiv 2511.10930 (99.60% accuracy@1 on 6,259 held-out pairs): every held-out anchor is a
query, the distinct held-out positives are the corpus, and the anchor's own positive is its only
relevant document. [retrieval_metrics][cardio_st.evaluation.retrieval.retrieval_metrics] computes the
metrics from embeddings; [PairRetrievalEvaluator][cardio_st.evaluation.retrieval.PairRetrievalEvaluator]
embeds the texts and plugs into ``SentenceTransformerTrainer`` like sentence-transformers' own evaluators.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
from sentence_transformers.base.evaluation import BaseEvaluator

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.exact import topk

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

__all__ = ["PairRetrievalEvaluator", "metrics_from_ranks", "rank_of_relevant", "retrieval_metrics"]

logger = logging.getLogger(__name__)

Similarity = Literal["cosine", "dot"]


def _check_similarity(similarity: str) -> None:
    if similarity not in ("cosine", "dot"):
        raise CardioSTError(f"unknown similarity {similarity!r}: use 'cosine' or 'dot'")


def rank_of_relevant(
    query_embeddings: Any,
    corpus_embeddings: Any,
    relevant: Sequence[int] | torch.Tensor,
    *,
    top_k: int = 10,
    similarity: Similarity = "cosine",
) -> torch.Tensor:
    """1-based rank of each query's relevant corpus row, searched exactly with
    [topk][cardio_st.utils.topk.topk].

    Among equal scores the lower corpus row ranks first (a duplicate of the relevant document stored
    before it outranks it), so ranks are reproducible on any machine and chunking.

    Args:
        query_embeddings: ``(n_queries, dim)`` tensor or array.
        corpus_embeddings: ``(n_corpus, dim)`` tensor or array.
        relevant: ``relevant[i]`` is the corpus row of query ``i``'s single relevant document.
        top_k: Depth searched; a relevant row ranked below it gets ``inf``.
        similarity: ``"cosine"`` or ``"dot"`` (raw inner product, no normalisation).

    Returns:
        A float64 tensor of ``n_queries`` ranks (1 = retrieved first), ``inf`` where the relevant row is
        not among the first ``top_k``. With ``inf``, ``1 / rank`` and ``1 / log2(rank + 1)`` are 0.
    """
    _check_similarity(similarity)
    n_queries, n_corpus = len(query_embeddings), len(corpus_embeddings)
    relevant = torch.as_tensor(relevant, dtype=torch.long).reshape(-1)
    if relevant.numel() != n_queries:
        raise CardioSTError(f"relevant has {relevant.numel()} entries for {n_queries} queries: give one each")
    if n_queries == 0:
        return torch.empty(0, dtype=torch.float64)
    if relevant.min() < 0 or relevant.max() >= n_corpus:
        raise CardioSTError(f"relevant rows must lie in [0, {n_corpus}), the corpus rows")
    _, indices = topk(query_embeddings, corpus_embeddings, top_k, normalize=similarity == "cosine")
    found = indices.cpu() == relevant.unsqueeze(1)
    positions = torch.arange(1, indices.shape[1] + 1, dtype=torch.float64).expand_as(found)
    return torch.where(found, positions, torch.inf).min(dim=1).values


def retrieval_metrics(
    query_embeddings: Any,
    corpus_embeddings: Any,
    relevant: Sequence[int] | torch.Tensor,
    *,
    k_values: Sequence[int] = (1, 5, 10),
    similarity: Similarity = "cosine",
) -> dict[str, float]:
    """Accuracy@k for each k, MRR and nDCG at the largest k, of single-relevant-document retrieval.

    With one relevant document, accuracy@k equals recall@k (hit rate), MRR@K is the mean of
    ``1 / rank`` over queries (0 beyond K) and nDCG@K the mean of ``1 / log2(rank + 1)`` (0 beyond K),
    exactly as sentence-transformers' ``InformationRetrievalEvaluator`` computes them. Ties are broken
    by corpus row (the lower row ranks first), see
    [rank_of_relevant][cardio_st.evaluation.retrieval.rank_of_relevant].

    Args:
        query_embeddings: ``(n_queries, dim)`` tensor or array.
        corpus_embeddings: ``(n_corpus, dim)`` tensor or array.
        relevant: ``relevant[i]`` is the corpus row of query ``i``'s relevant document.
        k_values: Cut-offs for accuracy; MRR and nDCG are reported at ``max(k_values)``.
        similarity: ``"cosine"`` (embeddings L2-normalised first) or ``"dot"``.

    Returns:
        ``{"accuracy@1": ..., "accuracy@5": ..., "accuracy@10": ..., "mrr@10": ..., "ndcg@10": ...}`` for the
        default ``k_values``, each in [0, 1].

    Example:
        >>> import torch
        >>> corpus = torch.eye(3)
        >>> queries = torch.tensor([[1.0, 0.5, 0.0], [1.0, 0.5, 0.0]])
        >>> retrieval_metrics(queries, corpus, [0, 1], k_values=(1, 2))
        {'accuracy@1': 0.5, 'accuracy@2': 1.0, 'mrr@2': 0.75, 'ndcg@2': 0.8154648767857288}
    """
    k_values = sorted({int(k) for k in k_values})
    if not k_values or k_values[0] < 1:
        raise CardioSTError(f"k_values must be positive integers, got {k_values}")
    if len(query_embeddings) == 0:
        raise CardioSTError("no queries to evaluate: give at least one (anchor, positive) pair")
    ranks = rank_of_relevant(
        query_embeddings, corpus_embeddings, relevant, top_k=k_values[-1], similarity=similarity
    )
    return metrics_from_ranks(ranks, k_values)


def metrics_from_ranks(ranks: torch.Tensor, k_values: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Accuracy@k for each k, MRR and nDCG at the largest k, from each query's rank of its one relevant
    document (1 = first, ``inf`` = beyond the cut-off), for any retriever that yields ranks."""
    k_values = sorted({int(k) for k in k_values})
    top = k_values[-1]
    ranks = torch.as_tensor(ranks, dtype=torch.float64)
    metrics = {f"accuracy@{k}": (ranks <= k).double().mean().item() for k in k_values}
    metrics[f"mrr@{top}"] = (1.0 / ranks).mean().item()
    metrics[f"ndcg@{top}"] = (1.0 / torch.log2(ranks + 1)).mean().item()
    return metrics


class PairRetrievalEvaluator(BaseEvaluator):
    """Held-out (anchor, positive) retrieval, CardioEmbed's protocol, as a sentence-transformers evaluator.

    Distinct positive texts form the corpus (several anchors may share a positive, e.g. many ICD-10-CM
    terms for one description); each anchor is a query whose only relevant document is its own
    positive. Anchors go through ``model.encode_query`` and positives through ``model.encode_document``,
    so query prompts (Qwen3-Embedding's instruction), asymmetric ``Router`` models and plain symmetric
    models are all scored as they are used. Results equal ``InformationRetrievalEvaluator``'s
    accuracy@k, MRR@10 and nDCG@10 on the same data; ties are broken by corpus row (order of first
    appearance of each positive) rather than by the order of document-id strings.

    The same anchor text paired with two different positives makes two queries, each with one
    relevant document, as in the paper; at most one of them can be at rank 1.

    Args:
        anchors: Query texts, one per pair.
        positives: The relevant document of each anchor.
        name: Dataset name; prefixes every metric (``"held-out"`` -> ``"held-out_accuracy@1"``).
        batch_size: Encoding batch size.
        k_values: Accuracy cut-offs; MRR and nDCG at the largest.
        similarity: ``"cosine"`` or ``"dot"``; by default the model's ``similarity_fn_name``.
        show_progress_bar: Show encoding progress.
        truncate_dim: Truncate embeddings to this many dimensions (Matryoshka models).
        write_csv: Append each call's metrics to ``output_path``'s CSV, like sentence-transformers does.

    Example:
        >>> from cardio_st.evaluation.retrieval import PairRetrievalEvaluator
        >>> evaluator = PairRetrievalEvaluator.from_dataset(data["eval"], name="held-out")  # doctest: +SKIP
        >>> evaluator(model)["held-out_accuracy@1"]  # doctest: +SKIP
        0.996
    """

    def __init__(
        self,
        anchors: Sequence[str],
        positives: Sequence[str],
        *,
        name: str = "",
        batch_size: int = 32,
        k_values: Sequence[int] = (1, 5, 10),
        similarity: Similarity | None = None,
        show_progress_bar: bool = False,
        truncate_dim: int | None = None,
        write_csv: bool = True,
    ) -> None:
        super().__init__()
        anchors, positives = list(anchors), list(positives)
        if len(anchors) != len(positives):
            raise CardioSTError(
                f"{len(anchors)} anchors for {len(positives)} positives: give one positive each"
            )
        if not anchors:
            raise CardioSTError("no (anchor, positive) pairs to evaluate")
        self.k_values = sorted({int(k) for k in k_values})
        if self.k_values[0] < 1:
            raise CardioSTError(f"k_values must be positive integers, got {list(k_values)}")
        if similarity is not None:
            _check_similarity(similarity)
        rows: dict[str, int] = {}
        self.relevant = [rows.setdefault(text, len(rows)) for text in positives]
        self.corpus = list(rows)
        # Duplicate anchors embed once; queries index back into the distinct texts.
        query_rows: dict[str, int] = {}
        self.query_rows = [query_rows.setdefault(text, len(query_rows)) for text in anchors]
        self.queries = list(query_rows)
        self.n_pairs = len(anchors)
        self.name = name
        self.batch_size = batch_size
        self.similarity = similarity
        self.show_progress_bar = show_progress_bar
        self.truncate_dim = truncate_dim
        self.write_csv = write_csv
        self.primary_metric = f"accuracy@{self.k_values[0]}"
        self.greater_is_better = True
        top = self.k_values[-1]
        self.metric_names = [*(f"accuracy@{k}" for k in self.k_values), f"mrr@{top}", f"ndcg@{top}"]
        self.csv_file = f"Pair-Retrieval_evaluation{'_' + name if name else ''}_results.csv"
        self.csv_headers = ["epoch", "steps", *self.metric_names]

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, *, name: str = "held-out", **kwargs: Any
    ) -> PairRetrievalEvaluator:
        """Build the evaluator from a dataset's ``anchor`` and ``positive`` columns, else its first two.

        Args:
            dataset: A ``datasets.Dataset`` of pairs (extra columns such as ``negative`` are ignored).
            name: Dataset name used as the metric prefix.
            **kwargs: Passed to the constructor (``batch_size``, ``k_values``, ``truncate_dim``, ...).
        """
        columns = dataset.column_names
        if {"anchor", "positive"} <= set(columns):
            anchor, positive = "anchor", "positive"
        elif len(columns) >= 2:
            anchor, positive = columns[:2]
        else:
            raise CardioSTError(f"the dataset has columns {columns}: need (anchor, positive) text columns")
        return cls(list(dataset[anchor]), list(dataset[positive]), name=name, **kwargs)

    def _similarity(self, model: SentenceTransformer) -> Similarity:
        similarity = self.similarity or model.similarity_fn_name
        if similarity not in ("cosine", "dot"):
            raise CardioSTError(
                f"the model's similarity is {similarity!r}; PairRetrievalEvaluator ranks by 'cosine' or "
                "'dot': pass similarity='cosine' or similarity='dot'"
            )
        return similarity

    def embed(self, model: SentenceTransformer) -> tuple[torch.Tensor, torch.Tensor]:
        """Query embeddings (one row per pair) and corpus embeddings (one row per distinct positive)."""
        options = {
            "batch_size": self.batch_size,
            "show_progress_bar": self.show_progress_bar,
            "convert_to_tensor": True,
            "truncate_dim": self.truncate_dim,
        }
        queries = model.encode_query(self.queries, **options)
        corpus = model.encode_document(self.corpus, **options)
        return queries[torch.as_tensor(self.query_rows, device=queries.device)], corpus

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Embed, retrieve and score; ``epoch`` and ``steps`` only label the log line and the CSV row.

        Returns:
            The metrics, each prefixed with ``name`` and ``_`` when a name is set.
        """
        where = ""
        if epoch != -1:
            where = f" after epoch {epoch}" if steps == -1 else f" in epoch {epoch} after {steps} steps"
        if self.truncate_dim is not None:
            where += f" (truncated to {self.truncate_dim})"
        logger.info("Pair retrieval evaluation on the %s dataset%s:", self.name or "unnamed", where)

        queries, corpus = self.embed(model)
        similarity = self._similarity(model)
        metrics = retrieval_metrics(
            queries, corpus, self.relevant, k_values=self.k_values, similarity=similarity
        )
        logger.info("Queries: %d, corpus: %d, similarity: %s", self.n_pairs, len(self.corpus), similarity)
        for key, value in metrics.items():
            logger.info("%s: %s", key, f"{value:.2%}" if key.startswith("accuracy") else f"{value:.4f}")

        if output_path is not None and self.write_csv:
            os.makedirs(output_path, exist_ok=True)
            csv_path = os.path.join(output_path, self.csv_file)
            new = not os.path.isfile(csv_path)
            with open(csv_path, "a", encoding="utf-8") as file:
                if new:
                    file.write(",".join(self.csv_headers) + "\n")
                file.write(",".join(map(str, [epoch, steps, *metrics.values()])) + "\n")

        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        """Settings recorded in the model card: those that change the numbers."""
        config: dict[str, Any] = {}
        if self.k_values != [1, 5, 10]:
            config["k_values"] = self.k_values
        for key in ("similarity", "truncate_dim"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config
