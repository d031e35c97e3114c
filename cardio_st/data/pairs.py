"""Reading pairs and triplets datasets for training and evaluation: a ``save_to_disk`` folder or
.parquet/.jsonl/.csv files, split by file name, columns checked. Leaves out making them
(cardio_st.data.prepare) and training on them (cardio_st.training).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cardio_st.data.readers import read_parquet, read_rows, text_value
from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

__all__ = ["EVAL_SPLITS", "FILE_FORMATS", "load_pairs", "load_splits"]

logger = logging.getLogger(__name__)

#: Split names read as the evaluation split, in order of preference (never ``test``).
EVAL_SPLITS = ("validation", "valid", "dev", "eval")


#: File suffixes read, with the ``datasets`` builder of each.
FILE_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def _read(path: Path) -> DatasetDict:
    from datasets import DatasetDict, load_from_disk

    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()):
        data = load_from_disk(str(path))
        return data if isinstance(data, DatasetDict) else DatasetDict({"train": data})
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in FILE_FORMATS)
    formats = {FILE_FORMATS.get(p.suffix) for p in files}
    if not files or None in formats or len(formats) != 1:
        raise CardioSTError(
            f"{path}: expected a dataset saved with save_to_disk, or .parquet / .jsonl / .csv files "
            "of one format"
        )
    by_split: dict[str, list[Path]] = {}
    for file in files:
        split = next((s for s in ("train", *EVAL_SPLITS, "test") if file.stem.startswith(s)), "train")
        by_split.setdefault(split, []).append(file)
    read = _read_parquet if formats.pop() == "parquet" else _read_texts
    return DatasetDict({split: read(paths) for split, paths in by_split.items()})


def _read_parquet(files: list[Path]) -> Dataset:
    """Parquet columns are typed, so a whole file is read at once; an unreadable one is one line."""
    from datasets import Dataset, concatenate_datasets
    from datasets.table import InMemoryTable

    parts = [Dataset(InMemoryTable(read_parquet(file))) for file in files]
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def _text_columns(where: str, record: dict) -> list[str]:
    """The columns of the first row that are trained on: anchor, positive, negative* by name, else every
    text column in order."""
    if {"anchor", "positive"} <= set(record):
        return ["anchor", "positive", *(c for c in record if c.startswith("negative"))]
    columns = [c for c, value in record.items() if isinstance(value, str)]
    if len(columns) < 2:
        raise CardioSTError(
            f"{where}: text columns {columns}: need (anchor, positive[, negative ...]) text columns, "
            "in that order"
        )
    return columns


def _read_texts(files: list[Path]) -> Dataset:
    """JSON lines or CSV pairs through the shared reader: a bad row is one line naming file and line."""
    columns: list[str] | None = None
    values: dict[str, list[str]] = {}
    for file in files:
        rows = 0
        for where, _, record in read_rows(file):
            if columns is None:
                columns = _text_columns(where, record)
                values = {column: [] for column in columns}
                ignored = [c for c in record if c not in columns]
                if ignored:
                    logger.warning("%s: training on %s, ignoring %s", file, columns, ignored)
            for column in columns:
                values[column].append(text_value(where, record, column))
            rows += 1
        if rows == 0:
            raise CardioSTError(
                f"{file} is empty: it needs one (anchor, positive[, negative]) pair per "
                f"{'row after the header' if file.suffix == '.csv' else 'line'}"
            )
    from datasets import Dataset

    return Dataset.from_dict(values)


def _check_columns(dataset: Dataset, name: str) -> Dataset:
    text_columns = [
        c
        for c, feature in dataset.features.items()
        if getattr(feature, "dtype", None) in ("string", "large_string")
    ]
    if {"anchor", "positive"} <= set(text_columns):
        # sentence-transformers' naming: anchor, positive, negative[_1, _2, ...]; other columns are metadata.
        text_columns = ["anchor", "positive", *(c for c in text_columns if c.startswith("negative"))]
    dropped = [c for c in dataset.column_names if c not in text_columns]
    if len(text_columns) < 2:
        raise CardioSTError(
            f"{name} has text columns {text_columns}: need (anchor, positive[, negative ...]) text "
            "columns, in that order"
        )
    if dropped:
        logger.warning("%s: training on %s, ignoring %s", name, text_columns, dropped)
        dataset = dataset.select_columns(text_columns)
    for column in text_columns:
        for row, value in enumerate(dataset[column]):
            if value is None or not str(value).strip():
                raise CardioSTError(f"{name}, row {row}: column {column!r} is empty; remove or fill the row")
    return dataset


def load_splits(path: str | os.PathLike) -> DatasetDict:
    """Every split of a pairs/triplets dataset as stored (``test`` included), columns checked.

    Reads what [load_pairs][cardio_st.data.pairs.load_pairs] reads; for evaluation, where the ``test``
    split is the one to report.
    """
    from datasets import DatasetDict

    path = Path(path)
    if not path.exists():
        raise CardioSTError(f"dataset {path} does not exist: pass a prepared folder or a pairs file")
    data = _read(path)
    return DatasetDict({name: _check_columns(split, f"{path} [{name}]") for name, split in data.items()})


def load_pairs(path: str | os.PathLike, *, eval_fraction: float = 0.05, seed: int = 42) -> DatasetDict:
    """Read training pairs or triplets and pick the held-out split used for evaluation.

    Accepts a ``datasets`` folder (``save_to_disk``; a Dataset or a DatasetDict) or ``.parquet``,
    ``.jsonl`` or ``.csv`` files (a file or a folder; files named ``train*``, ``validation*``,
    ``dev*`` or ``test*`` become those splits). Columns named ``anchor``, ``positive`` and
    ``negative*`` are used in that order, other columns (e.g. ``source``) ignored; without those
    names, every text column is used in order: anchor, positive, then negatives.

    The evaluation split is ``validation`` / ``dev`` when present (never ``test``: that is for
    the final report). Otherwise ``eval_fraction`` of the rows is held out at random (seeded);
    prefer a split by source, as ``cardio-st prepare`` makes, when rows can be near-duplicates.

    Returns:
        A ``DatasetDict`` with ``train`` and ``eval``.
    """
    from datasets import DatasetDict

    path = Path(path)
    if not path.exists():
        raise CardioSTError(f"training data {path} does not exist")
    data = _read(path)
    if "train" not in data:
        raise CardioSTError(f"{path} has splits {list(data)}, none named 'train'")
    train_split = _check_columns(data["train"], f"{path} [train]")
    eval_name = next((s for s in EVAL_SPLITS if s in data), None)
    if eval_name is not None:
        eval_split = _check_columns(data[eval_name], f"{path} [{eval_name}]")
    elif eval_fraction > 0 and len(train_split) >= 4:
        parts = train_split.train_test_split(test_size=eval_fraction, seed=seed)
        train_split, eval_split = parts["train"], parts["test"]
        logger.warning(
            "%s has no validation split: holding out %d random rows for evaluation", path, len(eval_split)
        )
    else:
        return DatasetDict({"train": train_split})
    return DatasetDict({"train": train_split, "eval": eval_split})
