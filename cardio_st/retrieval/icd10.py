"""Clinical phrase -> ICD-10-CM codes: the nearest official descriptions of billable codes, as in
arXiv 2401.01943, optionally fused with TF-IDF. Leaves out evaluation metrics and the fusion itself (fusion).

The query checks and the search itself are shared with document indexes
([IndexQueries][cardio_st.retrieval.queries.IndexQueries]); this module finds, builds and caches the index.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cardio_st.data.icd10 import chapters, data_release, load_codes, resolve_scope
from cardio_st.errors import CardioSTError
from cardio_st.models.default import load_model
from cardio_st.retrieval.index import FORMAT_VERSION, EmbeddingIndex, build_index, model_fingerprint
from cardio_st.retrieval.queries import HYBRID_METHOD as HYBRID_METHOD  # re-exported: the query checks
from cardio_st.retrieval.queries import HYBRID_WEIGHT as HYBRID_WEIGHT  # and hybrid settings lived here
from cardio_st.retrieval.queries import IndexQueries, truncated_queries
from cardio_st.retrieval.queries import validate_queries as validate_queries
from cardio_st.retrieval.queries import warn_truncated as warn_truncated
from cardio_st.utils.cache import cache_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.retrieval.base import Hit
    from cardio_st.retrieval.fusion import HybridRetriever

__all__ = ["ICD10Search", "search_icd10"]

logger = logging.getLogger(__name__)


class ICD10Search(IndexQueries):
    """Search ICD-10-CM descriptions with any SentenceTransformer.

    The index holds the official descriptions of the billable codes of a scope, embedded with
    ``encode_document``; queries are embedded with ``encode_query``. It is cached on disk under
    [cache_dir][cardio_st.utils.cache.cache_dir], keyed by the model's identity (its files' content, or
    its weights when it only lives in memory), the scope and the ICD-10-CM release, and is built
    on first use with a progress bar, resumably.

    Args:
        model: A SentenceTransformer, a model folder, a Hub id, an embedded alias, or None for the
            embedded default.
        scope: ``"cardio"`` (chapter 9, I00-I99; default), ``"all"`` (about 75k codes) or a
            chapter number or range.
        cache_folder: Where indexes go (default: [cache_dir][cardio_st.utils.cache.cache_dir]).
        batch_size: Encoding batch size for the index build and the queries.
        show_progress: Progress bar while building the index.
        device: Device for a model loaded here.

    Examples:
        >>> searcher = ICD10Search()  # the embedded default (icd10-minilm), circulatory chapter
        >>> hits = searcher.search("heart attack with ST elevation of the anterior wall", top_k=5)[0]
        >>> [hit.id for hit in hits][:3]
        ['I22.0', 'I21.09', 'I22.1']
    """

    def __init__(
        self,
        model: SentenceTransformer | str | os.PathLike | None = None,
        scope: str = "cardio",
        *,
        cache_folder: str | os.PathLike | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
        device: str | None = None,
    ) -> None:
        self.scope = resolve_scope(scope)
        if model is None or isinstance(model, (str, os.PathLike)):
            self.model, self._folder = load_model(model, device=device)
            self.model_name = str(model) if model is not None else "default"
        else:
            self.model, self._folder = model, None
            self.model_name = type(model).__name__
        self.cache_folder = Path(cache_folder) if cache_folder is not None else cache_dir()
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._index: EmbeddingIndex | None = None
        self._fingerprint: str | None = None
        self._hybrid: HybridRetriever | None = None

    @property
    def fingerprint(self) -> str:
        """The model's identity: its files' content when it came from a folder, else its weights."""
        if self._fingerprint is None:
            source = self._folder if self._folder is not None else self.model
            self._fingerprint = model_fingerprint(source)
        return self._fingerprint

    @property
    def index_path(self) -> Path:
        """The cache file of this model, scope and ICD-10-CM release."""
        key = f"{FORMAT_VERSION}\0{self.fingerprint}\0{self.scope}\0{data_release()}\0description"
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        scope = "all" if self.scope == "all" else f"ch{self.scope}"
        return self.cache_folder / "indexes" / f"icd10-{scope}-{digest}.safetensors"

    @property
    def index(self) -> EmbeddingIndex:
        """The index, loaded from the cache or built (and cached) on first use."""
        if self._index is None:
            self._index = self.build()
        return self._index

    def build(self, *, rebuild: bool = False) -> EmbeddingIndex:
        """Load the cached index, or embed the scope's descriptions (resuming a broken build).

        Args:
            rebuild: Ignore a cached index and embed again.
        """
        self._hybrid = None  # fitted on the previous index's embeddings
        path = self.index_path
        if path.is_file() and not rebuild:
            try:
                index = EmbeddingIndex.load(path)
                if index.metadata.get("model_fingerprint") == self.fingerprint:
                    self._index = index
                    return index
                logger.warning("cached index %s belongs to another model; rebuilding it", path)
            except CardioSTError as error:
                logger.warning("%s; rebuilding it", error)
        codes = load_codes(self.scope, billable_only=True)
        title = (
            "all chapters"
            if self.scope == "all"
            else next(c.title for c in chapters() if c.number == self.scope)
        )
        metadata = {
            "kind": "icd10",
            "scope": self.scope,
            "scope_title": title,
            "release": data_release(),
            "model": self.model_name,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        self._index = build_index(
            self.model,
            [code.description for code in codes],
            [code.code for code in codes],
            path,
            key=self.fingerprint,
            metadata=metadata,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
            description=f"Embedding ICD-10-CM ({'all' if self.scope == 'all' else 'chapter ' + self.scope})",
        )
        return self._index

    def truncated(self, queries: Sequence[str]) -> list[tuple[int, int, int]]:
        """Queries longer than the model reads: ``(position, tokens, max_seq_length)`` for each.

        The model reads the first ``max_seq_length`` tokens of such a query and ignores the rest.
        """
        return truncated_queries(self.model, queries)

    @property
    def hybrid_retriever(self) -> HybridRetriever:
        """The [HybridRetriever][cardio_st.retrieval.fusion.HybridRetriever] behind
        ``search(..., hybrid=True)``: min-max score fusion (dense weight 0.6, chosen on the validation
        side of the ICD-10-CM split) of the cached index and TF-IDF over character 3-5-grams of the
        descriptions, fitted on first use (0.1 s for the circulatory chapter, about 5 s for all 74,714
        descriptions on 2 CPU cores) and kept.

        For another fusion, fit your own on the same index without embedding again:
        ``HybridRetriever(searcher.model, method="rrf").fit(searcher.index.texts,
        embeddings=searcher.index.embeddings)``.
        """
        return self._fitted_hybrid()

    def search(
        self, queries: str | Sequence[str], top_k: int = 5, *, hybrid: bool = False
    ) -> list[list[Hit]]:
        """The ``top_k`` nearest billable codes of each query: ``Hit.id`` is the code,
        ``Hit.text`` its description, ``Hit.score`` the cosine similarity.

        A query longer than the model's ``max_seq_length`` is truncated to it (logged as a warning).

        Args:
            queries: One clinical phrase or a list of them.
            top_k: Codes per query.
            hybrid: Fuse the embedding scores with TF-IDF character n-gram scores of the descriptions
                ([hybrid_retriever][cardio_st.retrieval.icd10.ICD10Search.hybrid_retriever]); ``Hit.score`` is
                then the fused score (0 to 1: 1 when a code is first on both sides), not a cosine.
        """
        return self._search(queries, top_k, hybrid)


def search_icd10(
    queries: str | Sequence[str],
    model: SentenceTransformer | str | os.PathLike | None = None,
    scope: str = "cardio",
    top_k: int = 5,
) -> list[list[Hit]]:
    """One-call ICD-10-CM search; see [ICD10Search][cardio_st.retrieval.icd10.ICD10Search] to reuse a model.

    Examples:
        >>> search_icd10("mitral valve prolapse", top_k=1)[0][0].id
        'I34.1'
    """
    return ICD10Search(model, scope).search(queries, top_k)
