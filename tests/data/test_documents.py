"""cardio_st.data.documents: every corpus format reads to the same documents; bad input names the
file and line."""

from __future__ import annotations

import json

import pytest

from cardio_st.data.documents import load_documents
from cardio_st.errors import CardioSTError

ROWS = [
    {"id": "d1", "title": "Myocardial infarction", "text": "Necrosis of heart muscle from ischaemia."},
    {"id": "d2", "text": "Atrial fibrillation, an irregular rhythm."},
]
EXPECTED_TEXTS = ["Myocardial infarction Necrosis of heart muscle from ischaemia.", ROWS[1]["text"]]


def test_jsonl_csv_tsv_parquet_and_beir_folders_read_alike(tmp_path):
    from datasets import Dataset

    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(row) for row in ROWS) + "\n\n")
    header = "id,title,text\n"
    (tmp_path / "c.csv").write_text(
        header + "".join(f'{r["id"]},{r.get("title", "")},"{r["text"]}"\n' for r in ROWS)
    )
    (tmp_path / "c.tsv").write_text(
        header.replace(",", "\t") + "".join(f"{r['id']}\t{r.get('title', '')}\t{r['text']}\n" for r in ROWS)
    )
    Dataset.from_list([{"title": "", **row} for row in ROWS]).to_parquet(str(tmp_path / "c.parquet"))
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": r["id"], **r}) for r in ROWS))
    for source in ("c.jsonl", "c.csv", "c.tsv", "c.parquet", "beir"):
        documents = load_documents(tmp_path / source)
        assert documents.ids == ["d1", "d2"], source
        assert documents.texts == EXPECTED_TEXTS, source


def test_documents_without_ids_are_numbered_by_line(tmp_path):
    (tmp_path / "c.txt").write_text("first document\n\n  second document  \n")
    documents = load_documents(tmp_path / "c.txt")
    assert documents.ids == ["1", "3"] and documents.texts == ["first document", "second document"]


def test_icd10_scope_gives_the_billable_descriptions():
    documents = load_documents("icd10:cardio")
    assert len(documents.ids) == 1427 and documents.ids[0].startswith("I")
    assert documents.source == "icd10:cardio"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.jsonl", '{"id": "a", "text": "x"}\n{"id": "b"}\n', r"c.jsonl, line 2: no text"),
        ("c.jsonl", '{"id": "a", "text": "x"}\nnot json\n', r"c.jsonl, line 2: not JSON"),
        (
            "c.jsonl",
            '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n',
            r"line 2: id 'a' already used on line 1",
        ),
        ("c.jsonl", "\n\n", "holds no documents"),
        ("c.jsonl", '["a list"]\n', "line 1: expected an object"),
        ("c.csv", "id,body\n1,x\n", "no 'text' column"),
        ("c.csv", "id,text\n1,x\n2,\n", r"c.csv, line 3: no text"),
        ("c.xml", "<doc/>", "unknown format .xml"),
        ("c.jsonl", '{"id": "a", "text": 5}\n', r"c.jsonl, line 1: column 'text' holds a number \(5\)"),
        ("c.txt", "fine\nnot \udce9 utf-8\n", r"c.txt, line 2: not UTF-8"),
        (
            "c.jsonl",
            '{"id": "a", "text": "x"}\n{"id": "b", "text": "caf\udce9"}\n',
            r"c.jsonl, line 2: not UTF-8",
        ),
        ("c.csv", "id,text\n1,x\n2,y,z\n", r"c.csv, line 3: 3 fields, the header has 2"),
        ("c.parquet", "not parquet", "c.parquet is not a readable Parquet file"),
    ],
)
def test_bad_corpora_name_the_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content.encode("utf-8", "surrogateescape"))  # \udce9: the byte 0xe9
    with pytest.raises(CardioSTError, match=message) as raised:
        load_documents(tmp_path / name)
    assert "\n" not in str(raised.value)


def test_a_missing_corpus_names_the_formats(tmp_path):
    with pytest.raises(CardioSTError, match=r"not found: pass a file \(.jsonl"):
        load_documents(tmp_path / "nothing.jsonl")
    with pytest.raises(CardioSTError, match="unknown scope|scope"):
        load_documents("icd10:nonsense")
