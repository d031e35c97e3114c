"""One loader: a model name, folder or Hub id becomes a ``SentenceTransformer`` or a one-line error, and
a raw PEFT adapter or plain Hugging Face model is built in memory the way ``convert`` writes it. Leaves
out training recipes and the embedded models themselves (embedded, cardioembed, care).

[resolve_model][cardio_st.models.names.resolve_model] (in names, re-exported here) is torch-free: it
decides where a model comes from without importing torch or sentence-transformers, so the CLI rejects a
bad model name at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.errors import CardioSTError
from cardio_st.models.build import build_model, find_source
from cardio_st.models.names import BUILTIN_NAMES, ModelSource, resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["ModelSource", "load", "load_model", "resolve_model"]


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
    if name in BUILTIN_NAMES:
        return load_model(name, device=device)[0]
    if path.is_dir() and (path / "modules.json").is_file():
        return load_model(path, device=device)[0]
    if not path.exists():
        resolve_model(name)  # a Hub id: cached, or on the Hub (one request); else close matches, at once
    _, kind = find_source(name)
    if kind == "sentence-transformers":
        return load_model(name, device=device)[0]
    return build_model(name, device=device, **options)[0]
