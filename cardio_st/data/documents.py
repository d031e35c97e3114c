"""A corpus to index: documents with ids, read from a file (JSON lines, CSV/TSV, text, Parquet), a
BEIR folder or the ICD-10-CM tabular list. Leaves out cleaning and sentence splitting (corpus.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cardio_st.data.icd10 import load_codes, resolve_scope
from cardio_st.data.readers import TABLE_FORMATS, read_lines, read_rows, text_value
from cardio_st.errors import CardioSTError

__all__ = ["Documents", "load_documents"]

_FORMATS = ".jsonl, .json, .csv, .tsv, .txt, .parquet, a BEIR folder with corpus.jsonl, or icd10:SCOPE"


@dataclass(frozen=True)
class Documents:
    """Documents in corpus order.

    Attributes:
        ids: One unique id per document.
        texts: What is embedded: the text, after its title when the source has one.
        source: Where they came from, as the user named it (a path or ``icd10:SCOPE``).
    """

    ids: list[str]
    texts: list[str]
    source: str


def _document(where: str, record: dict, line: int) -> tuple[str | None, str]:
    text = record.get("text")
    if text is not None and not isinstance(text, str):
        text_value(where, record, "text")  # a number or a list where text belongs: one line saying so
    if not isinstance(text, str) or not text.strip():
        raise CardioSTError(f"{where}: no text (every document needs a non-empty 'text')")
    title = record.get("title")
    if isinstance(title, str) and title.strip():
        text = f"{title.strip()} {text}"  # mteb and BEIR join title and text the same way
    identifier = record.get("id", record.get("_id"))
    return (None if identifier in (None, "") else str(identifier)), text


def _records(path: Path) -> list[tuple[str | None, str, int]]:
    """JSON lines, CSV/TSV or Parquet rows through the shared reader; a table needs a ``text`` column."""
    rows = []
    for where, number, record in read_rows(path):
        if not rows and path.suffix.lower() in (".csv", ".tsv", ".parquet") and "text" not in record:
            raise CardioSTError(
                f"{path}: no 'text' column (found {list(record)}); name the columns id,text (title optional)"
            )
        rows.append((*_document(where, record, number), number))
    return rows


def _icd10(scope: str) -> Documents:
    codes = load_codes(resolve_scope(scope), billable_only=True)
    return Documents([c.code for c in codes], [c.description for c in codes], f"icd10:{scope}")


def load_documents(source: str | os.PathLike, *, kind: str = "corpus") -> Documents:
    """Read a corpus to index.

    Formats, by suffix: ``.jsonl`` / ``.json`` (one object a line: ``text``, and ``id`` or ``_id``,
    optional ``title``), ``.csv`` / ``.tsv`` (a header naming ``text``, ``id``, optional ``title``),
    ``.txt`` (one document a line), ``.parquet`` (columns as for CSV); a folder holding a BEIR
    ``corpus.jsonl``; or ``icd10:SCOPE`` (the billable codes' official descriptions of a scope, ids the
    codes, as ``cardio-st search`` indexes them). A title is put before the text with a space, as mteb
    does. Documents without an id are numbered by their line (1-based), so every id means one place.

    ``kind`` names what is read in messages (``"corpus"``, or ``"queries"`` for a query file in the same
    formats).

    Raises:
        CardioSTError: for a missing file, an unknown format, an empty corpus, a document without
            text, bad JSON, a ragged CSV row, bytes that are not UTF-8 or a repeated id, in one line
            naming the file and line ([readers][cardio_st.data.readers] reads every format).
    """
    name = os.fspath(source)
    if name.startswith("icd10:"):
        return _icd10(name.removeprefix("icd10:") or "cardio")
    path = Path(name).expanduser()
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        path = path / "corpus.jsonl"
    if not path.is_file():
        raise CardioSTError(f"{kind} {name} not found: pass a file ({_FORMATS})")
    suffix = path.suffix.lower()
    if suffix in TABLE_FORMATS:
        rows = _records(path)
    elif suffix == ".txt":
        rows = [(None, text, line) for line, text in read_lines(path)]
    else:
        raise CardioSTError(f"{kind} {name}: unknown format {suffix or '(no suffix)'}; use {_FORMATS}")
    if not rows:
        noun = "queries" if kind == "queries" else "documents"
        raise CardioSTError(f"{kind} {name} holds no {noun}: add at least one")
    ids, seen = [], {}
    for identifier, _, line in rows:
        identifier = identifier if identifier is not None else str(line)
        if identifier in seen:
            raise CardioSTError(
                f"{path}, line {line}: id {identifier!r} already used on line {seen[identifier]}; "
                "ids must be unique"
            )
        seen[identifier] = line
        ids.append(identifier)
    return Documents(ids, [text for _, text, _ in rows], name)
