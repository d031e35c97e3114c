"""Models: what a model name means (names), one loader for names, folders, Hub ids and raw adapters
(loader), the embedded models and the default (embedded, default), recipes that assemble cardio-st's
modules (CardioEmbed, CARE), the routes of a saved Router, conversion of raw adapters into folders, and
the training record and model card every saved model carries.

The names below are eager and torch-free (resolving a model name imports neither torch nor
sentence-transformers); the other submodules are imported on first use.
"""

from cardio_st.models.cardioembed import DEFAULT_BASE, DEFAULT_TASK, cardioembed, is_decoder, query_prompt
from cardio_st.models.default import export_model
from cardio_st.models.embedded import DEFAULT_MODEL, ICD10_MINILM, embedded_models
from cardio_st.models.loader import ModelSource, load, load_model, resolve_model
from cardio_st.utils.lazy import attach

__getattr__, __dir__, _lazy = attach(
    __name__,
    ["build", "card", "card_sections", "care", "conversion", "names", "record", "routes"],
    {"care_model": "care", "convert": "conversion", "load_route": "routes"},
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
    "load",
    "load_model",
    "query_prompt",
    "resolve_model",
    *_lazy,
]
