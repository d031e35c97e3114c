"""An asymmetric retriever as sentence-transformers' own ``Router``: a small query encoder and a large
document encoder, bridged to one embedding space. Leaves out training (the CARE losses) and LoRA.

Why a function that returns the built-in ``Router``, not a subclass: sentence-transformers records
each module's class in ``modules.json`` and, since 6.0, loads classes outside its namespace only with
``trust_remote_code=True``. Everything the asymmetric router adds is made of built-in modules -- the
bridge is a ``Dense`` layer, the output a ``Normalize`` -- or does not need saving (which route is
frozen is a training-time setting). So the saved model is a plain Router folder that
``SentenceTransformer(path)`` reloads exactly, with ``encode_query`` running the query route only.
The one exception is a route with a LoRA adapter: a Router saves it adapter-only, and
sentence-transformers cannot load an adapter-only folder inside a Router (checked with 6.2), so
[save_asymmetric][cardio_st.modules.asymmetric_router.save_asymmetric] merges adapters before saving.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cardio_st.errors import CardioSTError
from cardio_st.modules.lora_transformer import merge_lora

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Module, Router

__all__ = ["asymmetric_router", "route_dimensions", "routed_with_adapter", "save_asymmetric"]


def _route(encoder: SentenceTransformer | Iterable[Module], which: str) -> list[Module]:
    from sentence_transformers.base.modules import Normalize, Router

    modules = list(encoder.children() if hasattr(encoder, "encode") else encoder)
    if not modules:
        raise CardioSTError(f"the {which} encoder has no modules: pass a SentenceTransformer or its modules")
    if any(isinstance(module, Router) for module in modules):
        raise CardioSTError(
            f"the {which} encoder is itself routed: pass a symmetric model (one Transformer stack)"
        )
    while modules and isinstance(modules[-1], Normalize):
        modules.pop()  # one Normalize goes at the very end, after the bridge
    return modules


def _dimension(modules: list[Module], which: str) -> int:
    for module in reversed(modules):
        for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
            dimension = getattr(module, name, lambda: None)()
            if dimension:
                return int(dimension)
    raise CardioSTError(f"cannot tell the {which} encoder's output dimension: end it with a Pooling module")


def asymmetric_router(
    query: SentenceTransformer | Iterable[Module],
    document: SentenceTransformer | Iterable[Module],
    *,
    bridge: Literal["truncate", "project"] = "truncate",
    freeze: Iterable[Literal["query", "document"]] = (),
) -> Router:
    """A ``Router`` whose ``"query"`` route is ``query``'s modules and ``"document"`` route is
    ``document``'s, each ending in ``Normalize`` so that both embed into one space of unit vectors.

    The two encoders may differ in width. ``bridge`` says how they meet:

    - ``"truncate"``: the document embedding keeps its first ``d`` components, ``d`` the query
      width (CARE's bridge; right for Matryoshka-trained document encoders such as
      Qwen3-Embedding). It is a frozen ``Dense`` layer holding the identity's first ``d`` rows, so
      it saves and reloads as a built-in module. Needs ``d`` at most the document width.
    - ``"project"``: a learned linear map (``Dense``, no bias, no activation) takes the query
      embedding to the document width. It starts as the identity padded with zeros, so before
      training a query embedding is the small encoder's own, padded. Right for a document encoder
      not trained for truncation (all-mpnet-base-v2).

    No bridge is added when the widths are equal. ``freeze`` turns off gradients of the named
    routes' encoder weights (``"document"`` for CARE's Stage I); a reloaded model is trainable again.
    The encoders' modules are taken as they are, not copied: training the router trains them.

    Args:
        query: The small online encoder: a symmetric SentenceTransformer or a list of its modules.
        document: The large offline encoder, the same way.
        bridge: ``"truncate"`` or ``"project"``.
        freeze: Routes whose weights do not train.

    Returns:
        A ``sentence_transformers`` Router; ``SentenceTransformer(modules=[router])`` is the model.
        Map the training columns to its routes with ``router_mapping`` (queries to ``"query"``,
        passages to ``"document"``).

    Raises:
        CardioSTError: for an unknown bridge or route, a query encoder wider than the document
            encoder under ``"truncate"``, or an encoder that is itself routed.

    Example:
        >>> import copy
        >>> from sentence_transformers import SentenceTransformer
        >>> from cardio_st.models.default import load_model
        >>> minilm, _ = load_model("minilm")
        >>> router = asymmetric_router(minilm, copy.deepcopy(minilm), freeze=["document"])
        >>> model = SentenceTransformer(modules=[router], device="cpu")
        >>> model.encode_query(["heart attack"]).shape
        (1, 384)
    """
    import torch
    from sentence_transformers.base.modules import Dense, Normalize, Router

    if bridge not in ("truncate", "project"):
        raise CardioSTError(f"unknown bridge {bridge!r}: use 'truncate' or 'project'")
    freeze = set(freeze)
    if freeze - {"query", "document"}:
        unknown = sorted(freeze - {"query", "document"})
        raise CardioSTError(f"unknown route(s) to freeze {unknown}: use 'query' or 'document'")
    query_modules, document_modules = _route(query, "query"), _route(document, "document")
    if {id(module) for module in query_modules} & {id(module) for module in document_modules}:
        raise CardioSTError(
            "the query and document encoders share modules (the same model passed twice?): "
            "pass copy.deepcopy(model) as one of them, so each route has its own weights"
        )
    for name, modules in (("query", query_modules), ("document", document_modules)):
        if name in freeze:
            for module in modules:
                module.requires_grad_(False)
    small, large = _dimension(query_modules, "query"), _dimension(document_modules, "document")
    if small != large and bridge == "truncate":
        if small > large:
            raise CardioSTError(
                f"the query encoder ({small} dimensions) is wider than the document encoder ({large}): "
                "truncation cannot widen; use `bridge='project'`"
            )
        cut = Dense(large, small, bias=False, activation_function=None, init_weight=torch.eye(small, large))
        cut.requires_grad_(False)
        document_modules.append(cut)
    elif small != large:
        pad = Dense(small, large, bias=False, activation_function=None, init_weight=torch.eye(large, small))
        if "query" in freeze:
            pad.requires_grad_(False)
        query_modules.append(pad)
    return Router.for_query_document(
        query_modules + [Normalize()], document_modules + [Normalize()], default_route="document"
    )


def route_dimensions(router: Router) -> dict[str, int]:
    """Output width of each route of a Router (after its bridge): ``{"query": d, "document": d}``."""
    return {name: _dimension(list(modules), name) for name, modules in router.sub_modules.items()}


def routed_with_adapter(model: SentenceTransformer) -> bool:
    """Whether ``model`` has a Router and a LoRA adapter somewhere: ``model.save`` would write a folder
    that sentence-transformers cannot reload, and
    [save_asymmetric][cardio_st.modules.asymmetric_router.save_asymmetric] is needed."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from sentence_transformers.base.modules import Router

    return any(isinstance(m, Router) for m in model.children()) and any(
        isinstance(m, BaseTunerLayer) for m in model.modules()
    )


def save_asymmetric(model: SentenceTransformer, path: str | os.PathLike[str]) -> Path:
    """Save a routed model so that plain ``SentenceTransformer(path)`` reloads it, LoRA routes included.

    A Router saves a route whose Transformer carries a PEFT adapter as an adapter-only folder, which
    sentence-transformers loads at the top level of a model but not inside a Router: the reload
    fails looking for the route's full weights. So the adapters are merged into full weights --
    in a copy: ``model`` keeps its adapter and can go on training -- and the copy is saved. Without
    an adapter this is ``model.save(path)``.

    Args:
        model: The model, typically ``SentenceTransformer(modules=[asymmetric_router(...)])``.
        path: Output folder.

    Returns:
        The folder written.

    Raises:
        CardioSTError: for an adapter over a quantized (8-bit / 4-bit) base, which cannot be merged
            without losing precision (see [merge_lora][cardio_st.modules.lora_transformer.merge_lora]).
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    if any(isinstance(module, BaseTunerLayer) for module in model.modules()):
        model = merge_lora(copy.deepcopy(model))
    model.save(os.fspath(path))
    return Path(path)
