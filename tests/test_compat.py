"""cardio_st.compat: each private upstream detail cardio-st relies on still behaves as cardio-st assumes.

A failure here means sentence-transformers or transformers changed something cardio-st works around:
read the matching section of cardio_st/compat.py, then adapt the workaround -- or delete it, when the
test says the upstream problem is gone.
"""

from __future__ import annotations

import importlib
import json
import re

import pytest
import torch
from sentence_transformers import SentenceTransformer

from cardio_st import compat
from cardio_st.compat import (
    CARD_ARCHITECTURE,
    CARD_MODEL_ID,
    CARD_PROMPTED_SECTIONS,
    CARD_SAMPLES,
    CARD_TITLE,
    CARD_TRAINED_WITHOUT_BASE,
    CARD_USAGE_HEADING,
    ROUTER_CONFIG,
    ROUTER_TYPES,
    adapter_key_renamings,
    card_prompted_section,
    card_unknown_detail,
    drop_adapter_key_renamings,
    forget_loaded_card,
    load_router_module,
)


def test_a_loaded_model_resaves_its_card_until_it_is_forgotten(minilm_path, tmp_path):
    # Given a model loaded from a folder with a card
    original = (minilm_path / "README.md").read_text(encoding="utf8")
    model = SentenceTransformer(str(minilm_path), device="cpu")
    model.model_card_data.model_name = "a name only a generated card shows"
    # When it is saved, sentence-transformers writes the loaded card back (what forget_loaded_card undoes)
    model.save(str(tmp_path / "kept"))
    kept = (tmp_path / "kept" / "README.md").read_text(encoding="utf8")
    assert "a name only a generated card shows" not in kept and kept[:200] == original[:200]
    # Then, forgotten, the card is rendered from the card data
    forget_loaded_card(model)
    model.save(str(tmp_path / "fresh"))
    fresh = (tmp_path / "fresh" / "README.md").read_text(encoding="utf8")
    assert "# a name only a generated card shows" in fresh


def _rendered_card(model: SentenceTransformer) -> str:
    from sentence_transformers.base.model_card import generate_model_card

    card = model.model_card_data
    card.local_files_only, card.generate_widget_examples = True, False
    return generate_model_card(model)


def test_the_card_template_still_has_the_landmarks_cardio_st_edits(tiny_qwen3):
    # Given sentence-transformers' card of a model with no known base, language, licence or datasets
    assert not tiny_qwen3.model_card_data.base_model
    text = _rendered_card(tiny_qwen3)
    # Then every piece of text that cardio_st.models.card edits in a saved card is there
    assert CARD_MODEL_ID in text
    assert CARD_TRAINED_WITHOUT_BASE in text
    assert re.search(CARD_TITLE, text, flags=re.MULTILINE), text[:600]
    assert re.search(CARD_ARCHITECTURE, text, flags=re.MULTILINE | re.DOTALL)
    for label in ("Base model", "Language", "License"):
        assert re.search(card_unknown_detail(label), text, flags=re.MULTILINE), label
    for heading in CARD_PROMPTED_SECTIONS:
        assert re.search(card_prompted_section(heading), text, flags=re.DOTALL), heading
    # and the usage subsection ends where cardio-st's replacement expects (a heading or a comment)
    usage = text[text.index(CARD_USAGE_HEADING) + len(CARD_USAGE_HEADING) :]
    end = re.search(r"^(<!--$|#{2,3} )", usage, flags=re.MULTILINE)
    assert end, usage[:400]
    section = usage[: end.start()]
    assert "SentenceTransformer(" in section and section.count("```") % 2 == 0


def test_a_trained_models_card_shows_its_samples_where_cardio_st_looks(adapter_folder):
    card = (adapter_folder[0] / "README.md").read_text(encoding="utf8")
    assert re.search(rf"^{re.escape(CARD_SAMPLES)}\n(?:  .*\n)+", card, flags=re.MULTILINE)


