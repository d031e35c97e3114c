"""Staging a push: exactly the files to upload, written to a folder -- an allowlist of model, tokenizer
and card files (links out of the folder refused), the model card enriched, an adapter's base named by
Hub id, the adapter merged on request. Leaves out
the Hub (cardio_st.hub.push uploads what this stages) and the card's wording (cardio_st.models.card).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Literal

from cardio_st.errors import CardioSTError
from cardio_st.models.card import (
    card_facts,
    enrich_card,
    generate_card,
    is_adapter_folder,
    shows_samples,
    transformer_folders,
)
from cardio_st.models.loader import load_model
from cardio_st.models.record import read_record
from cardio_st.modules.lora_transformer import merge_lora
from cardio_st.utils.files import replace_file
from cardio_st.utils.hub import REPO_ID, base_model_hub_id, known_hub_id

__all__ = ["UPLOADED_FILES", "Weights", "stage_upload"]

logger = logging.getLogger(__name__)

#: What [stage_upload][cardio_st.hub.stage.stage_upload] does with LoRA weights: keep them as saved,
#: insist on an adapter-only upload, or merge the adapter into full weights.
Weights = Literal["as-saved", "adapter", "merged"]
_ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"}
_TRAINER_STATE = {"training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json"}


UPLOADED_FILES = (
    "modules.json",
    "config*.json",
    "*_config.json",
    "config_sentence_transformers.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "pytorch_model*.bin",
    "pytorch_model.bin.index.json",
    "adapter_config.json",
    "adapter_model.*",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "vocab*",
    "merges.txt",
    "special_tokens_map.json",
    "spiece.model",
    "sentencepiece*",
    "added_tokens.json",
    "chat_template*",
    "README.md",
    "cardio_st.json",
)
"""The files a push uploads, by name, at the top or in a module's folder (1_Pooling/, a Router's
routes): sentence-transformers and PEFT model files, tokenizer files, the card, cardio-st's record.
Anything else (notes, logs, secrets) stays behind and is reported."""


def _left_out(relative: Path, folder: Path) -> str | None:
    parts = relative.parts
    if any(part.startswith(".") for part in parts):
        return "hidden file"
    if any(re.fullmatch(r"checkpoint-\d+", part) for part in parts[:-1]):
        return "training checkpoint"
    if "__pycache__" in parts or relative.suffix == ".pyc":
        return "Python cache"
    if relative.name in _TRAINER_STATE or relative.name.startswith("rng_state"):
        return "trainer state, not part of the model"
    if ".partial" in relative.name or relative.name.endswith(".tmp"):
        return "unfinished write"
    if not any(fnmatch.fnmatchcase(relative.name, pattern) for pattern in UPLOADED_FILES):
        return "not a model, tokenizer or card file (push uploads only those)"
    if relative.suffix == ".bin" and any((folder / relative.parent).glob("*.safetensors")):
        return "PyTorch copy of weights that are in safetensors"
    return None


def _model_files(folder: Path) -> list[tuple[Path, Path]]:
    """``(relative, source)`` of every file under ``folder``, a link read as its target.

    Raises:
        CardioSTError: for a symbolic link whose target is outside ``folder`` (its contents are not
            the model's: uploading them could publish anything on this machine).
    """
    root = folder.resolve()
    found = []
    for directory, subfolders, names in os.walk(folder):
        for name in [*subfolders, *names]:
            path = Path(directory, name)
            if not path.is_symlink():
                continue
            target = path.resolve()
            if not target.is_relative_to(root):
                raise CardioSTError(
                    f"{path} is a link to {target}, outside the model folder {folder}: push uploads only "
                    "the model's own files; replace the link with a copy, or remove it"
                )
        found += [(Path(directory, n).relative_to(folder), Path(directory, n).resolve()) for n in names]
        subfolders[:] = [d for d in subfolders if not Path(directory, d).is_symlink()]
    return sorted((relative, source) for relative, source in found if source.is_file())


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows (no extra space for 16 GB of weights), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _check_model_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise CardioSTError(f"{folder} is not a folder: pass the folder a model was saved to")
    if (folder / "modules.json").is_file():
        return
    if (folder / "adapter_config.json").is_file():
        raise CardioSTError(
            f"{folder} is a raw PEFT adapter, not a sentence-transformers model: make it one with "
            f"`cardio-st convert {folder} OUT_DIR` (it sets the pooling, EOS and prompts of its base), "
            "then push OUT_DIR"
        )
    if (folder / "config.json").is_file():
        raise CardioSTError(
            f"{folder} is a plain Hugging Face model, not a sentence-transformers model: make it one with "
            f"`cardio-st convert {folder} OUT_DIR`, then push OUT_DIR"
        )
    raise CardioSTError(
        f"{folder} is not a model folder: it has no modules.json; pass a folder saved by "
        "sentence-transformers or cardio-st (e.g. runs/NAME/final)"
    )


def _base_for_adapter(folder: Path, config: dict[str, Any], base_model_id: str | list[str] | None) -> str:
    given = base_model_id if isinstance(base_model_id, str) or base_model_id is None else base_model_id[0]
    recorded = config.get("base_model_name_or_path") or ""
    recorded_ids = read_record(folder).get("base_models") or []
    trained_with = [hub_id for hub_id in recorded_ids if REPO_ID.match(hub_id)]
    if given is None and not known_hub_id(recorded) and trained_with:
        given = trained_with[0]  # the Hub id given at training time (`base_model_id`) for a local base
    try:
        return base_model_hub_id(recorded, given)
    except CardioSTError:
        if given:
            raise CardioSTError(f"`base_model_id={given!r}` is not a Hub id: write it as org/name") from None
        raise CardioSTError(
            f"{folder} is an adapter-only model whose base is {recorded or 'not recorded'}: on the Hub it "
            "must name its base by Hub id so that others can load it; pass `base_model_id='org/name'`, "
            "the Hub model the base weights came from"
        ) from None


def stage_upload(
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    repo_id: str | None = None,
    *,
    weights: Weights = "as-saved",
    base_model_id: str | list[str] | None = None,
    **card_options: Any,
) -> tuple[list[str], dict[str, str]]:
    """Write into ``out_dir`` exactly the files a push of ``folder`` uploads; returns them and the files
    left out with their reasons.

    Only an allowlist is staged ([UPLOADED_FILES][cardio_st.hub.stage.UPLOADED_FILES]: model, PEFT,
    tokenizer and card files, at the top or in module folders); every other file is left out and
    reported. A symbolic link whose target leaves ``folder`` is refused.

    Weights and other files are hard-linked where possible; the model card (``README.md``) and, for an
    adapter, ``adapter_config.json`` (its base named by Hub id) are written anew, so ``folder`` is never
    changed. ``weights="merged"`` folds the adapter into full weights first; ``"adapter"`` insists the
    folder is adapter-only. ``card_options`` (``datasets``, ``license``, ``language``, ``samples``) go to
    [card_facts][cardio_st.models.card.card_facts].
    """
    folder, out = Path(folder), Path(out_dir)
    _check_model_folder(folder)
    adapters = [sub for sub in transformer_folders(folder) if is_adapter_folder(sub)]
    if weights not in ("as-saved", "adapter", "merged"):
        raise CardioSTError(f"unknown weights {weights!r}: use 'as-saved', 'adapter' or 'merged'")
    if weights != "as-saved" and not adapters:
        wanted = "an adapter-only upload" if weights == "adapter" else "merging the adapter"
        raise CardioSTError(
            f"{folder} holds full weights, no LoRA adapter: {wanted} does not apply; push it as saved"
        )
    out.mkdir(parents=True, exist_ok=True)
    left_out: dict[str, str] = {}
    if weights == "merged":
        _save_merged(folder, out)
    for relative, source in _model_files(folder):
        reason = _left_out(relative, folder)
        if reason:
            left_out[relative.as_posix()] = reason
        elif weights == "merged" and ((out / relative).exists() or relative.name in _ADAPTER_FILES):
            continue  # written by the merged save, or the adapter it replaces
        else:
            _link_or_copy(source, out / relative)
    for sub in transformer_folders(out):
        if is_adapter_folder(sub):
            config = json.loads((sub / "adapter_config.json").read_text(encoding="utf8"))
            config["base_model_name_or_path"] = _base_for_adapter(folder, config, base_model_id)
            replace_file(sub / "adapter_config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    facts = card_facts(out, repo_id=repo_id, base_model_id=base_model_id, **card_options)
    if (out / "README.md").is_file():
        card = enrich_card((out / "README.md").read_text(encoding="utf8"), facts)
    else:  # no card to build on: sentence-transformers writes one from the loaded model
        card = generate_card(load_model(out, device="cpu")[0], facts)
    replace_file(out / "README.md", card)
    if shows_samples(card):
        logger.warning(
            "the model card shows example rows of the training and evaluation data, as sentence-transformers "
            "writes them: check they hold no patient data, or leave them out with `samples=False`"
        )
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    return files, left_out


def _save_merged(folder: Path, out: Path) -> None:
    model, _ = load_model(folder, device="cpu")
    merge_lora(model)
    model.save(str(out))  # keeps the folder's README (the model was loaded, not trained)
