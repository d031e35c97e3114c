"""ICD-10-CM datasets from the fixed split: training pairs and validation categories from its train side,
the evaluation set from its held-out side. Leaves out metrics and model evaluation (cardio_st.evaluation).

Codes, chapters, scopes and the split rule itself live in
[cardio_st.data.icd10_codes][cardio_st.data.icd10_codes]; they are re-exported here, so
`from cardio_st.data.icd10 import load_codes, icd10_pairs` is the one import for ICD-10-CM data.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Literal

from cardio_st.data import augment as augmentation
from cardio_st.data.abbreviations import load_lexicon
from cardio_st.data.icd10_codes import (
    CIRCULATORY_CHAPTER,
    Chapter,
    ICD10Code,
    category_of,
    chapters,
    data_release,
    in_scope,
    is_held_out,
    load_codes,
    resolve_scope,
    scope_title,
    split_of,
)
from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from datasets import DatasetDict

__all__ = [
    # defined here
    "AUGMENTATIONS",
    "icd10_eval_set",
    "icd10_pairs",
    "validation_categories",
    # re-exported from cardio_st.data.icd10_codes
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


#: The kinds of augmented term of ``icd10_pairs(augment=...)``.
AUGMENTATIONS = ("defaults", "modifiers", "abbreviations", "nos")


def _augmented_terms(
    codes: list[ICD10Code], augment: Collection[str], exclude: set[str], seed: int
) -> list[tuple[str, ICD10Code, str]]:
    unknown = sorted(set(augment) - set(AUGMENTATIONS))
    if unknown:
        raise CardioSTError(f"unknown augment {', '.join(unknown)}: pass some of {', '.join(AUGMENTATIONS)}")
    kept = [code for code in codes if code.category not in exclude]
    terms: list[tuple[str, ICD10Code, str]] = []
    if "defaults" in augment:
        terms += [(term, code, "defaults") for term, code in augmentation.default_terms(kept)]
    if "modifiers" in augment:
        terms += [(term, code, "modifiers") for term, code in augmentation.modifier_terms(kept)]
    if "nos" in augment:
        terms += [(term, code, "nos") for term, code in augmentation.nos_terms(kept)]
    if "abbreviations" in augment:
        lexicon = load_lexicon()
        terms += [
            (term, code, "abbreviations")
            for term, code in augmentation.abbreviation_terms(kept, lexicon, seed=seed)
        ]
    return terms


def icd10_pairs(
    scope: str = "all",
    *,
    negatives: bool | int = True,
    notes: bool = False,
    validation_fraction: float = 0.1,
    seed: int = 0,
    augment: Collection[str] = (),
    augment_exclude: Collection[str] = (),
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
        scope: ``"all"``, ``"cardio"`` or a chapter (see
            [resolve_scope][cardio_st.data.icd10_codes.resolve_scope]).
        negatives: Add the ``negative`` column; an integer ``k`` > 1 adds ``k`` columns ``negative_1``
            ... ``negative_k``, drawn from the same group (distinct codes while it has enough).
        notes: Add the Excludes-note pairs.
        validation_fraction: Share of train-side categories held back for validation (0 for none).
        seed: Seeds the choice of validation categories and of negatives.
        augment: Terms in the words clinicians type, made from the same train-side text
            ([cardio_st.data.augment][cardio_st.data.augment]): ``"defaults"`` (the unqualified term of
            an unspecified code: "Heart failure" -> I50.9), ``"modifiers"`` (terms without their
            parenthesised nonessential modifiers), ``"nos"`` (terms without "NOS": "Congestive heart
            failure" -> I50.9) and ``"abbreviations"`` (a reading replaced by its abbreviation from
            [load_lexicon][cardio_st.data.abbreviations.load_lexicon]).
        augment_exclude: Categories that get no augmented terms (their own terms stay), e.g. those of
            the clinical-shorthand benchmark's test part, so that it measures the convention learnt
            elsewhere rather than its own answers.

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
    terms += _augmented_terms(codes, augment, set(augment_exclude), seed)
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
                    f"no negative for {code.code} in scope {scope!r}: widen the scope or pass "
                    "`negatives=False`"
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
    order = ("codes", "categories", "terms", "notes", *AUGMENTATIONS, "dropped", "negatives", "rows")
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
