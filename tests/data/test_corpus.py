"""cardio_st.data.corpus: reading a folder, and the errors a user can fix."""

from __future__ import annotations

import logging
import sys

import pytest

from cardio_st.data import corpus as corpus_module
from cardio_st.data import sentences
from cardio_st.data.corpus import Corpus, Sentence, read_corpus, read_text_file
from cardio_st.errors import CardioSTError


def test_text_rules_are_re_exported_for_existing_imports():
    for name in ("clean_text", "split_sentences", "normalise"):
        assert getattr(corpus_module, name) is getattr(sentences, name)


# --- read_corpus ----------------------------------------------------------------------------------


@pytest.fixture
def corpus_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".cache").mkdir()
    (tmp_path / "one.txt").write_text(
        "Aspirin reduces mortality after myocardial infarction. Yes. "
        "Beta-blockers lower the heart rate at rest.",
        encoding="utf-8",
    )
    (tmp_path / "sub" / "two.md").write_text(
        "Aspirin reduces mortality after myocardial infarction. ASPIRIN reduces mortality, after myocardial "
        "infarction! Statins lower LDL cholesterol by about 50% in most patients.",
        encoding="utf-8-sig",  # a BOM is fine
    )
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / ".draft.txt").write_text("Hidden files are ignored by the reader.")
    (tmp_path / ".cache" / "x.txt").write_text("Hidden folders are ignored by the reader.")
    return tmp_path


def test_read_corpus_positions_sources_stats_and_dedup(corpus_folder):
    # Given two sources; the second repeats a sentence exactly and once more in other case and punctuation
    # When read with a length window of 3..8 words
    corpus = read_corpus(corpus_folder, min_words=3, max_words=8)
    # Then the first occurrences stay, with positions counted before filtering
    assert isinstance(corpus, Corpus)
    assert corpus.sentences == [
        Sentence("Aspirin reduces mortality after myocardial infarction.", "one.txt", 0),
        Sentence("Beta-blockers lower the heart rate at rest.", "one.txt", 2),
    ]
    assert corpus.stats == {
        "files": 2,
        "sentences": 6,
        "dropped_too_short": 1,
        "dropped_too_long": 1,
        "dropped_duplicate": 1,
        "dropped_near_duplicate": 1,
        "kept": 2,
    }
    assert list(corpus.stats) == [  # insertion order is part of the contract
        "files",
        "sentences",
        "dropped_too_short",
        "dropped_too_long",
        "dropped_duplicate",
        "dropped_near_duplicate",
        "kept",
    ]


def test_read_corpus_positions_do_not_move_with_filters_and_dedup_can_be_off(corpus_folder):
    corpus = read_corpus(corpus_folder, min_words=1, max_words=500, deduplicate=False)
    assert [(s.source, s.position) for s in corpus.sentences] == [
        ("one.txt", 0),
        ("one.txt", 1),
        ("one.txt", 2),
        ("sub/two.md", 0),
        ("sub/two.md", 1),
        ("sub/two.md", 2),
    ]
    assert corpus.sentences[3].text == "Aspirin reduces mortality after myocardial infarction."  # no BOM
    assert corpus.stats["kept"] == 6 and corpus.stats["dropped_duplicate"] == 0


def test_read_corpus_rejects_bad_word_limits(corpus_folder):
    with pytest.raises(CardioSTError, match="min_words <= max_words"):
        read_corpus(corpus_folder, min_words=10, max_words=5)


# --- errors ---------------------------------------------------------------------------------------


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(CardioSTError, match=r"nope does not exist: check the path"):
        read_corpus(tmp_path / "nope")
    (tmp_path / "a.txt").write_text("Some text here.")
    with pytest.raises(CardioSTError, match=r"a\.txt is not a folder"):
        read_corpus(tmp_path / "a.txt")


def test_empty_folder_and_folder_with_only_csv(tmp_path):
    with pytest.raises(CardioSTError, match=r"no \.txt, \.md or \.pdf files in .*: put the corpus text"):
        read_corpus(tmp_path)
    (tmp_path / "codes.csv").write_text("a,b\n")
    with pytest.raises(CardioSTError, match=r"found 1 other file\(s\), e\.g\. codes\.csv"):
        read_corpus(tmp_path)


def test_binary_file_names_file_and_offset(tmp_path):
    (tmp_path / "scan.txt").write_bytes(b"abc\x00def")
    with pytest.raises(CardioSTError, match=r"scan\.txt is a binary file.*offset 3.*skip_unreadable=True"):
        read_corpus(tmp_path)


def test_latin1_file_names_file_offset_line_and_fix(tmp_path):
    (tmp_path / "notes.txt").write_bytes("Ok line.\nCaf\u00e9 au lait.".encode("latin-1"))
    with pytest.raises(CardioSTError) as caught:
        read_corpus(tmp_path)
    message = str(caught.value)
    assert "notes.txt is not UTF-8 (byte 0xe9 at offset 12, line 2)" in message
    assert "iconv -f latin1 -t utf-8" in message and "`skip_unreadable=True`" in message
    assert "\n" not in message


def test_skip_unreadable_keeps_the_rest_and_counts_skipped(tmp_path, caplog):
    (tmp_path / "a_bad.txt").write_bytes("Caf\u00e9 au lait.".encode("latin-1"))
    (tmp_path / "b_binary.md").write_bytes(b"\x00\x01\x02")
    (tmp_path / "c_good.txt").write_text("Heart failure is common in the elderly.")
    with caplog.at_level(logging.WARNING, logger="cardio_st.data.corpus"):
        corpus = read_corpus(tmp_path, skip_unreadable=True)
    assert [s.text for s in corpus.sentences] == ["Heart failure is common in the elderly."]
    assert corpus.stats["files"] == 1 and corpus.stats["files_skipped"] == 2
    assert list(corpus.stats)[-1] == "files_skipped"
    assert [r.name for r in caplog.records] == ["cardio_st.data.corpus"] * 2
    assert "a_bad.txt" in caplog.text and "b_binary.md" in caplog.text


def test_pdf_without_pypdf_says_how_to_install_even_when_skipping(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pypdf", None)  # makes `import pypdf` raise ImportError
    (tmp_path / "book.pdf").write_bytes(b"%PDF-1.4\n")
    for skip in (False, True):
        with pytest.raises(CardioSTError, match=r'book\.pdf\) needs pypdf: pip install "cardio-st\[pdf\]"'):
            read_corpus(tmp_path, skip_unreadable=skip)


def _pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF showing ``lines`` in Helvetica (no lines: a page without text)."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_real_pdf_is_read_and_a_scanned_pdf_needs_ocr(tmp_path):
    pytest.importorskip("pypdf")
    (tmp_path / "book.pdf").write_bytes(_pdf(["Atrial fibrillation is the most", "common arrhythmia.", "17"]))
    assert "Atrial fibrillation" in read_text_file(tmp_path / "book.pdf")
    assert [s.text for s in read_corpus(tmp_path).sentences] == [
        "Atrial fibrillation is the most common arrhythmia."
    ]
    (tmp_path / "scan.pdf").write_bytes(_pdf([]))
    with pytest.raises(CardioSTError, match=r"scan\.pdf has no extractable text .*OCR"):
        read_corpus(tmp_path)
    assert read_corpus(tmp_path, skip_unreadable=True).stats["files_skipped"] == 1
