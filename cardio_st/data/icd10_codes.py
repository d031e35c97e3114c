"""ICD-10-CM codes, chapters and scopes, read offline from `simple-icd-10-cm`, and the rule of the
project's fixed evaluation split. Leaves out the datasets built on the split (cardio_st.data.icd10).

The split is by 3-character **category**, not by code: sibling codes share most of their wording
("STEMI of anterior wall" / "STEMI of inferior wall"), so a code-level split would let a model
see near-copies of every test description during training. Holding out whole categories means a
held-out query's category, its siblings and all their text are unseen.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cardio_st.errors import CardioSTError

__all__ = [
    "CIRCULATORY_CHAPTER",
    "Chapter",
    "ICD10Code",
    "category_of",
    "chapters",
    "data_release",
    "in_scope",
    "is_held_out",
    "load_codes",
    "resolve_scope",
    "scope_title",
    "split_of",
]

#: Chapter 9, "Diseases of the circulatory system (I00-I99)": the default scope (``"cardio"``).
CIRCULATORY_CHAPTER = "9"

_SCOPE_ALIASES = {"cardio": CIRCULATORY_CHAPTER, "circulatory": CIRCULATORY_CHAPTER, "all": "all"}
_CHAPTER_RE = re.compile(r"<chapter>\s*<name>(\d+)</name>\s*<desc>([^<]*)</desc>")
# Chapter ranges end in a category, and some categories end in a letter: "(O00-O9A)", "(Q00-QA0)".
_RANGE_RE = re.compile(r"\(([A-Z][0-9A-Z]{2})-([A-Z][0-9A-Z]{2})\)\s*$")
_CATEGORY_NAME_RE = re.compile(r"<name>([A-Z][0-9A-Z]{2})</name>")
_CATEGORY_RANGE_RE = re.compile(r"([A-Z][0-9A-Z]{2})(?:\s*-\s*([A-Z][0-9A-Z]{2}))?")
_CHAPTER_RANGE_RE = re.compile(r"(\d+)\s*-\s*(\d+)")


def category_of(code: str) -> str:
    """The 3-character category of a code: ``"I21.09"`` -> ``"I21"``."""
    return code.replace(".", "")[:3].upper()


def is_held_out(code: str) -> bool:
    """Whether a code belongs to the held-out (evaluation) side of the fixed split.

    A code is held out when the SHA-256 of its 3-character category, read as an integer, is 0 or 1
    modulo 5: about 40% of categories. The rule depends on nothing but the code, so it is the same
    on every machine, for every ICD-10-CM release and in every later cardio-st version.

    Examples:
        >>> is_held_out("I21.09"), is_held_out("I48.91")
        (False, True)
    """
    digest = hashlib.sha256(category_of(code).encode()).hexdigest()
    return int(digest, 16) % 5 in (0, 1)


def split_of(code: str) -> Literal["train", "test"]:
    """``"test"`` for a held-out code ([is_held_out][cardio_st.data.icd10_codes.is_held_out]), else
    ``"train"``."""
    return "test" if is_held_out(code) else "train"


@dataclass(frozen=True)
class Chapter:
    """An ICD-10-CM chapter.

    Attributes:
        number: The chapter number as a string, ``"1"`` to ``"22"``.
        title: The official title, ending with the code range, e.g.
            ``"Diseases of the circulatory system (I00-I99)"``.
        first: First category of the range (``"I00"``).
        last: Last category of the range (``"I99"``).
    """

    number: str
    title: str
    first: str
    last: str

    @property
    def code_range(self) -> str:
        return f"{self.first}-{self.last}"


@dataclass(frozen=True)
class ICD10Code:
    """One ICD-10-CM code with the text the tabular list attaches to it.

    Attributes:
        code: The code with its dot, e.g. ``"I21.09"``.
        description: The official description.
        chapter: Chapter number, ``"1"`` to ``"22"``.
        block: The block (section) the code sits in, e.g. ``"I20-I25"``.
        category: The 3-character category, e.g. ``"I21"``.
        billable: True for leaf codes (valid for reporting); False for headings.
        inclusion_terms: Human-written alternative terms listed under this code.
        includes: "Includes" notes of this code (often on a category, applying to its children).
        excludes1: "Excludes1" notes (not coded here; never together with this code).
        excludes2: "Excludes2" notes (not included here; may be coded together).
    """

    code: str
    description: str
    chapter: str
    block: str
    category: str
    billable: bool
    inclusion_terms: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    excludes1: tuple[str, ...] = ()
    excludes2: tuple[str, ...] = ()

    @property
    def held_out(self) -> bool:
        """Whether this code is on the evaluation side of the fixed split."""
        return is_held_out(self.code)

    @property
    def alternative_terms(self) -> tuple[str, ...]:
        """The human-written alternative names of this code: inclusion terms, then includes notes."""
        return self.inclusion_terms + self.includes


def _data_dir() -> Path:
    # find_spec locates the package without running its __init__, which parses the whole tree.
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or spec.origin is None:
        raise CardioSTError("simple-icd-10-cm is not installed: pip install simple-icd-10-cm", exit_code=1)
    return Path(spec.origin).parent / "data"


def _tabular_xml_path() -> Path:
    names = sorted(_data_dir().glob("icd10c-tabular-*.xml"))
    if not names:
        raise CardioSTError(
            "simple-icd-10-cm is installed without its tabular XML: reinstall it "
            "(pip install --force-reinstall simple-icd-10-cm)",
            exit_code=1,
        )
    return names[-1]


@lru_cache(maxsize=1)
def data_release() -> str:
    """The ICD-10-CM release that is installed, e.g. ``"icd10c-tabular-April-1-2026"``.

    Part of every cache key, so an index built on one release is never reused for another.
    """
    return _tabular_xml_path().stem


@lru_cache(maxsize=1)
def _light_scan() -> tuple[tuple[Chapter, ...], frozenset[str]]:
    """The chapters and the 3-character category names, from one read of the tabular XML."""
    text = _tabular_xml_path().read_text("utf-8")
    found = []
    for number, title in _CHAPTER_RE.findall(text):
        match = _RANGE_RE.search(title)
        first, last = match.groups() if match else ("", "")
        found.append(Chapter(number=number, title=title.strip(), first=first, last=last))
    return tuple(found), frozenset(_CATEGORY_NAME_RE.findall(text))


def chapters() -> tuple[Chapter, ...]:
    """All chapters of the installed release, read by a light scan of the tabular XML.

    Does not build the full code tree (about 2 s), so scope checks stay instant.
    """
    return _light_scan()[0]


def _scope_help() -> str:
    ranges = ", ".join(f"{c.number}={c.code_range}" for c in chapters())
    return (
        "use cardio (the circulatory chapter I00-I99), all, a chapter number or its range, a range of "
        f"chapters (9-10), a category or range of categories (I20-I25), or a comma list of these ({ranges})"
    )


def _scope_part(part: str, scope: str) -> list[str]:
    """The canonical pieces of one comma-separated part of a scope: chapter numbers or category ranges."""
    key = part.strip().lower()
    if key in _SCOPE_ALIASES:
        return [_SCOPE_ALIASES[key]]
    known_chapters, known_categories = _light_scan()
    for chapter in known_chapters:
        if key in (chapter.number, chapter.code_range.lower()):
            return [chapter.number]
    numbers = [c.number for c in known_chapters]
    if match := _CHAPTER_RANGE_RE.fullmatch(key):
        first, last = match.groups()
        if first in numbers and last in numbers and int(first) <= int(last):
            return [str(n) for n in range(int(first), int(last) + 1)]
    elif match := _CATEGORY_RANGE_RE.fullmatch(key.upper()):
        first, last = match.group(1), match.group(2) or match.group(1)
        if first in known_categories and last in known_categories and first <= last:
            return [first if first == last else f"{first}-{last}"]
    where = "" if part.strip() == scope.strip() else f" (at {part.strip()!r})"
    raise CardioSTError(f"unknown scope {scope!r}{where}: {_scope_help()}")


def resolve_scope(scope: str) -> str:
    """Normalise a scope to ``"all"``, a chapter number, or a comma list of chapters and categories.

    Accepts ``"cardio"`` (chapter 9, the default), ``"all"``, a chapter number (``"9"``) or its code
    range (``"I00-I99"``), a range of chapters (``"9-10"``), a category or a range of categories
    (``"I21"``, ``"I20-I25"``, a block or any span of the tabular list), and comma lists of these
    (``"9,J00-J99"``), in any letter case. A single chapter comes back as its number (``"9"``); anything
    else as its pieces, chapters first, in order and without repeats (``"9,10"``, ``"I20-I25"``).

    Raises:
        CardioSTError: for anything else, naming the part that is wrong and listing the valid values.
    """
    pieces: list[str] = []
    for part in str(scope).split(","):
        for piece in _scope_part(part, str(scope)):
            if piece == "all":
                return "all"
            if piece not in pieces:
                pieces.append(piece)
    chapters_first = sorted((p for p in pieces if p.isdigit()), key=int) + sorted(
        p for p in pieces if not p.isdigit()
    )
    return ",".join(chapters_first)


def scope_title(scope: str) -> str:
    """A scope in words: ``"all chapters"``, a chapter's title, or its chapters and categories."""
    resolved = resolve_scope(scope)
    if resolved == "all":
        return "all chapters"
    by_number = {c.number: c for c in chapters()}
    if resolved in by_number:
        return by_number[resolved].title
    words = []
    for piece in resolved.split(","):
        if piece.isdigit():
            words.append(f"chapter {piece} ({by_number[piece].code_range})")
        else:
            words.append(f"{'categories' if '-' in piece else 'category'} {piece}")
    return ", ".join(words)


