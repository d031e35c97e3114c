"""An append-only JSONL checkpoint for long LLM jobs (paraphrases, relevance judgements): a header line,
then one finished record a line, flushed at once and fsynced every second; and atomic whole-file writes
for the results built from it. Leaves out what a record means: its writers decide which records count
as done.

A killed process loses at most the line it was writing: on open, a cut-off last line is dropped (the
file is truncated back to its last complete line) and only that record is redone. A second process
writing the same file is refused (an exclusive lock where the platform has ``fcntl``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from cardio_st.errors import CardioSTError

__all__ = ["JsonlCheckpoint"]

logger = logging.getLogger(__name__)

_FSYNC_EVERY_S = 1.0  # finished lines are flushed at once and fsynced at least this often


class JsonlCheckpoint:
    """The checkpoint file: read and repaired on open, then appended to line by line.

    Args:
        path: The JSONL file (created if missing).
        header: The first line, e.g. ``{"format": 1, "paraphraser": name, ...}``; its ``"format"`` must
            match on reopening.
        identity: The header field naming who wrote the records (``"paraphraser"``, ``"judge"``). A file
            whose field differs is refused if it holds records (else started over).
        what: The record's noun in messages (``"paraphrase"``, ``"judgement"``).

    Attributes:
        records: Every record already in the file, in order (each a dict with a string ``"key"``).
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any], *, identity: str, what: str) -> None:
        self.path, self.header, self.identity, self.what = Path(path), header, identity, what
        self.records: list[dict[str, Any]] = []
        self._last_sync = time.monotonic()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "a+b")  # closed by close()
        except OSError as error:
            raise CardioSTError(
                f"cannot write the {what} checkpoint {self.path} ({error.strerror or error}): "
                "choose a writable folder",
                exit_code=1,
            ) from error
        try:
            self._lock()
            self._load()
        except BaseException:
            self.handle.close()
            raise

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no guard against two writers
            return
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            raise CardioSTError(
                f"another process is writing {self.path}: wait for it to finish or choose another folder",
                exit_code=1,
            ) from error

    def _not_a_checkpoint(self) -> CardioSTError:
        return CardioSTError(
            f"{self.path} is not a cardio-st {self.what} checkpoint (format {self.header['format']}): "
            "delete it or choose another folder",
            exit_code=2,
        )

    def _load(self) -> None:
        self.handle.seek(0)
        lines = self.handle.read().split(b"\n")
        complete, tail = lines[:-1], lines[-1]  # tail: bytes after the last newline (a cut-off write)
        if not complete:  # new, empty, or only a header cut off while being written
            if tail and not tail.startswith(b'{"format": '):
                raise self._not_a_checkpoint()
            self._restart()
            return
        try:
            header = json.loads(complete[0])
        except ValueError:
            header = None
        if (
            not isinstance(header, dict)
            or header.get("format") != self.header["format"]
            or self.identity not in header
        ):
            raise self._not_a_checkpoint()
        records: list[dict[str, Any]] = []
        for number, line in enumerate(complete[1:], 2):
            try:
                record = json.loads(line)
            except ValueError as error:
                if number == len(complete):  # a damaged last line (crash): redo that record
                    complete, tail = complete[:-1], line
                    break
                raise CardioSTError(
                    f"{self.path} line {number} is not valid JSON ({error}): "
                    f"delete that line (its {self.what} is redone) or the file",
                    exit_code=1,
                ) from error
            if not (isinstance(record, dict) and isinstance(record.get("key"), str)):
                raise CardioSTError(
                    f"{self.path} line {number} is not a {self.what} record: delete that line or the file",
                    exit_code=1,
                )
            records.append(record)
        if header[self.identity] != self.header[self.identity]:
            if records:
                raise CardioSTError(
                    f"{self.path} holds {self.what}s by {header[self.identity]!r}, not "
                    f"{self.header[self.identity]!r}: delete it to start over, or choose another folder",
                    exit_code=2,
                )
            self._restart()  # nothing done yet: start over under this header
            return
        self.records = records
        if tail:
            logger.warning(
                "%s ends in an unfinished line (interrupted write): redoing that %s", self.path, self.what
            )
            self._truncate(sum(len(line) + 1 for line in complete))

    def _restart(self) -> None:
        self._truncate(0)
        self.append(self.header, sync=True)

    def _truncate(self, size: int) -> None:
        self.handle.seek(0, os.SEEK_END)
        if self.handle.tell() != size:
            self.handle.truncate(size)
            self.handle.flush()
            os.fsync(self.handle.fileno())

    def append(self, record: dict[str, Any], sync: bool = False) -> None:
        """Write one line: in the OS at once (a killed process loses nothing), on disk within a second
        (a power cut loses at most that)."""
        self.handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        self.handle.flush()
        if sync or time.monotonic() - self._last_sync >= _FSYNC_EVERY_S:
            os.fsync(self.handle.fileno())
            self._last_sync = time.monotonic()

    def close(self) -> None:
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
        finally:
            self.handle.close()
