"""ICD-10-CM codes, descriptions and alternative terms, read offline from `simple-icd-10-cm`, the
project's fixed evaluation split, training pairs from its train side and the evaluation set from its
held-out side. Leaves out metrics and model evaluation (cardio_st.evaluation).

The split is by 3-character **category**, not by code: sibling codes share most of their wording
("STEMI of anterior wall" / "STEMI of inferior wall"), so a code-level split would let a model
see near-copies of every test description during training. Holding out whole categories means a
held-out query's category, its siblings and all their text are unseen.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from datasets import DatasetDict

__all__ = [
    "CIRCULATORY_CHAPTER",
    "Chapter",
    "ICD10Code",
    "category_of",
    "chapters",
    "data_release",
    "icd10_eval_set",
    "icd10_pairs",
    "is_held_out",
    "load_codes",
    "resolve_scope",
    "split_of",
    "validation_categories",
]

#: Chapter 9, "Diseases of the circulatory system (I00-I99)": the default scope (``"cardio"``).
CIRCULATORY_CHAPTER = "9"

_SCOPE_ALIASES = {"cardio": CIRCULATORY_CHAPTER, "circulatory": CIRCULATORY_CHAPTER, "all": "all"}
_CHAPTER_RE = re.compile(r"<chapter>\s*<name>(\d+)</name>\s*<desc>([^<]*)</desc>")
_RANGE_RE = re.compile(r"\(([A-Z]\d\d)-([A-Z]\d\d)\)\s*$")


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
    """``"test"`` for a held-out code ([is_held_out][cardio_st.data.icd10.is_held_out]), else ``"train"``."""
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
def chapters() -> tuple[Chapter, ...]:
    """All chapters of the installed release, read by a light scan of the tabular XML.

    Does not build the full code tree (about 2 s), so scope checks stay instant.
    """
    text = _tabular_xml_path().read_text("utf-8")
    found = []
    for number, title in _CHAPTER_RE.findall(text):
        match = _RANGE_RE.search(title)
        first, last = match.groups() if match else ("", "")
        found.append(Chapter(number=number, title=title.strip(), first=first, last=last))
    return tuple(found)


def _scope_help() -> str:
    ranges = ", ".join(f"{c.number}={c.code_range}" for c in chapters())
    return f"use cardio (the circulatory chapter I00-I99), all, or a chapter number or range ({ranges})"


def resolve_scope(scope: str) -> str:
    """Normalise a scope to ``"all"`` or a chapter number.

    Accepts ``"cardio"`` (chapter 9, the default), ``"all"``, a chapter number (``"9"``) or its code
    range (``"I00-I99"``), in any letter case.

    Raises:
        CardioSTError: for anything else, listing the valid values.
    """
    key = str(scope).strip().lower()
    if key in _SCOPE_ALIASES:
        return _SCOPE_ALIASES[key]
    for chapter in chapters():
        if key in (chapter.number, chapter.code_range.lower()):
            return chapter.number
    raise CardioSTError(f"unknown scope {scope!r}: {_scope_help()}")


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
        scope: ``"all"``, ``"cardio"`` or a chapter (see [resolve_scope][cardio_st.data.icd10.resolve_scope]).
        billable_only: Keep only billable (leaf) codes.
        split: Keep only one side of the fixed split: ``"train"`` or ``"test"`` (held out).

    Examples:
        >>> codes = load_codes("cardio", billable_only=True)
        >>> len(codes), codes[0].code
        (1427, 'I00')
    """
    chapter = resolve_scope(scope)
    if split not in (None, "train", "test"):
        raise CardioSTError(f"unknown split {split!r}: use 'train', 'test' or None")
    return [
        code
        for code in _all_codes()
        if (chapter == "all" or code.chapter == chapter)
        and (code.billable or not billable_only)
        and (split is None or split_of(code.code) == split)
    ]


# A note that points at other codes ("any condition in I11.- with any condition in I12.-") is a
# coding instruction, not a name of the condition.
_CODE_REFERENCE_RE = re.compile(r"\b[A-Z]\d\d(\.[0-9A-Z-]*)?")


def _is_name(term: str, description: str) -> bool:
    return not _CODE_REFERENCE_RE.search(term) and term.casefold() != description.casefold()


# An Excludes note that names one other code: "dislocation of toe (S93.1-)". Its text is a
# human-written name of that code's condition.
_NOTE_REFERENCE_RE = re.compile(r"^(.*\S)\s*\(([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)-?\)$")


def _note_terms(codes: list[ICD10Code]) -> Iterator[tuple[str, ICD10Code]]:
    """(note text, code it names) for every Excludes1/Excludes2 note of ``codes`` that names exactly
    one code of ``codes``; notes naming several codes, a range, or a code outside ``codes`` are skipped."""
    by_code = {code.code: code for code in codes}
    for code in codes:
        for note in code.excludes1 + code.excludes2:
            match = _NOTE_REFERENCE_RE.match(note)
            if match and match.group(2) in by_code:
                yield match.group(1), by_code[match.group(2)]


