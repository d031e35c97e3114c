"""Model cards that say what cardio-st knows: sentence-transformers' own card, enriched with the base
model, LoRA and quantization settings, training data, losses, a loading snippet that works, intended
use and clinical limitations. Leaves out uploading (cardio_st.hub) and measuring anything: every number
in a card comes from the run that recorded it (the trainer's card data or ``cardio_st.json``).

Why enrich sentence-transformers' card instead of writing one: the card that sentence-transformers
writes when a model is trained or evaluated already carries the recorded evidence -- dataset sizes and
samples, each loss with its parameters and citation, hyperparameters, training logs, every evaluator's
results as a table and as ``model-index`` metadata. cardio-st keeps all of it and adds, between
``<!-- cardio-st:NAME -->`` markers (so enriching twice changes nothing), what sentence-transformers
cannot know: the base model's Hub id, the adapter and the quantization it was trained over, the
prompts, how to load it, and what it must not be used for.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.citations import CARE, ICD10_SEMANTIC_SEARCH
from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "RECORD_FILE",
    "CardFacts",
    "card_facts",
    "describe_model",
    "enrich_card",
    "generate_card",
    "lora_settings",
    "read_card_metadata",
    "read_record",
    "replace_file",
    "shows_samples",
    "training_record",
    "write_model_card",
    "write_record",
]

#: The file in a model folder that records how cardio-st made the model (base, adapter, quantization,
#: data, losses). It does not change embeddings and sentence-transformers ignores it.
RECORD_FILE = "cardio_st.json"
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_ID_PLACEHOLDER = "sentence_transformers_model_id"


# --------------------------------------------------------------------------- the record


def read_record(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``cardio_st.json`` record of a model folder, or ``{}`` when it has none."""
    path = Path(folder) / RECORD_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf8"))
    except ValueError as error:
        raise CardioSTError(
            f"{path} is not valid JSON ({error}): delete it or restore it from a backup"
        ) from error


