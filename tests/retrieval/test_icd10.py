"""cardio_st.retrieval.icd10: the main job -- clinical phrase to ICD-10-CM codes."""

from __future__ import annotations

import logging

import pytest
import torch

from cardio_st.data.icd10 import load_codes
from cardio_st.errors import CardioSTError
from cardio_st.retrieval.icd10 import ICD10Search, validate_queries


def test_index_is_built_once_then_served_from_the_cache(tiny_qwen3_path, tmp_path):
    # Given a first search that builds the circulatory index
    first = ICD10Search(str(tiny_qwen3_path), "cardio", cache_folder=tmp_path, show_progress=False)
    hits = first.search(["atrial fibrillation", "hypertension"], top_k=3)
    assert [len(row) for row in hits] == [3, 3]
    assert all(hit.id.startswith("I") and hit.text for row in hits for hit in row)
    assert first.index_path.name.startswith("icd10-ch9-") and first.index_path.is_file()
    assert len(first.index) == 1427
    # When a second searcher with the same model files starts
    second = ICD10Search(str(tiny_qwen3_path), "I00-I99", cache_folder=tmp_path, show_progress=False)
    second.model.encode_document = None  # would fail if the descriptions were embedded again
    # Then it reads the cached index and answers identically
    again = second.search(["atrial fibrillation", "hypertension"], top_k=3)
    assert [[h.id for h in row] for row in again] == [[h.id for h in row] for row in hits]
    assert second.index_path == first.index_path


def test_a_block_and_a_list_of_chapters_are_searchable_scopes(tiny_qwen3_path, tmp_path):
    # Given the scopes a coder narrows to: one block of categories, and two chapters
    block = ICD10Search(str(tiny_qwen3_path), "I20-I25", cache_folder=tmp_path, show_progress=False)
    # When searched, Then only that block's billable codes are candidates, under their own cache file
    hits = block.search(["angina"], top_k=len(block.index) + 5)[0]
    assert hits and all("I20" <= hit.id[:3] <= "I25" for hit in hits)
    assert block.index_path.name.startswith("icd10-chI20-I25-")
    assert block.index.metadata["scope_title"] == "categories I20-I25"
    two = ICD10Search(str(tiny_qwen3_path), "10,9", cache_folder=tmp_path)
    assert two.scope == "9,10" and two.index_path.name.startswith("icd10-ch9+10-")


def test_cache_key_follows_model_identity_and_scope(tiny_qwen3, tiny_qwen3_path, tmp_path):
    by_folder = ICD10Search(str(tiny_qwen3_path), cache_folder=tmp_path)
    in_memory = ICD10Search(tiny_qwen3, cache_folder=tmp_path)
    assert by_folder.index_path != ICD10Search(str(tiny_qwen3_path), "all", cache_folder=tmp_path).index_path
    before = in_memory.index_path
    with torch.no_grad():
        next(tiny_qwen3.parameters())[0, 0] += 1.0
    assert ICD10Search(tiny_qwen3, cache_folder=tmp_path).index_path != before


def test_a_damaged_cache_file_is_rebuilt(tiny_qwen3_path, tmp_path, caplog):
    searcher = ICD10Search(str(tiny_qwen3_path), "cardio", cache_folder=tmp_path, show_progress=False)
    searcher.index_path.parent.mkdir(parents=True)
    searcher.index_path.write_bytes(b"truncated")
    with caplog.at_level(logging.WARNING, logger="cardio_st"):
        assert len(searcher.index) == 1427
    assert "rebuilding" in caplog.text


def test_long_query_is_truncated_with_a_warning(tiny_qwen3_path, tmp_path, caplog):
    searcher = ICD10Search(str(tiny_qwen3_path), "cardio", cache_folder=tmp_path, show_progress=False)
    query = "chest pain radiating to the left arm " * 270  # about 10,000 characters
    with caplog.at_level(logging.WARNING, logger="cardio_st"):
        hits = searcher.search(query, top_k=2)
    assert len(hits[0]) == 2
    assert "reads only the first 64" in caplog.text


def test_hybrid_search_reuses_the_cached_index_and_returns_fused_scores(tiny_qwen3_path, tmp_path):
    # Given a searcher whose dense index is built
    searcher = ICD10Search(str(tiny_qwen3_path), "cardio", cache_folder=tmp_path, show_progress=False)
    dense = searcher.search(["atrial fibrillation", "angina"], top_k=4)
    searcher.model.encode_document = None  # would fail if the descriptions were embedded again
    # When it searches in hybrid mode
    hybrid = searcher.search(["atrial fibrillation", "angina"], top_k=4, hybrid=True)
    # Then it fuses the cached index with TF-IDF: codes and descriptions, fused scores best first
    assert [len(row) for row in hybrid] == [4, 4]
    for row in hybrid:
        assert all(hit.id.startswith("I") and hit.text == searcher.index.texts[hit.corpus_id] for hit in row)
        scores = [hit.score for hit in row]
        assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1
    assert (searcher.hybrid_retriever.method, searcher.hybrid_retriever.weight) == ("score", 0.6)
    assert hybrid != dense
    assert searcher.hybrid_retriever is searcher.hybrid_retriever  # fitted once
    assert searcher.search(["atrial fibrillation", "angina"], top_k=4, hybrid=True) == hybrid


@pytest.mark.parametrize("queries", [[], [""], ["ok", "   "]])
def test_empty_queries_are_rejected(queries):
    with pytest.raises(CardioSTError, match="empty|no query"):
        validate_queries(queries)


