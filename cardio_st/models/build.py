"""Build a sentence-transformers model in memory from a raw PEFT adapter (a folder or Hub repo, like
CardioEmbed's) or a plain Hugging Face model: the base's pooling, EOS handling, padding side,
normalisation and prompts, the adapter kept or merged. Leaves out writing the folder and its card
(conversion) and loading models that are sentence-transformers already (loader).

Why: an adapter repo holds ``adapter_config.json`` and weights, nothing about pooling. Loaded as it is,
``SentenceTransformer`` falls back to mean pooling without normalisation -- the wrong vectors for a
Qwen3-Embedding adapter, which was trained on the last token (EOS) of left-padded, L2-normalised inputs.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cardio_st.errors import CardioSTError
from cardio_st.models.card import read_card_metadata
from cardio_st.models.cardioembed import is_decoder
from cardio_st.models.record import lora_settings
from cardio_st.modules.eos_pooling import eos_pooling
from cardio_st.modules.lora_transformer import merge_lora
from cardio_st.utils.hub import MODEL_ID, known_hub_id

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["PoolingChoice", "build_model", "find_source"]

logger = logging.getLogger(__name__)

PoolingChoice = Literal["auto", "eos", "mean", "cls"]
_ADAPTER_FILES = ["adapter_config.json", "adapter_model.*", "*.json", "*.txt", "*.model", "README.md"]


def _fail_fetch(name: str, error: BaseException, option: str) -> CardioSTError:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    reason = "HF_HUB_OFFLINE is set and it is not in the Hub cache" if offline else type(error).__name__
    return CardioSTError(
        f"cannot find {name!r}: it is not a local folder and the Hugging Face Hub could not provide it "
        f"({reason}); {option}"
    )


def _has_file(name: str, filename: str, option: str) -> bool:
    """Whether model ``name`` (folder or Hub id) has ``filename``; errors name ``option`` as the fix."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    path = Path(name).expanduser()
    if path.is_dir():
        return (path / filename).is_file()
    if path.exists() or not MODEL_ID.match(name):  # the pattern resolve_model uses
        raise CardioSTError(f"{name!r} is neither a folder nor a Hub id (org/name); {option}")
    try:
        hf_hub_download(name, filename)
        return True
    except LocalEntryNotFoundError as error:  # offline (a subclass of EntryNotFoundError)
        if _cached(name):
            return False  # the repo is in the cache, this file is not part of it
        raise _fail_fetch(name, error, option) from None
    except EntryNotFoundError:
        return False
    except Exception as error:  # no such repo, network
        raise _fail_fetch(name, error, option) from None


