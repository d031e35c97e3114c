"""cardio-st: domain-specialised clinical text embeddings on top of sentence-transformers.

The public API is re-exported here lazily, so ``import cardio_st`` (and ``cardio-st --help``)
does not import torch until a name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "CardioSTError": "cardio_st.errors",
    "EmbeddingIndex": "cardio_st.index",
    "Hit": "cardio_st.search",
    "ICD10Code": "cardio_st.data.icd10",
    "ICD10Search": "cardio_st.icd10_search",
    "IndexSearch": "cardio_st.document_index",
    "build_index": "cardio_st.index",
    "convert": "cardio_st.conversion",
    "evaluate_labelled": "cardio_st.evaluation.graded",
    "export_model": "cardio_st.models.default",
    "index_documents": "cardio_st.document_index",
    "is_held_out": "cardio_st.data.icd10",
    "label_corpus": "cardio_st.data.labelling",
    "load": "cardio_st.conversion",
    "load_codes": "cardio_st.data.icd10",
    "load_documents": "cardio_st.data.documents",
    "load_model": "cardio_st.models.default",
    "make_judge": "cardio_st.data.judges",
    "model_fingerprint": "cardio_st.index",
    "push_to_hub": "cardio_st.hub",
    "search_icd10": "cardio_st.icd10_search",
    "semantic_search": "cardio_st.search",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:
    from cardio_st.conversion import convert, load
    from cardio_st.data.documents import load_documents
    from cardio_st.data.icd10 import ICD10Code, is_held_out, load_codes
    from cardio_st.data.judges import make_judge
    from cardio_st.data.labelling import label_corpus
    from cardio_st.document_index import IndexSearch, index_documents
    from cardio_st.errors import CardioSTError
    from cardio_st.evaluation.graded import evaluate_labelled
    from cardio_st.hub import push_to_hub
    from cardio_st.icd10_search import ICD10Search, search_icd10
    from cardio_st.index import EmbeddingIndex, build_index, model_fingerprint
    from cardio_st.models.default import export_model, load_model
    from cardio_st.search import Hit, semantic_search


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cardio_st' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