def test_one_module_loads_as_router_load_loads_it(care_folder):
    from sentence_transformers.base.modules import Router

    # Given a saved Router, its layout is where and what compat says
    assert Router.config_file_name == ROUTER_CONFIG
    modules = json.loads((care_folder / "modules.json").read_text())
    (entry,) = [e for e in modules if e["type"] in ROUTER_TYPES]
    base = entry["path"]
    config = json.loads((care_folder / base / ROUTER_CONFIG).read_text())
    assert {"types", "structure", "parameters"} <= set(config)
    # When each module is loaded on its own, it equals what Router.load made of it
    full = SentenceTransformer(str(care_folder), device="cpu")
    (router,) = [m for m in full if isinstance(m, Router)]
    for route, module_ids in config["structure"].items():
        assert len(module_ids) == len(router.sub_modules[route])
        for module_id, loaded in zip(module_ids, router.sub_modules[route]):
            subfolder = f"{base}/{module_id}" if base else module_id
            alone = load_router_module(care_folder, subfolder, config["types"][module_id])
            assert type(alone) is type(loaded)
            expected, got = loaded.state_dict(), alone.state_dict()
            assert expected.keys() == got.keys()
            assert all(torch.equal(expected[key], got[key]) for key in expected), (route, module_id)


@pytest.fixture
def minilm_with_loaded_adapter(minilm_path, tmp_path):
    """all-MiniLM-L6-v2 with a LoRA adapter loaded from a file, as ``SentenceTransformer(adapter_folder)``
    loads one (transformers' ``load_adapter``)."""
    from peft import LoraConfig
    from transformers import AutoModel

    trained = AutoModel.from_pretrained(str(minilm_path))
    trained.add_adapter(LoraConfig(r=2, target_modules=["query", "value"], init_lora_weights=False))
    trained.save_pretrained(str(tmp_path / "adapter"))
    model = SentenceTransformer(str(minilm_path), device="cpu")
    model[0].auto_model.load_adapter(str(tmp_path / "adapter"))
    return model


def _merged_keys(model, tmp_path) -> list[str]:
    from safetensors import safe_open

    from cardio_st.modules.lora_transformer import merge_lora

    merge_lora(model)
    model[0].auto_model.save_pretrained(str(tmp_path / "merged"))
    with safe_open(str(tmp_path / "merged" / "model.safetensors"), "pt") as weights:
        return list(weights.keys())


def test_loading_an_adapter_registers_key_renamings_that_would_corrupt_a_merged_save(
    minilm_with_loaded_adapter, tmp_path, monkeypatch
):
    # Given a model whose adapter came from a file: transformers registered PEFT's key renamings
    auto_model = minilm_with_loaded_adapter[0].auto_model
    assert adapter_key_renamings(auto_model), "transformers no longer registers them: drop the workaround"
    # When it is merged without dropping them, the full weights save under adapter keys (the bug)
    lora_module = importlib.import_module("cardio_st.modules.lora_transformer")
    monkeypatch.setattr(lora_module, "drop_adapter_key_renamings", lambda model: None)
    keys = _merged_keys(minilm_with_loaded_adapter, tmp_path)
    assert any(key.startswith("base_model.") for key in keys), "fixed upstream: drop the workaround"


def test_dropping_the_renamings_saves_a_merged_model_under_its_own_keys(minilm_with_loaded_adapter, tmp_path):
    auto_model = minilm_with_loaded_adapter[0].auto_model
    others = [c for c in auto_model._weight_conversions if c not in adapter_key_renamings(auto_model)]
    drop_adapter_key_renamings(auto_model)
    assert not adapter_key_renamings(auto_model) and auto_model._weight_conversions == others
    keys = _merged_keys(minilm_with_loaded_adapter, tmp_path)  # merge_lora drops them itself too
    assert keys and not any(key.startswith("base_model.") or "lora_" in key for key in keys)


def test_compat_imports_no_heavy_package_at_module_level():
    source = compat.__loader__.get_source(compat.__name__)
    top = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    heavy = r"torch|sentence_transformers|transformers|cardio_st\.(?!errors|utils)"
    assert not [line for line in top if re.search(heavy, line)]
