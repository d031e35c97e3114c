"""Turn a raw PEFT adapter (a folder or Hub repo, like CardioEmbed's) or a plain Hugging Face model into a
complete sentence-transformers folder, with its record and model card. Leaves out building the model
(build), loading it in memory (loader: [load][cardio_st.models.loader.load]) and uploading
(cardio_st.hub.push).

``from cardio_st.models.conversion import load`` keeps working: it is the loader's.
"""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path

from cardio_st import __version__
from cardio_st.models.build import PoolingChoice, build_model
from cardio_st.models.card import write_model_card
from cardio_st.models.loader import load
from cardio_st.models.record import write_record
from cardio_st.utils.files import new_folder

__all__ = ["build_model", "convert", "load"]


def convert(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    base: str | None = None,
    pooling: PoolingChoice = "auto",
    query_prompt: str | None = None,
    document_prompt: str | None = None,
    merge: bool = False,
    base_model_id: str | None = None,
    max_seq_length: int | None = None,
) -> Path:
    """Write a raw PEFT adapter or a plain Hugging Face model as a sentence-transformers folder that
    plain ``SentenceTransformer(out_dir)`` loads, with a model card.

    The base decides the pipeline. A base with a sentence-transformers configuration (Qwen3-Embedding,
    all-MiniLM-L6-v2) keeps its own pooling, normalisation and prompts; a plain Hugging Face base gets
    last-token pooling if it is a decoder (its tokenizer made to append EOS, left padding) and mean
    pooling if it is an encoder, then L2 normalisation. Last-token pooling always gets the EOS and
    the left padding, also from a sentence-transformers base whose tokenizer lacks them.

    Args:
        source: An adapter folder or Hub repo (``adapter_config.json``), or a Hugging Face model folder.
        out_dir: A new (or empty) folder.
        base: The base model's folder or Hub id; default: the adapter's ``base_model_name_or_path``.
        pooling: ``"auto"`` (the base's, else by family), ``"eos"``, ``"mean"`` or ``"cls"``.
        query_prompt: Prompt ``encode_query`` puts before queries (Qwen3-Embedding:
            ``"Instruct: {task}\\nQuery:"``); default: the base's.
        document_prompt: Prompt for ``encode_document``; default: the base's (usually none).
        merge: Fold the adapter into the base: full weights that load without ``peft``.
        base_model_id: Hub id to record as the base when ``base`` is a local folder.
        max_seq_length: Tokens per text; default: the base's.

    Returns:
        ``out_dir``.

    Raises:
        CardioSTError: when ``out_dir`` is not new, the source is not a model (or already a
            sentence-transformers one), or the base cannot be found (the message names ``base``).

    Example:
        ```python
        from cardio_st.models.conversion import convert

        convert("richardyoung/CardioEmbed", "cardioembed-st", merge=True)   # base: Qwen/Qwen3-Embedding-8B
        ```
    """
    out = new_folder(out_dir)
    model, record = build_model(
        source,
        base=base,
        pooling=pooling,
        query_prompt=query_prompt,
        document_prompt=document_prompt,
        merge=merge,
        base_model_id=base_model_id,
        max_seq_length=max_seq_length,
        device="cpu",
    )
    record.update(date=datetime.date.today().isoformat(), versions={"cardio_st": __version__})
    partial = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        model.save(str(partial), create_model_card=False)
        write_record(partial, record)
        write_model_card(model, partial, license=record.get("license"))
        if out.exists():
            out.rmdir()
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out
