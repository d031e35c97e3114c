"""The sections cardio-st adds to a model card, each a function of the card's facts: how the model was
built (a table), a loading snippet that works, intended use and clinical limitations, and the
citations of the methods used. Leaves out where they go in the card and the metadata (card).
"""

from __future__ import annotations

import json
import re
from typing import Any

from cardio_st.citations import CARE, ICD10_SEMANTIC_SEARCH
from cardio_st.compat import CARD_MODEL_ID
from cardio_st.models.record import CardFacts

__all__ = ["INTENDED_USE", "citations", "code", "details_table", "hub_link", "usage_snippet"]


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    return "`" + json.dumps(text, ensure_ascii=False)[1:-1].replace("`", "'") + "`"


def hub_link(repo_id: str) -> str:
    return f"[{repo_id}](https://huggingface.co/{repo_id})"


def details_table(facts: CardFacts) -> str:
    rows: list[tuple[str, str]] = []
    record = facts.record
    if facts.base_models:
        label = "Base models" if len(facts.base_models) > 1 else "Base model"
        rows.append((label, ", ".join(hub_link(base) for base in facts.base_models)))
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
                (f"{name.title()} prompt", f"{code(text)} (added by `encode_{name}`)" if text else "none")
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
        source = hub_link(source) if record.get("converted_from_hub") else f"`{source}` (a local folder)"
        rows.append(("Converted from", f"{source} by `cardio-st convert`"))
    versions = record.get("versions") or {}
    if record.get("date"):
        rows.append(("Made", f"{record['date']} with cardio-st {versions.get('cardio_st', '')}".strip()))
    table = "\n".join(f"| {label} | {cell(value)} |" for label, value in rows)
    return "### Built with cardio-st\n\n| Setting | Value |\n|:--|:--|\n" + table + "\n"


def usage_snippet(facts: CardFacts) -> str:
    repo = facts.repo_id or CARD_MODEL_ID
    packages = ["sentence-transformers"] + (["peft"] if facts.weights == "adapter" else [])
    remote = ", trust_remote_code=True" if facts.remote_code else ""
    notes = []
    if facts.prompts:
        described = "; ".join(
            f"`encode_{name}` adds {code(text)}" for name, text in sorted(facts.prompts.items())
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
            '`cardio_st.models.load_route(snapshot_download(REPO), "query")`.'
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


INTENDED_USE = """## Intended Use

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


def citations(facts: CardFacts, body: str, meta: dict[str, Any]) -> str:
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
