"""cardio_st.modules.eos_pooling: EOS guaranteed, padding-proof last-token pooling, plain reload."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize, Transformer

from cardio_st.errors import CardioSTError
from cardio_st.modules import appends_eos, ensure_eos, eos_pooling

TEXTS = ["atrial fibrillation", "heart failure with reduced ejection fraction and orthopnoea", "angina"]


@pytest.fixture(scope="module")
def hf_without_eos(tmp_path_factory):
    """A tiny Qwen3 whose tokenizer does NOT append EOS (as Qwen chat tokenizers ship)."""
    from tiny_models import build_tiny_qwen3

    return build_tiny_qwen3(tmp_path_factory.mktemp("no-eos"), append_eos=False).parent / "hf"


def _model(hf_folder, padding_side="left", max_seq_length=64):
    transformer = Transformer(str(hf_folder), max_seq_length=max_seq_length)
    pooling = eos_pooling(transformer, padding_side=padding_side)
    return SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")


def test_tokenizer_gets_eos_also_after_truncation(hf_without_eos):
    # Given a tokenizer that does not append EOS
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(hf_without_eos))
    assert not appends_eos(tokenizer)
    # When EOS is ensured
    assert ensure_eos(tokenizer) is True
    # Then every text ends with EOS, a truncated one too, and a second call changes nothing
    eos = tokenizer.eos_token_id
    assert tokenizer("angina")["input_ids"][-1] == eos
    truncated = tokenizer("chest pain " * 100, truncation=True, max_length=7)["input_ids"]
    assert len(truncated) == 7 and truncated[-1] == eos
    assert ensure_eos(tokenizer) is False


def test_model_input_ends_with_eos_after_truncation(hf_without_eos):
    model = _model(hf_without_eos, max_seq_length=8)
    features = model.preprocess(["chest pain " * 50, "angina"])
    ids, mask = features["input_ids"], features["attention_mask"]
    eos = model.tokenizer.eos_token_id
    last_real = [row[m.bool()][-1].item() for row, m in zip(ids, mask)]
    assert ids.shape[1] == 8 and last_real == [eos, eos]


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_padded_batch_equals_unpadded_single_texts(hf_without_eos, padding_side):
    model = _model(hf_without_eos, padding_side)
    batch = model.encode(TEXTS, batch_size=len(TEXTS))
    alone = np.stack([model.encode([text], batch_size=1)[0] for text in TEXTS])
    assert np.allclose(batch, alone, atol=1e-5)


def test_naive_last_position_pooling_under_right_padding_is_wrong(hf_without_eos):
    # The published CardioEmbed snippet: last_hidden_state[:, -1] with right padding.
    model = _model(hf_without_eos, "right")
    features = model.preprocess(TEXTS)
    with torch.no_grad():
        hidden = model[0](dict(features))["token_embeddings"]
    naive = torch.nn.functional.normalize(hidden[:, -1], dim=-1).numpy()
    alone = np.stack([model.encode([text])[0] for text in TEXTS])
    padded_rows = (features["attention_mask"][:, -1] == 0).numpy()
    assert padded_rows.any()
    assert not np.allclose(naive[padded_rows], alone[padded_rows], atol=1e-3)
    assert np.allclose(naive[~padded_rows], alone[~padded_rows], atol=1e-5)


def test_bf16_hidden_states(hf_without_eos):
    model = _model(hf_without_eos)
    reference = model.encode(TEXTS)
    model.to(torch.bfloat16)
    low = model.encode(TEXTS)
    cosine = (reference * low).sum(1) / np.linalg.norm(low, axis=1)
    assert low.dtype == np.float32 and (cosine > 0.99).all()


def test_8bit_hidden_states(hf_without_eos):
    from transformers import BitsAndBytesConfig

    reference = _model(hf_without_eos).encode(TEXTS)
    transformer = Transformer(
        str(hf_without_eos), model_kwargs={"quantization_config": BitsAndBytesConfig(load_in_8bit=True)}
    )
    model = SentenceTransformer(modules=[transformer, eos_pooling(transformer), Normalize()], device="cpu")
    quantized = model.encode(TEXTS)
    assert {type(m).__name__ for m in transformer.auto_model.modules()} >= {"Linear8bitLt"}
    assert ((reference * quantized).sum(1) > 0.95).all()


def test_no_eos_token_is_a_clear_error(hf_without_eos):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(hf_without_eos))
    tokenizer.eos_token = None
    with pytest.raises(CardioSTError, match="no EOS token"):
        ensure_eos(tokenizer)
    with pytest.raises(CardioSTError, match="not in the tokenizer's vocabulary"):
        ensure_eos(tokenizer, eos_token="<|not-a-token|>")


@pytest.mark.slow
def test_saved_model_reloads_with_plain_sentence_transformers(hf_without_eos, tmp_path):
    from fresh_process import encode_in_fresh_process

    model = _model(hf_without_eos)
    model.save(str(tmp_path / "model"))
    (reloaded,), types = encode_in_fresh_process(tmp_path / "model", [("encode", TEXTS)])
    assert all(t.startswith("sentence_transformers.") for t in types), types
    assert np.allclose(reloaded, model.encode(TEXTS), atol=1e-6)
