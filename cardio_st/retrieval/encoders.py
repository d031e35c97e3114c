"""What a document index records about the encoders it belongs to, read from a saved model's files
without loading weights, and loading one encoder (route). Leaves out building and searching (documents).

The record of each route: a hash of its modules' files and of the structure and prompt the router gives
it ([route_fingerprint][cardio_st.retrieval.encoders.route_fingerprint]), the files' sizes and
modification times (a cheap check that a folder is untouched), its tokenizer (a hash of the tokenizer
files, its class and vocabulary size) and its embedding width.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.errors import CardioSTError
from cardio_st.models.routes import SavedLayout, load_route, read_layout
from cardio_st.utils.fingerprint import files_fingerprint, model_files

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.models.default import ModelSource

__all__ = [
    "describe_index",
    "file_stats",
    "load_encoder",
    "local_folder",
    "route_fingerprint",
    "route_record",
    "tokenizer_fingerprint",
    "tokenizer_summary",
]

_TOKENIZER_FILE = re.compile(
    r"^(tokenizer.*|vocab\..*|merges\.txt|special_tokens_map\.json|added_tokens\.json|.*\.model)$"
)
_LAYOUT_FILES = [
    "modules.json",
    "config_sentence_transformers.json",
    "router_config.json",
    "*/router_config.json",
]


def local_folder(source: ModelSource, route: str | None) -> Path:
    """The model's folder; for a Hub id, the files of ``route`` (None: all) fetched into the Hub cache."""
    if source.path is not None:
        return source.path
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(source.hub_id, allow_patterns=_LAYOUT_FILES))
        parts = read_layout(folder).route_parts(route) if route else None
        if parts is None:
            folder = Path(snapshot_download(source.hub_id))
        else:
            patterns = [pattern for part in parts for pattern in (part, f"{part}/*")]
            folder = Path(snapshot_download(source.hub_id, allow_patterns=_LAYOUT_FILES + patterns))
    except Exception as error:  # huggingface_hub raises many types for offline, missing or private repos
        if isinstance(error, CardioSTError):
            raise
        raise CardioSTError(
            f"could not fetch {source.hub_id!r} from the Hugging Face Hub ({type(error).__name__}): check "
            "the id and your network, or pass the model's local folder",
            exit_code=1,
        ) from error
    return folder


def _tokenizer_folder(layout: SavedLayout, route: str) -> Path:
    """The folder of the route's first module (its Transformer), where the tokenizer files are."""
    parts = layout.route_parts(route)
    return layout.folder / (parts[0] if parts else layout.modules[0]["path"])


def tokenizer_fingerprint(layout: SavedLayout, route: str) -> str | None:
    """A hash of the route's tokenizer files, or None when it has none."""
    folder = _tokenizer_folder(layout, route)
    names = sorted(p.name for p in folder.glob("*") if p.is_file() and _TOKENIZER_FILE.match(p.name))
    return files_fingerprint(folder, names) if names else None


def tokenizer_summary(layout: SavedLayout, route: str) -> dict[str, Any]:
    """The tokenizer of a route, from its files: a hash of them, its class and vocabulary size (read
    from tokenizer.json, which can be megabytes: only for the record and for an error message)."""
    folder = _tokenizer_folder(layout, route)
    summary: dict[str, Any] = {"fingerprint": tokenizer_fingerprint(layout, route)}
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf8"))
        summary["class"] = config.get("tokenizer_class")
    except (OSError, ValueError):
        summary["class"] = None
    try:
        tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf8"))
        vocab = tokenizer["model"]["vocab"]
        ids = set(vocab.values()) if isinstance(vocab, dict) else set(range(len(vocab)))
        summary["vocab_size"] = len(ids | {token["id"] for token in tokenizer.get("added_tokens", [])})
    except (OSError, ValueError, KeyError, TypeError):
        summary["vocab_size"] = None
    return summary


def file_stats(folder: Path, parts: list[str] | None) -> dict[str, list[int]]:
    """Size and modification time (ns) of each file of ``parts`` (None: the whole model)."""
    return {
        path.relative_to(folder).as_posix(): [path.stat().st_size, path.stat().st_mtime_ns]
        for path in model_files(folder, parts)
    }


def route_fingerprint(layout: SavedLayout, route: str) -> str:
    """The identity of one route of a saved model: a hash of its modules' files and of the structure
    and prompt that ``router_config.json`` and ``config_sentence_transformers.json`` give it, so two
    models sharing a document encoder share its fingerprint, whatever their query encoders. For a
    model without routes, the hash of the whole folder
    ([files_fingerprint][cardio_st.utils.fingerprint.files_fingerprint])."""
    files = files_fingerprint(layout.folder, layout.route_parts(route))
    if layout.router is None:
        return files
    description = json.dumps(layout.route_description(route), sort_keys=True)
    return hashlib.sha256(f"{files}\0{description}".encode()).hexdigest()


def route_record(layout: SavedLayout, route: str, dimension: int) -> dict[str, Any]:
    """What an index records about one route: fingerprint, file stats, tokenizer, width and prompt."""
    parts = layout.route_parts(route)
    return {
        "fingerprint": route_fingerprint(layout, route),
        "files": file_stats(layout.folder, parts),
        "tokenizer": tokenizer_summary(layout, route),
        "dim": dimension,
        "prompt": (layout.settings.get("prompts") or {}).get(route, ""),
    }


def describe_index(record: dict[str, Any]) -> str:
    """The model an index was built with, for a message: where it was and its document fingerprint."""
    where = record.get("model_path") or record.get("hub_id") or record.get("model")
    return f"{where} (document fingerprint {record['document']['fingerprint'][:12]})"


def load_encoder(layout: SavedLayout, route: str, device: str | None) -> SentenceTransformer:
    """One route of the model as a model of its own ([load_route][cardio_st.models.routes.load_route])."""
    try:
        return load_route(layout.folder, route, device=device, layout=layout)
    except (OSError, ValueError) as error:
        if isinstance(error, CardioSTError):
            raise
        raise CardioSTError(
            f"could not load the {route} encoder of {layout.folder}: {str(error).splitlines()[0]}",
            exit_code=1,
        ) from error
