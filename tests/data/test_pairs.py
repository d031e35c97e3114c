"""Bad pairs files (issue 18, item 6): malformed JSON, an empty file, bytes that are not UTF-8 and a
number where text belongs are each one line naming the file and line, from the shared reader."""

from __future__ import annotations

import pytest

from cardio_st.data.pairs import load_pairs, load_splits
from cardio_st.errors import CardioSTError

GOOD = '{"anchor": "afib", "positive": "atrial fibrillation"}\n'


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.jsonl",
            GOOD * 2 + '{"anchor": "mi", positive\n',
            r"bad.jsonl, line 3: not JSON \(.*column \d+\)",
        ),
        ("empty.jsonl", "", r"empty.jsonl is empty: it needs one \(anchor, positive"),
        (
            "latin.jsonl",
            GOOD.encode() + b'{"anchor": "caf\xe9", "positive": "x"}\n',
            r"latin.jsonl, line 2: not UTF-8",
        ),
        (
            "typed.jsonl",
            GOOD + '{"anchor": 5, "positive": "x"}\n',
            r"typed.jsonl, line 2: column 'anchor' holds a number \(5\)",
        ),
        ("empty.csv", "anchor,positive\n", "empty.csv is empty"),
        ("ragged.csv", "anchor,positive\na,b\nc,d,e\n", r"ragged.csv, line 3: 3 fields, the header has 2"),
        (
            "blank.jsonl",
            GOOD + '{"anchor": "x", "positive": " "}\n',
            r"blank.jsonl, line 2: column 'positive' is empty",
        ),
        ("damaged.parquet", "not parquet", r"damaged.parquet is not a readable Parquet file"),
    ],
)
def test_a_bad_pairs_file_is_one_line_naming_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for read in (load_pairs, load_splits):
        with pytest.raises(CardioSTError, match=message) as raised:
            read(path)
        assert "\n" not in str(raised.value) and str(tmp_path) in str(raised.value)


def test_good_pairs_still_read(tmp_path):
    (tmp_path / "train.jsonl").write_text(GOOD * 8)
    (tmp_path / "validation.jsonl").write_text(GOOD * 2)
    data = load_pairs(tmp_path)
    assert (len(data["train"]), len(data["eval"])) == (8, 2)
    assert data["train"].column_names == ["anchor", "positive"] and data["train"][0]["anchor"] == "afib"
