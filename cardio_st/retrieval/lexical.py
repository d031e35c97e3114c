"""Lexical baselines for ICD-10-CM retrieval: TF-IDF over character n-grams and Okapi BM25 over words,
with exact, chunked top-k (ties by corpus row). Leaves out stemming, stop words and hybrid scoring.

Both are [Retriever][cardio_st.retrieval.base.Retriever]s (``fit(corpus)`` / ``topk(queries, k)`` /
``search``, a ``name`` and a ``fingerprint``), and add ``scores(queries)``, every document's score.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.base import Retriever

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix
    from typing_extensions import Self

__all__ = ["LEXICAL_RETRIEVERS", "BM25Retriever", "TfidfCharRetriever", "tokenize"]

_TOKEN_RE = re.compile(r"[^\W_]+")  # runs of letters and digits (any script), no underscores


def tokenize(text: str) -> list[str]:
    """Lowercase alphanumeric word tokens, digits kept: ``"Type 2 diabetes, NOS"`` ->
    ``["type", "2", "diabetes", "nos"]``."""
    return _TOKEN_RE.findall(text.lower())


def _ordered_topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row, ordered by score descending and, among equal scores, by column ascending.

    ``argpartition`` finds the k-th best score of a row in linear time; every column above it, then
    the lowest columns equal to it, make the row's top k. Cheaper than a full sort of a 75k-wide row.
    """
    n_rows, n_columns = scores.shape
    k = min(k, n_columns)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
    indices = np.empty((n_rows, k), dtype=np.int64)
    for row in range(n_rows):
        values = scores[row]
        above = np.flatnonzero(values > kth[row])
        tied = np.flatnonzero(values == kth[row])[: k - above.size]
        candidates = np.concatenate([above, tied])
        indices[row] = candidates[np.lexsort((candidates, -values[candidates]))]
    return np.take_along_axis(scores, indices, axis=1), indices


