"""The clinical-shorthand benchmark's items (abbreviations, lay phrases, terse clinical terms, each with its
accepted ICD-10-CM codes) and their fixed validation/test split. Leaves out searching and metrics
(cardio_st.evaluation.shorthand); torch-free.

The items ship as package data, one JSON object a line (``shorthand_cardio.jsonl``); how they were chosen
and coded is in the shorthand guide (docs/guides/shorthand.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from cardio_st.data.icd10_codes import category_of
from cardio_st.errors import CardioSTError

__all__ = ["KINDS", "PARTS", "ShorthandItem", "load_shorthand", "shorthand_parts"]

#: The three kinds of query, in report order.
KINDS = ("abbreviation", "lay", "terse")
#: The two parts of the fixed split.
PARTS = ("validation", "test")
#: Scopes with a shipped item file.
_FILES = {"cardio": "shorthand_cardio.jsonl"}
_FIELDS = ("query", "kind", "codes", "part", "note", "ambiguous")


@dataclass(frozen=True)
class ShorthandItem:
    """One benchmark query.

    Attributes:
        query: What a clinician or patient types ("afib", "heart attack", "angina").
        kind: ``"abbreviation"``, ``"lay"`` or ``"terse"``.
        codes: The accepted billable codes, the one a coder would assign first; any of them counts as
            right.
        part: ``"validation"`` or ``"test"`` ([shorthand_parts][cardio_st.data.shorthand.shorthand_parts]).
        note: Why these codes: the Alphabetic Index default, inclusion term or guideline applied.
        ambiguous: True for an abbreviation with common non-circulatory readings (PE, MS, AS, CAD),
            kept with its circulatory reading.
    """

    query: str
    kind: str
    codes: tuple[str, ...]
    part: str
    note: str
    ambiguous: bool = False

    @property
    def category(self) -> str:
        """The 3-character category of the first accepted code."""
        return category_of(self.codes[0])


def _is_validation(key: str) -> bool:
    digest = hashlib.sha256(f"cardio-st shorthand:{key}".encode()).hexdigest()
    return int(digest, 16) % 5 in (0, 1)


def shorthand_parts(code_sets: Sequence[Sequence[str]]) -> list[str]:
    """The part (``"validation"`` or ``"test"``) of each item, given each item's accepted codes.

    The split is by concept, not by query: categories that share an item (``ICH`` accepts I61.9 and
    I62.9) are joined into one group, and a whole group goes to one side, so "afib" and "atrial
    fibrillation" (both I48) can never sit on both sides. A group is on the validation side when the
    SHA-256 of ``"cardio-st shorthand:"`` plus its smallest category, read as an integer, is 0 or 1
    modulo 5 (about 40% of groups); the rule depends on nothing but the codes.

    Example:
        >>> shorthand_parts([["I48.91"], ["I48.0"], ["I61.9", "I62.9"], ["I62.9"]])
        ['validation', 'validation', 'test', 'test']
    """
    parent: dict[str, str] = {}

    def root(category: str) -> str:
        parent.setdefault(category, category)
        while parent[category] != category:
            category = parent[category]
        return category

    for codes in code_sets:
        if not codes:
            raise CardioSTError("every item needs at least one accepted code: `code_sets` has an empty entry")
        first = root(category_of(codes[0]))
        for code in codes[1:]:
            other = root(category_of(code))
            if other != first:
                low, high = sorted((first, other))
                parent[high] = low
                first = low
    return ["validation" if _is_validation(root(category_of(codes[0]))) else "test" for codes in code_sets]


@cache
def _read(scope: str) -> tuple[ShorthandItem, ...]:
    if scope not in _FILES:
        raise CardioSTError(f"no shorthand items for scope {scope!r}: pass `scope='cardio'`")
    path = resources.files("cardio_st.data") / _FILES[scope]
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{_FILES[scope]} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise CardioSTError(f"{where} is not JSON: {error}", exit_code=1) from None
        missing = [name for name in _FIELDS if name not in row]
        if missing or row["kind"] not in KINDS or row["part"] not in PARTS or not row["codes"]:
            raise CardioSTError(
                f"{where}: needs {', '.join(_FIELDS)} with kind in {KINDS}, part in {PARTS} and at least "
                "one code",
                exit_code=1,
            )
        items.append(
            ShorthandItem(
                query=row["query"],
                kind=row["kind"],
                codes=tuple(row["codes"]),
                part=row["part"],
                note=row["note"],
                ambiguous=bool(row["ambiguous"]),
            )
        )
    return tuple(items)


def load_shorthand(
    side: Literal["validation", "test", "all"] = "all",
    kind: str | None = None,
    *,
    scope: str = "cardio",
) -> list[ShorthandItem]:
    """The clinical-shorthand benchmark's items, in file order.

    Args:
        side: ``"validation"`` (for every choice: models, thresholds, lexicons), ``"test"`` (reported,
            never tuned on) or ``"all"``.
        kind: Only ``"abbreviation"``, ``"lay"`` or ``"terse"`` items; ``None`` for all three.
        scope: The ICD-10-CM scope of the items; ``"cardio"`` (the circulatory chapter) is the one shipped.

    Raises:
        CardioSTError: for an unknown side, kind or scope.

    Example:
        >>> items = load_shorthand("test", kind="lay")
        >>> {item.kind for item in items}, {item.part for item in items}
        ({'lay'}, {'test'})
    """
    if side not in (*PARTS, "all"):
        raise CardioSTError(f"unknown side {side!r}: pass `side='validation'`, `side='test'` or `side='all'`")
    if kind is not None and kind not in KINDS:
        raise CardioSTError(f"unknown kind {kind!r}: pass `kind=` one of {', '.join(KINDS)}, or None for all")
    return [
        item
        for item in _read(scope)
        if (side == "all" or item.part == side) and (kind is None or item.kind == kind)
    ]
