"""Index a corpus with a model's document encoder, then search it with the query encoder alone; the
index records which encoders it belongs to and refuses the wrong ones. Leaves out ICD-10-CM's cached
per-scope indexes (icd10) and approximate search.

Made for asymmetric retrievers (CARE): the large document encoder runs once, offline, in
[index_documents][cardio_st.retrieval.documents.index_documents]; the query server,
[IndexSearch][cardio_st.retrieval.documents.IndexSearch], loads only the small query encoder
([load_route][cardio_st.models.routes.load_route]) and never reads the document encoder's weights.
A model without routes works too: both encoders are then the model itself.

What the index records ([encoders][cardio_st.retrieval.encoders]), and checks at search time, without
loading any weights:

- the **document encoder**: a hash of its route's files (what the embeddings depend on) and their
  sizes and modification times; a model whose document encoder differs is refused;
- the **query encoder**: a hash of its route's files and, apart, of its tokenizer files (with the
  tokenizer's class and vocabulary size, for the message); a different tokenizer is refused;
- the **dimension** of both; a query encoder of another width is refused.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cardio_st.data.documents import Documents, load_documents
from cardio_st.errors import CardioSTError
from cardio_st.models.default import ModelSource, resolve_model
from cardio_st.models.routes import SavedLayout, read_layout
from cardio_st.retrieval.encoders import (
    describe_index,
    file_stats,
    load_encoder,
    local_folder,
    route_fingerprint,
    route_record,
    tokenizer_fingerprint,
    tokenizer_summary,
)
from cardio_st.retrieval.expansion import query_expander
from cardio_st.retrieval.index import DamagedIndexError, EmbeddingIndex, build_index
from cardio_st.retrieval.queries import IndexQueries

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.data.abbreviations import Lexicon
    from cardio_st.retrieval.base import Hit
    from cardio_st.retrieval.fusion import HybridRetriever

__all__ = ["IndexSearch", "index_documents"]

logger = logging.getLogger(__name__)

KIND = "documents"


def index_documents(
    model: str | os.PathLike,
    corpus: str | os.PathLike | Documents,
    out: str | os.PathLike,
    *,
    batch_size: int = 32,
    chunk_size: int = 2048,
    overwrite: bool = False,
    show_progress: bool = True,
    device: str | None = None,
) -> EmbeddingIndex:
    """Embed a corpus with the document encoder of ``model`` into an index file at ``out``.

    Only the document route is used to embed (``encode_document``, with the model's document prompt);
    the query route is loaded too, to check that both embed into the same width and to record its
    tokenizer. Batched, with a progress bar, checkpointed chunk by chunk: rerun the same call after an
    interruption and it resumes ([build_index][cardio_st.retrieval.index.build_index]). An up-to-date index at
    ``out`` is returned as it is.

    Args:
        model: A saved model: folder, Hub id or embedded alias; for CARE, the folder that
            [align][cardio_st.training.care.align] or [finetune][cardio_st.training.care.finetune] wrote
            (``OUT/final``). Recorded in the index, so search finds its query encoder.
        corpus: What [load_documents][cardio_st.data.documents.load_documents] reads (a file, a BEIR
            folder, ``icd10:SCOPE``), or [Documents][cardio_st.data.documents.Documents].
        out: The index file to write: ``NAME.safetensors`` (the embeddings), with its ids and texts
            beside it in ``NAME.safetensors.rows.arrow``
            ([EmbeddingIndex.save][cardio_st.retrieval.index.EmbeddingIndex.save]).
        batch_size: Encoding batch size.
        chunk_size: Documents per checkpointed chunk (what an interruption can lose; larger means fewer
            files and fsyncs, which matters on a GPU).
        overwrite: Replace an index at ``out`` built from another corpus or model.
        show_progress: Progress bar with rate and ETA.
        device: Device for the encoders.

    Raises:
        CardioSTError: for a missing model or corpus, an ``out`` that is a folder or holds another
            index, or routes of different widths.
    """
    out = Path(out).expanduser()
    if out.is_dir():
        raise CardioSTError(
            f"{out} is a folder: give the index file's path, e.g. `out='{out / 'index.safetensors'}'`"
        )
    documents = corpus if isinstance(corpus, Documents) else load_documents(corpus)
    source = resolve_model(model)
    folder = local_folder(source, None)
    layout = read_layout(folder)
    document_encoder = load_encoder(layout, "document", device)
    query_encoder = document_encoder if layout.router is None else load_encoder(layout, "query", device)
    dimensions = {
        route: encoder.get_embedding_dimension()
        for route, encoder in (("query", query_encoder), ("document", document_encoder))
    }
    if dimensions["query"] != dimensions["document"]:
        raise CardioSTError(
            f"{source.name}: the query route outputs {dimensions['query']} dimensions and the document route "
            f"{dimensions['document']}: their embeddings cannot be compared; build the router with a bridge "
            "(asymmetric_router(..., bridge='project' or 'truncate'))"
        )
    record = {
        "kind": KIND,
        "corpus": documents.source,
        "model": source.name,
        "model_path": str(source.path) if source.path is not None else None,
        "hub_id": source.hub_id,
        "routed": layout.router is not None,
        "document": route_record(layout, "document", dimensions["document"]),
        "query": route_record(layout, "query", dimensions["query"]),
    }
    if out.is_file():
        try:
            existing = EmbeddingIndex.load(out)
        except DamagedIndexError as error:
            if not overwrite:
                raise CardioSTError(
                    f"{out} is a damaged index ({error.problem}): pass `overwrite=True` to rebuild it",
                    exit_code=1,
                ) from None
            existing = None
        except CardioSTError:
            existing = None
        if (
            existing is not None
            and existing.metadata.get("document", {}).get("fingerprint") == record["document"]["fingerprint"]
            and existing.ids == documents.ids
            and existing.texts == documents.texts
        ):
            stale = {key: value for key, value in record.items() if existing.metadata.get(key) != value}
            if stale:  # the same embeddings, recorded beside another query encoder or location
                existing.metadata.update(stale)
                existing.save(out)
            logger.info("%s is up to date", out)
            return existing
        if not overwrite and (existing is None or "document" not in existing.metadata):
            raise CardioSTError(
                f"{out} exists and is not an index from cardio-st index: pass `overwrite=True` to replace "
                "it, or choose another output file"
            )
        if not overwrite:
            raise CardioSTError(
                f"{out} already holds an index of another corpus or document encoder (built with "
                f"{describe_index(existing.metadata)}): pass `overwrite=True` to replace it, or choose "
                "another output file"
            )
    record["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return build_index(
        document_encoder,
        documents.texts,
        documents.ids,
        out,
        key=record["document"]["fingerprint"],
        metadata=record,
        batch_size=batch_size,
        chunk_size=chunk_size,
        show_progress=show_progress,
        description=f"Embedding {documents.source}",
    )


class IndexSearch(IndexQueries):
    """Search an index from [index_documents][cardio_st.retrieval.documents.index_documents] with the query
    encoder alone.

    The query encoder comes from the model the index records, or from ``model``; only its route's
    files are read (for a Hub id, only they are downloaded). Before anything is loaded, the model is
    checked against the index: a different document encoder, a query tokenizer other than the one the
    index records, or another width stops with an error naming the mismatch. A query encoder other
    than the recorded one is accepted when its model's document encoder is the index's (for example a
    second Stage I run against the same frozen document encoder), with a logged note.

    Args:
        index: The index file.
        model: The model to take the query encoder from (folder, Hub id or alias); default: the one the
            index records.
        batch_size: Query encoding batch size.
        device: Device for the query encoder.
        expand: Replace abbreviations in queries by their readings before searching
            ([QueryExpander][cardio_st.retrieval.expansion.QueryExpander]; ambiguous ones read as the
            corpus reads them). Off by default: the lexicon is medical and your corpus may not be.
        lexicon: A [Lexicon][cardio_st.data.abbreviations.Lexicon], or a user lexicon file whose entries
            add to or override the default one.

    Raises:
        CardioSTError: for an index not built by ``index_documents``, a model that cannot be found, or
            any of the mismatches above.

    Example:
        ```python
        from cardio_st.retrieval.documents import IndexSearch, index_documents

        index_documents("runs/care/final", "icd10:cardio", "care-cardio.safetensors")   # offline, once
        searcher = IndexSearch("care-cardio.safetensors")   # loads the query encoder only
        searcher.search(["heart attack"], top_k=5)
        ```
    """

    def __init__(
        self,
        index: str | os.PathLike,
        model: str | os.PathLike | None = None,
        *,
        batch_size: int = 32,
        device: str | None = None,
        expand: bool = False,
        lexicon: Lexicon | str | os.PathLike | None = None,
    ) -> None:
        self.index: EmbeddingIndex = EmbeddingIndex.load(index)
        self.path = Path(index)
        record = self.index.metadata
        if record.get("kind") != KIND:
            raise CardioSTError(
                f"{index} was not built by `cardio-st index` (it records no encoders): rebuild it from "
                "its corpus with `model='MODEL'` and `overwrite=True`"
            )
        source, named = self._source(model)
        folder = local_folder(source, "query")
        layout = read_layout(folder)
        self._check(layout, named)
        self.model: SentenceTransformer = load_encoder(layout, "query", device)
        width = self.model.get_embedding_dimension()
        if width != self.index.dim:
            raise CardioSTError(
                f"dimension mismatch: the query encoder of {source.name} outputs {width} dimensions, "
                f"{index} holds {self.index.dim}-dimensional document embeddings; use the model the index "
                "was built with"
            )
        self.model_name = source.name
        self.batch_size = batch_size
        self._hybrid: HybridRetriever | None = None
        self.expander = query_expander(lexicon, self.index.texts) if expand else None

    def _source(self, model: str | os.PathLike | None) -> tuple[ModelSource, bool]:
        if model is not None:
            return resolve_model(model), True
        record = self.index.metadata
        path = record.get("model_path")
        if path and Path(path).is_dir():
            return ModelSource(name=path, path=Path(path)), False
        if record.get("hub_id"):
            return ModelSource(name=record["hub_id"], hub_id=record["hub_id"]), False
        raise CardioSTError(
            f"the model {self.path} was built with, {path}, is not there any more: pass `model='FOLDER'`, "
            "its folder (or a copy of it)"
        )

    def _check(self, layout: SavedLayout, named: bool) -> None:
        record = self.index.metadata
        document_same: bool | None = None  # None: the document encoder's files are not here
        if layout.route_on_disk("document"):
            stats = file_stats(layout.folder, layout.route_parts("document"))
            if not named and stats == record["document"]["files"]:
                document_same = True  # the recorded folder, untouched since the build
            else:
                document_same = route_fingerprint(layout, "document") == record["document"]["fingerprint"]
            if not document_same:
                raise CardioSTError(
                    f"{self.path} was built by another document encoder: {describe_index(record)}; this "
                    "model's document encoder differs, so its queries would be compared with another model's "
                    "embeddings. Search with the model the index was built with, or rebuild the index from "
                    f"{record['corpus']} with `model='MODEL'` and `overwrite=True`"
                )
        expected = record["query"]["tokenizer"]
        if tokenizer_fingerprint(layout, "query") != expected["fingerprint"]:
            tokenizer = tokenizer_summary(layout, "query")
            raise CardioSTError(
                f"the query encoder's tokenizer differs from the one {self.path} records: index "
                f"{expected['class']} with {expected['vocab_size']} tokens, model {tokenizer['class']} with "
                f"{tokenizer['vocab_size']} tokens (fingerprints {str(expected['fingerprint'])[:12]} and "
                f"{str(tokenizer['fingerprint'])[:12]}); search with the model the index was built with, "
                "or rebuild the index with this one"
            )
        if route_fingerprint(layout, "query") == record["query"]["fingerprint"]:
            return
        if document_same:
            logger.warning(
                "the query encoder differs from the one %s was built beside; its model's document encoder "
                "is the index's, so the index applies",
                self.path,
            )
            return
        raise CardioSTError(
            f"the query encoder differs from the one {self.path} was built beside "
            f"({describe_index(record)}), and this model has no document encoder on disk to check the "
            "index against: pass the full model folder as `model='FOLDER'`, or rebuild the index"
        )

    @property
    def hybrid_retriever(self) -> HybridRetriever:
        """Dense scores of the index fused with TF-IDF character n-grams of its texts, as
        ``ICD10Search.search(..., hybrid=True)`` does for ICD-10-CM (score fusion, dense weight 0.6)."""
        return self._fitted_hybrid()

    def search(
        self, queries: str | Sequence[str], top_k: int = 5, *, hybrid: bool = False
    ) -> list[list[Hit]]:
        """The ``top_k`` nearest documents of each query (``Hit.id``, ``Hit.text``, ``Hit.score`` the
        cosine; with ``hybrid``, the fused score)."""
        return self._search(queries, top_k, hybrid)
