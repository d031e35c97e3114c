"""Corpus reading: a folder of .txt, .md and .pdf files -> clean, split, filtered, deduplicated sentences.
Leaves out OCR and language detection, and the text rules themselves (cardio_st.data.sentences).

Each file is read (UTF-8 text, or a PDF's text through the optional pypdf), cleaned by
[clean_text][cardio_st.data.sentences.clean_text] and split by
[split_sentences][cardio_st.data.sentences.split_sentences]; those two and
[normalise][cardio_st.data.sentences.normalise] are re-exported here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cardio_st.data.sentences import clean_text, normalise, split_sentences
from cardio_st.errors import CardioSTError

__all__ = [
    "Corpus",
    "Sentence",
    "read_corpus",
    "read_text_file",
    # re-exported from cardio_st.data.sentences
    "clean_text",
    "normalise",
    "split_sentences",
]

logger = logging.getLogger(__name__)

#: File name endings that [read_corpus][cardio_st.data.corpus.read_corpus] reads; others are ignored.
EXTENSIONS = (".txt", ".md", ".pdf")

_STAT_KEYS = (
    "files",
    "sentences",
    "dropped_too_short",
    "dropped_too_long",
    "dropped_duplicate",
    "dropped_near_duplicate",
    "kept",
)
_SKIP_HINT = "remove it, or pass `skip_unreadable=True`"


@dataclass(frozen=True)
class Sentence:
    """One sentence of a corpus and where it came from.

    Attributes:
        text: The sentence, cleaned, on one line.
        source: The file's path relative to the corpus folder, POSIX style (``"books/braunwald.txt"``).
        position: 0-based index of the sentence within its source after cleaning and splitting, before
            filtering and deduplication, so positions stay the same when filter settings change.
    """

    text: str
    source: str
    position: int


@dataclass
class Corpus:
    """The sentences that [read_corpus][cardio_st.data.corpus.read_corpus] kept, and counts of the rest.

    Attributes:
        sentences: Kept sentences, in file order then position order.
        stats: Counts, in this order: ``files``, ``sentences``, ``dropped_too_short``,
            ``dropped_too_long``, ``dropped_duplicate``, ``dropped_near_duplicate``, ``kept``, and
            ``files_skipped`` when unreadable files were skipped. ``sentences`` is the drops plus ``kept``.
    """

    sentences: list[Sentence]
    stats: dict[str, int] = field(default_factory=dict)


class _UnreadableFile(CardioSTError):
    """A file that ``skip_unreadable=True`` skips (unlike a missing optional dependency)."""


def _read_pdf(path: Path) -> str:
    try:
        from pypdf import PdfReader
    except ImportError:
        raise CardioSTError(
            f'reading PDF files ({path}) needs pypdf: pip install "cardio-st[pdf]"', exit_code=1
        ) from None
    try:
        pages = [page.extract_text() or "" for page in PdfReader(path).pages]
    except Exception as error:  # pypdf raises many types for damaged files
        raise _UnreadableFile(
            f"{path} could not be read as a PDF ({type(error).__name__}: {error}): repair or {_SKIP_HINT}"
        ) from error
    text = "\n".join(pages)
    if not any(c.isalnum() for c in text):
        raise _UnreadableFile(
            f"{path} has no extractable text (scanned pages?): run OCR on it first "
            f"(e.g. `ocrmypdf --force-ocr in.pdf out.pdf`), or {_SKIP_HINT}"
        )
    return text


def read_text_file(path: Path) -> str:
    """The text of one corpus file: UTF-8 ``.txt`` or ``.md`` (a BOM is allowed), or ``.pdf`` via pypdf.

    Args:
        path: The file.

    Returns:
        The text as stored (not cleaned); for a PDF, the pages' extracted text joined by line breaks.

    Raises:
        CardioSTError: for a binary or non-UTF-8 file (naming the byte offset and line of the first
            bad byte and how to convert it), a PDF without text, or a PDF when pypdf is not installed.

    Example:
        >>> text = read_text_file(Path("notes/stemi.md"))  # doctest: +SKIP
    """
    path = Path(path)
    if path.suffix.lower() == ".pdf":
        return _read_pdf(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise _UnreadableFile(f"{path} cannot be read ({error.strerror}): fix it, or {_SKIP_HINT}") from error
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _UnreadableFile(
            f"{path} is UTF-16 text: convert it with `iconv -f utf-16 -t utf-8 {path.name}`, or {_SKIP_HINT}"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise _UnreadableFile(
            f"{path} is a binary file, not text (NUL byte at offset {nul}): remove it from the corpus "
            "folder, or pass `skip_unreadable=True`"
        )
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = bom + error.start
        line = data.count(b"\n", 0, offset) + 1
        raise _UnreadableFile(
            f"{path} is not UTF-8 (byte 0x{data[offset]:02x} at offset {offset}, line {line}): convert it "
            f"with `iconv -f latin1 -t utf-8 {path.name} > fixed.txt`, {_SKIP_HINT}"
        ) from None


def _corpus_files(folder: Path) -> tuple[list[Path], list[Path]]:
    wanted, others = [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                path = Path(root, name)
                (wanted if path.suffix.lower() in EXTENSIONS else others).append(path)
    return sorted(wanted, key=lambda p: p.relative_to(folder).as_posix()), others


def read_corpus(
    folder: str | os.PathLike,
    *,
    min_words: int = 3,
    max_words: int = 500,
    deduplicate: bool = True,
    skip_unreadable: bool = False,
) -> Corpus:
    """Read every ``.txt``, ``.md`` and ``.pdf`` file under a folder into clean, unique sentences.

    Files are read recursively in sorted path order (hidden files and folders are ignored), each
    cleaned by [clean_text][cardio_st.data.sentences.clean_text] and split by
    [split_sentences][cardio_st.data.sentences.split_sentences]. Sentences with fewer than
    ``min_words`` or more than ``max_words`` words (split on whitespace) are dropped; then, across
    all files, exact repeats and near repeats (same [normalise][cardio_st.data.sentences.normalise]
    key) of a kept sentence are dropped, so the first occurrence in file order stays.

    Args:
        folder: The corpus folder.
        min_words: Drop sentences shorter than this.
        max_words: Drop sentences longer than this.
        deduplicate: Drop exact and near duplicates.
        skip_unreadable: Skip binary, non-UTF-8 and text-less PDF files with a warning (counted in
            ``stats["files_skipped"]``) instead of raising.

    Returns:
        The kept sentences and the counts of [Corpus.stats][cardio_st.data.corpus.Corpus].

    Raises:
        CardioSTError: when the folder is missing or holds no such files, or a file is unreadable.

    Example:
        >>> corpus = read_corpus("textbooks/", min_words=5)  # doctest: +SKIP
        >>> corpus.stats["kept"], corpus.sentences[0].source  # doctest: +SKIP
        (48211, 'braunwald/ch01.txt')
    """
    root = Path(folder)
    if not root.exists():
        raise CardioSTError(f"corpus folder {root} does not exist: check the path")
    if not root.is_dir():
        raise CardioSTError(
            f"{root} is not a folder: pass the folder that holds your .txt, .md and .pdf files"
        )
    if min_words < 0 or max_words < min_words:
        raise CardioSTError(f"min_words={min_words}, max_words={max_words}: use 0 <= min_words <= max_words")
    files, others = _corpus_files(root)
    if not files:
        found = f" (found {len(others)} other file(s), e.g. {others[0].name})" if others else ""
        raise CardioSTError(
            f"no .txt, .md or .pdf files in {root}{found}: put the corpus text in files with those endings"
        )

    stats = dict.fromkeys(_STAT_KEYS, 0)
    skipped = 0
    kept: list[Sentence] = []
    seen_texts: set[str] = set()
    seen_keys: set[str] = set()
    for path in files:
        try:
            raw = read_text_file(path)
        except _UnreadableFile as error:
            if not skip_unreadable:
                raise
            logger.warning("skipping unreadable file: %s", error)
            skipped += 1
            continue
        stats["files"] += 1
        source = path.relative_to(root).as_posix()
        for position, text in enumerate(split_sentences(clean_text(raw))):
            stats["sentences"] += 1
            words = len(text.split())
            if words < min_words:
                stats["dropped_too_short"] += 1
            elif words > max_words:
                stats["dropped_too_long"] += 1
            elif deduplicate and text in seen_texts:
                stats["dropped_duplicate"] += 1
            elif deduplicate and (key := normalise(text)) in seen_keys:
                stats["dropped_near_duplicate"] += 1
            else:
                if deduplicate:
                    seen_texts.add(text)
                    seen_keys.add(key)
                kept.append(Sentence(text=text, source=source, position=position))
    stats["kept"] = len(kept)
    if skipped:
        stats["files_skipped"] = skipped
    return Corpus(sentences=kept, stats=stats)