def _cached(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(
        isinstance(try_to_load_from_cache(name, f), str) for f in ("config.json", "adapter_config.json")
    )


def find_source(source: str) -> tuple[Path | str, str]:
    """Where the source's files are, and what it is: ``"sentence-transformers"``, ``"adapter"`` or
    ``"model"``. An adapter repo is downloaded whole (it is small); a model is loaded by id."""
    from huggingface_hub import snapshot_download

    fix = "pass an adapter folder, a Hugging Face model folder, or a Hub id"
    for filename, kind in (
        ("modules.json", "sentence-transformers"),
        ("adapter_config.json", "adapter"),
        ("config.json", "model"),
    ):
        if _has_file(source, filename, fix):
            if kind != "adapter" or Path(source).expanduser().is_dir():
                return (Path(source).expanduser() if Path(source).expanduser().is_dir() else source), kind
            try:
                return Path(snapshot_download(source, allow_patterns=_ADAPTER_FILES)), kind
            except Exception as error:
                raise _fail_fetch(source, error, fix) from None
    raise CardioSTError(
        f"{source} is not a model: it has no adapter_config.json (PEFT adapter), config.json (Hugging Face "
        f"model) or modules.json (sentence-transformers); {fix}"
    )


def _pipeline(
    base: str,
    pooling: PoolingChoice,
    query_prompt: str | None,
    document_prompt: str | None,
    max_seq_length: int | None,
    device: str | None,
) -> SentenceTransformer:
    """The base as a sentence-transformers model: its own configuration if it has one (Qwen3-Embedding
    does), else Transformer -> pooling for its family -> Normalize. Last-token pooling always gets a
    tokenizer that appends EOS and pads on the left."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    if pooling not in ("auto", "eos", "mean", "cls"):
        raise CardioSTError(f"unknown pooling {pooling!r}: use auto, eos, mean or cls")
    fix = "pass `base='PATH_OR_ID'` naming the base model's folder or Hub id"
    if _has_file(base, "modules.json", fix):
        loaded = SentenceTransformer(base, device=device)
        modules, prompts, similarity = list(loaded), dict(loaded.prompts), loaded.similarity_fn_name
    else:
        if not _has_file(base, "config.json", fix):
            raise CardioSTError(f"{base} has no config.json: it is not a Hugging Face model; {fix}")
        modules, prompts, similarity = [Transformer(base)], {}, "cosine"
        modules.append(Normalize())
    transformer = modules[0]
    if not isinstance(transformer, Transformer):
        raise CardioSTError(
            f"the first module of {base} is a {type(transformer).__name__}, not a Transformer"
        )
    if max_seq_length:
        transformer.max_seq_length = max_seq_length
    at = next((i for i, module in enumerate(modules) if isinstance(module, Pooling)), None)
    if pooling == "auto" and at is not None:  # the base's own pooling, EOS guaranteed for last-token
        mode = modules[at].pooling_mode
        if mode == "lasttoken":
            modules[at] = eos_pooling(transformer)
    else:
        mode = {"eos": "lasttoken"}.get(pooling, pooling)
        if mode == "auto":
            mode = "lasttoken" if is_decoder(transformer.auto_model.config) else "mean"
        pooler = (
            eos_pooling(transformer)
            if mode == "lasttoken"
            else Pooling(transformer.get_embedding_dimension(), mode)
        )
        if at is None:
            modules.insert(1, pooler)
        else:
            modules[at] = pooler
    if query_prompt is not None:
        prompts["query"] = query_prompt
    if document_prompt is not None:
        prompts["document"] = document_prompt
    if mode == "lasttoken" and not prompts.get("query"):
        logger.warning(
            "no query prompt: instruction-tuned decoder embedders (Qwen3-Embedding) retrieve better "
            "with one; pass `query_prompt='Instruct: TASK\\nQuery:'` if the model was trained with it"
        )
    return SentenceTransformer(
        modules=modules, device=device, prompts=prompts or None, similarity_fn_name=similarity or "cosine"
    )


def build_model(
    source: str | os.PathLike,
    *,
    base: str | None = None,
    pooling: PoolingChoice = "auto",
    query_prompt: str | None = None,
    document_prompt: str | None = None,
    merge: bool = False,
    base_model_id: str | None = None,
    max_seq_length: int | None = None,
    device: str | None = None,
) -> tuple[SentenceTransformer, dict[str, Any]]:
    """The sentence-transformers model of a raw PEFT adapter or a plain Hugging Face model, in memory,
    and the record of how it was made (see [convert][cardio_st.models.conversion.convert] for the
    arguments)."""
    name = os.fspath(source)
    folder, kind = find_source(name)
    if kind == "sentence-transformers":
        raise CardioSTError(
            f"{name} is already a sentence-transformers model: load it with SentenceTransformer({name!r}); "
            "to publish it, use `push_to_hub` (`cardio-st push`)"
        )
    local = Path(name).expanduser().is_dir()  # a card names a local source by its folder name, never its path
    record: dict[str, Any] = {"converted_from": Path(name).expanduser().resolve().name if local else name}
    record["converted_from_hub"] = not local
    if isinstance(folder, Path):  # the source's own card: its licence carries over
        record["license"] = read_card_metadata(folder).get("license")
    if kind == "adapter":
        config = json.loads((Path(folder) / "adapter_config.json").read_text(encoding="utf8"))
        if config.get("peft_type", "LORA") != "LORA":
            raise CardioSTError(
                f"{name} is a {config['peft_type']} adapter: cardio-st converts LoRA adapters"
            )
        recorded = config.get("base_model_name_or_path")
        base_name = base or recorded
        if not base_name:
            raise CardioSTError(f"{name} does not name its base model: pass `base='PATH_OR_ID'`")
        model = _pipeline(base_name, pooling, query_prompt, document_prompt, max_seq_length, device)
        model.load_adapter(str(folder))
        hub_id = base_model_id or known_hub_id(base) or (None if base else known_hub_id(recorded))
        for settings in model[0].auto_model.peft_config.values():
            settings.base_model_name_or_path = hub_id or str(Path(base_name).expanduser().resolve())
        if not hub_id and not merge:
            logger.warning(
                "the base %s has no Hub id: the converted adapter loads on this machine only; pass "
                "`base_model_id='ORG/NAME'`, or `merge=True` for full weights",
                base_name,
            )
        record["lora"] = lora_settings(config)
        record["base_models"] = [hub_id] if hub_id else []
        if merge:
            merge_lora(model)
    else:
        if merge:
            raise CardioSTError(
                f"{name} is a full model, not an adapter: there is nothing to merge; leave out `merge=True`"
            )
        # The same weights in another format: no base model to name; the card says what it came from.
        model = _pipeline(str(folder), pooling, query_prompt, document_prompt, max_seq_length, device)
    return model, record
