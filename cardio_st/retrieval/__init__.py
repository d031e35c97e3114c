"""Retrieval: everything that ranks a corpus for a query.

- [base][cardio_st.retrieval.base]: what a retriever is (``Retriever``: ``fit``, ``topk``, ``search``,
  ``name``, ``fingerprint``), the ``Hit`` it returns, and what an embedding model is (``Encoder``).
- [exact][cardio_st.retrieval.exact]: exact nearest neighbours with ids and texts (``semantic_search``).
- [index][cardio_st.retrieval.index]: embedding indexes on disk, built resumably, keyed by the model.
- [lexical][cardio_st.retrieval.lexical]: BM25 and TF-IDF character n-grams.
- [named][cardio_st.retrieval.named]: a retriever by name (``bm25``, ``tfidf`` or a model).
- [fusion][cardio_st.retrieval.fusion]: hybrid dense + lexical ranking (score fusion, RRF).
- [documents][cardio_st.retrieval.documents]: your corpus as an index (``cardio-st index``), searched
  with a CARE model's query route alone; [encoders][cardio_st.retrieval.encoders]: what such an index
  records about its encoders.
- [queries][cardio_st.retrieval.queries]: query checks and the search over an index that documents and
  icd10 share.
- [expansion][cardio_st.retrieval.expansion]: abbreviations replaced by their readings before a query
  is embedded ("afib" -> "atrial fibrillation"), ambiguous ones read as the scope reads them.
- [icd10][cardio_st.retrieval.icd10]: ICD-10-CM semantic search (``cardio-st search``).

Names are imported on first use, so importing this package costs nothing until one is used.
"""

from cardio_st.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    [
        "base",
        "documents",
        "encoders",
        "exact",
        "expansion",
        "fusion",
        "icd10",
        "index",
        "lexical",
        "named",
        "queries",
    ],
    {
        "BM25Retriever": "lexical",
        "EmbeddingIndex": "index",
        "Encoder": "base",
        "Hit": "base",
        "QueryExpander": "expansion",
        "HybridRetriever": "fusion",
        "ICD10Search": "icd10",
        "IndexSearch": "documents",
        "TfidfCharRetriever": "lexical",
        "build_index": "index",
        "index_documents": "documents",
        "Retriever": "base",
        "load_retriever": "named",
        "model_fingerprint": "index",
        "normalized_score_fusion": "fusion",
        "reciprocal_rank_fusion": "fusion",
        "search_icd10": "icd10",
        "semantic_search": "exact",
    },
)
