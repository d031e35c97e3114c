"""cardio_st.models.default: the embedded default (a shipped adapter merged into MiniLM on first use),
export as a standalone folder, and clear errors for models that cannot load."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from fresh_process import encode_in_fresh_process

from cardio_st.errors import CardioSTError
from cardio_st.models.default import (
    DEFAULT_MODEL,
    ICD10_MINILM,
    embedded_models,
    export_model,
    load_model,
    resolve_model,
)
from cardio_st.utils.cache import cache_dir

TEXTS = ["heart attack with ST elevation of the anterior wall", "Atrial fibrillation", "afib"]


def test_default_is_the_shipped_adapter_merged_into_a_cached_folder():
    # Given the adapter that ships in the package (small: a LoRA adapter, not full weights)
    assert (ICD10_MINILM / "adapter_model.safetensors").stat().st_size < 10_000_000
    record = json.loads((ICD10_MINILM / "cardio_st.json").read_text())
    assert record["data"]["training_side_only"] and record["held_out"]["cardio"]["exact@1"] > 0
    # When the default is resolved, it is merged once into a complete folder in the cardio-st cache
    source = resolve_model(None)
    assert DEFAULT_MODEL == "icd10-minilm"
    assert source.path == embedded_models()["icd10-minilm"] == resolve_model("default").path
    assert source.path.parent == cache_dir() / "models" and source.path.name.startswith("icd10-minilm-")
    assert (source.path / "modules.json").is_file() and (source.path / "model.safetensors").is_file()
    # and the base MiniLM stays selectable
    assert resolve_model("minilm").path == embedded_models()["minilm"] != source.path


@pytest.mark.slow
def test_default_equals_base_plus_adapter_and_exports_for_plain_sentence_transformers(minilm, tmp_path):
    from peft import PeftModel

    default, _ = load_model("default", device="cpu")
    reference = copy.deepcopy(minilm)  # the unmerged pipeline: MiniLM with the adapter applied by PEFT
    reference[0].auto_model = PeftModel.from_pretrained(reference[0].auto_model, str(ICD10_MINILM))
    merged = default.encode(TEXTS)
    np.testing.assert_allclose(merged, reference.encode(TEXTS), atol=1e-5)
    assert np.abs(merged - minilm.encode(TEXTS)).max() > 1e-2  # it is not the base model

    out = export_model("default", tmp_path / "icd10-minilm")
    (exported,), types = encode_in_fresh_process(out, [("encode", TEXTS)])
    np.testing.assert_allclose(exported, merged, atol=1e-5)
    assert not any("cardio_st" in module_type for module_type in types)
    # its model card carries the recorded held-out results as model-index metadata
    record = json.loads((ICD10_MINILM / "cardio_st.json").read_text())
    header = (out / "README.md").read_text().split("---")[1]
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in header
    for scope in ("cardio", "all"):
        assert f"type: icd10-{scope}\n" in header
        assert f"value: {record['held_out'][scope]['exact@1']}" in header


def test_export_copies_a_folder_and_refuses_to_overwrite(tmp_path):
    out = export_model("minilm", tmp_path / "minilm")
    assert (out / "modules.json").read_bytes() == (embedded_models()["minilm"] / "modules.json").read_bytes()
    with pytest.raises(CardioSTError, match="not an empty folder: choose a new output folder"):
        export_model("minilm", out)


def test_local_folder_and_hub_id(tiny_qwen3_path, tiny_qwen3_hub_id):
    assert resolve_model(str(tiny_qwen3_path)).path == tiny_qwen3_path.resolve()
    assert resolve_model(tiny_qwen3_hub_id).hub_id == tiny_qwen3_hub_id  # offline: from the Hub cache


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("./no/such/model", "not found: no such folder"),
        ("/definitely/not/here", "not found: no such folder"),
        ("bad name with spaces", "not a Hugging Face Hub id"),
    ],
)
def test_missing_models_name_the_fix(name, message):
    with pytest.raises(CardioSTError, match=message) as raised:
        resolve_model(name)
    assert "pass an existing model folder" in str(raised.value)


def test_a_file_or_an_empty_folder_is_not_a_model(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(CardioSTError, match="is a file"):
        resolve_model(str(tmp_path / "weights.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CardioSTError, match="folder but not a model"):
        resolve_model(str(tmp_path / "empty"))


def test_hub_id_offline_says_why(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CardioSTError, match="HF_HUB_OFFLINE is set"):
        load_model("someone/not-cached-model-xyz")


def test_load_model_returns_the_folder(tiny_qwen3_path):
    model, folder = load_model(str(tiny_qwen3_path), device="cpu")
    assert folder == tiny_qwen3_path.resolve()
    assert model.encode("x").shape == (model.get_embedding_dimension(),)


def test_one_loader_under_every_import_path():
    import cardio_st
    from cardio_st.models import conversion, default, embedded, loader

    assert cardio_st.load is cardio_st.models.load is conversion.load is loader.load
    assert cardio_st.load_model is default.load_model is loader.load_model
    assert default.resolve_model is loader.resolve_model and default.ModelSource is loader.ModelSource
    assert default.embedded_models is embedded.embedded_models


def test_a_damaged_cached_default_model_is_detected_and_merged_again(tmp_path, monkeypatch, caplog):
    import logging
    import os

    from cardio_st.models import embedded
    from cardio_st.utils.integrity import MANIFEST, verify_manifest

    monkeypatch.setenv("CARDIO_ST_CACHE", str(tmp_path))
    folder = resolve_model(None).path
    weights = folder / "model.safetensors"
    good = weights.read_bytes()

    def damage(data: bytes) -> None:
        stat = weights.stat()
        weights.write_bytes(data)
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # silent: same size and time
        embedded._VERIFIED.clear()  # as a new process finds it

    # Given one flipped byte among the cached default's weights (the old code used it: afib #3
    # I48.19 -> I48.0), when the default is resolved, then it is detected and merged again
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    damage(bytes(flipped))
    with caplog.at_level(logging.WARNING, logger="cardio_st"):
        assert resolve_model("default").path == folder
    assert "the cached default model is damaged" in caplog.text and "merging it again" in caplog.text
    assert weights.read_bytes() == good
    # Given a truncated file (the old code failed every search with a SafetensorError), likewise
    damage(good[: len(good) // 3])
    model, _ = load_model("default", device="cpu")
    assert weights.read_bytes() == good and model.encode(["afib"]).shape == (1, 384)
    assert (folder / MANIFEST).is_file() and verify_manifest(folder) is None
    # A folder merged by a cardio-st that wrote no checksums is merged again, once
    (folder / MANIFEST).unlink()
    embedded._VERIFIED.clear()
    resolve_model(None)
    assert verify_manifest(folder) is None and weights.read_bytes() == good
    # and an export carries no cardio-st checksum file
    assert not (export_model("default", tmp_path / "out") / MANIFEST).exists()
