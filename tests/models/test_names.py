"""Model names (issue 18, items 6 and 7): built-in names always mean the built-in model, a folder is
chosen by a path, and a mistyped name fails at once, offline or online, with the close matches."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import huggingface_hub
import pytest

from cardio_st.errors import CardioSTError
from cardio_st.models import names
from cardio_st.models.cardioembed import cardioembed
from cardio_st.models.embedded import embedded_models
from cardio_st.models.names import resolve_model


def _no_hub_request(*args, **kwargs):
    raise AssertionError("the Hub was asked")


@pytest.fixture
def folder_named_like_the_default(tmp_path, monkeypatch):
    """A working directory holding ``icd10-minilm/``, as ``cardio-st export default icd10-minilm/`` makes."""
    (tmp_path / "icd10-minilm").mkdir()
    (tmp_path / "icd10-minilm" / "modules.json").write_text("[]")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "icd10-minilm"


def test_a_builtin_name_means_the_builtin_even_when_a_folder_has_that_name(
    folder_named_like_the_default, caplog
):
    # Given a folder icd10-minilm/ in the working directory, When the bare name is resolved
    with caplog.at_level(logging.WARNING, logger="cardio_st"):
        source = resolve_model("icd10-minilm")
    # Then the built-in default is used, and one line says how to choose the folder
    assert source.path == embedded_models()["icd10-minilm"]
    assert "using the built-in icd10-minilm; for the folder pass ./icd10-minilm" in caplog.messages
    # and a path chooses the folder
    assert resolve_model("./icd10-minilm").path == folder_named_like_the_default.resolve()
    assert resolve_model(str(folder_named_like_the_default)).path == folder_named_like_the_default.resolve()


def test_a_bare_name_that_is_not_builtin_loads_its_folder(tmp_path, monkeypatch):
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("my-model").path == (tmp_path / "my-model").resolve()


@pytest.mark.parametrize(("typo", "meant"), [("minlm", "minilm"), ("defualt", "default")])
def test_offline_a_mistyped_name_fails_at_once_with_the_close_matches(monkeypatch, typo, meant):
    # Given no Hub (HF_HUB_OFFLINE, as conftest sets) and a request that must not be made
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", _no_hub_request)
    started = time.monotonic()
    # When a name is mistyped, Then it fails at once, naming what was meant
    with pytest.raises(CardioSTError, match=rf"model '{typo}' not found: .*; did you mean {meant}\?$"):
        resolve_model(typo)
    assert time.monotonic() - started < 2


def test_offline_close_matches_include_cached_hub_ids(minilm_hub_id):
    with pytest.raises(CardioSTError, match=r"did you mean sentence-transformers/all-MiniLM-L6-v2\?"):
        resolve_model("sentence-transformers/all-MiniLM-L6-v3")


def test_a_cached_hub_id_resolves_offline(tiny_qwen3_hub_id, monkeypatch):
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", _no_hub_request)
    assert resolve_model(tiny_qwen3_hub_id).hub_id == tiny_qwen3_hub_id


def test_online_an_unknown_hub_id_is_asked_once(monkeypatch):
    from huggingface_hub.errors import RepositoryNotFoundError

    calls = []

    def model_info(self, repo_id, *, timeout=None, **kwargs):
        calls.append((repo_id, timeout))
        response = SimpleNamespace(headers={}, request=None, status_code=404)
        raise RepositoryNotFoundError("404 Client Error: Repository Not Found", response=response)

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(names, "_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    with pytest.raises(
        CardioSTError, match=r"model 'minlm' not found: .*on the Hugging Face Hub.*did you mean minilm\?"
    ):
        resolve_model("minlm")
    assert calls == [("minlm", names.HUB_CHECK_TIMEOUT)]


def test_online_without_a_network_fails_at_once(monkeypatch):
    def model_info(self, repo_id, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(names, "_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    with pytest.raises(
        CardioSTError, match=r"the Hub cannot be reached \(ConnectionError\); did you mean minilm\?"
    ):
        resolve_model("minlm")


def test_online_a_hub_id_that_exists_resolves(monkeypatch):
    monkeypatch.setattr(names, "_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo_id, **kwargs: object())
    assert resolve_model("org/name").hub_id == "org/name"


def test_cardioembed_takes_the_builtin_names():
    # Given the name every other command accepts, When train builds its model from it, Then it builds
    model = cardioembed("minilm", lora=False, quantization=None, device="cpu")
    assert model.get_embedding_dimension() == 384
    with pytest.raises(CardioSTError, match="did you mean minilm"):
        cardioembed("minlm", lora=False, quantization=None, device="cpu")
