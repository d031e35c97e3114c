"""Data: ICD-10-CM codes, chapters and the split rule (icd10_codes), pairs and the evaluation set of the
fixed split (icd10, which re-exports icd10_codes), clinical texts to sentences (corpus; its text rules
in sentences), corpora to index (documents), pairs datasets for training (pairs), paraphrases
(paraphrase, its filters in paraphrase_filters), triplets (triplets) and the pipelines that chain them
(prepare); the one reader of user files that names file and line (readers); the JSONL checkpoint
that every LLM job appends to (checkpoint); the clinical-shorthand benchmark's items (shorthand);
abbreviation lexicons (abbreviations) and training terms in the words clinicians type (augment).

Submodules are imported on first use.
"""

from cardio_st.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    [
        "abbreviations",
        "augment",
        "checkpoint",
        "corpus",
        "documents",
        "icd10",
        "icd10_codes",
        "pairs",
        "paraphrase",
        "paraphrase_filters",
        "prepare",
        "readers",
        "sentences",
        "shorthand",
        "triplets",
    ],
    {
        "load_codes": "icd10_codes",
        "load_lexicon": "abbreviations",
        "load_documents": "documents",
        "load_pairs": "pairs",
        "load_shorthand": "shorthand",
        "make_triplets": "triplets",
    },
)
