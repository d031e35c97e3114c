"""Embedding indexes on disk: built in checkpointed chunks, saved atomically, keyed by model identity.
Leaves out approximate search and vector databases: an index is one safetensors file plus its texts.

A build embeds the texts chunk by chunk and writes each finished chunk to ``<index>.partial/``;
after a crash or Ctrl-C the same call resumes from the chunks on disk. The finished index is
written to a temporary file and renamed into place, so a reader never sees half an index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.exact import Hit, semantic_search
from cardio_st.utils.files import atomic_write
from cardio_st.utils.fingerprint import files_fingerprint

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["EmbeddingIndex", "build_index", "model_fingerprint"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def model_fingerprint(model: SentenceTransformer | str | Path) -> str:
    """The identity of a model: what its embeddings depend on, not where it lives.

    A folder is identified by its files' contents
    ([files_fingerprint][cardio_st.utils.fingerprint.files_fingerprint]). A model in memory (e.g. just
    trained) by its weights, module configurations, tokenizer, prompts and maximum sequence length.
    """
    if isinstance(model, (str, Path)):
        return files_fingerprint(model)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}\n".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    for module in model:
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        digest.update(f"{type(module).__name__}:{json.dumps(config, sort_keys=True, default=str)}\n".encode())
    tokenizer = getattr(model, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    settings = {
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
        "max_seq_length": getattr(model, "max_seq_length", None),
    }
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


@dataclass
class EmbeddingIndex:
    """Document embeddings with their ids and texts.

    Embeddings are stored as the model returned them (not normalised), so both cosine and raw
    inner-product or distance scoring stay possible.

    Attributes:
        embeddings: ``(n, dim)`` float32 tensor.
        ids: One id per row (e.g. an ICD-10-CM code).
        texts: One text per row (what was embedded).
        metadata: JSON-serialisable facts about the build: model fingerprint, scope, release, ...
    """

    embeddings: torch.Tensor
    ids: list[str]
    texts: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.embeddings) == len(self.ids) == len(self.texts)):
            raise ValueError(
                f"index rows disagree: {len(self.embeddings)} embeddings, {len(self.ids)} ids, "
                f"{len(self.texts)} texts"
            )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def search(self, query_embeddings: Any, top_k: int = 10, *, normalize: bool = True) -> list[list[Hit]]:
        """Exact top-k of each query embedding
        ([semantic_search][cardio_st.retrieval.exact.semantic_search])."""
        return semantic_search(
            query_embeddings,
            self.embeddings,
            top_k,
            corpus_ids=self.ids,
            corpus_texts=self.texts,
            normalize=normalize,
        )

    def hits(self, scores: Any, rows: Any) -> list[list[Hit]]:
        """Hits of a ranking made elsewhere (e.g. a
        [HybridRetriever][cardio_st.retrieval.fusion.HybridRetriever]'s ``topk``): ``scores`` and
        ``rows`` of shape ``(n_queries, k)``, rows indexing this index."""
        import numpy as np

        return [
            [
                Hit(corpus_id=row, score=float(score), id=self.ids[row], text=self.texts[row])
                for score, row in zip(row_scores, np.asarray(row_indices).tolist())
            ]
            for row_scores, row_indices in zip(scores, rows)
        ]

    def save(self, path: str | Path) -> Path:
        """Write the index as one safetensors file, atomically (temporary file, then rename)."""
        from safetensors.torch import save_file

        path = Path(path)
        header = {
            "format_version": FORMAT_VERSION,
            "ids": self.ids,
            "texts": self.texts,
            "metadata": self.metadata,
        }
        tensors = {"embeddings": self.embeddings.detach().to("cpu", torch.float32).contiguous()}
        atomic_write(
            path, lambda tmp: save_file(tensors, str(tmp), metadata={"cardio_st": json.dumps(header)})
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingIndex:
        """Read an index written by [save][cardio_st.retrieval.index.EmbeddingIndex.save].

        Raises:
            CardioSTError: if the file is missing, unreadable or not a cardio-st index.
        """
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise CardioSTError(
                f"no index at {path}: check the path, or build the index first "
                "(`cardio-st index`; in Python, index_documents)"
            )
        try:
            with safe_open(str(path), framework="pt") as handle:
                header = json.loads((handle.metadata() or {})["cardio_st"])
                version = header.get("format_version")
                if version == FORMAT_VERSION:
                    return cls(
                        handle.get_tensor("embeddings"), header["ids"], header["texts"], header["metadata"]
                    )
        except Exception as error:  # safetensors raises several types for a damaged file
            raise CardioSTError(
                f"{path} is not a readable cardio-st index ({type(error).__name__}: {error}); "
                "delete it and rebuild",
                exit_code=1,
            ) from error
        raise CardioSTError(
            f"{path} has index format {version}, this cardio-st reads {FORMAT_VERSION}: "
            "delete it and rebuild",
            exit_code=1,
        )


def _plan_digest(key: str, ids: Sequence[str], texts: Sequence[str], chunk_size: int) -> str:
    digest = hashlib.sha256(f"{FORMAT_VERSION}\0{key}\0{chunk_size}\n".encode())
    for id_, text in zip(ids, texts):
        digest.update(f"{id_}\0{text}\n".encode())
    return digest.hexdigest()


def build_index(
    model: SentenceTransformer,
    texts: Sequence[str],
    ids: Sequence[str],
    path: str | Path,
    *,
    key: str,
    metadata: dict[str, Any] | None = None,
    batch_size: int = 32,
    chunk_size: int = 2048,
    show_progress: bool = True,
    description: str = "Embedding",
    on_chunk: Callable[[int, int], None] | None = None,
) -> EmbeddingIndex:
    """Embed ``texts`` with ``model.encode_document`` into an index at ``path``, resumably.

    Texts are ordered longest first (as ``model.encode`` orders them, so batches pad as little) and
    cut into chunks of ``chunk_size``; each finished chunk is saved under ``<path>.partial/``. A
    rerun with the same model ``key``, texts and chunk size skips finished chunks. Progress is a
    tqdm bar over texts with rate and ETA.

    Args:
        model: Any SentenceTransformer. Uses ``encode_document``, so a document prompt or an
            asymmetric model's document route applies.
        texts: The documents to embed.
        ids: One id per text.
        path: Where the finished ``.safetensors`` index goes.
        key: The model's identity ([model_fingerprint][cardio_st.retrieval.index.model_fingerprint]); chunks
            from another key are never reused.
        metadata: Extra facts stored with the index.
        batch_size: Encoding batch size.
        chunk_size: Texts per checkpointed chunk (a multiple of ``batch_size`` keeps batches identical
            to a single ``encode`` call).
        show_progress: Show the progress bar.
        description: Progress bar label.
        on_chunk: Called as ``on_chunk(done, total)`` after each chunk is saved.

    Returns:
        The finished [EmbeddingIndex][cardio_st.retrieval.index.EmbeddingIndex], also saved at ``path``.
    """
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm

    texts, ids = list(texts), [str(id_) for id_ in ids]
    if len(texts) != len(ids):
        raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
    if not texts:
        raise CardioSTError("nothing to index: the list of texts is empty")
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    plan = _plan_digest(key, ids, texts, chunk_size)
    plan_file = partial / "plan.json"
    if partial.exists():
        try:
            same_plan = json.loads(plan_file.read_text()).get("plan") == plan
        except (OSError, ValueError):
            same_plan = False
        if not same_plan:
            logger.warning("discarding %s: it was started for other texts or another model", partial)
            shutil.rmtree(partial)
    try:
        partial.mkdir(parents=True, exist_ok=True)
        atomic_write(plan_file, lambda tmp: tmp.write_text(json.dumps({"plan": plan, "total": len(texts)})))
    except OSError as error:
        raise CardioSTError(
            f"cannot write the index to {path.parent} ({error.strerror or error}): choose a writable "
            "folder (for cached indexes, set CARDIO_ST_CACHE)",
            exit_code=1,
        ) from error

    # Stable longest-first order, as model.encode sorts internally.
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    starts = range(0, len(order), chunk_size)
    chunk_files = [partial / f"chunk-{n:06d}.safetensors" for n in range(len(starts))]
    done = sum(min(chunk_size, len(order) - start) for start, f in zip(starts, chunk_files) if f.exists())
    bar = tqdm(
        total=len(texts),
        initial=done,
        desc=description,
        unit="text",
        disable=not show_progress,
        smoothing=0.1,
    )
    with bar:
        for start, chunk_file in zip(starts, chunk_files):
            if chunk_file.exists():
                continue
            chunk = [texts[i] for i in order[start : start + chunk_size]]
            embeddings = model.encode_document(
                chunk, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False
            )
            embeddings = embeddings.detach().to("cpu", torch.float32).contiguous()
            if not torch.isfinite(embeddings).all():
                raise CardioSTError(
                    f"the model returned NaN or infinite embeddings for texts {start}-{start + len(chunk)}: "
                    "check the model's weights and dtype (fp16 overflow?)",
                    exit_code=1,
                )
            atomic_write(chunk_file, lambda tmp, e=embeddings: save_file({"embeddings": e}, str(tmp)))
            done += len(chunk)
            bar.update(len(chunk))
            if on_chunk is not None:
                on_chunk(done, len(texts))

    sorted_embeddings = torch.cat([load_file(str(f))["embeddings"] for f in chunk_files])
    embeddings = torch.empty_like(sorted_embeddings)
    embeddings[torch.tensor(order)] = sorted_embeddings
    info = dict(metadata or {})
    info.update({"model_fingerprint": key, "n": len(texts), "dim": int(embeddings.shape[1])})
    index = EmbeddingIndex(embeddings, ids, texts, info)
    index.save(path)
    shutil.rmtree(partial, ignore_errors=True)
    return index
