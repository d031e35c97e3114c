"""Models: the embedded default and the loader (cardio_st.models.default)."""

from cardio_st.models.default import DEFAULT_MODEL, ModelSource, embedded_models, load_model, resolve_model

__all__ = ["DEFAULT_MODEL", "ModelSource", "embedded_models", "load_model", "resolve_model"]
