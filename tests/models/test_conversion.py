"""cardio_st.models.conversion and `cardio-st convert`: raw adapters and plain models become
sentence-transformers folders whose embeddings equal a hand-written reference pipeline."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fresh_process import encode_in_fresh_process
from typer.testing import CliRunner

from cardio_st.cli import app
from cardio_st.errors import CardioSTError
from cardio_st.models.conversion import convert, load

TEXTS = [
    "Paroxysmal atrial fibrillation with rapid ventricular response.",
    "Chest pain on exertion",
    "Aspirin 75 mg daily",
]
runner = CliRunner()


def _reference(base_id: str, adapter: Path, texts: list[str]) -> np.ndarray:
    """CardioEmbed's pipeline by hand: base + adapter, EOS appended, left padding, last token, L2."""
    from huggingface_hub import snapshot_download
    from peft import PeftModel
    from transformers import AutoModel, AutoTokenizer

    base = Path(snapshot_download(base_id))
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModel.from_pretrained(base), str(adapter)).eval()
    ids = [tokenizer(text)["input_ids"] for text in texts]
    assert all(row[-1] != tokenizer.eos_token_id for row in ids)  # the base tokenizer does not add EOS
    ids = [row + [tokenizer.eos_token_id] for row in ids]
    width = max(len(row) for row in ids)
    input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(row)) + row for row in ids])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids])
    with torch.no_grad():
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state[:, -1]
    return torch.nn.functional.normalize(hidden, dim=-1).numpy()


@pytest.mark.slow
def test_raw_adapter_becomes_a_folder_that_plain_sentence_transformers_loads_right(
    raw_adapter, tiny_qwen3_noeos_hub_id, tmp_path
):
    # Given a raw PEFT adapter laid out as CardioEmbed's Hub repo
    # When it is converted
    out = convert(raw_adapter, tmp_path / "converted")
    # Then a fresh process without cardio_st loads it with sentence-transformers' own modules ...
    (embeddings,), types = encode_in_fresh_process(out, [("encode", TEXTS)])
    assert all(kind.startswith("sentence_transformers.") for kind in types)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == (
        tiny_qwen3_noeos_hub_id
    )
    # ... and its embeddings equal the hand-written pipeline's, not the naive mean-pooled load's
    reference = _reference(tiny_qwen3_noeos_hub_id, raw_adapter, TEXTS)
    np.testing.assert_allclose(embeddings, reference, atol=1e-5)
    from sentence_transformers import SentenceTransformer

    naive = SentenceTransformer(str(raw_adapter), device="cpu")
    assert "mean" in str(naive[1]) and np.abs(naive.encode(TEXTS) - reference).max() > 0.1


def test_convert_by_hub_id_merge_and_load_agree(raw_adapter, tiny_qwen3_noeos_hub_id, tmp_path):
    HUB_CACHE = os.environ["HF_HUB_CACHE"]  # conftest points it at the private test cache
    from tiny_models import publish_to_hub_cache

    repo = publish_to_hub_cache(raw_adapter, "someone/tiny-cardioembed", Path(HUB_CACHE))
    reference = _reference(tiny_qwen3_noeos_hub_id, raw_adapter, TEXTS)
    merged = convert(repo, tmp_path / "merged", merge=True)
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    from sentence_transformers import SentenceTransformer

    np.testing.assert_allclose(
        SentenceTransformer(str(merged), device="cpu").encode(TEXTS), reference, atol=1e-5
    )
    in_memory = load(repo, device="cpu")  # no folder written: the same pipeline
    np.testing.assert_allclose(in_memory.encode(TEXTS), reference, atol=1e-5)
    card = (merged / "README.md").read_text()
    assert (
        "| Converted from | [someone/tiny-cardioembed](https://huggingface.co/someone/tiny-cardioembed)"
        in card
    )
    assert "license: apache-2.0" in card  # the adapter's own licence carries over
    local = (convert(raw_adapter, tmp_path / "local") / "README.md").read_text()
    assert (
        f"| Converted from | `{raw_adapter.name}` (a local folder)" in local and str(raw_adapter) not in local
    )


def test_an_adapter_whose_base_cannot_be_found_names_base(raw_adapter, tiny_qwen3_noeos_hub_id, tmp_path):
    orphan = tmp_path / "orphan"
    shutil.copytree(raw_adapter, orphan)
    config = json.loads((orphan / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "nobody/missing-base"
    (orphan / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(CardioSTError, match="pass `base='PATH_OR_ID'`"):
        convert(orphan, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # Given the base as a local folder, the conversion works (and records the Hub id it was given)
    from huggingface_hub import snapshot_download

    local = snapshot_download(tiny_qwen3_noeos_hub_id)
    out = convert(orphan, tmp_path / "out", base=local, base_model_id=tiny_qwen3_noeos_hub_id)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == (
        tiny_qwen3_noeos_hub_id
    )


def test_plain_decoder_gets_eos_left_padding_and_normalisation(tiny_qwen3_noeos_hub_id, tmp_path):
    from huggingface_hub import snapshot_download
    from sentence_transformers import SentenceTransformer

    from cardio_st.modules.eos_pooling import appends_eos

    out = convert(
        snapshot_download(tiny_qwen3_noeos_hub_id), tmp_path / "st", query_prompt="Instruct: x\nQuery:"
    )
    model = SentenceTransformer(str(out), device="cpu")
    assert appends_eos(model.tokenizer) and model.tokenizer.padding_side == "left"
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Normalize"]
    assert model[1].pooling_mode == "lasttoken" and model.prompts["query"] == "Instruct: x\nQuery:"
    assert np.allclose(np.linalg.norm(model.encode(TEXTS), axis=1), 1.0, atol=1e-5)


def test_shipped_default_adapter_converts_to_the_default_model(minilm_path, tmp_path):
    # The embedded icd10-minilm adapter is itself a raw PEFT adapter of a BERT-style base.
    from sentence_transformers import SentenceTransformer

    from cardio_st.models.default import ICD10_MINILM, load_model

    out = convert(ICD10_MINILM, tmp_path / "icd10-minilm", base=str(minilm_path))
    converted = SentenceTransformer(str(out), device="cpu")
    assert converted[1].pooling_mode == "mean"  # the base's own configuration is kept
    default, _ = load_model("default", device="cpu")
    texts = ["heart attack", "high blood pressure in pregnancy"]
    np.testing.assert_allclose(converted.encode(texts), default.encode(texts), atol=1e-5)


def test_bad_sources(tmp_path, tiny_qwen3_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CardioSTError, match="not a model"):
        convert(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(CardioSTError, match="already a sentence-transformers model"):
        convert(tiny_qwen3_path, tmp_path / "out")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(CardioSTError, match="not an empty folder"):
        convert(tiny_qwen3_path, tmp_path / "taken")


def test_cli_convert(raw_adapter, tmp_path):
    result = runner.invoke(
        app,
        ["convert", str(raw_adapter), str(tmp_path / "out"), "--query-prompt", "Instruct: find it\\nQuery:"],
    )
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "out" / "config_sentence_transformers.json").read_text())
    assert settings["prompts"]["query"] == "Instruct: find it\nQuery:"
    result = runner.invoke(app, ["convert", str(raw_adapter), str(tmp_path / "x"), "--pooling", "max"])
    assert result.exit_code == 2 and "--pooling" in result.output


def test_load_passes_saved_models_through(tiny_qwen3_path):
    model = load(tiny_qwen3_path, device="cpu")
    assert type(model).__name__ == "SentenceTransformer" and model[1].pooling_mode == "lasttoken"
