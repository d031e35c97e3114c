"""Content checksums of what cardio-st writes for later reuse: SHA-256 of a file's bytes (or a byte range)
streamed, and a manifest of a folder's files. Leaves out what to do on a mismatch: each cache's owner
rebuilds it, and a user's file is reported, never touched.

SHA-256 because it is in the standard library and hardware-accelerated on current CPUs (SHA-NI):
about 1.5 GB/s on one core of the 2-core test machine, so verifying a file costs ~0.7 ms per MB read
(60 ms for the merged default model's 88 MB, 80 ms for an index of all ICD-10-CM), paid once per load.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cardio_st.utils.files import atomic_write

__all__ = ["MANIFEST", "buffer_sha256", "file_sha256", "verify_manifest", "write_manifest"]

#: The checksum manifest of a folder cardio-st writes (a dotfile: model fingerprints and exports skip it).
MANIFEST = ".cardio-st-sha256.json"

_BLOCK = 1 << 22


def file_sha256(path: str | os.PathLike, offset: int = 0, length: int | None = None) -> str:
    """SHA-256 of the bytes of ``path`` from ``offset`` (``length`` of them, default to the end), read
    in 4 MB blocks: memory stays flat whatever the file size."""
    digest = hashlib.sha256()
    remaining = length
    with open(path, "rb") as handle:
        handle.seek(offset)
        while remaining is None or remaining > 0:
            block = handle.read(_BLOCK if remaining is None else min(_BLOCK, remaining))
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest()


def buffer_sha256(buffer: Any) -> str:
    """SHA-256 of an object's raw bytes through the buffer protocol (a contiguous numpy array is hashed
    in place, not copied)."""
    return hashlib.sha256(memoryview(buffer).cast("B")).hexdigest()


def write_manifest(folder: str | os.PathLike, files: Iterable[str | os.PathLike] | None = None) -> Path:
    """Record the size and SHA-256 of ``files`` (paths relative to ``folder``; default: every file in it
    but dotfiles) in ``folder/MANIFEST``, written atomically.

    Returns:
        The manifest's path.
    """
    folder = Path(folder)
    if files is None:
        names = sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
    else:
        names = sorted(Path(name).as_posix() for name in files)
    record = {
        name: {"bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
        for name in names
    }
    path = folder / MANIFEST
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps({"files": record}, indent=1)))
    return path


def verify_manifest(folder: str | os.PathLike) -> str | None:
    """Check every file ``folder/MANIFEST`` lists against its recorded size and SHA-256.

    Returns:
        None when all match; else one line naming the first file that does not (or a missing or
        unreadable manifest).
    """
    folder = Path(folder)
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{folder / MANIFEST} is missing or unreadable"
    for name, expected in files.items():
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            return f"{path} is missing"
        if size != expected["bytes"]:
            return f"{path} has {size:,} bytes, {expected['bytes']:,} were written"
        if file_sha256(path) != expected["sha256"]:
            return f"{path} does not match the checksum recorded when it was written"
    return None
