"""Embedding indexes on disk: built in checkpointed chunks, saved atomically, keyed by model identity,
checksummed. Leaves out approximate search and vector databases.

An index is two files: ``NAME.safetensors`` holds the embeddings (float32, ``(n, dim)``) and, in its
header, the small facts (format version, metadata such as the model fingerprint, SHA-256 checksums);
``NAME.safetensors.rows.arrow`` holds the ids and texts, an uncompressed Arrow IPC file. Arrow rather
than JSONL or Parquet: it memory-maps and loads without parsing or decompressing (2 million rows in a
few seconds), it has no size limit (the safetensors header, where format 1 kept the texts, refuses
more than 100 MB), and pyarrow is already installed (datasets needs it). Every load verifies the
checksums and that each embedding is finite.

A build embeds the texts chunk by chunk and writes each finished chunk to ``<index>.partial/``;
after a crash or Ctrl-C the same call resumes from the chunks on disk, verifying each. The finished
index is written to temporary files and renamed into place, so a reader never sees half an index.
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
from cardio_st.retrieval.index_files import (
    FORMAT_VERSION,
    DamagedIndexError,
    read_index,
    rebuild_hint,
    rows_file,
    write_index,
)
from cardio_st.utils.files import atomic_write
from cardio_st.utils.fingerprint import files_fingerprint
from cardio_st.utils.integrity import buffer_sha256

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "FORMAT_VERSION",
    "DamagedIndexError",
    "EmbeddingIndex",
    "build_index",
    "model_fingerprint",
    "rebuild_hint",
    "rows_file",
]

logger = logging.getLogger(__name__)


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
        """Write the index as two files, atomically: the embeddings in ``path`` (safetensors) and its ids
        and texts in ``<path>.rows.arrow`` (Arrow IPC), with SHA-256 checksums of both in ``path``'s
        header ([index_files][cardio_st.retrieval.index_files] describes the format). A failed write
        leaves the previous index as it was.

        Raises:
            CardioSTError: for embeddings that are NaN or infinite (such an index could not be searched).
        """
        path = Path(path)
        write_index(path, self.embeddings, self.ids, self.texts, self.metadata)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingIndex:
        """Read an index written by [save][cardio_st.retrieval.index.EmbeddingIndex.save], verifying it.

        The header, the embeddings and the rows file are each checked against the SHA-256 recorded at
        write time (streamed: about 0.7 ms per MB on one core, e.g. 80 ms for all of ICD-10-CM at 384
        dimensions, 0.7 s for 2 million rows with 500 MB of text), and every embedding must be finite.
        An index of format 1 (what cardio-st 0.1.0 wrote: texts in the safetensors header, no
        checksums) still loads; only its finiteness is checked.

        Raises:
            CardioSTError: if the file is missing, unreadable, not a cardio-st index, or damaged
                ([DamagedIndexError][cardio_st.retrieval.index_files.DamagedIndexError]: one line naming
                the file, the damage, and the command that rebuilds it).
        """
        return cls(*read_index(Path(path)))


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
    chunk_size: int = 256,
    show_progress: bool = True,
    description: str = "Embedding",
    on_chunk: Callable[[int, int], None] | None = None,
) -> EmbeddingIndex:
    """Embed ``texts`` with ``model.encode_document`` into an index at ``path``, resumably.

    Texts are ordered longest first (as ``model.encode`` orders them, so batches pad as little) and
    cut into chunks of ``chunk_size``; each finished chunk is saved under ``<path>.partial/`` with the
    SHA-256 of its embeddings. A rerun with the same model ``key``, texts and chunk size verifies the
    finished chunks and skips them; a damaged one (checksum, size, NaN) is discarded and embedded again.
    The longest chunk is embedded first (an out-of-memory error shows at once), the others in a fixed
    shuffled order, so the tqdm bar's rate and ETA hold from the first batches instead of starting at
    the slowest texts; the bar advances per encoding batch.

    Args:
        model: Any SentenceTransformer. Uses ``encode_document``, so a document prompt or an
            asymmetric model's document route applies.
        texts: The documents to embed.
        ids: One id per text.
        path: Where the finished ``.safetensors`` index goes (and its ``.rows.arrow`` beside it).
        key: The model's identity ([model_fingerprint][cardio_st.retrieval.index.model_fingerprint]); chunks
            from another key are never reused.
        metadata: Extra facts stored with the index.
        batch_size: Encoding batch size.
        chunk_size: Texts per checkpointed chunk: what a crash can lose (a multiple of ``batch_size``
            keeps batches identical to a single ``encode`` call; larger means fewer files and fsyncs).
        show_progress: Show the progress bar.
        description: Progress bar label.
        on_chunk: Called as ``on_chunk(done, total)`` after each chunk is saved.

    Returns:
        The finished [EmbeddingIndex][cardio_st.retrieval.index.EmbeddingIndex], also saved at ``path``.
    """
    import random

    from safetensors.torch import save_file
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
        except (OSError, ValueError, AttributeError):
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
    starts = list(range(0, len(order), chunk_size))
    chunk_files = [partial / f"chunk-{n:06d}.safetensors" for n in range(len(starts))]
    sizes = [min(chunk_size, len(order) - start) for start in starts]
    finished = {}
    for n, chunk_file in enumerate(chunk_files):
        if chunk_file.exists():
            embeddings, problem = _read_chunk(chunk_file, sizes[n])
            if problem is None:
                finished[n] = embeddings
            else:
                logger.warning("%s is damaged (%s); embedding its texts again", chunk_file, problem)
                chunk_file.unlink(missing_ok=True)
    done = sum(sizes[n] for n in finished)
    todo = [n for n in range(len(starts)) if n not in finished]
    rest = todo[1:] if todo and todo[0] == 0 else todo
    random.Random(0).shuffle(rest)
    todo = ([0] if todo and todo[0] == 0 else []) + rest
    bar = tqdm(
        total=len(texts),
        initial=done,
        desc=description,
        unit="text",
        disable=not show_progress,
        smoothing=0,
    )
    with bar:
        for n in todo:
            start = starts[n]
            chunk = [texts[i] for i in order[start : start + chunk_size]]
            parts = []
            for b in range(0, len(chunk), batch_size):
                batch = model.encode_document(
                    chunk[b : b + batch_size],
                    batch_size=batch_size,
                    convert_to_tensor=True,
                    show_progress_bar=False,
                )
                parts.append(batch.detach().to("cpu", torch.float32))
                bar.update(len(batch))
            embeddings = torch.cat(parts).contiguous()
            if not torch.isfinite(embeddings).all():
                raise CardioSTError(
                    f"the model returned NaN or infinite embeddings for texts {start}-{start + len(chunk)}: "
                    "check the model's weights and dtype (fp16 overflow?)",
                    exit_code=1,
                )
            record = {"sha256": buffer_sha256(embeddings.numpy()), "rows": str(len(chunk))}
            atomic_write(
                chunk_files[n],
                lambda tmp, e=embeddings, r=record: save_file({"embeddings": e}, str(tmp), metadata=r),
            )
            finished[n] = embeddings
            done += len(chunk)
            if on_chunk is not None:
                on_chunk(done, len(texts))

    sorted_embeddings = torch.cat([finished[n] for n in range(len(starts))])
    finished.clear()
    embeddings = torch.empty_like(sorted_embeddings)
    embeddings[torch.tensor(order)] = sorted_embeddings
    del sorted_embeddings
    info = dict(metadata or {})
    info.update({"model_fingerprint": key, "n": len(texts), "dim": int(embeddings.shape[1])})
    index = EmbeddingIndex(embeddings, ids, texts, info)
    index.save(path)
    shutil.rmtree(partial, ignore_errors=True)
    return index


def _read_chunk(path: Path, rows: int) -> tuple[torch.Tensor | None, str | None]:
    """A finished chunk's embeddings, or None and what is wrong with it (unreadable, another number of
    rows, a checksum mismatch, NaN or infinite values)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            record = handle.metadata() or {}
            embeddings = handle.get_tensor("embeddings")
    except Exception as error:  # safetensors raises several types for a damaged file
        return None, f"{type(error).__name__}: {str(error).splitlines()[0]}"
    if embeddings.dtype != torch.float32 or embeddings.ndim != 2 or len(embeddings) != rows:
        return None, f"{embeddings.dtype} {tuple(embeddings.shape)} where {rows} rows of float32 were written"
    if record.get("sha256") != buffer_sha256(embeddings.contiguous().numpy()):
        return None, "it does not match the checksum recorded when it was written"
    if not torch.isfinite(embeddings).all():
        return None, "NaN or infinite values"
    return embeddings, None
