"""cardio_st.retrieval.index: resumable, atomic index builds keyed by model identity."""

from __future__ import annotations

import pytest
import torch

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.index import EmbeddingIndex, build_index, model_fingerprint
from cardio_st.utils import fingerprint as index_module
from cardio_st.utils.fingerprint import files_fingerprint

TEXTS = [f"finding number {i} " + "word " * (i % 13) for i in range(100)]
IDS = [f"C{i:03d}" for i in range(100)]


class _Interrupt(Exception):
    pass


def _counting(model):
    """Wrap model.encode_document to count the texts it embeds."""
    seen = []
    original = model.encode_document

    def encode_document(texts, **kwargs):
        seen.extend(texts)
        return original(texts, **kwargs)

    model.encode_document = encode_document
    return seen


def test_index_equals_plain_encode_in_original_order(tiny_qwen3, tmp_path):
    index = build_index(
        tiny_qwen3, TEXTS, IDS, tmp_path / "i.safetensors", key="k", chunk_size=32, show_progress=False
    )
    expected = tiny_qwen3.encode_document(TEXTS, convert_to_tensor=True)
    assert index.ids == IDS and index.texts == TEXTS
    assert torch.allclose(index.embeddings, expected, atol=1e-5)
    assert index.metadata["model_fingerprint"] == "k" and index.metadata["dim"] == expected.shape[1]


def test_save_and_load_round_trip(tmp_path):
    original = EmbeddingIndex(torch.randn(3, 4), ["a", "b", "c"], ["A", "B", "C"], {"scope": "9"})
    loaded = EmbeddingIndex.load(original.save(tmp_path / "x.safetensors"))
    assert torch.equal(loaded.embeddings, original.embeddings)
    assert (loaded.ids, loaded.texts, loaded.metadata) == (original.ids, original.texts, original.metadata)
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]  # no temporary file left


def _build(model, path, key="k", **kwargs):
    return build_index(model, TEXTS, IDS, path, key=key, chunk_size=20, show_progress=False, **kwargs)


def _stop_after(n_texts):
    def on_chunk(done, total):
        if done >= n_texts:
            raise _Interrupt

    return on_chunk


def test_interrupted_build_resumes_without_re_embedding(tiny_qwen3, tmp_path):
    path = tmp_path / "i.safetensors"
    # Given a build interrupted after two chunks of 20
    with pytest.raises(_Interrupt):
        _build(tiny_qwen3, path, on_chunk=_stop_after(40))
    assert not path.exists()
    assert len(list(path.with_name(path.name + ".partial").glob("chunk-*.safetensors"))) == 2
    # When the same build runs again
    seen = _counting(tiny_qwen3)
    resumed = _build(tiny_qwen3, path)
    # Then only the 60 unfinished texts are embedded and the result equals an uninterrupted build
    assert len(seen) == 60
    fresh = _build(tiny_qwen3, tmp_path / "fresh.safetensors")
    assert torch.allclose(resumed.embeddings, fresh.embeddings, atol=1e-6)
    assert not path.with_name(path.name + ".partial").exists()


def test_partial_chunks_of_another_model_are_discarded(tiny_qwen3, tmp_path):
    path = tmp_path / "i.safetensors"
    with pytest.raises(_Interrupt):
        _build(tiny_qwen3, path, key="model-a", on_chunk=_stop_after(20))
    seen = _counting(tiny_qwen3)
    _build(tiny_qwen3, path, key="model-b")
    assert len(seen) == 100


def test_a_failed_write_leaves_the_previous_index_intact(tmp_path, monkeypatch):
    # Given a good index on disk
    path = tmp_path / "x.safetensors"
    EmbeddingIndex(torch.zeros(2, 3), ["a", "b"], ["A", "B"]).save(path)
    before = path.read_bytes()

    # When a later save dies halfway through writing
    def dying_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half an index")
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", dying_save)
    with pytest.raises(OSError, match="disk full"):
        EmbeddingIndex(torch.ones(2, 3), ["a", "b"], ["A", "B"]).save(path)
    # Then the old index is untouched and no temporary file is left behind
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


def test_damaged_index_is_reported_not_crashed_on(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(CardioSTError, match="not a readable cardio-st index"):
        EmbeddingIndex.load(path)
    with pytest.raises(CardioSTError, match="no index at"):
        EmbeddingIndex.load(tmp_path / "missing.safetensors")


def test_nan_embeddings_stop_the_build(tiny_qwen3, tmp_path):
    tiny_qwen3.encode_document = lambda texts, **kwargs: torch.full(
        (len(texts), tiny_qwen3.get_embedding_dimension()), float("nan")
    )
    with pytest.raises(CardioSTError, match="NaN or infinite"):
        build_index(tiny_qwen3, TEXTS, IDS, tmp_path / "i.safetensors", key="k", show_progress=False)


def test_files_fingerprint_follows_content_not_path_and_is_memoised(tiny_qwen3_path, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_qwen3_path, copy)
    assert files_fingerprint(copy) == files_fingerprint(tiny_qwen3_path)
    # The model card does not count; a weight change of the same size does.
    (copy / "README.md").write_text("another card")
    assert files_fingerprint(copy) == files_fingerprint(tiny_qwen3_path)
    weights = copy / "hf" / "model.safetensors"
    if not weights.exists():
        weights = next(copy.rglob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert files_fingerprint(copy) != files_fingerprint(tiny_qwen3_path)
    # A second call reads no file: hashes are remembered by size and modification time.
    reads = []
    monkeypatch.setattr(index_module, "_file_sha256", lambda path: reads.append(path) or "x")
    files_fingerprint(copy)
    assert reads == []


def test_model_fingerprint_of_a_model_in_memory_follows_its_weights(tiny_qwen3):
    before = model_fingerprint(tiny_qwen3)
    assert model_fingerprint(tiny_qwen3) == before
    with torch.no_grad():
        next(tiny_qwen3.parameters())[0, 0] += 1.0
    assert model_fingerprint(tiny_qwen3) != before


def test_empty_and_mismatched_inputs_are_named(tiny_qwen3, tmp_path):
    with pytest.raises(CardioSTError, match="nothing to index"):
        build_index(tiny_qwen3, [], [], tmp_path / "i.safetensors", key="k")
    with pytest.raises(ValueError, match="2 texts but 1 ids"):
        build_index(tiny_qwen3, ["a", "b"], ["x"], tmp_path / "i.safetensors", key="k")


def test_unwritable_destination_names_the_fix(tiny_qwen3, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(CardioSTError, match="cannot write the index .* set CARDIO_ST_CACHE"):
        _build(tiny_qwen3, blocker / "indexes" / "i.safetensors")
