"""Model cards that say what cardio-st knows: sentence-transformers' own card, enriched with the base
model, LoRA and quantization settings, training data, losses, a loading snippet that works, intended
use and clinical limitations. Leaves out the record (record), the sections' wording (card_sections),
uploading (cardio_st.hub.push) and measuring anything: every number in a card comes from the run that
recorded it (the trainer's card data or ``cardio_st.json``).

Why enrich sentence-transformers' card instead of writing one: the card that sentence-transformers
writes when a model is trained or evaluated already carries the recorded evidence -- dataset sizes and
samples, each loss with its parameters and citation, hyperparameters, training logs, every evaluator's
results as a table and as ``model-index`` metadata. cardio-st keeps all of it and adds, between
``<!-- cardio-st:NAME -->`` markers (so enriching twice changes nothing), what sentence-transformers
cannot know: the base model's Hub id, the adapter and the quantization it was trained over, the
prompts, how to load it, and what it must not be used for. A card generated here gets what the card
data can hold (name, base, language, licence) through sentence-transformers' card data; a card already
on disk is edited where sentence-transformers' template left placeholders (named in cardio_st.compat).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.compat import (
    CARD_ARCHITECTURE,
    CARD_MODEL_ID,
    CARD_PROMPTED_SECTIONS,
    CARD_SAMPLES,
    CARD_TITLE,
    CARD_TRAINED_WITHOUT_BASE,
    CARD_USAGE_HEADING,
    card_prompted_section,
    card_unknown_detail,
)
from cardio_st.models.card_sections import INTENDED_USE, citations, details_table, hub_link, usage_snippet
from cardio_st.models.record import CardFacts, lora_settings, read_record
from cardio_st.models.routes import read_layout
from cardio_st.utils.files import replace_file
from cardio_st.utils.hub import known_hub_id

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "CardFacts",
    "card_facts",
    "enrich_card",
    "generate_card",
    "is_adapter_folder",
    "read_card_metadata",
    "shows_samples",
    "transformer_folders",
    "write_model_card",
]

_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


# --------------------------------------------------------------------------- facts from a folder


def transformer_folders(folder: Path) -> list[Path]:
    """The folders of a saved model's Transformer modules, Router routes included."""
    layout = read_layout(folder)
    found = [folder / entry["path"] for entry in layout.modules if entry["type"].endswith(".Transformer")]
    if layout.router is not None:
        base = folder / layout.modules[layout.router]["path"]
        found += [
            base / key
            for key, kind in layout.router_config.get("types", {}).items()
            if kind.endswith(".Transformer")
        ]
    return found


