"""cardio-st: domain-specialised clinical text embeddings on top of sentence-transformers.

Every subpackage is an attribute (``cardio_st.models``, ``cardio_st.retrieval``, ...) and the most
used names are re-exported here, all lazily: ``import cardio_st`` (and ``cardio-st --help``) imports
neither torch nor sentence-transformers until a name that needs them is used. The layers, and which
way each may import, are drawn in ``docs/design.md``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cardio_st.utils.lazy import attach


class _NoKernelsHintAtImport(logging.Filter):
    """Drop bitsandbytes' import-time hint that its optional ``kernels`` package is missing.

    peft imports bitsandbytes whenever it is installed, so every use of sentence-transformers printed
    "Failed to load CPU gemm_4bit_forward from kernels-community", although nothing was quantized.
    The hint matters only for 4-bit models on a CPU, and cardio-st gives it there
    (cardio_st.modules.lora_transformer). Installed before sentence-transformers is imported.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to load CPU gemm_4bit_forward")


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_NoKernelsHintAtImport())

__version__ = "0.1.0"

#: Every subpackage and top-level module, each reachable as an attribute of ``cardio_st``.
SUBPACKAGES = [
    "citations", "cli", "compat", "data", "errors", "evaluation", "hub", "labelling", "llm", "losses",
    "models", "modules", "retrieval", "training", "utils",
]

_EXPORTS = {
    "CardioSTError": "errors",
    "EmbeddingIndex": "retrieval.index",
    "Hit": "retrieval.base",
    "ICD10Code": "data.icd10_codes",
    "ICD10Search": "retrieval.icd10",
    "IndexSearch": "retrieval.documents",
    "build_index": "retrieval.index",
    "convert": "models.conversion",
    "evaluate_labelled": "evaluation.graded",
    "export_model": "models.default",
    "index_documents": "retrieval.documents",
    "is_held_out": "data.icd10_codes",
    "label_corpus": "labelling.pipeline",
    "load": "models.loader",
    "load_codes": "data.icd10_codes",
    "load_documents": "data.documents",
    "load_model": "models.loader",
    "make_judge": "labelling.judges",
    "model_fingerprint": "retrieval.index",
    "push_to_hub": "hub.push",
    "search_icd10": "retrieval.icd10",
    "semantic_search": "retrieval.exact",
}

__getattr__, __dir__, _names = attach(__name__, SUBPACKAGES, _EXPORTS)
__all__ = ["__version__", *_names]

if TYPE_CHECKING:
    from cardio_st.data.documents import load_documents
    from cardio_st.data.icd10_codes import ICD10Code, is_held_out, load_codes
    from cardio_st.errors import CardioSTError
    from cardio_st.evaluation.graded import evaluate_labelled
    from cardio_st.hub.push import push_to_hub
    from cardio_st.labelling.judges import make_judge
    from cardio_st.labelling.pipeline import label_corpus
    from cardio_st.models.conversion import convert
    from cardio_st.models.default import export_model
    from cardio_st.models.loader import load, load_model
    from cardio_st.retrieval.base import Hit
    from cardio_st.retrieval.documents import IndexSearch, index_documents
    from cardio_st.retrieval.exact import semantic_search
    from cardio_st.retrieval.icd10 import ICD10Search, search_icd10
    from cardio_st.retrieval.index import EmbeddingIndex, build_index, model_fingerprint
