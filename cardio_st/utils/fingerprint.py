"""Content fingerprints of model folders (SHA-256 over the files that decide embeddings, with each
file's hash remembered against its size and modification time) and of training data (over its rows).
Torch-free; leaves out models in memory (cardio_st.retrieval.index.model_fingerprint hashes their weights).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from cardio_st.utils.cache import cache_dir
from cardio_st.utils.files import atomic_write

__all__ = ["data_fingerprint", "files_fingerprint", "model_files"]

logger = logging.getLogger(__name__)

# The model card and cardio-st's record (cardio_st.json) do not change embeddings.
_IGNORED_FILES = {"README.md", "cardio_st.json"}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_files(folder: Path, parts: Sequence[str] | None = None) -> list[Path]:
    """The files of a model folder that decide its embeddings (or of its ``parts``), sorted: dotfiles
    and the model card left out."""
    if parts is None:
        found = (p for p in folder.rglob("*") if p.is_file())
    else:
        found = (
            p
            for part in parts
            for p in ([folder / part] if (folder / part).is_file() else (folder / part).rglob("*"))
            if p.is_file()
        )
    kept = []
    for path in sorted(set(found)):
        relative = path.relative_to(folder).as_posix()
        if relative not in _IGNORED_FILES and not any(part.startswith(".") for part in Path(relative).parts):
            kept.append(path)
    return kept


def files_fingerprint(folder: str | Path, parts: Sequence[str] | None = None) -> str:
    """SHA-256 over the names and contents of a model folder's files.

    The content hash of each file is remembered in the cache folder against its size and
    modification time, so a 16 GB model is read once, not at every call. Dotfiles and the model
    card (README.md) are left out: they do not change embeddings.

    Args:
        folder: The model folder.
        parts: Only these files and subfolders of it (relative paths), e.g. one route of a Router;
            default: every file. Files named but missing are left out, not an error.
    """
    folder = Path(folder).resolve()
    memo_path = cache_dir() / "file-hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    digest, changed = hashlib.sha256(), False
    for path in model_files(folder, parts):
        relative = path.relative_to(folder).as_posix()
        stat = path.stat()
        key, signature = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
        if memo.get(key, {}).get("signature") != signature:
            memo[key] = {"signature": signature, "sha256": _file_sha256(path)}
            changed = True
        digest.update(f"{relative}\0{memo[key]['sha256']}\n".encode())
    if changed:
        try:
            atomic_write(memo_path, lambda tmp: tmp.write_text(json.dumps(memo)))
        except OSError as error:  # a read-only cache only costs re-hashing next time
            logger.debug("could not update %s: %s", memo_path, error)
    return digest.hexdigest()


def _column_bytes(array) -> bytes:
    """The values of one Arrow column as bytes: raw numbers where possible (list columns by their
    lengths and flattened values), else their JSON text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        lengths = pc.list_value_length(array).fill_null(-1).to_numpy(zero_copy_only=False)
        return lengths.tobytes() + _column_bytes(array.flatten())
    if (pa.types.is_floating(kind) or pa.types.is_integer(kind)) and array.null_count == 0:
        return array.to_numpy(zero_copy_only=False).tobytes()
    return json.dumps(array.to_pylist(), default=str, ensure_ascii=False).encode()


def data_fingerprint(data) -> str:
    """SHA-256 over the rows of a ``DatasetDict`` (or ``Dataset``), in order: split names, column names
    and every value. Two datasets with the same fingerprint train the same model; a changed, added,
    removed or reordered row changes it. Reads the data once (about 1 s per 100 MB of text here)."""
    splits = data if hasattr(data, "keys") else {"data": data}
    digest = hashlib.sha256()
    for split in sorted(splits):
        dataset = splits[split]
        names = sorted(dataset.column_names)
        digest.update(f"{split}\0{len(dataset)}\0{names}\n".encode())
        for batch in dataset.with_format("arrow").iter(batch_size=8192):
            for name in names:
                digest.update(name.encode() + b"\0" + _column_bytes(batch.column(name)))
    return digest.hexdigest()
