"""cardio_st.retrieval.documents: the document encoder alone builds the index (resumably); search loads the
query encoder alone and refuses a document encoder, tokenizer or width other than the index's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.util import cos_sim

from cardio_st.errors import CardioSTError
from cardio_st.models.care import care_model
from cardio_st.models.routes import load_route, read_layout
from cardio_st.retrieval.documents import IndexSearch, index_documents

DOCUMENTS = [
    "Acute myocardial infarction",
    "Atrial fibrillation",
    "Essential (primary) hypertension",
    "Heart failure, unspecified",
    "Mitral valve prolapse",
    "Pulmonary embolism without acute cor pulmonale",
]
QUERIES = ["heart attack", "irregular heartbeat", "high blood pressure"]


@pytest.fixture
def corpus(tmp_path):
    from tiny_models import write_corpus

    return write_corpus(tmp_path / "corpus.jsonl", DOCUMENTS)


def _copy(folder, tmp_path, name="copy"):
    return shutil.copytree(folder, tmp_path / name)


def test_the_index_holds_the_document_route_embeddings_and_search_equals_the_full_model(
    care_folder, corpus, tmp_path
):
    # Given a CARE model and a corpus, when the corpus is indexed and searched through the index
    index = index_documents(care_folder, corpus, tmp_path / "i.safetensors", show_progress=False)
    hits = IndexSearch(tmp_path / "i.safetensors").search(QUERIES, top_k=3)
    # Then the index holds what the full model's encode_document gives, and search ranks as the full model
    full = SentenceTransformer(str(care_folder), device="cpu")
    documents = full.encode_document(DOCUMENTS, convert_to_tensor=True)
    assert torch.allclose(index.embeddings, documents, atol=1e-6)
    assert index.ids == [f"D{i}" for i in range(len(DOCUMENTS))] and index.dim == 64
    scores = cos_sim(full.encode_query(QUERIES, convert_to_tensor=True), documents)
    for row, query_hits in enumerate(hits):
        expected = torch.topk(scores[row], 3)
        assert [hit.corpus_id for hit in query_hits] == expected.indices.tolist()
        assert np.allclose([hit.score for hit in query_hits], expected.values.numpy(), atol=1e-5)
    record = index.metadata
    assert record["kind"] == "documents" and record["routed"] and record["model_path"] == str(care_folder)
    assert record["query"]["tokenizer"]["class"] and record["document"]["tokenizer"]["vocab_size"] == 30522


def test_search_reads_only_the_query_encoder(care_folder, corpus, tmp_path, monkeypatch):
    from sentence_transformers.base.modules import Transformer

    from cardio_st.utils import fingerprint as index_module

    index_documents(care_folder, corpus, tmp_path / "i.safetensors", show_progress=False)
    loaded, hashed = [], []
    original_load, original_hash = Transformer.load.__func__, index_module._file_sha256
    monkeypatch.setattr(
        Transformer,
        "load",
        classmethod(lambda cls, *a, **k: loaded.append(k.get("subfolder")) or original_load(cls, *a, **k)),
    )
    monkeypatch.setattr(
        index_module, "_file_sha256", lambda path: hashed.append(str(path)) or original_hash(path)
    )
    # Fresh memo of file hashes: search must still not read the document encoder's files
    monkeypatch.setenv("CARDIO_ST_CACHE", str(tmp_path / "fresh-cache"))
    IndexSearch(tmp_path / "i.safetensors").search(QUERIES)
    assert loaded == ["query_0_Transformer"]
    assert hashed and not [path for path in hashed if "/document_" in path]


def test_a_query_server_without_the_document_encoder_searches_alike(care_folder, corpus, tmp_path):
    index_documents(care_folder, corpus, tmp_path / "i.safetensors", show_progress=False)
    expected = IndexSearch(tmp_path / "i.safetensors").search(QUERIES)
    served = _copy(care_folder, tmp_path, "query-only")
    for part in read_layout(served).route_parts("document"):
        shutil.rmtree(served / part)
    assert IndexSearch(tmp_path / "i.safetensors", model=served).search(QUERIES) == expected


def test_an_interrupted_build_resumes_without_embedding_again(care_folder, corpus, tmp_path, monkeypatch):
    import cardio_st.retrieval.documents as module

    embedded = []
    real_load = module.load_encoder

    def counting_load(*args, **kwargs):
        model = real_load(*args, **kwargs)
        encode = model.encode_document

        def encode_document(texts, **kw):
            if len(embedded) >= 2 and kill:
                raise KeyboardInterrupt
            embedded.extend(texts)
            return encode(texts, **kw)

        model.encode_document = encode_document
        return model

    monkeypatch.setattr(module, "load_encoder", counting_load)
    out = tmp_path / "i.safetensors"
    kill = True
    with pytest.raises(KeyboardInterrupt):
        index_documents(care_folder, corpus, out, chunk_size=2, show_progress=False)
    assert len(embedded) == 2 and not out.exists()
    kill = False
    index = index_documents(care_folder, corpus, out, chunk_size=2, show_progress=False)
    assert len(embedded) == len(DOCUMENTS)  # the first chunk was not embedded again
    reference = index_documents(care_folder, corpus, tmp_path / "ref.safetensors", show_progress=False)
    assert torch.allclose(index.embeddings, reference.embeddings, atol=1e-6)
    # An up-to-date index is returned as it is; moved with its model, it records the new place
    embedded.clear()
    index_documents(care_folder, corpus, out, show_progress=False)
    moved = _copy(care_folder, tmp_path, "moved")
    assert index_documents(moved, corpus, out, show_progress=False).metadata["model_path"] == str(moved)
    assert embedded == [] and IndexSearch(out).model_name == str(moved)


def test_an_index_built_by_another_document_encoder_is_refused(
    care_folder, corpus, tmp_path, tiny_qwen3, minilm
):
    index_documents(care_folder, corpus, tmp_path / "i.safetensors", show_progress=False)
    with torch.no_grad():
        minilm[0].auto_model.embeddings.word_embeddings.weight.mul_(1.01)
    care_model(tiny_qwen3, minilm, device="cpu").save(str(tmp_path / "other"))
    with pytest.raises(CardioSTError, match="was built by another document encoder.*rebuild the index"):
        IndexSearch(tmp_path / "i.safetensors", model=tmp_path / "other")
    # A symmetric model is its own document encoder: the same check applies
    with pytest.raises(CardioSTError, match="another document encoder"):
        IndexSearch(tmp_path / "i.safetensors", model="minilm")


def test_a_query_tokenizer_other_than_the_recorded_one_is_refused(care_folder, corpus, tmp_path):
    from transformers import AutoTokenizer

    index_documents(care_folder, corpus, tmp_path / "i.safetensors", show_progress=False)
    changed = _copy(care_folder, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(str(changed / "query_0_Transformer"))
    before = len(tokenizer)
    tokenizer.add_tokens(["troponin"])
    tokenizer.save_pretrained(str(changed / "query_0_Transformer"))
    with pytest.raises(CardioSTError, match=rf"tokenizer differs.*{before} tokens.*{before + 1} tokens"):
        IndexSearch(tmp_path / "i.safetensors", model=changed)


def test_another_query_encoder_beside_the_same_document_encoder_is_accepted_with_a_note(
    care_folder, corpus, tmp_path, caplog
):
    index_documents(care_folder, corpus, tmp_path / "i.safetensors", show_progress=False)
    retrained = _copy(care_folder, tmp_path)
    model = SentenceTransformer(str(retrained), device="cpu")
    with torch.no_grad():  # a second Stage I run: the query route changes, the document route does not
        model[0].sub_modules["query"][0].auto_model.embed_tokens.weight.mul_(1.5)
    model.save(str(retrained))
    with caplog.at_level("WARNING", logger="cardio_st"):
        searcher = IndexSearch(tmp_path / "i.safetensors", model=retrained)
    assert "the index applies" in caplog.text
    np.testing.assert_allclose(searcher.model.encode_query(QUERIES), model.encode_query(QUERIES), atol=1e-6)


def test_a_query_encoder_of_another_width_is_refused(care_folder, corpus, tmp_path, tiny_qwen3):
    from sentence_transformers.base.modules import Dense, Normalize, Router

    index_documents(care_folder, corpus, tmp_path / "i.safetensors", show_progress=False)
    # The same document encoder and query tokenizer, but a query route narrowed to 32 dimensions
    document = list(load_route(care_folder, "document", device="cpu"))
    narrow = [*list(tiny_qwen3)[:2], Dense(64, 32, activation_function=None), Normalize()]
    router = Router.for_query_document(narrow, document, default_route="document")
    SentenceTransformer(modules=[router], device="cpu").save(str(tmp_path / "narrow"))
    with pytest.raises(
        CardioSTError, match="dimension mismatch: the query encoder .* outputs 32 .* holds 64"
    ):
        IndexSearch(tmp_path / "i.safetensors", model=tmp_path / "narrow")
    with pytest.raises(CardioSTError, match="query route outputs 32 dimensions and the document route 64"):
        index_documents(tmp_path / "narrow", corpus, tmp_path / "j.safetensors", show_progress=False)


def test_other_bad_input_is_named(care_folder, corpus, tmp_path, tiny_qwen3):
    from cardio_st.retrieval.icd10 import ICD10Search

    out = tmp_path / "i.safetensors"
    index_documents(care_folder, corpus, out, show_progress=False)
    with pytest.raises(CardioSTError, match="is a folder: give the index file's path"):
        index_documents(care_folder, corpus, tmp_path, show_progress=False)
    shorter = tmp_path / "shorter.jsonl"
    shorter.write_text(json.dumps({"text": "Angina pectoris"}))
    with pytest.raises(CardioSTError, match="already holds an index of another corpus.*`overwrite=True`"):
        index_documents(care_folder, shorter, out, show_progress=False)
    assert len(index_documents(care_folder, shorter, out, overwrite=True, show_progress=False)) == 1
    (tmp_path / "notes.txt").write_text("not an index")
    with pytest.raises(CardioSTError, match="exists and is not an index from cardio-st index"):
        index_documents(care_folder, corpus, tmp_path / "notes.txt", show_progress=False)
    # The recorded model has moved away
    moved = _copy(care_folder, tmp_path, "moved")
    index_documents(moved, corpus, tmp_path / "m.safetensors", show_progress=False)
    shutil.rmtree(moved)
    with pytest.raises(CardioSTError, match="is not there any more: pass `model='FOLDER'`"):
        IndexSearch(tmp_path / "m.safetensors")
    # An index that records no encoders (ICD-10-CM's own cache)
    cached = ICD10Search(tiny_qwen3, "cardio", cache_folder=tmp_path / "cache", show_progress=False)
    cached.build()
    with pytest.raises(CardioSTError, match="was not built by `cardio-st index`"):
        IndexSearch(cached.index_path)


def test_a_model_from_the_hub_is_indexed_and_its_query_route_alone_fetched(care_folder, corpus, tmp_path):
    HUB_CACHE = os.environ["HF_HUB_CACHE"]  # conftest points it at the private test cache
    from tiny_models import publish_to_hub_cache

    repo = publish_to_hub_cache(care_folder, "cardio-st-tests/care-tiny", Path(HUB_CACHE))
    index = index_documents(repo, corpus, tmp_path / "i.safetensors", show_progress=False)
    assert index.metadata["hub_id"] == repo and index.metadata["model_path"] is None
    hits = IndexSearch(tmp_path / "i.safetensors").search(QUERIES)
    local = index_documents(care_folder, corpus, tmp_path / "local.safetensors", show_progress=False)
    assert torch.allclose(index.embeddings, local.embeddings, atol=1e-6)
    assert [h.id for h in hits[0]] == [
        h.id for h in IndexSearch(tmp_path / "local.safetensors").search(QUERIES)[0]
    ]


def test_search_on_a_damaged_user_index_says_how_to_rebuild_it_and_leaves_it_alone(
    care_folder, corpus, tmp_path
):
    import random

    from typer.testing import CliRunner

    from cardio_st.cli import app
    from cardio_st.retrieval.index import rows_file

    runner = CliRunner()
    out = tmp_path / "notes.safetensors"
    index_documents(care_folder, corpus, out, show_progress=False)
    # Given a user's index with 2,000 flipped bytes among its embeddings (the old format searched it
    # and answered with damaged scores)
    data = bytearray(out.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    for offset in random.Random(0).sample(range(start, len(data)), min(2_000, len(data) - start)):
        data[offset] ^= 0xA5
    out.write_bytes(bytes(data))
    damaged = out.read_bytes(), rows_file(out).read_bytes()
    # When it is searched, then one line names it, the damage and the command that rebuilds it
    result = runner.invoke(app, ["search", "heart attack", "--index", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {out} is damaged (its embeddings"), result.stderr
    command = f"cardio-st index {corpus} --model {care_folder} --out {out} --overwrite"
    assert lines[0].endswith(command)
    # and the file is neither deleted nor overwritten, not even by an index run without --overwrite
    again = runner.invoke(app, ["index", str(corpus), "--model", str(care_folder), "--out", str(out)])
    assert again.exit_code == 1 and "is a damaged index" in again.stderr and "--overwrite" in again.stderr
    assert (out.read_bytes(), rows_file(out).read_bytes()) == damaged
    # The command the message gives rebuilds it, and search answers again
    rebuilt = runner.invoke(app, command.split()[1:])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert runner.invoke(app, ["search", "heart attack", "--index", str(out)]).exit_code == 0
