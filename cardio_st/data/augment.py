"""Training terms in the words clinicians type, made from ICD-10-CM's own text: the unqualified term of an
unspecified code, terms without their nonessential modifiers, and terms with an abbreviation in place
of its reading. Leaves out pairing them with descriptions and negatives (icd10.icd10_pairs); torch-free.

Each function yields ``(term, code)`` for codes it is given; [icd10_pairs][cardio_st.data.icd10.icd10_pairs]
passes only train-side codes, so nothing of a held-out category is read.

- **defaults**: the ICD-10-CM Alphabetic Index gives a term without qualifiers its default code, and
  "unspecified" is that default: "Heart failure, unspecified" (I50.9) is what "heart failure" means,
  "Unspecified atrial fibrillation" (I48.91) what "atrial fibrillation" means.
- **modifiers**: words in parentheses are nonessential modifiers (they may be present or absent without
  changing the code): "Hypertension (arterial) (benign) (essential)" is I10 as "Hypertension".
- **abbreviations**: a reading of the lexicon replaced by its abbreviation: "Paroxysmal atrial
  fibrillation" -> "Paroxysmal afib".
- **nos**: "NOS" (not otherwise specified) marks the term a code owns when nothing more is said, so the
  term without it is that code's too: "Congestive heart failure NOS" (I50.9) -> "Congestive heart
  failure", the reading of "CHF".
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator

from cardio_st.data.abbreviations import Lexicon
from cardio_st.data.icd10_codes import ICD10Code

__all__ = ["abbreviation_terms", "default_terms", "modifier_terms", "nos_terms"]

_UNSPECIFIED_PREFIX = re.compile(r"^unspecified (?P<term>.+)$", re.IGNORECASE)
_UNSPECIFIED_SUFFIX = re.compile(r"^(?P<term>.+?), unspecified(?: [a-z]+)?$")
_PARENTHESES = re.compile(r"\s*\([^()]*\)")
_NOS = re.compile(r",?\s*\bNOS\b")
# Injuries, external causes and encounters code laterality, encounter and cause, not a condition's default.
_SKIPPED_CHAPTERS = {"19", "20", "21"}
_ENCOUNTER = re.compile(r"encounter|sequela", re.IGNORECASE)


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def _owned_by_another(codes: list[ICD10Code]) -> Callable[[str, ICD10Code], bool]:
    """``owned(term, code)``: whether ``term`` is another billable code's description (that code owns it)."""
    described = {code.description.casefold(): code.code for code in codes if code.billable}
    return lambda term, code: described.get(term.casefold(), code.code) != code.code


def default_terms(codes: Iterable[ICD10Code]) -> Iterator[tuple[str, ICD10Code]]:
    """``(unqualified term, code)`` for each billable "Unspecified X" / "X, unspecified" code: "Heart
    failure" for I50.9. A term that is itself another billable code's description is left out (that
    code owns it; a heading's, such as the category I50 "Heart failure", is what the default stands
    for), as are injury, external-cause and encounter codes, and descriptions with several
    "unspecified"."""
    codes = list(codes)
    owned = _owned_by_another(codes)
    for code in codes:
        text = code.description
        if (
            not code.billable
            or code.chapter in _SKIPPED_CHAPTERS
            or _ENCOUNTER.search(text)
            or text.casefold().count("unspecified") != 1
        ):
            continue
        match = _UNSPECIFIED_PREFIX.match(text) or _UNSPECIFIED_SUFFIX.match(text)
        if match is None:
            continue
        term = _sentence_case(match.group("term").strip())
        if len(term) < 4 or owned(term, code):
            continue
        yield term, code


def modifier_terms(codes: Iterable[ICD10Code]) -> Iterator[tuple[str, ICD10Code]]:
    """``(term without its parenthesised words, code)`` for each description and alternative term that
    has some: "Chronic diastolic heart failure" for "Chronic diastolic (congestive) heart failure"."""
    for code in codes:
        if code.chapter in _SKIPPED_CHAPTERS:
            continue
        for text in (code.description, *code.alternative_terms):
            if "(" not in text:
                continue
            term = _PARENTHESES.sub("", text).strip(" ,")
            if len(term) >= 4 and term.casefold() != code.description.casefold():
                yield _sentence_case(term), code


def nos_terms(codes: Iterable[ICD10Code]) -> Iterator[tuple[str, ICD10Code]]:
    """``(term without "NOS", code)`` for each alternative term that says NOS: "Congestive heart failure"
    for I50.9's "Congestive heart failure NOS", "Persistent atrial fibrillation" for I48.19's
    "Persistent atrial fibrillation, NOS". A term that is then another billable code's description is
    left out (that code owns it)."""
    codes = list(codes)
    owned = _owned_by_another(codes)
    for code in codes:
        if code.chapter in _SKIPPED_CHAPTERS:
            continue
        for text in code.alternative_terms:
            if not _NOS.search(text):
                continue
            term = re.sub(r"\s{2,}", " ", _NOS.sub("", text)).strip(" ,")
            if len(term) >= 4 and not owned(term, code):
                yield _sentence_case(term), code


def abbreviation_terms(
    codes: Iterable[ICD10Code], lexicon: Lexicon, *, seed: int = 0, per_term: int = 1
) -> Iterator[tuple[str, ICD10Code]]:
    """``(term with an abbreviation, code)``: in each description and alternative term, the longest
    reading of the lexicon (two words or more) replaced by one of its abbreviations, drawn with
    ``seed``; up to ``per_term`` such terms per text. Only readings that belong to one meaning are
    used: an abbreviation is drawn from those whose only reading it is, or whose readings include it."""
    by_reading: dict[str, list[str]] = {}
    for abbreviation, readings in lexicon.entries.items():
        if len(abbreviation) < 2:
            continue
        for reading in readings:
            if len(reading.split()) >= 2:
                by_reading.setdefault(reading.casefold(), []).append(abbreviation)
    if not by_reading:
        return
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(r) for r in sorted(by_reading, key=len, reverse=True)) + r")\b",
        re.IGNORECASE,
    )
    rng = random.Random(seed)
    for code in codes:
        if code.chapter in _SKIPPED_CHAPTERS:
            continue
        for text in (code.description, *code.alternative_terms):
            found = list(pattern.finditer(text))
            if not found:
                continue
            match = max(found, key=lambda m: len(m.group(0)))
            choices = sorted(set(by_reading[match.group(0).casefold()]))
            for abbreviation in rng.sample(choices, min(per_term, len(choices))):
                yield text[: match.start()] + abbreviation + text[match.end() :], code