def _negative_groups(codes: list[ICD10Code]) -> Callable[[ICD10Code], tuple[str, list[ICD10Code]]]:
    """A function giving a code's nearest non-empty group of negatives and its kind: the other
    codes of its category, else its block's other categories, else its chapter's other blocks.
    A code's ancestors and descendants, and any code with one of their descriptions, are never its
    negatives: a term of the heading I21.0 also names I21.09."""
    groups: dict[str, dict[str, list[ICD10Code]]] = {"category": {}, "block": {}, "chapter": {}}
    for code in codes:
        for level, members in groups.items():
            members.setdefault(getattr(code, level), []).append(code)

    def related(a: str, b: str) -> bool:  # one contains the other: I21.0 and I21.09 share a lineage
        return a.startswith(b) or b.startswith(a)

    def nearest(code: ICD10Code) -> tuple[str, list[ICD10Code]]:
        family = groups["category"][code.category]
        # A heading and its "Other ..." child often share a description: keep the lineage's texts out too.
        lineage = {c.description for c in family if related(c.code, code.code)}
        siblings = [c for c in family if not related(c.code, code.code) and c.description not in lineage]
        if siblings:
            return "sibling", siblings
        block = [c for c in groups["block"][code.block] if c.category != code.category]
        if block:
            return "same block", block
        return "same chapter", [c for c in groups["chapter"][code.chapter] if c.block != code.block]

    return nearest


def validation_categories(
    scope: str = "all", fraction: float = 0.1, seed: int = 0, *, rng: random.Random | None = None
) -> set[str]:
    """The train-side categories held back for validation: ``fraction`` of them, drawn with ``seed``.

    The same categories as the ``validation`` split of [icd10_pairs][cardio_st.data.icd10.icd10_pairs]
    with the same arguments, so model choices are made on them and never on the held-out side.
    They are drawn from the train-side categories of *all* chapters and then restricted to
    ``scope``, so whether a category is a validation category does not depend on the scope: a model
    trained on ``icd10_pairs("all")`` and validated on the circulatory chapter
    (``ICD10Evaluator("cardio", side="validation")``) meets no category it was trained on.
    """
    categories = sorted({code.category for code in load_codes("all", split="train")})
    chosen = set((rng or random.Random(seed)).sample(categories, round(len(categories) * fraction)))
    if resolve_scope(scope) == "all":
        return chosen
    return chosen & {code.category for code in load_codes(scope, split="train")}


