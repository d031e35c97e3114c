"""Text rules of corpus reading: textbook debris cleaned away, clinical sentences split, a near-duplicate key.
Leaves out files, filtering and deduplication (cardio_st.data.corpus), and statistical sentence models.

Cleaning targets the debris of textbooks turned into text: page numbers, running headers, copyright
lines, chapter headings, figure and table captions, hard-wrapped lines and words hyphenated at a line
end. Splitting knows clinical abbreviations ("i.v.", "b.i.d.", "e.g.", "Fig.", "et al.") and doses
("2.5 mg"). Every rule is in the docstring of [clean_text][cardio_st.data.sentences.clean_text] or
[split_sentences][cardio_st.data.sentences.split_sentences], and is meant to be read and argued with.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

__all__ = ["clean_text", "normalise", "split_sentences"]

_CHAR_FIXES = str.maketrans(
    {"\u00ad": "", "\u200b": "", "\ufeff": "", "\u00a0": " ", "\t": " ", "\f": "\n", "\v": "\n"}
    | {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st"}
)
# "12", "Page 12", "- 12 -", "12 of 300", "12/300", and lower-case roman numbers up to xxxix ("xii").
_PAGE_NUMBER = re.compile(
    r"(?:(?i:page)\s*)?[-\u2013\u2014]?\s*(?:\d{1,4}|(?=[ivx])x{0,3}(?:ix|iv|v?i{0,3}))\s*[-\u2013\u2014]?"
    r"(?:\s*(?i:of|/)\s*\d{1,4})?"
)
_COPYRIGHT = re.compile(r"(?i)(?:copyright\b|\u00a9|\(c\)\s|all rights reserved)")
_CHAPTER = re.compile(r"(?i)chapter\s+(?:\d+|[ivxlcdm]+)\b")
# "Figure 3.2 Coronary ...", "Fig. 4. ECG ...", "Table 2-1 Doses ...", but not "Table 2 shows that ...".
_CAPTION = re.compile(r"(?i:fig(?:ure)?s?\.?|table|tab\.)\s*\d+(?:[.\-\u2013]\d+)*[a-z]?(?:[.:]|\s+[A-Z(]|$)")
_LIST_ITEM = re.compile(r"(?:[\u2022\u00b7\u25aa\u25e6*\-\u2013]|\d{1,3}[.)]|\(\d{1,3}\)|[a-z][.)])\s")
_BULLET = re.compile(r"[\u2022\u00b7\u25aa\u25e6*\-\u2013]\s+")
_HYPHENATED = re.compile(r"([^\W\d_]+)-$")
_LEADING_WORD = re.compile(r"[^\W\d_]+")
_EDGE_NUMBERS = re.compile(r"^\d+\s+|\s+\d+$")
# Line-end hyphens that belong to the word ("beta-\nblocker" -> "beta-blocker", not "betablocker").
_COMPOUND_HEADS = frozenset(
    "alpha beta gamma delta kappa self well low high long short left right end all first second third half "
    "double single dual".split()
)
_COMPOUND_TAILS = frozenset(
    "blocker blockers dependent based related induced mediated limiting threatening directed associated "
    "specific sensitive sensitivity term like type free year old acting controlled guided adjusted "
    "lowering sparing onset".split()
)

# Tokens before a period that never end a sentence (compared lowercased, without the final period).
_NEVER_END = frozenset(
    "e.g i.e dr drs prof fig figs vs cf approx ca no nos mr mrs ms st eq eqs ref refs vol pp".split()
)
_SENTENCE_END = re.compile(r"[.!?]+([\"'\u201d\u2019\u00bb)\]]*)\s+")
_OPENING_QUOTES = "\"'\u201c\u2018\u00ab"
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")


def _is_list_item(line: str) -> bool:
    return bool(_LIST_ITEM.match(line))


def _header_key(line: str) -> str:
    return _EDGE_NUMBERS.sub("", line)


def _running_headers(lines: list[str]) -> set[str]:
    counts = Counter(
        _header_key(line)
        for line in lines
        if line and len(line.split()) <= 10 and any(c.isalpha() for c in line) and not _is_list_item(line)
    )
    return {key for key, count in counts.items() if count >= 3}


def _is_debris(line: str, headers: set[str], paragraph_start: bool) -> bool:
    if _PAGE_NUMBER.fullmatch(line) or _COPYRIGHT.match(line) or _CAPTION.match(line):
        return True
    if _CHAPTER.match(line) and len(line.split()) <= 10 and (paragraph_start or line.startswith("CHAPTER")):
        return True
    return _header_key(line) in headers and not _is_list_item(line)


def _join_hyphenated(head: str, line: str) -> str:
    fragment = _HYPHENATED.search(head).group(1)
    tail = _LEADING_WORD.match(line)
    plain_word = fragment.islower() or (fragment[0].isupper() and fragment[1:].islower())
    if (
        tail
        and line[0].islower()
        and plain_word
        and fragment.lower() not in _COMPOUND_HEADS
        and tail.group().lower() not in _COMPOUND_TAILS
    ):
        return head[:-1] + line
    return head + line


def clean_text(text: str) -> str:
    """Remove the debris of a textbook turned into text; one paragraph or list item per line.

    The rules, in order:

    1. Line endings become ``\\n`` (also form feeds); soft hyphens, zero-width spaces and BOMs are
       removed, ligatures (``\ufb01`` -> ``fi``) spelled out, runs of spaces and tabs collapsed.
    2. Whole lines are dropped when they are: a page number (``12``, ``Page 12``, ``- 12 -``,
       ``12 of 300``, ``xii``); a running header (a line of at most 10 words that occurs 3 or more
       times in the text, ignoring a page number at either end); a copyright line (starting with
       ``Copyright``, ``\u00a9``, ``(c)`` or ``All rights reserved``); a chapter heading of at most 10
       words (``CHAPTER 12 ...`` anywhere, ``Chapter 12 ...`` at a paragraph start); a figure or
       table caption (``Figure 3.2 Coronary ...``, ``Fig. 4. ...``, ``Table 2-1 ...``; not
       ``Table 2 shows ...``).
    3. A word hyphenated at a line end is rejoined, also across blank lines (a page break): without
       the hyphen when the next line starts in lowercase and the first part is a plain word
       (``myo-`` + ``cardial`` -> ``myocardial``); with the hyphen otherwise, or when either part is a
       listed compound part (``beta-`` + ``blocker``, ``ST-`` + ``segment``, ``dose-`` + ``dependent``).
       Hyphens within a line (``ST-elevation``) are never touched.
    4. Hard-wrapped lines are joined with a space; a blank line ends a paragraph, and a line that
       starts with a bullet (``\u2022``, ``-``, ``*``) or a number (``1.``, ``2)``, ``(3)``, ``a)``)
       starts a new item.

    Args:
        text: Raw text of one file.

    Returns:
        The paragraphs and list items, separated by blank lines (bullets and numbers kept).

    Example:
        >>> clean_text("Acute myo-\\ncardial infarction.\\n\\n12\\n\\n\u2022 Give aspirin.")
        'Acute myocardial infarction.\\n\\n\u2022 Give aspirin.'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_CHAR_FIXES)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    headers = _running_headers(lines)
    units: list[str] = []
    current = ""
    broken = False  # a blank line since ``current`` was last extended
    for line in lines:
        if not line:
            broken = True
            continue
        if _is_debris(line, headers, paragraph_start=broken or not current):
            continue
        hyphenated = bool(_HYPHENATED.search(current)) and not _is_list_item(line)
        if hyphenated and (not broken or line[0].islower()):
            current = _join_hyphenated(current, line)
        elif broken or not current or _is_list_item(line):
            if current:
                units.append(current)
            current = line
        else:
            current = f"{current} {line}"
        broken = False
    if current:
        units.append(current)
    return "\n\n".join(units)


