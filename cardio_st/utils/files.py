"""Crash-safe file writes and output-folder checks shared by every command that writes.
Leaves out what is written: callers own their formats.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from cardio_st.errors import CardioSTError

__all__ = ["FOLDER_MARKER", "atomic_write", "claim_folder", "folder_owner", "new_folder", "replace_file"]

FOLDER_MARKER = ".cardio-st-folder.json"
"""The hidden file that marks an output folder as written by a cardio-st command (``{"command": ...}``)."""


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


def folder_owner(path: str | os.PathLike) -> str | None:
    """The cardio-st command whose output folder ``path`` is (from its
    [FOLDER_MARKER][cardio_st.utils.files.FOLDER_MARKER]), or ``None`` when it carries no readable marker.

    Example:
        >>> folder_owner("/nonexistent") is None
        True
    """
    try:
        marker = json.loads((Path(path) / FOLDER_MARKER).read_text(encoding="utf8"))
    except (OSError, ValueError):
        return None
    command = marker.get("command") if isinstance(marker, dict) else None
    return command if isinstance(command, str) else None


def claim_folder(
    path: str | os.PathLike,
    *,
    owner: str,
    overwrite: bool = False,
    recognise: Callable[[Path], bool] | None = None,
    resume: bool = True,
) -> Path:
    """``path`` as the output folder of the command ``owner``, created and marked as its own; a folder
    holding anything else is refused unless ``overwrite=True``.

    Accepted as they are: a missing folder (created, with parents), an empty one, and -- when ``resume``
    -- one whose [FOLDER_MARKER][cardio_st.utils.files.FOLDER_MARKER] names ``owner`` (a rerun or resume
    of the same command) or, for folders written before the marker existed, one that ``recognise``
    identifies as the command's own state (a paraphrase checkpoint, a labelling summary, ...). The
    marker is written (or rewritten) in every accepted folder.

    Refused (one-line [CardioSTError][cardio_st.errors.CardioSTError] naming the folder and the fix):
    a path that is a file; a non-empty folder of another command or of nobody; with ``resume=False``,
    also a non-empty folder of the same command.

    ``overwrite=True`` allows writing into such a folder and **deletes nothing**: the files the command
    writes replace those of the same name, everything else (the user's files, another command's) is left
    as it was, and state of the command's own found there is still resumed. To start from nothing,
    choose a new folder or empty this one.

    Args:
        path: The output folder.
        owner: The command writing it (``"prepare"``, ``"label"``, ...), recorded in the marker.
        overwrite: Write into a non-empty folder that is not the command's own.
        recognise: ``recognise(folder) -> bool``: whether an unmarked folder is the command's own, from
            the files an earlier version wrote.
        resume: Whether a folder of the same command is accepted (``False`` for commands that cannot add
            to an earlier output, e.g. an exported model).

    Returns:
        The folder, which now exists.

    Raises:
        CardioSTError: for the refusals above, or when the folder cannot be created.

    Example:
        >>> import tempfile
        >>> out = claim_folder(Path(tempfile.mkdtemp()) / "triplets", owner="prepare")
        >>> folder_owner(out)
        'prepare'
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise CardioSTError(f"{folder} is a file, not a folder: choose a folder to write into")
    entries = sorted(p.name for p in folder.iterdir() if p.name != FOLDER_MARKER) if folder.is_dir() else []
    if entries and not overwrite:
        marked = folder_owner(folder)
        if marked is not None and marked != owner:
            raise CardioSTError(
                f"{folder} is the output folder of cardio-st {marked}, not of {owner}: choose a new "
                "folder, or pass `overwrite=True` to write into it (nothing there is deleted)"
            )
        ours = marked == owner or (marked is None and recognise is not None and recognise(folder))
        if not ours or not resume:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            whose = "an earlier run of this command" if ours else f"files {owner} did not write"
            raise CardioSTError(
                f"{folder} is not empty (it holds {whose}: {shown}): choose a new folder, or pass "
                "`overwrite=True` to write into it (nothing there is deleted)"
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        marker = folder / FOLDER_MARKER
        if folder_owner(folder) != owner:
            replace_file(marker, json.dumps({"command": owner}) + "\n")
    except OSError as error:
        raise CardioSTError(
            f"cannot write to {folder} ({error.strerror or error}): choose a writable folder", exit_code=1
        ) from error
    return folder
