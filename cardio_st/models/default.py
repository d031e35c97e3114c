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
from cardio_st.utils.files import new_folder

__all__ = [
    "DEFAULT_MODEL",
    "ICD10_MINILM",
    "ModelSource",
    "embedded_models",
    "export_model",
    "load_model",
    "resolve_model",
]


def export_model(name_or_path: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path:
    """Write a model as a standalone sentence-transformers folder that plain
    ``SentenceTransformer(out_dir)`` loads, without cardio-st.

    ``export_model("default", "icd10-minilm")`` writes the embedded default (its adapter merged into
    all-MiniLM-L6-v2, with its model card); any other alias, folder or Hub id is copied or saved the
    same way.

    Raises:
        CardioSTError: when ``out_dir`` exists and is not empty, or the model cannot be found.
    """
    out = new_folder(out_dir)
    source = resolve_model(name_or_path)
    if source.path is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source.path, out, dirs_exist_ok=True)
    else:
        model, _ = load_model(source, device="cpu")
        model.save(str(out))
    return out