def test_unknown_scope_is_rejected_before_loading_a_model():
    with pytest.raises(CardioSTError, match="unknown scope"):
        ICD10Search("/no/such/model", "cardiology")


@pytest.mark.slow
def test_default_model_finds_anterior_stemi(minilm, tmp_path):
    # The acceptance query of issue 2, on the real embedded all-MiniLM-L6-v2.
    searcher = ICD10Search(minilm, "cardio", cache_folder=tmp_path, show_progress=False)
    hits = searcher.search("heart attack with ST elevation of the anterior wall", top_k=5)[0]
    assert any(hit.id.startswith("I21.0") for hit in hits), [h.id for h in hits]
    assert searcher.search("afib", top_k=1)[0][0].id == "I48.91"


def test_lookup_shows_expansion_billable_category_and_matched_term(tiny_qwen3_path, tmp_path):
    searcher = ICD10Search(str(tiny_qwen3_path), "cardio", cache_folder=tmp_path, show_progress=False)
    answers = searcher.lookup(["afib", "Sinoatrial block"], top_k=3, explain=True)
    assert answers[0].expansion.text == "atrial fibrillation"
    assert answers[0].expansion.describe() == "afib -> atrial fibrillation"
    assert not answers[1].expansion.expanded
    codes = {code.code: code for code in load_codes("cardio")}
    for answer in answers:
        assert len(answer.hits) == 3
        for hit in answer.hits:
            code = codes[hit.code]
            assert hit.billable and hit.category == code.category == hit.code[:3]
            assert hit.category_title == codes[code.category].description
            assert hit.matched in (code.description, *code.inclusion_terms)
    # The same codes as search() of the expanded query; expansion off searches the query as typed
    assert [h.code for h in answers[0].hits] == [
        h.id for h in searcher.search("atrial fibrillation", top_k=3)[0]
    ]
    plain = ICD10Search(
        str(tiny_qwen3_path), "cardio", cache_folder=tmp_path, show_progress=False, expand=False
    )
    assert plain.expander is None and plain.expand("afib")[0].text == "afib"
    assert plain.lookup("afib", top_k=1)[0].hits[0].matched is None


def test_a_nan_row_in_the_cached_index_is_rebuilt_not_ranked_first(tiny_qwen3_path, tmp_path, caplog):
    import math
    import struct

    from cardio_st.retrieval.index import EmbeddingIndex

    searcher = ICD10Search(str(tiny_qwen3_path), "cardio", cache_folder=tmp_path, show_progress=False)
    path = searcher.index_path
    row = searcher.index.ids.index("I25.42")
    # Given the cached index with the row of I25.42 set to NaN on disk (the old format ranked it
    # first: `I25.42 ... nan`, exit 0)
    data = bytearray(path.read_bytes())
    start = 8 + struct.unpack("<Q", data[:8])[0] + row * searcher.index.dim * 4
    data[start : start + searcher.index.dim * 4] = struct.pack("<f", math.nan) * searcher.index.dim
    path.write_bytes(bytes(data))
    # When a new search loads it
    again = ICD10Search(str(tiny_qwen3_path), "cardio", cache_folder=tmp_path, show_progress=False)
    with caplog.at_level(logging.WARNING, logger="cardio_st"):
        hits = again.search("coronary artery dissection", top_k=5)[0]
    # Then the damage is named, the index rebuilt, and every score is a number
    assert f"the cached index {path} is damaged" in caplog.text and "rebuilding it" in caplog.text
    assert all(math.isfinite(hit.score) for hit in hits)
    assert EmbeddingIndex.load(path).embeddings.isfinite().all()


def test_the_first_build_says_what_it_does_and_resumes_in_small_chunks(tiny_qwen3_path, tmp_path, caplog):
    from safetensors import safe_open

    from cardio_st.retrieval.icd10 import CHUNK_SIZE

    searcher = ICD10Search(str(tiny_qwen3_path), "cardio", cache_folder=tmp_path, show_progress=False)
    encode, calls = searcher.model.encode_document, []

    def dying(texts, **kwargs):  # a crash after 20 batches of 32 (the old build lost a 2,048-text chunk)
        if len(calls) == 20:
            raise KeyboardInterrupt
        calls.append(len(texts))
        return encode(texts, **kwargs)

    searcher.model.encode_document = dying
    with caplog.at_level(logging.INFO, logger="cardio_st"), pytest.raises(KeyboardInterrupt):
        searcher.build()
    assert (
        "embedding 1,427 ICD-10-CM descriptions of chapter 9, Diseases of the circulatory system"
        in caplog.text
    )
    assert f"with {tiny_qwen3_path} (once: cached in {tmp_path / 'indexes'};" in caplog.text
    chunks = list(tmp_path.glob("indexes/*.partial/chunk-*.safetensors"))
    kept = 0
    for chunk in chunks:
        with safe_open(str(chunk), framework="pt") as handle:
            kept += len(handle.get_tensor("embeddings"))
    assert CHUNK_SIZE == 256 and len(chunks) == 2 and kept == 20 * 32 // 256 * 256
    # When it runs again, only what no finished chunk holds is embedded
    calls.clear()
    searcher.model.encode_document = lambda texts, **kwargs: (
        calls.append(len(texts)) or encode(texts, **kwargs)
    )
    assert len(searcher.build()) == 1427 and sum(calls) == 1427 - kept