def icd10_pairs(
    scope: str = "all",
    *,
    negatives: bool | int = True,
    notes: bool = False,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[DatasetDict, dict[str, int]]:
    """Training pairs (alternative term, official description) from the train side of the fixed split.

    Every code (billable or a heading) contributes one row per human-written alternative term:
    ``anchor`` the term, ``positive`` the code's description and, with ``negatives``, ``negative``
    the description of a sibling code of the same 3-character category -- the hardest confusion a
    coder faces ("STEMI of anterior wall" against "STEMI of inferior wall"); never the code's own
    ancestor or descendant, which the term also names. A code with no sibling takes a code of
    another category in its block (else its chapter). Terms that merely repeat the description or point
    at other codes ("any condition in I11.- with ...") are dropped.

    With ``notes``, Excludes notes add a second kind of pair: a note on one train-side code that names
    exactly one other train-side code ("dislocation of toe (S93.1-)") is another human wording of that
    code's condition, so it becomes ``anchor`` (the note without its reference) for that code's
    description, in the split of that code's category.

    Only train-side categories are read, so no text of a held-out category can appear (the split is
    by category and negatives never leave the train side). ``validation_fraction`` of the train-side
    categories (seeded, drawn over all chapters and then restricted to ``scope``; see
    [validation_categories][cardio_st.data.icd10.validation_categories]) form the ``validation``
    split, so validation terms are unseen categories too, whatever scope a model is validated on.

    Args:
        scope: ``"all"``, ``"cardio"`` or a chapter (see [resolve_scope][cardio_st.data.icd10.resolve_scope]).
        negatives: Add the ``negative`` column; an integer ``k`` > 1 adds ``k`` columns ``negative_1``
            ... ``negative_k``, drawn from the same group (distinct codes while it has enough).
        notes: Add the Excludes-note pairs.
        validation_fraction: Share of train-side categories held back for validation (0 for none).
        seed: Seeds the choice of validation categories and of negatives.

    Returns:
        ``(DatasetDict with train[, validation], counts)``; columns ``anchor``, ``positive``
        [, ``negative``]; counts of codes, terms, dropped terms, negatives by kind and rows.

    Example:
        >>> data, counts = icd10_pairs("cardio")
        >>> train = data["train"]
        >>> train[0]
        {'anchor': 'Mitral (valve) obstruction (rheumatic)', 'positive': 'Rheumatic mitral stenosis', ...}
    """
    from datasets import Dataset, DatasetDict

    if not 0 <= validation_fraction < 1:
        raise CardioSTError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    n_negatives = int(negatives)
    if n_negatives < 0:
        raise CardioSTError(f"negatives must be True, False or a number of negative columns, got {negatives}")
    codes = load_codes(scope, split="train")
    rng = random.Random(seed)
    validation = validation_categories(scope, validation_fraction, seed, rng=rng)
    nearest = _negative_groups(codes)
    counts: Counter[str] = Counter(codes=len(codes), categories=len({code.category for code in codes}))
    rows: dict[str, dict[str, list[str]]] = {"train": {}, "validation": {}}
    seen: set[tuple[str, str]] = set()
    terms = [(term, code, "terms") for code in codes for term in code.alternative_terms]
    if notes:
        terms += [(term, code, "notes") for term, code in _note_terms(codes)]
    for term, code, source in terms:
        counts[source] += 1
        if not _is_name(term, code.description):
            counts["dropped: not a name"] += 1
            continue
        if (term, code.description) in seen:
            counts["dropped: duplicate"] += 1
            continue
        seen.add((term, code.description))
        columns = rows["validation" if code.category in validation else "train"]
        columns.setdefault("anchor", []).append(term)
        columns.setdefault("positive", []).append(code.description)
        if negatives:
            kind, group = nearest(code)
            if not group:
                raise CardioSTError(
                    f"no negative for {code.code} in scope {scope!r}: widen the scope or pass negatives=False"
                )
            counts[f"negatives: {kind}"] += 1
            if n_negatives == 1:
                columns.setdefault("negative", []).append(rng.choice(group).description)
            else:  # distinct codes while the group lasts, then repeats
                drawn = rng.sample(group, min(n_negatives, len(group)))
                drawn += rng.choices(group, k=n_negatives - len(drawn))
                for i, negative in enumerate(drawn, start=1):
                    columns.setdefault(f"negative_{i}", []).append(negative.description)
    data = DatasetDict({name: Dataset.from_dict(columns) for name, columns in rows.items() if columns})
    for name, split in data.items():
        counts[f"rows: {name}"] = len(split)
    order = ("codes", "categories", "terms", "notes", "dropped", "negatives", "rows")
    return data, dict(sorted(counts.items(), key=lambda item: order.index(item[0].split(":")[0])))


def icd10_eval_set(
    scope: str = "all",
    *,
    side: Literal["test", "validation"] = "test",
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetDict:
    """The project's ICD-10-CM evaluation set, from the held-out side of the fixed split.

    ``queries``: each alternative term of a held-out **billable** code (``query``, its ``code`` and
    ``category``), the rephrasings of arXiv 2401.01943's task. ``corpus``: every billable code of the
    scope, train and held-out side alike (``code``, ``description``, ``category``), because a real
    search runs over the whole code set. A query is answered right when the nearest description is
    its code (exact match) or shares its category (category match).

    ``side="validation"`` builds the same kind of set for choosing hyperparameters without touching
    the held-out side: queries from the validation categories of
    [icd10_pairs][cardio_st.data.icd10.icd10_pairs] (same ``validation_fraction`` and ``seed``),
    corpus the train-side billable codes.

    Example:
        >>> evaluation = icd10_eval_set("cardio")
        >>> queries, corpus = evaluation["queries"], evaluation["corpus"]
        >>> set(queries["code"]) <= set(corpus["code"]), len(corpus)
        (True, 1427)
    """
    from datasets import Dataset, DatasetDict

    if side == "test":
        corpus = load_codes(scope, billable_only=True)
        chosen = {code.category for code in corpus if code.held_out}
    elif side == "validation":
        corpus = load_codes(scope, billable_only=True, split="train")
        chosen = validation_categories(scope, validation_fraction, seed)
    else:
        raise CardioSTError(f"unknown side {side!r}: use 'test' (held out) or 'validation'")
    queries: dict[str, list[str]] = {"query": [], "code": [], "category": []}
    for code in corpus:
        if code.category not in chosen:
            continue
        for term in dict.fromkeys(code.alternative_terms):
            if _is_name(term, code.description):
                queries["query"].append(term)
                queries["code"].append(code.code)
                queries["category"].append(code.category)
    return DatasetDict(
        {
            "queries": Dataset.from_dict(queries),
            "corpus": Dataset.from_dict(
                {
                    "code": [c.code for c in corpus],
                    "description": [c.description for c in corpus],
                    "category": [c.category for c in corpus],
                }
            ),
        }
    )