def write_record(folder: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``record`` as the folder's ``cardio_st.json`` (a new file, never through a hard link)."""
    path = Path(folder) / RECORD_FILE
    replace_file(path, json.dumps(record, indent=2, default=str) + "\n")
    return path


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` as a new file at ``path``. Staged folders hold hard links to the user's files:
    the link is replaced, never written through."""
    path.unlink(missing_ok=True)
    path.write_text(text, encoding="utf8")


def lora_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The LoRA settings a card shows, from a PEFT config (``adapter_config.json`` or ``LoraConfig``):
    rank, alpha, dropout and the target layer names without their paths (``q_proj``, not
    ``layers.0.self_attn.q_proj``)."""
    targets = config.get("target_modules")
    if not isinstance(targets, str):
        targets = sorted({str(name).rsplit(".", 1)[-1] for name in targets or []})
    return {
        "r": config.get("r"),
        "lora_alpha": config.get("lora_alpha"),
        "lora_dropout": config.get("lora_dropout"),
        "target_modules": targets,
    }


def describe_model(model: SentenceTransformer) -> dict[str, Any]:
    """What an in-memory model says about how it was built, for the record: the base models' Hub ids
    (where they are known), the LoRA settings and the quantization of the base."""
    from sentence_transformers.base.modules import Transformer

    from cardio_st.modules.lora_transformer import known_hub_id

    bases: list[str] = []
    lora: dict[str, Any] | None = None
    quantization: str | None = None
    for module in model.modules():
        if not isinstance(module, Transformer):
            continue
        auto_model = module.auto_model
        base = getattr(auto_model.config, "_name_or_path", None)
        for config in (getattr(auto_model, "peft_config", None) or {}).values():
            base = config.base_model_name_or_path or base
            lora = lora_settings(vars(config))
        hub_id = known_hub_id(base)
        if hub_id and hub_id not in bases:
            bases.append(hub_id)
        settings = getattr(auto_model.config, "quantization_config", None)
        if settings is not None:
            settings = settings if isinstance(settings, dict) else settings.to_dict()
            quantization = (
                "8bit" if settings.get("load_in_8bit") else "4bit" if settings.get("load_in_4bit") else None
            )
    card_base = getattr(model.model_card_data, "base_model", None)
    if not bases and card_base:
        bases.append(card_base)
    return {"base_models": bases, "lora": lora, "quantization": quantization}


def _machine() -> str:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"{platform.machine()}, {os.cpu_count()} CPU threads" + (
        f", {len(gpus)} x {gpus[0]}" if gpus else ""
    )


def training_record(model: SentenceTransformer, data: Any, loss: Any, **run: Any) -> dict[str, Any]:
    """The record of a training run: [describe_model][cardio_st.model_card.describe_model], the data's
    splits and columns, each loss with its parameters and citation, and ``run`` (steps, settings)."""
    import sentence_transformers

    from cardio_st import __version__

    losses = []
    for item in loss.values() if isinstance(loss, dict) else [loss]:
        config = item.get_config_dict() if hasattr(item, "get_config_dict") else {}
        losses.append(
            {
                "name": type(item).__name__,
                "class": f"{type(item).__module__}.{type(item).__qualname__}",
                "config": json.loads(json.dumps(config, default=str)),
                "citation": getattr(item, "citation", None),
            }
        )
    return {
        **describe_model(model),
        "data": {
            "name": run.pop("data_name", None),
            "rows": {split: len(rows) for split, rows in data.items()},
            "columns": list(data["train"].column_names),
        },
        "losses": losses,
        "training": run,
        "date": datetime.date.today().isoformat(),
        "machine": _machine(),
        "versions": {"cardio_st": __version__, "sentence_transformers": sentence_transformers.__version__},
    }


# --------------------------------------------------------------------------- facts from a folder


@dataclass
class CardFacts:
    """What a model card states besides sentence-transformers' own sections.

    Attributes:
        repo_id: Hub repository the card is for (None: the snippet keeps a placeholder).
        weights: ``"adapter"`` (LoRA adapter only), ``"merged"`` (LoRA folded into full weights) or
            ``"full"``.
        base_models: Hub ids of the base models, in module order (a CARE model has two).
        lora: LoRA settings (``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``) or None.
        quantization: The base's quantization during training (``"8bit"``, ``"4bit"``) or None.
        prompts: Non-empty prompts by name (``{"query": "Instruct: ...\\nQuery:"}``).
        routes: Route names of a Router model (``["query", "document"]``), else empty.
        remote_code: Module classes outside sentence-transformers (they need ``trust_remote_code``).
        record: The folder's ``cardio_st.json``.
        datasets: Hub ids of datasets to list in the metadata.
        license: Licence identifier for the metadata (e.g. ``"apache-2.0"``).
        language: Language codes for the metadata.
        samples: Keep the example rows of the training data that sentence-transformers' card shows
            (its "Samples" tables and widget); False removes them, e.g. for data from patient notes.
    """

    repo_id: str | None = None
    weights: str = "full"
    base_models: list[str] = field(default_factory=list)
    lora: dict[str, Any] | None = None
    quantization: str | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    routes: list[str] = field(default_factory=list)
    remote_code: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)
    license: str | None = None
    language: list[str] = field(default_factory=list)
    samples: bool = True


def transformer_folders(folder: Path) -> list[Path]:
    """The folders of a saved model's Transformer modules, Router routes included."""
    from cardio_st.modules.routes import read_layout

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
    from cardio_st.modules.lora_transformer import known_hub_id
    from cardio_st.modules.routes import read_layout

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
    return bool(meta.get("widget")) or bool(re.search(r"^\* Samples:$", body, flags=re.MULTILINE))


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


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`" + json.dumps(text, ensure_ascii=False)[1:-1].replace("`", "'") + "`"


def _hub_link(repo_id: str) -> str:
    return f"[{repo_id}](https://huggingface.co/{repo_id})"


def _details(facts: CardFacts) -> str:
    rows: list[tuple[str, str]] = []
    record = facts.record
    if facts.base_models:
        label = "Base models" if len(facts.base_models) > 1 else "Base model"
        rows.append((label, ", ".join(_hub_link(base) for base in facts.base_models)))
    weights = {
        "adapter": "a LoRA adapter only: `SentenceTransformer` downloads the base model and applies it "
        "(needs `peft`)",
        "merged": "full weights, the LoRA adapter merged in (no `peft` needed)",
        "full": "full weights",
    }[facts.weights]
    rows.append(("Weights in this repository", weights))
    if facts.lora:
        targets = facts.lora.get("target_modules")
        targets = targets if isinstance(targets, str) else ", ".join(f"`{t}`" for t in targets or [])
        rows.append(
            (
                "LoRA",
                f"r={facts.lora.get('r')}, alpha={facts.lora.get('lora_alpha')}, "
                f"dropout={facts.lora.get('lora_dropout')}, on {targets}",
            )
        )
    if facts.quantization:
        kind = {"8bit": "8-bit (bitsandbytes LLM.int8())", "4bit": "4-bit NF4 (bitsandbytes, QLoRA)"}
        rows.append(
            (
                "Base quantization during training",
                f"{kind.get(facts.quantization, facts.quantization)}; the weights here are not quantized",
            )
        )
    for name in ("query", "document"):
        if facts.prompts.get(name) or (name == "document" and facts.prompts):
            text = facts.prompts.get(name)
            rows.append(
                (f"{name.title()} prompt", f"{_code(text)} (added by `encode_{name}`)" if text else "none")
            )
    if facts.routes:
        rows.append(
            (
                "Routes",
                ", ".join(f"`{route}`" for route in facts.routes)
                + ": `encode_query` and `encode_document` run different encoders",
            )
        )
    data = record.get("data") or {}
    if data.get("rows"):
        sizes = ", ".join(f"{count:,} {split}" for split, count in data["rows"].items())
        name = f"`{data['name']}`: " if data.get("name") else ""
        rows.append(("Training data", f"{name}{sizes} rows; columns {', '.join(data.get('columns') or [])}"))
    for loss in record.get("losses") or []:
        settings = ", ".join(f"{key}={value}" for key, value in (loss.get("config") or {}).items())
        rows.append(("Loss", f"`{loss['name']}`" + (f" ({settings})" if settings else "")))
    if record.get("converted_from"):
        source = record["converted_from"]
        source = _hub_link(source) if record.get("converted_from_hub") else f"`{source}` (a local folder)"
        rows.append(("Converted from", f"{source} by `cardio-st convert`"))
    versions = record.get("versions") or {}
    if record.get("date"):
        rows.append(("Made", f"{record['date']} with cardio-st {versions.get('cardio_st', '')}".strip()))
    table = "\n".join(f"| {label} | {_cell(value)} |" for label, value in rows)
    return "### Built with cardio-st\n\n| Setting | Value |\n|:--|:--|\n" + table + "\n"


def _snippet(facts: CardFacts) -> str:
    repo = facts.repo_id or _ID_PLACEHOLDER
    packages = ["sentence-transformers"] + (["peft"] if facts.weights == "adapter" else [])
    remote = ", trust_remote_code=True" if facts.remote_code else ""
    notes = []
    if facts.prompts:
        described = "; ".join(
            f"`encode_{name}` adds {_code(text)}" for name, text in sorted(facts.prompts.items())
        )
        notes.append(
            f"The prompts are stored with the model: {described}. Embed queries and documents "
            "with the matching method, not with `encode`."
        )
    elif not facts.routes:
        notes.append("This model has no prompts: `encode_query`, `encode_document` and `encode` embed alike.")
    if facts.routes:
        notes.append(
            "`encode_query` runs the query route only and `encode_document` the document route only. "
            "With cardio-st, a query server can load just the query route's files: "
            '`cardio_st.modules.load_route(snapshot_download(REPO), "query")`.'
        )
    if facts.remote_code:
        notes.append(
            f"`trust_remote_code=True` is needed because `modules.json` names "
            f"{', '.join(f'`{kind}`' for kind in facts.remote_code)}; read that code before you run it."
        )
    else:
        notes.append("Every module is one of sentence-transformers' own: no `trust_remote_code` is needed.")
    if facts.weights == "adapter" and facts.quantization:
        notes.append(
            "The adapter was trained over a quantized base. To load the base that way (a CUDA GPU and "
            '`bitsandbytes`): `SentenceTransformer("' + repo + '", model_kwargs={"quantization_config": '
            "BitsAndBytesConfig("
            + ("load_in_8bit=True" if facts.quantization == "8bit" else "load_in_4bit=True")
            + ")})` with `from transformers import BitsAndBytesConfig`."
        )
    return (
        "### Direct Usage (Sentence Transformers)\n\n"
        f"```bash\npip install -U {' '.join(packages)}\n```\n\n"
        "```python\n"
        "from sentence_transformers import SentenceTransformer\n\n"
        f'model = SentenceTransformer("{repo}"{remote})\n'
        'queries = ["Which drugs relieve angina on exertion?"]\n'
        "documents = [\n"
        '    "Beta-blockers lower myocardial oxygen demand and are first-line therapy for stable angina.",\n'
        '    "Atrial fibrillation is the most common sustained cardiac arrhythmia.",\n'
        "]\n"
        "query_embeddings = model.encode_query(queries)\n"
        "document_embeddings = model.encode_document(documents)\n"
        "print(model.similarity(query_embeddings, document_embeddings))\n"
        "```\n\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    )


_INTENDED_USE = """## Intended Use

Retrieval and similarity over English clinical text by people who check the results: finding textbook
or guideline passages, notes or ICD-10-CM descriptions that match a clinical phrase, deduplication,
clustering, and the retrieval stage of a system whose output a person reviews.

### Out-of-Scope Use

- **Not a diagnostic tool.** Similarity scores are not diagnoses, risk estimates or treatment advice,
  and the model is not a medical device. Do not make or automate clinical decisions with it.
- Automatic coding without review: a nearest ICD-10-CM description is a suggestion for a coder,
  not a code to bill.
- Text unlike what it was trained and evaluated on (other languages, other specialties, other note
  styles) without measuring it there first.

## Bias, Risks and Limitations

- A high score means shared meaning as the model learned it, not clinical correctness: a passage can
  score high and be wrong, outdated or about another patient group.
- Embedding models represent negation and uncertainty weakly: "no chest pain" and "rule out MI"
  can land close to "chest pain" and "MI". Handle them before or after retrieval.
- Abbreviations are ambiguous across specialties (MS: mitral stenosis or multiple sclerosis).
- Any evaluation results above hold for the datasets named there; they need not transfer to another
  institution's notes. Measure on a held-out sample of your own data before use.
- Embeddings can leak information about the text they came from: treat embeddings and indexes of
  patient notes as protected health information.
"""


def _citations(facts: CardFacts, body: str, meta: dict[str, Any]) -> str:
    """BibTeX of the methods this model used that the card does not cite yet: its losses' (from the
    record), CARE's for a routed model, and the ICD-10-CM benchmark's when its results are listed."""
    entries = [loss["citation"] for loss in facts.record.get("losses") or [] if loss.get("citation")]
    if facts.routes:
        entries.append(CARE)
    if "icd10" in json.dumps(meta.get("model-index") or []):
        entries.append(ICD10_SEMANTIC_SEARCH)
    elsewhere = re.sub(
        r"<!-- cardio-st:citations -->.*?<!-- /cardio-st:citations -->", "", body, flags=re.DOTALL
    )
    items: dict[str, str] = {}
    for entry in entries:
        for item in re.findall(r"@\w+\{.*?\n\}", entry.strip(), flags=re.DOTALL):
            eprint = re.search(r"eprint=\{([^}]*)\}", item)
            key = eprint.group(1) if eprint else item
            if key not in elsewhere:
                items.setdefault(key, item)
    if not items:
        return ""
    return "#### Methods used by this model\n\n```bibtex\n" + "\n".join(items.values()) + "\n```\n"


def _strip_placeholders(body: str, facts: CardFacts) -> str:
    # sentence-transformers' commented-out prompts for sections this card now fills in.
    for heading in ("### Out-of-Scope Use", "## Bias, Risks and Limitations", "### Recommendations"):
        body = re.sub(rf"<!--\n{re.escape(heading)}\n.*?-->\n+", "", body, flags=re.DOTALL)
    if facts.base_models:
        base = ", ".join(_hub_link(b) for b in facts.base_models)
        body = body.replace(
            "(https://www.SBERT.net) model trained.", f"(https://www.SBERT.net) model built on {base}."
        )
    # The details sentence-transformers' template leaves commented out when it does not know them.
    known = {
        "Base model": ", ".join(_hub_link(b) for b in facts.base_models),
        "Language": ", ".join(facts.language),
        "License": facts.license,
    }
    for label, value in known.items():
        if value:
            pattern = rf"^<!-- - \*\*{label}:\*\* (\[Unknown\]\(.*?\)|Unknown) -->$"
            body = re.sub(pattern, f"- **{label}:** {value}", body, flags=re.MULTILINE)
    if facts.repo_id:
        body = body.replace(_ID_PLACEHOLDER, facts.repo_id)
        body = re.sub(
            r"^# SentenceTransformer( based on \S+)?$",
            f"# {facts.repo_id.split('/')[-1]}",
            body,
            count=1,
            flags=re.MULTILINE,
        )
    return body


def _replace_usage(body: str, snippet: str) -> str:
    """sentence-transformers' usage subsection becomes cardio-st's (marked); else the block is placed."""
    if "<!-- cardio-st:usage -->" not in body:
        start = body.find("### Direct Usage (Sentence Transformers)")
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
        body = re.sub(r"^\* Samples:\n(?:  .*\n)+", "", body, flags=re.MULTILINE)
    body = _strip_placeholders(body or "# Model card\n", facts)
    body = _place(
        body,
        "details",
        _details(facts),
        after=r"^### Full Model Architecture\n\n```\n.*?\n```\n",
        before=["## Usage", "## Evaluation", "## Training Details", "## Citation"],
    )
    body = _replace_usage(body, _snippet(facts))
    if not re.search(r"^## Evaluation\s*$", body, flags=re.MULTILINE):
        body = _place(
            body,
            "evaluation",
            "## Evaluation\n\nNo evaluation results were recorded with this model. "
            "cardio-st writes only numbers that a run measured: evaluate it (for example "
            "`cardio-st evaluate --compare MODEL`) before relying on it.\n",
            before=["## Intended Use", "## Training Details", "## Citation"],
        )
    body = _place(body, "intended-use", _INTENDED_USE, before=["## Training Details", "## Citation"])
    if not re.search(r"^## Citation\s*$", body, flags=re.MULTILINE):
        body = body.rstrip("\n") + "\n\n## Citation\n\n### BibTeX\n"
    citations = _citations(facts, body, meta)
    if citations:
        body = _place(body, "citations", citations, after=r"^## Citation\n\n### BibTeX\n")
    return "---\n" + yaml_dump(meta, sort_keys=False).strip() + "\n---\n" + body.lstrip("\n")


def generate_card(model: SentenceTransformer, facts: CardFacts) -> str:
    """sentence-transformers' card of an in-memory ``model`` (its card data: what the trainer and the
    evaluators recorded), enriched with ``facts``. Looks nothing up on the Hub and embeds nothing."""
    from sentence_transformers.base.model_card import generate_model_card

    card = model.model_card_data
    toggles = card.local_files_only, card.generate_widget_examples
    card.local_files_only, card.generate_widget_examples = True, False
    if facts.repo_id:
        card.model_id = facts.repo_id
    if facts.base_models and not card.base_model:
        card.base_model = facts.base_models[0]
    try:
        text = generate_model_card(model)
    finally:
        card.local_files_only, card.generate_widget_examples = toggles
    return enrich_card(text, facts)


def write_model_card(model: SentenceTransformer, folder: str | os.PathLike, **options: Any) -> Path:
    """Write ``folder/README.md`` for ``model`` saved in ``folder``: its sentence-transformers card,
    enriched with the folder's facts ([card_facts][cardio_st.model_card.card_facts] takes ``options``)."""
    path = Path(folder) / "README.md"
    replace_file(path, generate_card(model, card_facts(folder, **options)))
    return path