def _units(text: str) -> list[str]:
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        for line in paragraph.split("\n"):
            line = " ".join(line.split())
            if not line:
                continue
            if units and units[-1] and not _is_list_item(line):
                units[-1] = f"{units[-1]} {line}"
            else:
                units.append(line)
        units.append("")  # paragraph end: the next line starts a new unit
    return [_BULLET.sub("", unit, count=1) if _BULLET.match(unit) else unit for unit in units if unit]


def _ends_sentence(unit: str, match: re.Match[str], sentence_start: int) -> bool:
    following = unit[match.end()]
    if not (following.isupper() or following.isdigit() or following in _OPENING_QUOTES):
        return False
    if match.group().split()[0] != ".":
        return True  # "!", "?", "...", or a period inside closing quotes or brackets
    token_start = unit.rfind(" ", 0, match.start()) + 1
    token = unit[token_start : match.start()].lstrip("([{" + _OPENING_QUOTES)
    before = unit[:token_start].rstrip()
    lowered = token.lower()
    if lowered in _NEVER_END or (lowered == "al" and re.search(r"(?:^|\s)et$", before)):
        return False
    if _DOTTED.fullmatch(token):  # "U.S." never ends; "i.v.", "b.i.d." end only before a capital
        return token.islower() and not following.isdigit()
    if len(token) == 1 and token.isupper():
        return False  # an initial: "J. Smith"
    list_number = (token.isdigit() and len(token) <= 3) or (len(token) == 1 and token.isalpha())
    return not (list_number and (token_start == sentence_start or before.endswith((":", ";"))))


