"""The CARE retriever (arXiv 2604.10937) as a model: a small query encoder and a large document
encoder as one Router. Leaves out training (the stages live in cardio_st.training.care).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from cardio_st.errors import CardioSTError
from cardio_st.modules.asymmetric_router import asymmetric_router

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Router

__all__ = ["care_model", "care_router"]


def care_model(
    query: SentenceTransformer,
    document: SentenceTransformer,
    *,
    bridge: Literal["truncate", "project"] = "truncate",
    device: str | None = None,
) -> SentenceTransformer:
    """``SentenceTransformer(modules=[asymmetric_router(query, document, bridge=bridge)])``: the two
    encoders' modules become its query and document routes (see
    [asymmetric_router][cardio_st.modules.asymmetric_router.asymmetric_router])."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(modules=[asymmetric_router(query, document, bridge=bridge)], device=device)


def care_router(model: SentenceTransformer) -> Router:
    """The one Router of a CARE model, with its ``query`` and ``document`` routes; an error naming
    [care_model][cardio_st.models.care.care_model] for any other model."""
    from sentence_transformers.base.modules import Router

    routers = [module for module in model.children() if isinstance(module, Router)]
    if len(routers) != 1 or set(routers[0].sub_modules) != {"query", "document"}:
        raise CardioSTError(
            "CARE training needs a model whose one Router has a 'query' and a 'document' route: "
            "build it with care_model(query_encoder, document_encoder)"
        )
    return routers[0]

