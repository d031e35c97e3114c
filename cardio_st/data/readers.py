"""The one reader of user files: JSON lines, CSV/TSV, Parquet and plain text become rows, each with
where it came from, and anything malformed (bad JSON, a ragged CSV row, bytes that are not UTF-8, a
number where text belongs) is one line naming the file and line. Leaves out what the rows mean: the
callers (pairs, documents, queries, review CSVs) pick their columns.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TABLE_FORMATS", "Row", "read_lines", "read_parquet", "read_rows", "text_value"]

#: File suffixes [read_rows][cardio_st.data.readers.read_rows] reads, and how.
TABLE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


class Row(NamedTuple):
    """One row of a user file: ``where`` (``"FILE, line N"``) for messages, its line (or row) number
    from 1, and its values by column."""

    where: str
    number: int
    record: dict[str, Any]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The decoded lines of a UTF-8 file (a BOM allowed), numbered from 1, line ends kept."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 -- closed below; decoded line by line for the line number
    except OSError as error:
        raise CardioSTError(
            f"{path} cannot be read ({error.strerror}): check the path and its permissions"
        ) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise CardioSTError(
                        f"{path} is UTF-16 text: convert it with `iconv -f utf-16 -t utf-8 {path.name}` "
                        "and pass the result"
                    )
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if b"\x00" in raw:
                raise CardioSTError(f"{path}, line {number}: a NUL byte: this is a binary file, not text")
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise CardioSTError(
                    f"{path}, line {number}: not UTF-8 (byte 0x{raw[error.start]:02x}): convert the file, "
                    "e.g. "
                    f"`iconv -f latin1 -t utf-8 {path.name} > utf8-{path.name}`, and pass the result"
                ) from None


def read_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The non-blank lines of a UTF-8 text file, stripped, with their line numbers (from 1).

    Raises:
        CardioSTError: for a file that cannot be read, is binary or is not UTF-8, naming the line.
    """
    return [(number, line.strip()) for number, line in _lines(Path(path)) if line.strip()]


def _json_rows(path: Path) -> Iterator[Row]:
    lines = _lines(path)
    for number, line in lines:
        if not line.strip():
            continue
        if line.lstrip().startswith("[") and path.suffix.lower() == ".json":  # one JSON array, not JSON lines
            text = line + "".join(rest for _, rest in lines)
            try:
                items = json.loads(text)
            except ValueError as error:
                raise CardioSTError(f"{path}: not JSON ({_json_problem(error)})") from None
            for item, record in enumerate(items, start=1):
                if not isinstance(record, dict):
                    raise CardioSTError(f"{path}, item {item}: expected an object, got {_kind(record)}")
                yield Row(f"{path}, item {item}", item, record)
            return
        try:
            record = json.loads(line)
        except ValueError as error:
            raise CardioSTError(
                f"{path}, line {number}: not JSON ({_json_problem(error)}): each line must be one JSON object"
            ) from None
        if not isinstance(record, dict):
            raise CardioSTError(f"{path}, line {number}: expected an object, got {_kind(record)}")
        yield Row(f"{path}, line {number}", number, record)


def _table_rows(path: Path, delimiter: str) -> Iterator[Row]:
    reader = csv.reader((line for _, line in _lines(path)), delimiter=delimiter)
    try:
        header = next(reader, None)
        if not header or not any(name.strip() for name in header):
            return
        header = [name.strip() for name in header]
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            where = f"{path}, line {reader.line_num}"
            if len(fields) != len(header):
                raise CardioSTError(
                    f"{where}: {len(fields)} fields, the header has {len(header)} ({', '.join(header)}); "
                    "quote fields that hold the delimiter"
                )
            yield Row(where, reader.line_num, dict(zip(header, fields)))
    except csv.Error as error:
        raise CardioSTError(f"{path}, line {reader.line_num}: not valid CSV ({error})") from None


def read_parquet(path: str | os.PathLike) -> pa.Table:
    """A whole Parquet file as a pyarrow table (its columns are typed: rows need no checking).

    Raises:
        CardioSTError: for a file that is not Parquet or is damaged, in one line naming it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(str(path))
    except (pa.ArrowException, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CardioSTError(f"{path} is not a readable Parquet file ({first})") from None


def _parquet_rows(path: Path) -> Iterator[Row]:
    for number, record in enumerate(read_parquet(path).to_pylist(), start=1):
        yield Row(f"{path}, row {number}", number, record)


def read_rows(path: str | os.PathLike) -> Iterator[Row]:
    """The rows of a ``.jsonl`` / ``.json`` (one object a line, or one array), ``.csv``, ``.tsv`` (a
    header row) or ``.parquet`` file, each a [Row][cardio_st.data.readers.Row]: ``where`` is
    ``"FILE, line N"`` (``row N`` for Parquet) for messages about that row. Blank lines are skipped;
    CSV values are text as written.

    Raises:
        CardioSTError: for an unknown suffix, bytes that are not UTF-8, bad JSON, a JSON value that is
            not an object, a CSV row with the wrong number of fields, or an unreadable Parquet file,
            in one line naming the file and line.
    """
    path = Path(path)
    kind = TABLE_FORMATS.get(path.suffix.lower())
    if kind == "json":
        return _json_rows(path)
    if kind in ("csv", "tsv"):
        return _table_rows(path, "\t" if kind == "tsv" else ",")
    if kind == "parquet":
        return _parquet_rows(path)
    raise CardioSTError(
        f"{path}: unknown format {path.suffix or '(no suffix)'}; use {', '.join(TABLE_FORMATS)}"
    )


def _json_problem(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg}, column {error.colno}"
    return str(error)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    return {list: "a list", dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def text_value(where: str, record: dict[str, Any], column: str, *, required: bool = True) -> str | None:
    """``record[column]`` as non-empty text, or an error naming the row and column.

    Args:
        where: The row's place, as [read_rows][cardio_st.data.readers.read_rows] gives it.
        record: The row.
        column: The column that must hold text.
        required: Whether a missing or empty value is an error (else None is returned).

    Raises:
        CardioSTError: for a missing or empty value (when ``required``), or one that is not text.
    """
    value = record.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        if not required:
            return None
        missing = "is missing" if column not in record else "is empty"
        raise CardioSTError(f"{where}: column {column!r} {missing}; fill or remove the row")
    if not isinstance(value, str):
        raise CardioSTError(
            f'{where}: column {column!r} holds {_kind(value)}, expected text; write it as a string ("...")'
        )
    return value
