"""Crash-safe file writes and output-folder checks shared by every command that writes.
Leaves out what is written: callers own their formats.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cardio_st.errors import CardioSTError

__all__ = ["atomic_write", "new_folder", "replace_file"]


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(tmp)`` then rename over ``path``: readers see the old file or the new one,
    never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def new_folder(path: str | os.PathLike, hint: str = "choose a new output folder") -> Path:
    """``path`` as a folder to write into, refused if it exists and is not empty: nothing of the user's is
    overwritten or mixed with new output."""
    path = Path(path).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise CardioSTError(f"{path} already exists and is not an empty folder: {hint}")
    return path


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` as a new file at ``path``. Staged folders hold hard links to the user's files:
    the link is replaced, never written through."""
    path.unlink(missing_ok=True)
    path.write_text(text, encoding="utf8")