def split_sentences(text: str) -> list[str]:
    """Split cleaned text into sentences, knowing clinical abbreviations, doses and list items.

    A sentence never spans a blank line; a line that starts with a bullet or number is its own item
    (bullets ``\u2022``, ``-``, ``*`` are removed, numbers such as ``1.`` kept). Inside a paragraph or
    item, a sentence ends at ``.``, ``!`` or ``?`` (then any closing quotes or brackets) followed by
    a space and a capital letter, a digit or an opening quote, except after a period that follows:

    - an abbreviation that never ends a sentence: ``e.g.``, ``i.e.``, ``Dr.``, ``Drs.``, ``Prof.``,
      ``Mr.``, ``Mrs.``, ``Ms.``, ``St.``, ``Fig.``, ``Figs.``, ``vs.``, ``cf.``, ``et al.``,
      ``approx.``, ``ca.``, ``No.``, ``Eq.``, ``Ref.``, ``Vol.``, ``pp.``, or an upper-case dotted
      acronym (``U.S.``);
    - a lower-case dotted abbreviation (``i.v.``, ``p.o.``, ``b.i.d.``, ``q.d.``) unless a capital
      follows: ``60 U/kg i.v. bolus`` and ``i.v. 3 times`` stay whole, ``5 mg i.v. Then`` splits;
    - a single capital letter (an initial, ``J. Smith``);
    - a list number (``1.``, ``a.``) at the start of a sentence or after ``:`` or ``;``.

    Units ending a sentence split like any word (``325 mg. Then`` -> two); decimals (``2.5 mg``,
    ``1.5-2.0 mmol/L``) never split, as no space follows their period.

    Args:
        text: Text cleaned by [clean_text][cardio_st.data.sentences.clean_text] (other text works too:
            single line breaks are read as wrapped lines).

    Returns:
        The sentences, stripped, each on one line.

    Example:
        >>> split_sentences("Give aspirin 325 mg. Then start heparin 60 U/kg i.v. bolus, e.g. Dr. Smith's.")
        ['Give aspirin 325 mg.', "Then start heparin 60 U/kg i.v. bolus, e.g. Dr. Smith's."]
    """
    sentences: list[str] = []
    for unit in _units(text):
        start = 0
        for match in _SENTENCE_END.finditer(unit):
            if match.end() < len(unit) and _ends_sentence(unit, match, start):
                sentences.append(unit[start : match.end()].strip())
                start = match.end()
        if unit[start:].strip():
            sentences.append(unit[start:].strip())
    return sentences


def normalise(text: str) -> str:
    """The near-duplicate key of a sentence: NFKC, casefolded, punctuation removed, spaces collapsed.

    Punctuation and quotes become spaces (so ``ST-elevation`` and ``ST elevation`` match); digits and
    symbols (``%``, ``>``, ``\u2265``) are kept, so different doses and thresholds stay different.

    Example:
        >>> normalise("\u201cST-Elevation\u201d  MI, 2.5 mg!")
        'st elevation mi 2 5 mg'
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(c).startswith("P") or c in "`\u00b4" else c for c in text)
    return " ".join(text.split())
