"""The embedded default model, icd10-minilm, and export of any model as a standalone folder; the
historical import path of the loader's names. Leaves out the loading itself (loader) and how the
embedded models are found and merged (embedded).

``from cardio_st.models.default import load_model, resolve_model`` keeps working: they are
[cardio_st.models.loader][cardio_st.models.loader]'s.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cardio_st.models.embedded import DEFAULT_MODEL, ICD10_MINILM, embedded_models
from cardio_st.models.loader import ModelSource, load_model, resolve_model
from cardio_st.utils.files import claim_folder, new_folder
from cardio_st.utils.integrity import MANIFEST

__all__ = [
    "DEFAULT_MODEL",
    "ICD10_MINILM",
    "ModelSource",
    "embedded_models",
    "export_model",
    "load_model",
    "resolve_model",
]


def export_model(
    name_or_path: str | os.PathLike | None, out_dir: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write a model as a standalone sentence-transformers folder that plain
    ``SentenceTransformer(out_dir)`` loads, without cardio-st.

    ``export_model("default", "icd10-minilm")`` writes the embedded default (its adapter merged into
    all-MiniLM-L6-v2, with its model card); any other alias, folder or Hub id is copied or saved the
    same way.

    ``out_dir`` must be new or empty; ``overwrite=True`` writes into a non-empty folder
    ([claim_folder][cardio_st.utils.files.claim_folder]): files of the same name are replaced, nothing
    else is deleted -- so files of another model left there stay, and a new folder is the clean choice.

    Raises:
        CardioSTError: when ``out_dir`` exists and is not empty (without ``overwrite``), or the model
            cannot be found.
    """
    out = claim_folder(out_dir, owner="export", overwrite=True) if overwrite else new_folder(out_dir)
    source = resolve_model(name_or_path)
    if source.path is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source.path, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST))
    else:
        model, _ = load_model(source, device="cpu")
        model.save(str(out))
    return out
