"""Models: the embedded default and its loader, and recipes that assemble cardio-st's modules."""

from cardio_st.models.cardioembed import DEFAULT_BASE, DEFAULT_TASK, cardioembed, is_decoder, query_prompt
from cardio_st.models.default import DEFAULT_MODEL, ModelSource, embedded_models, load_model, resolve_model

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_MODEL",
    "DEFAULT_TASK",
    "ModelSource",
    "cardioembed",
    "embedded_models",
    "is_decoder",
    "load_model",
    "query_prompt",
    "resolve_model",
]
