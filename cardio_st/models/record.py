"""The record every model cardio-st makes carries, ``cardio_st.json``: the base models, the LoRA and
quantization settings, the data, the losses, the run; and the facts a model card states besides
sentence-transformers' own sections. Leaves out writing cards (card) and measuring anything.

The record does not change embeddings, and sentence-transformers ignores the file: a model loads the
same with or without it.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st import __version__
from cardio_st.errors import CardioSTError
from cardio_st.utils.files import replace_file
from cardio_st.utils.hub import known_hub_id

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "RECORD_FILE",
    "CardFacts",
    "describe_model",
    "lora_settings",
    "read_record",
    "training_record",
    "write_record",
]

#: The file in a model folder that records how cardio-st made the model (base, adapter, quantization,
#: data, losses). It does not change embeddings and sentence-transformers ignores it.
RECORD_FILE = "cardio_st.json"


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
        hub_id = getattr(module, "base_hub_id", None) or known_hub_id(base)  # set by lora_transformer
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
    """The record of a training run: [describe_model][cardio_st.models.record.describe_model], the data's
    splits and columns, each loss with its parameters and citation, and ``run`` (steps, settings)."""
    import sentence_transformers

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
