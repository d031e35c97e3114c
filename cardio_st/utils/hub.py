"""Hugging Face Hub ids: the patterns, what looks like a path instead, and the Hub id of a folder in
the Hub cache. Torch-free and offline; leaves out Hub requests (cardio_st.hub).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cardio_st.errors import CardioSTError

__all__ = ["MODEL_ID", "REPO_ID", "base_model_hub_id", "known_hub_id", "looks_like_path", "recorded_base"]

#: A model id as sentence-transformers resolves it: ``name`` or ``org/name``.
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


def looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", "."))
        or "\\" in name
        or name.count("/") > 1
        or name.endswith("/")
    )


#: A repository id with its namespace, ``org/name``, as an adapter's base must be recorded.
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


_CACHE_FOLDER = re.compile(r"models--([^/\\]+?)--([^/\\]+)")


def base_model_hub_id(model_name_or_path: str, base_model_id: str | None = None) -> str:
    """The Hugging Face Hub id to record as an adapter's base model.

    An adapter-only checkpoint is only loadable by others if its ``base_model_name_or_path`` is a
    Hub id, never a path on the machine that trained it. Taken from ``base_model_id`` if given,
    else from ``model_name_or_path`` when that is a Hub id or a folder inside the Hugging Face
    cache (``.../models--org--name/snapshots/...``).

    Raises:
        CardioSTError: for a local folder with no known Hub id, or an invalid id.
    """
    if base_model_id is not None:
        if not REPO_ID.match(base_model_id):
            raise CardioSTError(f"base_model_id {base_model_id!r} is not a Hugging Face Hub id (org/name)")
        return base_model_id
    if not os.path.isdir(model_name_or_path):
        if REPO_ID.match(model_name_or_path):
            return model_name_or_path
        raise CardioSTError(f"{model_name_or_path!r} is neither a local folder nor a Hub id (org/name)")
    match = _CACHE_FOLDER.search(str(Path(model_name_or_path).resolve()))
    if match:
        return f"{match.group(1)}/{match.group(2)}"
    raise CardioSTError(
        f"{model_name_or_path} is a local folder: a LoRA checkpoint must name its base model by Hub id "
        "so that others can load it; pass `base_model_id='org/name'` (where these weights came from)"
    )


def known_hub_id(model_name_or_path: str | None) -> str | None:
    """[base_model_hub_id][cardio_st.utils.hub.base_model_hub_id] without the error: the
    Hub id of a model name or folder when one is known (a Hub id, or a folder in the Hugging Face
    cache), else None."""
    if not model_name_or_path:
        return None
    try:
        return base_model_hub_id(str(model_name_or_path))
    except CardioSTError:
        return None


def recorded_base(model_name_or_path: str, base_model_id: str | None = None) -> tuple[str, str | None]:
    """What an adapter over ``model_name_or_path`` records as its base, and the base's Hub id.

    A local folder is recorded by its absolute path, so that the adapter reloads -- and a resumed
    run rebuilds -- on exactly those weights, offline; a Hub id is recorded as such. The Hub id
    (``base_model_id``, else the one known from a Hub id or a Hugging Face cache folder) is what a
    push writes into the published adapter instead (`cardio-st push`),
    so a local base needs no Hub id until it is published.

    Returns:
        ``(recorded, hub_id)``: the path or id for ``adapter_config.json``, and the Hub id or None.

    Raises:
        CardioSTError: for a ``base_model_id`` that is not a Hub id (org/name), or a base that is
            neither a local folder nor a Hub id.
    """
    hub_id = base_model_hub_id(model_name_or_path, base_model_id) if base_model_id else None
    if os.path.isdir(model_name_or_path):
        return str(Path(model_name_or_path).expanduser().resolve()), hub_id or known_hub_id(
            model_name_or_path
        )
    return model_name_or_path, hub_id or base_model_hub_id(model_name_or_path)