class _SparseRetriever(Retriever):
    """Shared scoring of a sparse query matrix against a fitted sparse document matrix."""

    _documents: csr_matrix | None = None

    def _query_matrix(self, queries: Sequence[str]) -> csr_matrix:
        raise NotImplementedError

    def _check_fitted(self, queries: Sequence[str]) -> list[str]:
        if self._documents is None:
            raise CardioSTError(f"{type(self).__name__} is not fitted: call fit(corpus) before searching")
        if isinstance(queries, str):
            queries = [queries]
        return list(queries)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """Scores of every query against every document.

        Memory: a dense ``(n_queries, n_corpus)`` float32 matrix, 4 bytes a cell (152 x 1,427 is under
        1 MB; 3,224 x 74,714 would be about 1 GB -- use ``topk`` for large cases).

        Returns:
            ``(n_queries, n_corpus)`` float32 array.
        """
        queries = self._check_fitted(queries)
        if not queries:
            return np.zeros((0, self._documents.shape[0]), dtype=np.float32)
        return np.asarray((self._query_matrix(queries) @ self._documents.T).toarray(), dtype=np.float32)

    def topk(
        self, queries: Sequence[str], k: int = 10, *, query_chunk_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` documents of each query, exact.

        Queries are scored ``query_chunk_size`` at a time, so memory stays at about
        ``query_chunk_size x n_corpus x 4`` bytes (256 x 74,714: 77 MB) whatever the number of queries.
        Each query's scores do not depend on the chunk it is in, so results equal ``scores()`` followed
        by a sort.

        Returns:
            ``(scores, indices)``, both ``(n_queries, min(k, n_corpus))``; each row ordered by score
            descending and, among equal scores, by corpus row ascending.
        """
        queries = self._check_fitted(queries)
        if k < 1:
            raise CardioSTError(f"k must be at least 1, got {k}")
        if query_chunk_size < 1:
            raise CardioSTError(f"query_chunk_size must be at least 1, got {query_chunk_size}")
        width = min(k, self._documents.shape[0])
        all_scores = [np.zeros((0, width), dtype=np.float32)]
        all_indices = [np.zeros((0, width), dtype=np.int64)]
        for start in range(0, len(queries), query_chunk_size):
            chunk_scores, chunk_indices = _ordered_topk(
                self.scores(queries[start : start + query_chunk_size]), width
            )
            all_scores.append(chunk_scores)
            all_indices.append(chunk_indices)
        return np.concatenate(all_scores), np.concatenate(all_indices)


class TfidfCharRetriever(_SparseRetriever):
    """TF-IDF over character n-grams within word boundaries, ranked by cosine similarity.

    scikit-learn's ``TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
    lowercase=True)``: rows are L2-normalised, so the dot product of a query and a document is their
    cosine. Character n-grams match spelling variants and word fragments ("cardiomyopathy" against
    "myocardial") that word tokens miss. scikit-learn is imported on ``fit``.

    Args:
        ngram_range: Smallest and largest n-gram length.

    Example:
        >>> retriever = TfidfCharRetriever().fit(["Acute myocardial infarction", "Atrial fibrillation"])
        >>> retriever.topk(["atrial fibrilation"], k=1)[1].tolist()
        [[1]]
    """

    similarity = "cosine"

    def __init__(self, ngram_range: tuple[int, int] = (3, 5)) -> None:
        self.ngram_range = tuple(ngram_range)
        self._vectorizer = None

    @property
    def name(self) -> str:
        """``tfidf-char-3-5`` for the default n-gram range."""
        return f"tfidf-char-{self.ngram_range[0]}-{self.ngram_range[1]}"

    def get_config_dict(self) -> dict[str, Any]:
        """The settings behind ``fingerprint``: the n-gram range (the vectorizer's other options are
        fixed)."""
        return {"ngram_range": list(self.ngram_range)}

    def fit(self, corpus: Sequence[str]) -> Self:
        """Learn the n-gram vocabulary and IDF of ``corpus`` and index its documents."""
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer
        except ImportError as error:
            raise CardioSTError(
                "TF-IDF retrieval needs scikit-learn: pip install scikit-learn", exit_code=1
            ) from error
        corpus = list(corpus)
        if not corpus:
            raise CardioSTError("cannot fit on an empty corpus: pass at least one document")
        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            sublinear_tf=True,
            lowercase=True,
            dtype=np.float32,
        )
        self._documents = self._vectorizer.fit_transform(corpus).tocsr()
        self.corpus = corpus
        return self

    def _query_matrix(self, queries: Sequence[str]) -> csr_matrix:
        return self._vectorizer.transform(queries).tocsr()


class BM25Retriever(_SparseRetriever):
    """Okapi BM25 over lowercase alphanumeric word tokens (digits kept; no stemming, no stop words).

    ``score(q, d) = sum over query tokens t of idf(t) * tf(t, d) * (k1 + 1) /
    (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))`` with ``idf(t) = ln((N - n(t) + 0.5) / (n(t) + 0.5) + 1)``
    (the Lucene form, never negative). A token repeated in the query counts once per occurrence, as in
    the sum over query terms of the original formula; tokens absent from the corpus add nothing.
    The per-document weights are precomputed into a sparse matrix, so scoring is one sparse product.

    Args:
        k1: Term-frequency saturation.
        b: Document-length normalisation (0 = none, 1 = full).

    Example:
        >>> retriever = BM25Retriever().fit(["Acute myocardial infarction", "Atrial fibrillation"])
        >>> retriever.topk(["fibrillation of the atrium"], k=1)[1].tolist()
        [[1]]
    """

    similarity = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise CardioSTError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1 = k1
        self.b = b
        self._vocabulary: dict[str, int] = {}

    @property
    def name(self) -> str:
        """``bm25``."""
        return "bm25"

    def get_config_dict(self) -> dict[str, Any]:
        """The settings behind ``fingerprint``: ``k1`` and ``b``."""
        return {"k1": self.k1, "b": self.b}

    def fit(self, corpus: Sequence[str]) -> Self:
        """Count the tokens of ``corpus`` and precompute each document's BM25 term weights."""
        from scipy.sparse import csr_matrix

        corpus = list(corpus)
        documents = [tokenize(text) for text in corpus]
        if not documents:
            raise CardioSTError("cannot fit on an empty corpus: pass at least one document")
        vocabulary: dict[str, int] = {}
        rows, columns, counts = [], [], []
        for row, tokens in enumerate(documents):
            for token, count in Counter(tokens).items():
                rows.append(row)
                columns.append(vocabulary.setdefault(token, len(vocabulary)))
                counts.append(count)
        n_documents = len(documents)
        tf = np.asarray(counts, dtype=np.float64)
        rows_array = np.asarray(rows, dtype=np.int64)
        columns_array = np.asarray(columns, dtype=np.int64)
        lengths = np.asarray([len(tokens) for tokens in documents], dtype=np.float64)
        average_length = lengths.mean() if lengths.mean() > 0 else 1.0
        document_frequency = np.bincount(columns_array, minlength=len(vocabulary)).astype(np.float64)
        idf = np.log((n_documents - document_frequency + 0.5) / (document_frequency + 0.5) + 1.0)
        norm = self.k1 * (1.0 - self.b + self.b * lengths[rows_array] / average_length)
        weights = idf[columns_array] * tf * (self.k1 + 1.0) / (tf + norm)
        self._vocabulary = vocabulary
        self._idf = idf
        self._documents = csr_matrix(
            (weights.astype(np.float32), (rows_array, columns_array)), shape=(n_documents, len(vocabulary))
        )
        self.corpus = corpus
        return self

    def _query_matrix(self, queries: Sequence[str]) -> csr_matrix:
        from scipy.sparse import csr_matrix

        rows, columns, counts = [], [], []
        for row, query in enumerate(queries):
            for token, count in Counter(tokenize(query)).items():
                if token in self._vocabulary:
                    rows.append(row)
                    columns.append(self._vocabulary[token])
                    counts.append(count)
        return csr_matrix(
            (np.asarray(counts, dtype=np.float32), (rows, columns)),
            shape=(len(queries), len(self._vocabulary)),
        )


#: The lexical retrievers by the names the CLI and the labelling pipeline accept (``--model bm25``).
LEXICAL_RETRIEVERS: dict[str, type[_SparseRetriever]] = {"bm25": BM25Retriever, "tfidf": TfidfCharRetriever}
