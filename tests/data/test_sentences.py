"""cardio_st.data.sentences: cleaning, sentence splitting and the near-duplicate key, on clinical text."""

from __future__ import annotations

import pytest

from cardio_st.data.sentences import clean_text, normalise, split_sentences

# --- split_sentences: known answers on clinical text ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Give aspirin 325 mg. Then start heparin 60 U/kg i.v. bolus.",
            ["Give aspirin 325 mg.", "Then start heparin 60 U/kg i.v. bolus."],
        ),
        ("Metoprolol 2.5 mg was given.", ["Metoprolol 2.5 mg was given."]),
        (
            "Keep potassium at 4.0-5.0 mmol/L and give 0.5 mg/kg. Recheck in 6 h.",
            ["Keep potassium at 4.0-5.0 mmol/L and give 0.5 mg/kg.", "Recheck in 6 h."],
        ),
        (
            "Aspirin, e.g. 81 mg daily, is used. Heparin, i.e. UFH, is an alternative.",
            ["Aspirin, e.g. 81 mg daily, is used.", "Heparin, i.e. UFH, is an alternative."],
        ),
        (
            "Dr. Smith et al. reported it in 2019. Jones et al. 2020 disagreed.",
            ["Dr. Smith et al. reported it in 2019.", "Jones et al. 2020 disagreed."],
        ),
        (
            "See Fig. 3 and Figs. 4-5. Mortality was 12% vs. 15% (No. 7). Prof. Jones agreed.",
            ["See Fig. 3 and Figs. 4-5.", "Mortality was 12% vs. 15% (No. 7).", "Prof. Jones agreed."],
        ),
        (
            "Give metoprolol 5 mg i.v. Repeat every 5 min. Then 25 mg p.o. b.i.d. for 3 days, or t.i.d. "
            "or q.d.",
            [
                "Give metoprolol 5 mg i.v.",
                "Repeat every 5 min.",
                "Then 25 mg p.o. b.i.d. for 3 days, or t.i.d. or q.d.",
            ],
        ),
        (
            "J. Smith and Mrs. A. B. Jones met Mr. Lee and Ms. Kim at St. Jude. "
            "Approx. 20% respond to ca. 5 mg.",
            [
                "J. Smith and Mrs. A. B. Jones met Mr. Lee and Ms. Kim at St. Jude.",
                "Approx. 20% respond to ca. 5 mg.",
            ],
        ),
        (
            "Trials in the U.S. Food and Drug Administration files. Drs. Wu and Li agreed.",
            ["Trials in the U.S. Food and Drug Administration files.", "Drs. Wu and Li agreed."],
        ),
        (
            'It ended in 2019. 3 patients died. He said "Stop." Then it stopped! Why? Nobody knows...',
            [
                "It ended in 2019.",
                "3 patients died.",
                'He said "Stop."',
                "Then it stopped!",
                "Why?",
                "Nobody knows...",
            ],
        ),
        ("Steps: 1. Give aspirin. 2. Give heparin.", ["Steps: 1. Give aspirin.", "2. Give heparin."]),
        ("Troponin rose. it was repeated.", ["Troponin rose. it was repeated."]),  # lower case: no split
    ],
)
def test_split_sentences_known_answers(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_list_items_are_their_own_sentences_without_bullets():
    # Given a numbered and a bulleted list, one item per line, and a wrapped continuation line
    text = (
        "Initial therapy:\n1. Aspirin 325 mg chewed.\n2) Heparin 60 U/kg i.v.\n"
        "\u2022 Nitroglycerin 0.4 mg s.l. every\n5 min\n- Oxygen if SpO2 < 90%\n* Morphine"
    )
    # When split / Then every item stands alone, numbers kept, bullets removed, continuation joined
    assert split_sentences(text) == [
        "Initial therapy:",
        "1. Aspirin 325 mg chewed.",
        "2) Heparin 60 U/kg i.v.",
        "Nitroglycerin 0.4 mg s.l. every 5 min",
        "Oxygen if SpO2 < 90%",
        "Morphine",
    ]


def test_split_sentences_never_crosses_a_paragraph():
    assert split_sentences("No full stop here\n\nNext paragraph starts. Second one.") == [
        "No full stop here",
        "Next paragraph starts.",
        "Second one.",
    ]


# --- clean_text -----------------------------------------------------------------------------------


def test_clean_text_joins_hyphenation_and_wrapped_lines():
    # Given OCR lines with line-end hyphens, a real compound hyphen and a page break inside a word
    text = (
        "Acute myo-\r\ncardial infarction with ST-elevation\r\nand beta-\nblocker use. The ST-\nsegment "
        "rose. Anti-\nVEGF too. Dose-\ndependent effects in the myo-\n\n12\n\ncardium.\n"
    )
    # When cleaned / Then hyphenation is undone only where the word was split
    assert clean_text(text) == (
        "Acute myocardial infarction with ST-elevation and beta-blocker use. The ST-segment rose. "
        "Anti-VEGF too. Dose-dependent effects in the myocardium."
    )


def test_clean_text_drops_page_numbers_copyright_chapters_and_captions():
    text = (
        "CHAPTER 12 Heart Failure\n"
        "Copyright \u00a9 2020 Elsevier Inc.\n"
        "\u00a9 Elsevier\n"
        "All rights reserved.\n"
        "\n"
        "Chapter 3\n"
        "Heart failure is common in the\n"
        "Page 12\n"
        "elderly. It carries a poor prognosis.\n"
        "- 13 -\n"
        "14 of 300\n"
        "xii\n"
        "Figure 3.2 Coronary anatomy.\n"
        "Fig. 4. ECG of an anterior STEMI.\n"
        "Table 2-1 Drugs for angina\n"
        "\n"
        "Table 2 shows the doses. See Chapter 5\n"
        "for details.\n"
    )
    assert clean_text(text) == (
        "Heart failure is common in the elderly. It carries a poor prognosis.\n\n"
        "Table 2 shows the doses. See Chapter 5 for details."
    )


def test_clean_text_drops_running_headers_even_with_page_numbers():
    # Given a header repeated on three pages, once bare and twice with its page number
    text = (
        "344 Braunwald's Heart Disease\nAtrial fibrillation is the most\ncommon arrhythmia.\n"
        "Braunwald's Heart Disease 345\nIts prevalence rises with age.\n"
        "Braunwald's Heart Disease\nAnticoagulation prevents stroke.\n"
    )
    # When cleaned / Then the header lines are gone and the paragraph is unwrapped
    assert clean_text(text) == (
        "Atrial fibrillation is the most common arrhythmia. Its prevalence rises with age. "
        "Anticoagulation prevents stroke."
    )


def test_clean_text_keeps_list_items_apart_and_fixes_characters():
    text = "Treat\u00a0with:\n1. Aspi\u00adrin\n2. Clopi-\ndogrel\n\u2022 \ufb01brinolysis\tif late"
    assert clean_text(text) == "Treat with:\n\n1. Aspirin\n\n2. Clopidogrel\n\n\u2022 fibrinolysis if late"


# --- normalise ------------------------------------------------------------------------------------


def test_normalise_ignores_case_punctuation_quotes_and_spacing_but_not_digits():
    assert normalise("\u201cST-Elevation\u201d  MI, 2.5 mg!") == "st elevation mi 2 5 mg"
    assert normalise("ST elevation MI 2 5 mg") == normalise("st-elevation mi: 2.5 mg")
    assert normalise("Aspirin 81 mg") != normalise("Aspirin 325 mg")
    assert normalise("\uff21spirin") == "aspirin"  # NFKC: full-width letters
