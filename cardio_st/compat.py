"""Where cardio-st depends on private details of sentence-transformers and transformers, for want of a
public API: each dependence named once, here, and pinned by ``tests/test_compat.py``, which fails
loudly when upstream changes one. Leaves out everything a public API does (use that instead).

The four dependences, and why no public path exists (checked with sentence-transformers 6.3 and
transformers 5.23):

- A model loaded from a folder re-saves that folder's ``README.md`` unless it was trained (the private
  ``_model_card_text``); an evaluator that adds results must make it render the card afresh:
  [forget_loaded_card][cardio_st.compat.forget_loaded_card].
- A saved card is plain markdown: enriching a card that is already on disk (``cardio-st push`` of a
  folder) edits text that sentence-transformers' template (``model_card_template.md``) rendered. The
  template's landmarks that cardio-st edits are the ``CARD_*`` names below.
- Loading one route of a saved ``Router`` (``Router.load`` loads every route): the Router's saved
  layout (``ROUTER_CONFIG``: ``types``, ``structure``) and the way ``Router.load`` loads each module,
  [load_router_module][cardio_st.compat.load_router_module].
- transformers 5's ``load_adapter`` registers checkpoint key renamings on the model (the private
  ``_weight_conversions``) that corrupt a merged model's save:
  [drop_adapter_key_renamings][cardio_st.compat.drop_adapter_key_renamings].
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = [
    "CARD_ARCHITECTURE",
    "CARD_MODEL_ID",
    "CARD_PROMPTED_SECTIONS",
    "CARD_SAMPLES",
    "CARD_TITLE",
    "CARD_TRAINED_WITHOUT_BASE",
    "CARD_USAGE_HEADING",
    "ROUTER_CONFIG",
    "ROUTER_TYPES",
    "adapter_key_renamings",
    "card_prompted_section",
    "card_unknown_detail",
    "drop_adapter_key_renamings",
    "forget_loaded_card",
    "load_router_module",
]

# --------------------------------------------------------------------------- the loaded card


def forget_loaded_card(model: Any) -> None:
    """Make ``model.save`` render its card from its card data instead of re-saving the card it was
    loaded with.

    sentence-transformers keeps the ``README.md`` a model was loaded from and writes it back on save
    unless the model was trained; results that an evaluator stores in the card data would not show.
    """
    if getattr(model, "_model_card_text", None):
        model._model_card_text = None


# --------------------------------------------------------------------------- the card template

#: The repository id the template's usage snippet shows when the model has none.
CARD_MODEL_ID = "sentence_transformers_model_id"
#: The template's default title: ``model_card_data.get_default_model_name()`` as a heading.
CARD_TITLE = r"^# SentenceTransformer( based on \S+)?$"
#: The end of the template's first sentence for a model with no known base and no named datasets.
CARD_TRAINED_WITHOUT_BASE = "(https://www.SBERT.net) model trained."
#: The heading of the template's usage snippet; the subsection ends at the next heading or ``<!--``.
CARD_USAGE_HEADING = "### Direct Usage (Sentence Transformers)"
#: The template's architecture subsection (the model's ``repr`` in a code fence).
CARD_ARCHITECTURE = r"^### Full Model Architecture\n\n```\n.*?\n```\n"
#: The line that opens a dataset's example rows (an indented table follows it).
CARD_SAMPLES = "* Samples:"
#: Sections the template leaves as commented-out prompts for the author to fill in.
CARD_PROMPTED_SECTIONS = ("### Out-of-Scope Use", "## Bias, Risks and Limitations", "### Recommendations")


def card_unknown_detail(label: str) -> str:
    """The regex of the commented-out line the template writes for a model detail it does not know
    (``label``: ``"Base model"``, ``"Language"``, ``"License"``)."""
    return rf"^<!-- - \*\*{re.escape(label)}:\*\* (\[Unknown\]\(.*?\)|Unknown) -->$"


def card_prompted_section(heading: str) -> str:
    """The regex of the template's commented-out prompt for the section ``heading`` (one of
    ``CARD_PROMPTED_SECTIONS``), with the blank lines after it."""
    return rf"<!--\n{re.escape(heading)}\n.*?-->\n+"


# --------------------------------------------------------------------------- a Router's saved layout

#: How ``modules.json`` names a Router (the class's module path, and its pre-6.0 alias).
ROUTER_TYPES = ("sentence_transformers.base.modules.router.Router", "sentence_transformers.models.Router")
#: The Router's own file in its folder: ``{"types": {id: class}, "structure": {route: [id, ...]},
#: "parameters": {...}}``, each module saved in the subfolder named by its id.
ROUTER_CONFIG = "router_config.json"


def load_router_module(folder: str | Path, subfolder: str, type_name: str) -> Any:
    """Load one module of a saved model from ``folder/subfolder`` as ``Router.load`` loads each of its
    modules: the class named ``type_name``, its ``load`` given the folder and the subfolder, or the
    module's own folder for a ``load`` that takes no subfolder."""
    from sentence_transformers.util import import_module_class

    module_class = import_module_class(type_name, model_name_or_path=str(folder))
    try:
        return module_class.load(str(folder), subfolder=subfolder, local_files_only=True)
    except TypeError:  # modules whose load() takes the folder only
        return module_class.load(str(Path(folder) / subfolder))


# --------------------------------------------------------------------------- transformers' adapter loading

_ADAPTER_RENAMING_MARKERS = ("base_model.model.", "lora_")


def _is_adapter_renaming(conversion: Any) -> bool:
    return any(marker in repr(conversion) for marker in _ADAPTER_RENAMING_MARKERS)


def adapter_key_renamings(auto_model: Any) -> list[Any]:
    """The key renamings that loading a PEFT adapter file registered on a transformers model."""
    return [c for c in getattr(auto_model, "_weight_conversions", None) or [] if _is_adapter_renaming(c)]


def drop_adapter_key_renamings(auto_model: Any) -> None:
    """Forget the key renamings that loading an adapter file registered on ``auto_model``.

    transformers 5's ``load_adapter`` appends PEFT's checkpoint renamings (``base_model.model.`` ->
    ``""``, ``lora_A`` -> ``lora_A.<adapter>``) to the model's ``_weight_conversions``, and
    ``save_pretrained`` applies them in reverse: once the adapter is merged, the full weights would be
    saved as ``base_model.model.*`` keys that no loader maps back.
    """
    conversions = getattr(auto_model, "_weight_conversions", None)
    if conversions:
        auto_model._weight_conversions = [c for c in conversions if not _is_adapter_renaming(c)]
