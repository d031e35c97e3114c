"""cardio_st.retrieval.index: resumable, atomic index builds keyed by model identity."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest
import torch

from cardio_st.errors import CardioSTError
from cardio_st.retrieval.index import EmbeddingIndex, build_index, model_fingerprint, rows_file
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
    # two files, embeddings and rows, and no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.safetensors", "x.safetensors.rows.arrow"]


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
    before = path.read_bytes(), rows_file(path).read_bytes()

    # When a later save dies halfway through writing
    def dying_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half an index")
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", dying_save)
    with pytest.raises(OSError, match="disk full"):
        EmbeddingIndex(torch.ones(2, 3), ["a", "b"], ["C", "D"]).save(path)
    # Then the old index is untouched (both of its files) and no temporary file is left behind
    assert (path.read_bytes(), rows_file(path).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.safetensors", "x.safetensors.rows.arrow"]
    assert EmbeddingIndex.load(path).texts == ["A", "B"]


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


# Integrity: what is on disk is what was written, or it is reported (issue 18, item 2).

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _data_start(path):
    """Offset of a safetensors file's tensor bytes (after the 8-byte length and the JSON header)."""
    return 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]


def _write_old_layout(path, embeddings, ids, texts, metadata):
    """An index as cardio-st 0.1.0 wrote it: ids and texts inside the safetensors header."""
    from safetensors.torch import save_file

    header = {"format_version": 1, "ids": ids, "texts": texts, "metadata": metadata}
    save_file({"embeddings": embeddings.contiguous()}, str(path), metadata={"cardio_st": json.dumps(header)})


def test_an_index_written_by_cardio_st_0_1_still_loads(tmp_path):
    # Given the tiny index that cardio-st 0.1.0's EmbeddingIndex.save wrote (texts in the header)
    old = EmbeddingIndex.load(FIXTURES / "index-v1.safetensors")
    assert old.ids == ["I48.91", "I10", "I21.09"] and old.texts[0] == "Unspecified atrial fibrillation"
    assert old.metadata["scope"] == "9" and old.embeddings.shape == (3, 4)
    assert torch.equal(old.embeddings, torch.randn(3, 4, generator=torch.Generator().manual_seed(0)))
    # and one written in that layout here, when saved again it takes the new layout and loads the same
    path = tmp_path / "old.safetensors"
    _write_old_layout(path, torch.randn(5, 3), list("abcde"), list("ABCDE"), {"kind": "test"})
    loaded = EmbeddingIndex.load(path)
    assert (loaded.ids, loaded.texts, loaded.metadata) == (list("abcde"), list("ABCDE"), {"kind": "test"})
    again = EmbeddingIndex.load(loaded.save(tmp_path / "new.safetensors"))
    assert torch.equal(again.embeddings, loaded.embeddings) and again.texts == loaded.texts


def test_texts_beyond_the_safetensors_header_limit_save_and_load(tmp_path):
    # Given an index with 120 MB of text (format 1 kept texts in the header: `header too large`)
    n = 1_200
    texts = [f"{i} " + "x" * 100_000 for i in range(n)]
    index = EmbeddingIndex(torch.randn(n, 2), [str(i) for i in range(n)], texts, {"kind": "test"})
    with pytest.raises(Exception, match="(?i)header too large"):
        _write_old_layout(tmp_path / "old.safetensors", index.embeddings, index.ids, texts, {})
    # When it is saved and loaded, then it round-trips, and the safetensors header stays small
    path = index.save(tmp_path / "big.safetensors")
    assert _data_start(path) < 4_000
    loaded = EmbeddingIndex.load(path)
    assert (
        loaded.texts == texts and loaded.ids == index.ids and torch.equal(loaded.embeddings, index.embeddings)
    )


def _good_index(path, n=50, dim=8):
    ids = [f"C{i:03d}" for i in range(n)]
    metadata = {"kind": "documents", "corpus": "notes.jsonl", "model": "runs/care/final"}
    return EmbeddingIndex(torch.randn(n, dim), ids, [f"text {i}" for i in range(n)], metadata).save(path)


