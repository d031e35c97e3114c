"""cardio_st.models.cardioembed: the CardioEmbed recipe builds a standard, correctly configured model."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers.sentence_transformer.modules import Pooling

from cardio_st.errors import CardioSTError
from cardio_st.models import DEFAULT_TASK, cardioembed, is_decoder, query_prompt

QUERIES = ["which drug controls the ventricular rate in atrial fibrillation?"]
DOCUMENTS = ["Beta-blockers slow AV nodal conduction.", "Statins lower LDL cholesterol."]


def test_qwen3_conventions(tiny_qwen3_hub_id):
    model = cardioembed(tiny_qwen3_hub_id, quantization=None, output_dim=32, device="cpu")
    transformer, pooling, normalize = list(model)
    assert isinstance(pooling, Pooling) and pooling.pooling_mode == "lasttoken"
    assert type(normalize).__name__ == "Normalize"
    assert transformer.tokenizer.padding_side == "left"
    assert transformer.tokenizer("x")["input_ids"][-1] == transformer.tokenizer.eos_token_id
    assert model.prompts == {"query": f"Instruct: {DEFAULT_TASK}\nQuery:", "document": ""}
    assert model.encode_query(QUERIES).shape == (1, 32) and model.truncate_dim == 32
    assert transformer.max_seq_length == 128
    assert query_prompt("Find guidelines") == "Instruct: Find guidelines\nQuery:"
    # the prompt is really applied to queries only
    assert not np.allclose(model.encode_query(DOCUMENTS[:1]), model.encode_document(DOCUMENTS[:1]))


def test_encoder_base_gets_mean_pooling_and_no_prompt(minilm_hub_id):
    model = cardioembed(minilm_hub_id, quantization=None, device="cpu")
    assert model[1].pooling_mode == "mean" and not model.prompts.get("query")
    assert not is_decoder(model[0].auto_model.config)


def test_full_fine_tuning_has_no_adapter(tiny_qwen3_hub_id):
    model = cardioembed(tiny_qwen3_hub_id, lora=False, quantization=None, device="cpu")
    assert not getattr(model[0].auto_model, "peft_config", None)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lora": False, "quantization": "8bit"}, "only be trained through LoRA"),
        ({"quantization": None, "output_dim": 1000}, "output_dim must be between 1"),
        ({"quantization": None, "pooling": "max-ish"}, "unknown pooling"),
        ({"quantization": "3bit"}, "unknown quantization"),
    ],
)
def test_bad_settings_are_named(tiny_qwen3_hub_id, kwargs, message):
    with pytest.raises(CardioSTError, match=message):
        cardioembed(tiny_qwen3_hub_id, **kwargs)


@pytest.mark.slow
def test_recipe_reloads_with_plain_sentence_transformers(tiny_qwen3_hub_id, tmp_path):
    from fresh_process import encode_in_fresh_process

    model = cardioembed(tiny_qwen3_hub_id, quantization=None, output_dim=48, device="cpu")
    model.save(str(tmp_path / "model"))
    (queries, documents), types = encode_in_fresh_process(
        tmp_path / "model", [("encode_query", QUERIES), ("encode_document", DOCUMENTS)]
    )
    assert all(t.startswith("sentence_transformers.") for t in types)
    assert queries.shape == (1, 48)
    assert np.allclose(queries, model.encode_query(QUERIES), atol=1e-6)
    assert np.allclose(documents, model.encode_document(DOCUMENTS), atol=1e-6)
