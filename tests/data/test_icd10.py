"""cardio_st.data.icd10: training pairs, validation categories and the evaluation set of the fixed split."""

from __future__ import annotations

import pytest

from cardio_st.data import icd10, icd10_codes
from cardio_st.errors import CardioSTError


def test_codes_are_re_exported_for_existing_imports():
    for name in icd10_codes.__all__:
        assert getattr(icd10, name) is getattr(icd10_codes, name)
    assert set(icd10_codes.__all__) <= set(icd10.__all__)


@pytest.fixture(scope="module")
def all_pairs():
    return icd10.icd10_pairs("all")


def test_pairs_hold_no_text_of_a_held_out_category(all_pairs):
    # Given every text that appears only on the held-out side (descriptions and alternative terms)
    def texts(split):
        return {
            t for c in icd10.load_codes("all", split=split) for t in (c.description, *c.alternative_terms)
        }

    held_out_only = texts("test") - texts("train")
    assert len(held_out_only) > 30_000
    # Then none of it reaches any column of any split of the pairs
    data, _ = all_pairs
    for split in data.values():
        for column in split.column_names:
            assert not set(split[column]) & held_out_only


def test_pairs_negatives_are_siblings_never_the_code_itself_or_its_lineage(all_pairs):
    data, counts = all_pairs
    train = icd10.load_codes("all", split="train")
    codes_of: dict[str, set[str]] = {}
    for code in train:
        codes_of.setdefault(code.description, set()).add(code.code)
    assert counts["negatives: sibling"] > 0.85 * (counts["rows: train"] + counts["rows: validation"])
    assert counts["rows: validation"] > 0 and counts["dropped: not a name"] > 0
    for split in data.values():
        for row in split:
            assert row["negative"] != row["positive"] and row["anchor"] != row["positive"]
            # (descriptions can be shared, e.g. a heading and its "Other ..." child: one reading must fit)
            assert any(
                not (n.startswith(p) or p.startswith(n))
                for p in codes_of[row["positive"]]
                for n in codes_of[row["negative"]]
            )
    row = data["train"]["anchor"].index("Classical cholera")
    assert data["train"]["positive"][row] == "Cholera due to Vibrio cholerae 01, biovar cholerae"
    assert icd10.category_of(next(iter(codes_of[data["train"]["negative"][row]]))) == "A00"


def test_validation_pairs_come_from_their_own_categories(all_pairs):
    data, _ = all_pairs
    category_of = {c.description: c.category for c in icd10.load_codes("all", split="train")}
    train_categories = {category_of[p] for p in data["train"]["positive"]}
    validation_categories = {category_of[p] for p in data["validation"]["positive"]}
    assert not train_categories & validation_categories


def test_eval_set_queries_are_held_out_terms_over_the_whole_code_set():
    evaluation = icd10.icd10_eval_set("cardio")
    queries, corpus = evaluation["queries"], evaluation["corpus"]
    assert len(corpus) == 1427 and len(queries) > 100
    assert all(icd10.is_held_out(code) for code in queries["code"])
    assert set(queries["code"]) <= set(corpus["code"])
    assert any(not icd10.is_held_out(code) for code in corpus["code"])
    assert not any(icd10._CODE_REFERENCE_RE.search(q) for q in queries["query"])


def test_validation_eval_set_stays_on_the_train_side(all_pairs):
    evaluation = icd10.icd10_eval_set("all", side="validation")
    chosen = icd10.validation_categories("all")
    queries, corpus = evaluation["queries"], evaluation["corpus"]
    assert len(queries) > 300 and set(queries["category"]) <= chosen
    assert not any(icd10.is_held_out(code) for code in corpus["code"])
    # the same categories as the validation split of the pairs
    data, _ = all_pairs
    category_of = {c.description: c.category for c in icd10.load_codes("all", split="train")}
    assert {category_of[p] for p in data["validation"]["positive"]} <= chosen
    with pytest.raises(CardioSTError, match="unknown side"):
        icd10.icd10_eval_set("cardio", side="train")


def test_note_pairs_name_one_train_side_code_and_stay_off_the_held_out_side():
    data, counts = icd10.icd10_pairs("all", notes=True)
    plain, _ = icd10.icd10_pairs("all")
    train = icd10.load_codes("all", split="train")
    assert counts["notes"] > 1000
    added = len(data["train"]) + len(data["validation"]) - len(plain["train"]) - len(plain["validation"])
    assert added > 1000
    # "dislocation of toe (S93.1-)" on another code's page names S93.1's condition
    row = data["train"]["anchor"].index("dislocation of toe")
    assert data["train"]["positive"][row] == "Subluxation and dislocation of toe"
    # a note naming two codes is not a pair; no anchor keeps a code reference
    assert not any(icd10._CODE_REFERENCE_RE.search(anchor) for anchor in data["train"]["anchor"])
    # every positive is the description of a train-side code; held-out-only texts never appear
    descriptions = {code.description for code in train}
    held_out_only = {c.description for c in icd10.load_codes("all", split="test")} - descriptions
    for split in data.values():
        assert set(split["positive"]) <= descriptions
        assert not set(split["anchor"]) & held_out_only


def test_several_negative_columns_come_from_the_same_group():
    data, _ = icd10.icd10_pairs("cardio", negatives=3)
    one, _ = icd10.icd10_pairs("cardio")
    train = data["train"]
    assert train.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    block_of = {c.description: c.block for c in icd10.load_codes("cardio", split="train")}
    for row in train:
        negatives = [row["negative_1"], row["negative_2"], row["negative_3"]]
        assert row["positive"] not in negatives
        # siblings, or (for a code without any) other categories of its block
        assert {block_of[n] for n in negatives} == {block_of[row["positive"]]}
    assert train["anchor"] == one["train"]["anchor"]
    with pytest.raises(CardioSTError, match="number of negative columns"):
        icd10.icd10_pairs("cardio", negatives=-1)


def test_validation_categories_do_not_depend_on_the_scope():
    # A model trained on the pairs of all chapters and validated on one chapter meets no training
    # category: the chapter's validation categories are those of all chapters that lie in it.
    everywhere = icd10.validation_categories("all", 0.3)
    circulatory = icd10.validation_categories("cardio", 0.3)
    in_chapter = {code.category for code in icd10.load_codes("cardio", split="train")}
    assert circulatory == everywhere & in_chapter
    assert 0.2 < len(circulatory) / len(in_chapter) < 0.4
    data, _ = icd10.icd10_pairs("all", validation_fraction=0.3)
    trained = {c.description for c in icd10.load_codes("all", split="train") if c.category not in everywhere}
    evaluation = icd10.icd10_eval_set("cardio", side="validation", validation_fraction=0.3)
    assert set(evaluation["queries"]["category"]) <= circulatory
    assert set(data["train"]["positive"]) <= trained
