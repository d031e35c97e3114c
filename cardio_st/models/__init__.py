"""Models: the embedded default and its loader, and recipes that assemble cardio-st's modules."""

from cardio_st.models.cardioembed import DEFAULT_BASE, DEFAULT_TASK, cardioembed, is_decoder, query_prompt
from cardio_st.models.default import (
    DEFAULT_MODEL,
    ICD10_MINILM,
    ModelSource,
    embedded_models,
    export_model,
    load_model,
    resolve_model,
)

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_MODEL",
    "DEFAULT_TASK",
    "ICD10_MINILM",
    "ModelSource",
    "cardioembed",
    "embedded_models",
    "export_model",
    "is_decoder",
    "load_model",
    "query_prompt",
    "resolve_model",
]
