"""The files of an embedding index: embeddings in safetensors with the small facts and SHA-256
checksums in its header, ids and texts in an Arrow IPC file beside it. Leaves out building and searching
(index).

Format 2 (this one): ``NAME.safetensors`` holds one float32 tensor ``embeddings`` ``(n, dim)`` and, in
its header's ``cardio_st`` entry, JSON with ``format_version``, ``rows``, ``dim``, ``metadata``,
``embeddings_sha256`` (of the tensor's bytes), ``rows_file``, ``rows_bytes``, ``rows_sha256`` (of that
file) and ``header_sha256`` (of this JSON without itself, keys sorted). ``NAME.safetensors.rows.arrow``
is an uncompressed Arrow IPC file with ``large_string`` columns ``id`` and ``text``, one row per
embedding. Format 1 (cardio-st 0.1.0) kept ``ids`` and ``texts`` in the header JSON, with no checksums;
it is still read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from cardio_st.errors import CardioSTError
from cardio_st.utils.integrity import buffer_sha256, file_sha256

__all__ = ["FORMAT_VERSION", "DamagedIndexError", "read_index", "rebuild_hint", "rows_file", "write_index"]

#: 2: texts and ids in an Arrow sidecar, SHA-256 checksums; 1: texts in the safetensors header.
FORMAT_VERSION = 2


def write_index(
    path: Path, embeddings: torch.Tensor, ids: Sequence[str], texts: Sequence[str], metadata: dict[str, Any]
) -> None:
    """Write the index as two files: the embeddings in ``path`` (safetensors) and its ids and texts in
    ``<path>.rows.arrow`` (Arrow IPC), each with a SHA-256 recorded in ``path``'s header.

    Both are written to temporary files first and renamed into place only when both are complete:
    a failed write leaves the previous index as it was.

    Raises:
        CardioSTError: for embeddings that are NaN or infinite (such an index could not be searched).
    """
    from safetensors.torch import save_file

    embeddings = embeddings.detach().to("cpu", torch.float32).contiguous()
    check_finite(embeddings, ids, f"not saving {path}:")
    rows_path = rows_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = [p.with_name(f".{p.name}.{os.getpid()}.tmp") for p in (rows_path, path)]
    try:
        _write_rows(temporary[0], ids, texts)
        header = {
            "format_version": FORMAT_VERSION,
            "rows": len(ids),
            "dim": int(embeddings.shape[1]) if embeddings.ndim == 2 else 0,
            "metadata": metadata,
            "embeddings_sha256": buffer_sha256(embeddings.numpy()),
            "rows_file": rows_path.name,
            "rows_bytes": temporary[0].stat().st_size,
            "rows_sha256": file_sha256(temporary[0]),
        }
        header["header_sha256"] = _header_digest(header)
        save_file({"embeddings": embeddings}, str(temporary[1]), metadata={"cardio_st": json.dumps(header)})
        for tmp in temporary:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(temporary[0], rows_path)
        os.replace(temporary[1], path)
    finally:
        for tmp in temporary:
            tmp.unlink(missing_ok=True)


def read_index(path: Path) -> tuple[torch.Tensor, list[str], list[str], dict[str, Any]]:
    """Read an index written by [save][cardio_st.retrieval.index.EmbeddingIndex.save], verifying it.

    The header, the embeddings and the rows file are each checked against the SHA-256 recorded at
    write time (streamed: about 0.7 ms per MB on one core, e.g. 80 ms for all of ICD-10-CM at 384
    dimensions), and every embedding must be finite. An index of format 1 (what cardio-st 0.1.0 wrote:
    texts in the safetensors header, no checksums) still loads; only its finiteness is checked.

    Raises:
        CardioSTError: if the file is missing, unreadable, not a cardio-st index, or damaged (one
            line naming the file, the damage, and how to rebuild it).
    """
    from safetensors import safe_open

    if not path.is_file():
        raise CardioSTError(
            f"no index at {path}: check the path, or build the index first "
            "(`cardio-st index`; in Python, index_documents)"
        )
    header = _read_header(path)
    version = header.get("format_version")
    if version not in (1, FORMAT_VERSION):
        raise CardioSTError(
            f"{path} has index format {version}, this cardio-st reads 1 and {FORMAT_VERSION}: "
            f"{rebuild_hint(path, header.get('metadata'))}",
            exit_code=1,
        )
    metadata = header.get("metadata") or {}
    if version == FORMAT_VERSION and header.get("header_sha256") != _header_digest(header):
        _damaged(path, "its header does not match the checksum recorded when it was written", metadata)
    try:
        with safe_open(str(path), framework="pt") as handle:
            embeddings = handle.get_tensor("embeddings")
    except Exception as error:  # safetensors raises several types for a damaged file
        _damaged(path, f"{type(error).__name__}: {str(error).splitlines()[0]}", metadata)
    if version == 1:
        ids, texts = header.get("ids"), header.get("texts")
    else:
        shape = (header.get("rows"), header.get("dim"))
        if embeddings.dtype != torch.float32 or tuple(embeddings.shape) != shape:
            _damaged(path, f"its embeddings are {embeddings.dtype} {tuple(embeddings.shape)}", metadata)
        if buffer_sha256(embeddings.numpy()) != header.get("embeddings_sha256"):
            _damaged(
                path, "its embeddings do not match the checksum recorded when they were written", metadata
            )
        ids, texts = _read_rows(path, header, metadata)
    lists = isinstance(ids, list) and isinstance(texts, list)
    if not lists or not len(ids) == len(texts) == len(embeddings):
        _damaged(path, "its ids, texts and embeddings disagree in number", metadata)
    try:
        check_finite(embeddings, ids, "its")
    except CardioSTError as error:
        _damaged(path, str(error), metadata)
    return embeddings, ids, texts, metadata


def rows_file(path: str | Path) -> Path:
    """Where the ids and texts of the index at ``path`` are: ``<path>.rows.arrow`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".rows.arrow")


def rebuild_hint(path: str | Path, metadata: dict[str, Any] | None) -> str:
    """How to rebuild the index at ``path``: the ``cardio-st index`` command it was built with, when the
    index records its corpus and model; cardio-st never deletes or overwrites an index it does not own."""
    metadata = metadata if isinstance(metadata, dict) else {}
    if metadata.get("kind") == "icd10":
        return "delete it, and the next search rebuilds it"
    corpus, model = metadata.get("corpus"), metadata.get("model")
    corpus = shlex.quote(str(corpus)) if corpus else "CORPUS"
    model = shlex.quote(str(model)) if model else "MODEL"
    out = shlex.quote(str(path))
    return f"rebuild it with cardio-st index {corpus} --model {model} --out {out} --overwrite"


class DamagedIndexError(CardioSTError):
    """A cardio-st index whose files do not match what was written (checksum, size, NaN): ``problem``
    says what, the message also how to rebuild it."""

    def __init__(
        self, path: Path, problem: str, metadata: dict[str, Any] | None, index: Path | None = None
    ) -> None:
        hint = rebuild_hint(index or path, metadata)
        super().__init__(f"{path} is damaged ({problem}): {hint}", exit_code=1)
        self.path, self.problem = path, problem


def _damaged(
    path: Path, problem: str, metadata: dict[str, Any] | None, index: Path | None = None
) -> NoReturn:
    raise DamagedIndexError(path, problem, metadata, index)


def _header_digest(header: dict[str, Any]) -> str:
    body = {key: value for key, value in header.items() if key != "header_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _read_header(path: Path) -> dict[str, Any]:
    """The ``cardio_st`` record of a safetensors file's header, read without the tensors (so that a
    truncated or damaged file still says how it was built)."""
    try:
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if not 0 < length <= min(path.stat().st_size - 8, 1 << 30):
                raise ValueError(f"a header of {length:,} bytes")
            header = json.loads(handle.read(length))
        if "cardio_st" not in (header.get("__metadata__") or {}):
            raise ValueError("a safetensors file without a cardio-st record, e.g. model weights")
        record = json.loads(header["__metadata__"]["cardio_st"])
        if not isinstance(record, dict):
            raise ValueError(f"a cardio-st record that is a {type(record).__name__}")
        return record
    except (OSError, ValueError, AttributeError, TypeError, UnicodeDecodeError) as error:
        fix = (
            f"if it is one, {rebuild_hint(path, None)}"
            if path.suffix == ".safetensors"
            else "pass the .safetensors file that cardio-st index wrote"
        )
        raise CardioSTError(
            f"{path} is not a readable cardio-st index ({type(error).__name__}: {error}): {fix}", exit_code=1
        ) from error


def _write_rows(path: Path, ids: Sequence[str], texts: Sequence[str], batch_rows: int = 65_536) -> None:
    """Ids and texts as an Arrow IPC file (uncompressed, so a reader memory-maps it), in record batches
    of ``batch_rows`` so that writing never holds a second copy of all texts."""
    import pyarrow as pa

    schema = pa.schema([("id", pa.large_string()), ("text", pa.large_string())])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for start in range(0, len(ids), batch_rows) if len(ids) else [0]:
            stop = start + batch_rows
            try:
                columns = [pa.array(rows[start:stop], pa.large_string()) for rows in (ids, texts)]
            except (pa.ArrowTypeError, pa.ArrowInvalid) as error:
                raise CardioSTError(f"index ids and texts must be strings: {error}") from None
            writer.write_batch(pa.record_batch(columns, schema=schema))


def _read_rows(path: Path, header: dict[str, Any], metadata: dict[str, Any]) -> tuple[list[str], list[str]]:
    import pyarrow as pa

    rows_path = path.with_name(str(header.get("rows_file")))
    try:
        size = rows_path.stat().st_size
    except OSError:
        raise CardioSTError(
            f"{path} has lost its rows file {rows_path.name} (its ids and texts): an index is the two files "
            f"together, copy both; or {rebuild_hint(path, metadata)}",
            exit_code=1,
        ) from None
    written = header.get("rows_bytes")
    if size != written:
        _damaged(rows_path, f"{size:,} bytes, {written} were written", metadata, path)
    if file_sha256(rows_path) != header.get("rows_sha256"):
        _damaged(rows_path, "it does not match the checksum recorded when it was written", metadata, path)
    try:
        with pa.memory_map(str(rows_path)) as source:
            table = pa.ipc.open_file(source).read_all()
            return table.column("id").to_pylist(), table.column("text").to_pylist()
    except (pa.ArrowException, KeyError) as error:
        _damaged(rows_path, f"{type(error).__name__}: {error}", metadata, path)


def check_finite(embeddings: torch.Tensor, ids: Sequence[str], where: str) -> None:
    """Raise naming the first row that is NaN or infinite. A NaN or infinity makes the sum non-finite,
    so one float32 sum (5 ms for all of ICD-10-CM, a fifth of ``isfinite``) clears a sound matrix;
    rows are looked at only when it is not (or a sum of huge values overflowed)."""
    if embeddings.numel() == 0 or math.isfinite(float(embeddings.sum())):
        return
    finite = torch.isfinite(embeddings).all(dim=1) if embeddings.ndim == 2 else torch.isfinite(embeddings)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten()
        row = int(bad[0])
        name = f" ({ids[row]})" if row < len(ids) else ""
        raise CardioSTError(
            f"{where} {len(bad):,} embedding rows are NaN or infinite, the first row {row}{name}", exit_code=1
        )