def in_scope(code: ICD10Code, scope: str) -> bool:
    """Whether ``code`` is in ``scope`` ([resolve_scope][cardio_st.data.icd10_codes.resolve_scope])."""
    return _scope_test(resolve_scope(scope))(code)


@lru_cache(maxsize=64)
def _scope_test(resolved: str):
    if resolved == "all":
        return lambda code: True
    numbers = {p for p in resolved.split(",") if p.isdigit()}
    spans = [(p.partition("-")[0], p.partition("-")[2] or p) for p in resolved.split(",") if not p.isdigit()]
    return lambda code: (
        code.chapter in numbers or any(first <= code.category <= last for first, last in spans)
    )


@lru_cache(maxsize=1)
def _all_codes() -> tuple[ICD10Code, ...]:
    import simple_icd_10_cm as cm  # builds the code tree on import (about 2 s)

    codes = []
    for chapter in chapters():
        block = ""
        for code in cm.get_descendants(chapter.number):
            if cm.is_chapter_or_block(code):
                block = code
                continue
            codes.append(
                ICD10Code(
                    code=code,
                    description=cm.get_description(code),
                    chapter=chapter.number,
                    block=block,
                    category=category_of(code),
                    billable=cm.is_leaf(code),
                    inclusion_terms=tuple(cm.get_inclusion_term(code)),
                    includes=tuple(cm.get_includes(code)),
                    excludes1=tuple(cm.get_excludes1(code)),
                    excludes2=tuple(cm.get_excludes2(code)),
                )
            )
    return tuple(codes)


def load_codes(
    scope: str = "all",
    *,
    billable_only: bool = False,
    split: Literal["train", "test"] | None = None,
) -> list[ICD10Code]:
    """ICD-10-CM codes of a scope, in tabular-list order.

    Args:
        scope: ``"all"``, ``"cardio"`` or a chapter (see
            [resolve_scope][cardio_st.data.icd10_codes.resolve_scope]).
        billable_only: Keep only billable (leaf) codes.
        split: Keep only one side of the fixed split: ``"train"`` or ``"test"`` (held out).

    Examples:
        >>> codes = load_codes("cardio", billable_only=True)
        >>> len(codes), codes[0].code
        (1427, 'I00')
    """
    belongs = _scope_test(resolve_scope(scope))
    if split not in (None, "train", "test"):
        raise CardioSTError(f"unknown split {split!r}: use 'train', 'test' or None")
    return [
        code
        for code in _all_codes()
        if belongs(code)
        and (code.billable or not billable_only)
        and (split is None or split_of(code.code) == split)
    ]