def test_two_thousand_flipped_bytes_are_detected_with_the_rebuild_command(tmp_path):
    # Given a good index, whose embeddings then get 2,000 bytes flipped (the old format loaded such a
    # file and ranked with the damaged scores)
    path = _good_index(tmp_path / "i.safetensors", n=1_000, dim=16)
    data = bytearray(path.read_bytes())
    start = _data_start(path)
    for offset in random.Random(0).sample(range(start, len(data)), 2_000):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    damaged = path.read_bytes()
    # When it is loaded, then one line names the file and how to rebuild it, and the file is untouched
    with pytest.raises(CardioSTError) as caught:
        EmbeddingIndex.load(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path} is damaged (its embeddings do not match")
    assert message.endswith(
        f"rebuild it with cardio-st index notes.jsonl --model runs/care/final --out {path} --overwrite"
    )
    assert path.read_bytes() == damaged


def test_a_damaged_or_missing_rows_file_is_detected(tmp_path):
    path = _good_index(tmp_path / "i.safetensors")
    rows = rows_file(path)
    good = rows.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0x01  # one flipped bit in the texts
    rows.write_bytes(bytes(data))
    with pytest.raises(
        CardioSTError, match=r"rows.arrow is damaged \(it does not match the checksum"
    ) as caught:
        EmbeddingIndex.load(path)
    assert str(caught.value).endswith(f"--out {path} --overwrite")  # the index, not its rows file
    rows.write_bytes(good[:-100])
    with pytest.raises(CardioSTError, match=r"rows.arrow is damaged \(.* bytes, .* were written"):
        EmbeddingIndex.load(path)
    rows.unlink()
    with pytest.raises(CardioSTError, match="has lost its rows file .* copy both"):
        EmbeddingIndex.load(path)


def test_a_truncated_index_names_the_file_and_the_rebuild(tmp_path):
    path = _good_index(tmp_path / "i.safetensors")
    path.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(CardioSTError, match=r"i.safetensors is damaged \(.*--overwrite$"):
        EmbeddingIndex.load(path)


def test_a_nan_row_is_an_integrity_error_and_is_never_saved(tmp_path):
    # Given an index file whose row 7 is NaN (written in the old layout, which has no checksum)
    embeddings = torch.randn(20, 4)
    embeddings[7] = float("nan")
    path = tmp_path / "nan.safetensors"
    _write_old_layout(path, embeddings, [f"C{i}" for i in range(20)], ["t"] * 20, {"kind": "icd10"})
    # When it is loaded, then it is refused, naming the row, instead of ranking NaN first
    with pytest.raises(CardioSTError, match=r"1 embedding rows are NaN or infinite, the first row 7 \(C7\)"):
        EmbeddingIndex.load(path)
    # and such embeddings are never written
    with pytest.raises(CardioSTError, match="NaN or infinite"):
        EmbeddingIndex(embeddings, [f"C{i}" for i in range(20)], ["t"] * 20).save(tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def _damage_chunk(chunk, how):
    data = chunk.read_bytes()
    if how == "truncated":
        chunk.write_bytes(data[: len(data) // 2])
    else:  # a flipped byte among the embeddings: still a readable safetensors file
        data = bytearray(data)
        data[-5] ^= 0x40
        chunk.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_damaged_chunk_in_a_partial_build_is_embedded_again(tiny_qwen3, tmp_path, caplog, how):
    path = tmp_path / "i.safetensors"
    # Given a build interrupted after two chunks of 20, one of which is then damaged
    with pytest.raises(_Interrupt):
        _build(tiny_qwen3, path, on_chunk=_stop_after(40))
    chunks = sorted(path.with_name(path.name + ".partial").glob("chunk-*.safetensors"))
    assert len(chunks) == 2
    _damage_chunk(chunks[1], how)
    # When the build runs again (the old code failed on every rerun with a SafetensorError for a
    # truncated chunk, and used a flipped one as it was)
    seen = _counting(tiny_qwen3)
    resumed = _build(tiny_qwen3, path)
    # Then the damaged chunk is discarded with a warning and embedded again, and the index is right
    assert len(seen) == 80 and f"{chunks[1]} is damaged" in caplog.text
    fresh = _build(tiny_qwen3, tmp_path / "fresh.safetensors")
    assert torch.allclose(resumed.embeddings, fresh.embeddings, atol=1e-6)


def test_the_bar_advances_per_batch_and_the_longest_chunk_comes_first(tiny_qwen3, tmp_path, monkeypatch):
    import tqdm.auto

    updates, calls = [], []
    real = tqdm.auto.tqdm

    class Recording(real):
        def update(self, n=1):
            updates.append(n)
            return super().update(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    seen = _counting(tiny_qwen3)
    original = tiny_qwen3.encode_document
    tiny_qwen3.encode_document = lambda texts, **kw: calls.append(len(texts)) or original(texts, **kw)
    # chunks of 20 (the old default was one chunk of 2,048 texts, and one bar step per chunk)
    _build(tiny_qwen3, tmp_path / "i.safetensors", batch_size=8)
    assert updates == [8, 8, 4] * 5 and calls == updates
    assert seen[:20] == sorted(TEXTS, key=len, reverse=True)[:20]
