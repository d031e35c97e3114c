"""cardio_st.data.shorthand: the clinical-shorthand items are many, valid billable codes of the installed
release, of three kinds on both sides, and split by concept with a rule that depends on the codes alone."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from cardio_st.data.icd10 import category_of, load_codes
from cardio_st.data.shorthand import KINDS, PARTS, ShorthandItem, load_shorthand, shorthand_parts
from cardio_st.errors import CardioSTError


@pytest.fixture(scope="module")
def items():
    return load_shorthand()


@pytest.fixture(scope="module")
def billable():
    return {code.code for code in load_codes("cardio", billable_only=True)}


def not_billable(items, billable):
    """Accepted codes that are not billable circulatory codes of the installed release."""
    return {code for item in items for code in item.codes} - billable


def test_at_least_250_items_of_every_kind_on_both_sides(items):
    assert len(items) >= 250
    counts = Counter((item.part, item.kind) for item in items)
    assert all(counts[part, kind] >= 15 for part in PARTS for kind in KINDS), counts
    assert 0.3 <= sum(item.part == "validation" for item in items) / len(items) <= 0.5


def test_every_code_is_billable_in_the_installed_release(items, billable):
    assert len(billable) == 1427
    assert not_billable(items, billable) == set()


def test_the_billable_check_catches_made_up_and_heading_codes(billable):
    made_up = ShorthandItem("afib", "abbreviation", ("I48.99",), "test", "made up")
    heading = ShorthandItem("afib", "abbreviation", ("I48.9",), "test", "a heading, not billable")
    assert not_billable([made_up, heading], billable) == {"I48.99", "I48.9"}


def test_items_are_well_formed(items):
    assert len({item.query.casefold() for item in items}) == len(items)  # no query twice
    assert all(item.note.strip() and item.codes and len(set(item.codes)) == len(item.codes) for item in items)
    assert {item.kind for item in items if item.ambiguous} == {"abbreviation"}
    ambiguous = {item.query for item in items if item.ambiguous}
    assert {"PE", "MS", "AS", "CAD"} <= ambiguous


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("afib", "I48.91"),
        ("CHF", "I50.9"),
        ("heart attack", "I21.9"),
        ("high blood pressure", "I10"),
        ("angina", "I20.9"),
        ("cardiac arrest", "I46.9"),
        ("stroke", "I63.9"),
        ("atrial fibrillation", "I48.91"),
        ("heart failure", "I50.9"),
    ],
)
def test_the_issues_examples_get_the_unspecified_default(items, query, code):
    by_query = {item.query: item for item in items}
    assert by_query[query].codes == (code,)


def test_no_category_sits_on_both_sides(items):
    sides: dict[str, set[str]] = {}
    for item in items:
        for code in item.codes:
            sides.setdefault(category_of(code), set()).add(item.part)
    assert all(len(parts) == 1 for parts in sides.values()), {c: p for c, p in sides.items() if len(p) > 1}


def test_the_split_is_the_rule_and_depends_on_the_codes_alone(items):
    # Given the stored parts, when the rule is applied to the codes in file order and shuffled
    codes = [item.codes for item in items]
    assert shorthand_parts(codes) == [item.part for item in items]
    order = list(range(len(items)))
    random.Random(0).shuffle(order)
    shuffled = shorthand_parts([codes[i] for i in order])
    # Then every item keeps its part
    assert [items[i].part for i in order] == shuffled


def test_items_sharing_a_category_across_codes_are_joined():
    # I61 and I62 meet in one item, so an I62-only item follows I61's side
    parts = shorthand_parts([["I61.9"], ["I61.9", "I62.9"], ["I62.00"]])
    assert len(set(parts)) == 1


def test_filters_and_errors(items):
    test_lay = load_shorthand("test", kind="lay")
    assert test_lay and all(item.part == "test" and item.kind == "lay" for item in test_lay)
    assert len(load_shorthand("validation")) + len(load_shorthand("test")) == len(items)
    with pytest.raises(CardioSTError, match="`side='validation'`"):
        load_shorthand("train")
    with pytest.raises(CardioSTError, match="`kind=`"):
        load_shorthand(kind="acronym")
    with pytest.raises(CardioSTError, match="`scope='cardio'`"):
        load_shorthand(scope="all")
    with pytest.raises(CardioSTError, match="`code_sets`"):
        shorthand_parts([[]])


_INCLUSION_CLAIM = re.compile(
    r"(?:^|: |; )([^:;]+?) (?:is an inclusion term|are inclusion terms|is an inclusion) of (I[0-9A-Z.]+)"
)


def test_every_inclusion_term_a_note_quotes_is_in_the_installed_release(items):
    # Given the notes that justify codes by "<term> is an inclusion term of <code>"
    by_code = {code.code: code for code in load_codes("cardio", billable_only=True)}
    claims = [(term, code) for item in items for term, code in _INCLUSION_CLAIM.findall(item.note)]
    assert len(claims) > 60
    for term, code in claims:
        alternatives = [t.casefold() for t in by_code[code].alternative_terms]
        # Then each quoted term ("A / B" quotes two) is one of that code's own terms, verbatim
        for quoted in term.split(" / "):
            assert any(quoted.casefold() in t for t in alternatives), (quoted, code)