def is_adapter_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a PEFT adapter and no full weights."""
    return (folder / "adapter_config.json").is_file() and not any(
        (folder / n).exists() for n in _WEIGHT_FILES
    )


def card_facts(
    folder: str | os.PathLike,
    *,
    repo_id: str | None = None,
    base_model_id: str | list[str] | None = None,
    datasets: list[str] | tuple[str, ...] = (),
    license: str | None = None,
    language: str | list[str] | None = None,
    samples: bool = True,
) -> CardFacts:
    """Read a saved model folder's facts for its card, without loading any weights.

    The base models are, first found: ``base_model_id``, the adapter's ``base_model_name_or_path``
    (when a Hub id), the record's, the existing card's ``base_model``.
    """
    folder = Path(folder)
    layout = read_layout(folder)
    record = read_record(folder)
    adapters = [sub for sub in transformer_folders(folder) if is_adapter_folder(sub)]
    lora = record.get("lora")
    bases: list[str] = []
    for sub in adapters:
        config = json.loads((sub / "adapter_config.json").read_text(encoding="utf8"))
        lora = lora or lora_settings(config)
        hub_id = known_hub_id(config.get("base_model_name_or_path"))
        if hub_id:
            bases.append(hub_id)
    if base_model_id:
        bases = [base_model_id] if isinstance(base_model_id, str) else list(base_model_id)
    bases = bases or list(record.get("base_models") or [])
    if not bases:
        existing = read_card_metadata(folder).get("base_model")
        bases = [existing] if isinstance(existing, str) else list(existing or [])
    types = [entry["type"] for entry in layout.modules] + list(layout.router_config.get("types", {}).values())
    weights = "adapter" if adapters else ("merged" if lora else "full")
    return CardFacts(
        repo_id=repo_id,
        weights=weights,
        base_models=bases,
        lora=lora,
        quantization=record.get("quantization"),
        prompts={name: text for name, text in (layout.settings.get("prompts") or {}).items() if text},
        routes=layout.routes,
        remote_code=[kind for kind in types if not kind.startswith("sentence_transformers.")],
        record=record,
        datasets=list(datasets),
        license=license,
        language=[language] if isinstance(language, str) else list(language or []),
        samples=samples,
    )


def _read(path: Path) -> str:
    return path.read_text(encoding="utf8") if path.is_file() else ""


def shows_samples(card: str) -> bool:
    """Whether a card shows rows of the training data (sentence-transformers' "Samples" tables or widget)."""
    meta, body = _split_front_matter(card)
    samples = rf"^{re.escape(CARD_SAMPLES)}$"
    return bool(meta.get("widget")) or bool(re.search(samples, body, flags=re.MULTILINE))


def read_card_metadata(folder: str | os.PathLike) -> dict[str, Any]:
    """The YAML metadata of a folder's model card (``README.md``), or ``{}``."""
    return _split_front_matter(_read(Path(folder) / "README.md"))[0]


# --------------------------------------------------------------------------- the card text


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    import yaml

    match = re.match(r"^---\n(.*?)\n---\n?", text, flags=re.DOTALL)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        return {}, text
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


def _metadata(meta: dict[str, Any], facts: CardFacts) -> dict[str, Any]:
    meta = dict(meta)
    if facts.base_models:
        meta["base_model"] = facts.base_models[0] if len(facts.base_models) == 1 else list(facts.base_models)
        relation = (
            "adapter" if facts.weights == "adapter" else "finetune" if (facts.lora or facts.record) else None
        )
        if relation:
            meta["base_model_relation"] = relation
    tags = list(meta.get("tags") or ["sentence-transformers", "sentence-similarity", "feature-extraction"])
    extra = ["cardio-st", "medical", "clinical"]
    extra += ["lora"] if facts.lora else []
    extra += ["peft"] if facts.weights == "adapter" else []
    extra += ["asymmetric-retrieval"] if facts.routes else []
    meta["tags"] = tags + [tag for tag in extra if tag not in tags]
    datasets = list(meta.get("datasets") or [])
    datasets += [name for name in facts.datasets if name not in datasets]
    if datasets:
        meta["datasets"] = datasets
    if facts.license:
        meta["license"] = facts.license
    if facts.language:
        meta["language"] = list(facts.language)
    meta.setdefault("pipeline_tag", "sentence-similarity")
    meta.setdefault("library_name", "sentence-transformers")
    if facts.repo_id:
        for entry in meta.get("model-index") or []:
            if str(entry.get("name", "")).startswith("SentenceTransformer"):
                entry["name"] = facts.repo_id.split("/")[-1]
    return meta


def _block(name: str, content: str) -> str:
    return f"<!-- cardio-st:{name} -->\n{content.strip()}\n<!-- /cardio-st:{name} -->\n"


def _place(body: str, name: str, content: str, *, before: list[str] = (), after: str | None = None) -> str:
    """Put the marked block ``name`` into ``body``: in place of an earlier copy, else after the regex
    ``after`` matches, else before the first heading of ``before`` found, else at the end."""
    block = _block(name, content)
    existing = re.search(
        rf"<!-- cardio-st:{name} -->\n.*?<!-- /cardio-st:{name} -->\n?", body, flags=re.DOTALL
    )
    if existing:
        return body[: existing.start()] + block + body[existing.end() :]
    if after and (match := re.search(after, body, flags=re.DOTALL | re.MULTILINE)):
        return body[: match.end()] + "\n" + block + body[match.end() :]
    for heading in before:
        match = re.search(rf"^{re.escape(heading)}\s*$", body, flags=re.MULTILINE)
        if match:
            return body[: match.start()] + block + "\n" + body[match.start() :]
    return body.rstrip("\n") + "\n\n" + block


def _strip_placeholders(body: str, facts: CardFacts) -> str:
    """Fill in what sentence-transformers' template left as a placeholder (a card already on disk; a
    card generated here gets these from the card data)."""
    # sentence-transformers' commented-out prompts for sections this card now fills in.
    for heading in CARD_PROMPTED_SECTIONS:
        body = re.sub(card_prompted_section(heading), "", body, flags=re.DOTALL)
    if facts.base_models:
        base = ", ".join(hub_link(b) for b in facts.base_models)
        built_on = CARD_TRAINED_WITHOUT_BASE.replace(" trained.", f" built on {base}.")
        body = body.replace(CARD_TRAINED_WITHOUT_BASE, built_on)
    # The details sentence-transformers' template leaves commented out when it does not know them.
    known = {
        "Base model": ", ".join(hub_link(b) for b in facts.base_models),
        "Language": ", ".join(facts.language),
        "License": facts.license,
    }
    for label, value in known.items():
        if value:
            body = re.sub(card_unknown_detail(label), f"- **{label}:** {value}", body, flags=re.MULTILINE)
    if facts.repo_id:
        body = body.replace(CARD_MODEL_ID, facts.repo_id)
        body = re.sub(
            CARD_TITLE,
            f"# {facts.repo_id.split('/')[-1]}",
            body,
            count=1,
            flags=re.MULTILINE,
        )
    return body


def _replace_usage(body: str, snippet: str) -> str:
    """sentence-transformers' usage subsection becomes cardio-st's (marked); else the block is placed."""
    if "<!-- cardio-st:usage -->" not in body:
        start = body.find(CARD_USAGE_HEADING)
        if start >= 0:  # up to the next heading or commented-out section
            line_end = body.find("\n", start) + 1 or len(body)
            following = re.search(r"^(<!--$|#{2,3} )", body[line_end:], flags=re.MULTILINE)
            end = line_end + following.start() if following else len(body)
            return body[:start] + _block("usage", snippet) + "\n" + body[end:]
    own = re.sub(r"<!-- cardio-st:usage -->.*?<!-- /cardio-st:usage -->", "", body, flags=re.DOTALL)
    heading = "" if re.search(r"^## Usage\s*$", own, flags=re.MULTILINE) else "## Usage\n\n"
    return _place(
        body,
        "usage",
        heading + snippet,
        before=["## Evaluation", "## Intended Use", "## Training Details", "## Citation"],
    )


def enrich_card(text: str, facts: CardFacts) -> str:
    """Add what cardio-st knows to a model card (any markdown, typically sentence-transformers').

    Sets the metadata (``base_model``, ``base_model_relation``, tags, datasets, licence, language), keeps
    ``model-index`` and every recorded number as they are, replaces the usage snippet by one that loads
    this repository as it is, adds a table of how the model was built, the intended use, the clinical
    limitations, and the citations of the methods used. Idempotent: enriching an enriched card with the
    same facts gives the same card.
    """
    from huggingface_hub.utils import yaml_dump

    meta, body = _split_front_matter(text)
    meta = _metadata(meta, facts)
    if not facts.samples:
        meta.pop("widget", None)
        body = re.sub(rf"^{re.escape(CARD_SAMPLES)}\n(?:  .*\n)+", "", body, flags=re.MULTILINE)
    body = _strip_placeholders(body or "# Model card\n", facts)
    body = _place(
        body,
        "details",
        details_table(facts),
        after=CARD_ARCHITECTURE,
        before=["## Usage", "## Evaluation", "## Training Details", "## Citation"],
    )
    body = _replace_usage(body, usage_snippet(facts))
    if not re.search(r"^## Evaluation\s*$", body, flags=re.MULTILINE):
        body = _place(
            body,
            "evaluation",
            "## Evaluation\n\nNo evaluation results were recorded with this model. "
            "cardio-st writes only numbers that a run measured: evaluate it (for example "
            "`cardio-st evaluate --compare MODEL`) before relying on it.\n",
            before=["## Intended Use", "## Training Details", "## Citation"],
        )
    body = _place(body, "intended-use", INTENDED_USE, before=["## Training Details", "## Citation"])
    if not re.search(r"^## Citation\s*$", body, flags=re.MULTILINE):
        body = body.rstrip("\n") + "\n\n## Citation\n\n### BibTeX\n"
    cited = citations(facts, body, meta)
    if cited:
        body = _place(body, "citations", cited, after=r"^## Citation\n\n### BibTeX\n")
    return "---\n" + yaml_dump(meta, sort_keys=False).strip() + "\n---\n" + body.lstrip("\n")


def generate_card(model: SentenceTransformer, facts: CardFacts) -> str:
    """sentence-transformers' card of an in-memory ``model`` (its card data: what the trainer and the
    evaluators recorded), enriched with ``facts``. Looks nothing up on the Hub and embeds nothing.

    What the card data can state (repository id, base model, name, language, licence) is set there, so
    sentence-transformers' template writes it; the name, language and licence only for this card.
    """
    from sentence_transformers.base.model_card import generate_model_card

    card = model.model_card_data
    if facts.repo_id:
        card.model_id = facts.repo_id
    if facts.base_models and not card.base_model:
        card.base_model = facts.base_models[0]
    settings: dict[str, Any] = {"local_files_only": True, "generate_widget_examples": False}
    if facts.repo_id and card.model_name in (None, card.get_default_model_name()):
        settings["model_name"] = facts.repo_id.split("/")[-1]
    if facts.language and not card.language:
        settings["language"] = list(facts.language)
    if facts.license and not card.license:
        settings["license"] = facts.license
    saved = {name: getattr(card, name) for name in settings}
    for name, value in settings.items():
        setattr(card, name, value)
    try:
        text = generate_model_card(model)
    finally:
        for name, value in saved.items():
            setattr(card, name, value)
    return enrich_card(text, facts)


def write_model_card(model: SentenceTransformer, folder: str | os.PathLike, **options: Any) -> Path:
    """Write ``folder/README.md`` for ``model`` saved in ``folder``: its sentence-transformers card,
    enriched with the folder's facts ([card_facts][cardio_st.models.card.card_facts] takes ``options``)."""
    path = Path(folder) / "README.md"
    replace_file(path, generate_card(model, card_facts(folder, **options)))
    return path
