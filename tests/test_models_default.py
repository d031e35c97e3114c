"""cardio_st.models.default: the embedded default and clear errors for models that cannot load."""

from __future__ import annotations

import pytest

from cardio_st.errors import CardioSTError
from cardio_st.models.default import DEFAULT_MODEL, embedded_models, load_model, resolve_model


def test_default_is_the_embedded_minilm():
    source = resolve_model(None)
    assert DEFAULT_MODEL == "minilm"
    assert source.path == embedded_models()["minilm"] == resolve_model("default").path
    assert (source.path / "modules.json").is_file()


def test_local_folder_and_hub_id(tiny_qwen3_path):
    assert resolve_model(str(tiny_qwen3_path)).path == tiny_qwen3_path.resolve()
    assert resolve_model("Qwen/Qwen3-Embedding-8B").hub_id == "Qwen/Qwen3-Embedding-8B"


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
