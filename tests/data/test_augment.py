"""cardio_st.data.augment and icd10_pairs(augment=...): terms in the words clinicians type, from the train
side of the fixed split only."""

from __future__ import annotations

import pytest

from cardio_st.data.abbreviations import Lexicon
from cardio_st.data.augment import abbreviation_terms, default_terms, modifier_terms, nos_terms
from cardio_st.data.icd10 import icd10_pairs, load_codes
from cardio_st.data.icd10_codes import ICD10Code, is_held_out
from cardio_st.errors import CardioSTError


def _code(code: str, description: str, billable: bool = True, terms: tuple[str, ...] = ()) -> ICD10Code:
    return ICD10Code(code, description, "9", "I30-I5A", code[:3], billable, inclusion_terms=terms)


def test_default_terms_are_the_unqualified_term_of_an_unspecified_code():
    codes = [
        _code("I50", "Heart failure", billable=False),
        _code("I50.9", "Heart failure, unspecified"),
        _code("I48.91", "Unspecified atrial fibrillation"),
        _code("I44.30", "Unspecified atrioventricular block"),
        _code("I44.39", "Atrioventricular block"),  # owns the bare term: no default pair for I44.30
        _code("I70.90", "Unspecified atherosclerosis, unspecified site"),  # two unspecified: left out
        _code("I21.09", "ST elevation (STEMI) myocardial infarction involving other coronary artery"),
    ]
    assert [(term, code.code) for term, code in default_terms(codes)] == [
        ("Heart failure", "I50.9"),
        ("Atrial fibrillation", "I48.91"),
    ]


def test_modifier_terms_drop_parenthesised_words():
    codes = [
        _code(
            "I10",
            "Essential (primary) hypertension",
            terms=("High blood pressure", "Hypertension (arterial) (benign)"),
        )
    ]
    assert [term for term, _ in modifier_terms(codes)] == ["Essential hypertension", "Hypertension"]


def test_nos_terms_drop_not_otherwise_specified():
    codes = [
        _code(
            "I50.9", "Heart failure, unspecified", terms=("Congestive heart failure NOS", "Cardiac failure")
        ),
        _code(
            "I48.19", "Other persistent atrial fibrillation", terms=("Persistent atrial fibrillation, NOS",)
        ),
        _code("I48.11", "Longstanding persistent atrial fibrillation"),
        _code(
            "I20.9",
            "Angina pectoris, unspecified",
            terms=("Longstanding persistent atrial fibrillation NOS",),
        ),
    ]
    # The last term, once without NOS, is I48.11's own description: left to I48.11.
    assert [(term, code.code) for term, code in nos_terms(codes)] == [
        ("Congestive heart failure", "I50.9"),
        ("Persistent atrial fibrillation", "I48.19"),
    ]


def test_abbreviation_terms_replace_the_longest_reading():
    lexicon = Lexicon(
        {"AF": ("atrial fibrillation",), "PAF": ("paroxysmal atrial fibrillation",), "X": ("x y",)}
    )
    codes = [
        _code("I48.0", "Paroxysmal atrial fibrillation"),
        _code("I48.91", "Unspecified atrial fibrillation"),
    ]
    assert [term for term, _ in abbreviation_terms(codes, lexicon)] == ["PAF", "Unspecified AF"]


def test_augmented_pairs_come_from_the_train_side_and_skip_excluded_categories():
    plain, plain_counts = icd10_pairs("cardio", validation_fraction=0.0)
    data, counts = icd10_pairs(
        "cardio",
        validation_fraction=0.0,
        augment=("defaults", "modifiers", "abbreviations", "nos"),
        augment_exclude={"I50"},
    )
    assert {"defaults", "modifiers", "abbreviations", "nos"} <= set(counts)
    assert len(data["train"]) > len(plain["train"])
    descriptions = {code.description: code for code in load_codes("cardio")}
    added = [row for row in data["train"] if row not in list(plain["train"])]
    assert added and all(not is_held_out(descriptions[row["positive"]].code) for row in added)
    assert not any(descriptions[row["positive"]].category == "I50" for row in added)
    assert {"anchor": "Angina pectoris", "positive": "Angina pectoris, unspecified"}.items() <= next(
        row for row in added if row["anchor"] == "Angina pectoris"
    ).items()
    with pytest.raises(CardioSTError, match="unknown augment synonyms"):
        icd10_pairs("cardio", augment=("synonyms",))
