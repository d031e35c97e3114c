"""cardio_st.modules.lora_transformer: LoRA over fp32 / 8-bit / 4-bit bases, adapter-only saves
that plain sentence-transformers reloads, merge, and the quantized-base resume guard."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize
from sentence_transformers.sentence_transformer.modules import Pooling

from cardio_st.errors import CardioSTError
from cardio_st.modules import average_weights, eos_pooling, extract_lora, lora_transformer, merge_lora
from cardio_st.utils.hub import base_model_hub_id

TEXTS = ["atrial fibrillation", "heart failure with reduced ejection fraction", "angina"]


def _perturb_adapter(transformer, seed=0):
    """LoRA B starts at zero (the adapter is a no-op); give it values so tests can see it."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in transformer.auto_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)


def _qwen(hub_id, **kwargs):
    transformer = lora_transformer(hub_id, max_seq_length=32, **kwargs)
    return transformer, SentenceTransformer(
        modules=[transformer, eos_pooling(transformer), Normalize()], device="cpu"
    )


def test_hub_id_rules(tmp_path):
    assert base_model_hub_id("Qwen/Qwen3-Embedding-8B") == "Qwen/Qwen3-Embedding-8B"
    cached = tmp_path / "hub" / "models--Qwen--Qwen3-Embedding-0.6B" / "snapshots" / "abc"
    cached.mkdir(parents=True)
    assert base_model_hub_id(str(cached)) == "Qwen/Qwen3-Embedding-0.6B"
    assert base_model_hub_id(str(tmp_path), "org/name") == "org/name"
    with pytest.raises(CardioSTError, match="pass `base_model_id='org/name'`"):
        base_model_hub_id(str(tmp_path))
    with pytest.raises(CardioSTError, match="not a Hugging Face Hub id"):
        base_model_hub_id(str(tmp_path), "/a/local/path")


def test_paper_defaults_and_only_the_adapter_trains(tiny_qwen3_hub_id):
    transformer = lora_transformer(tiny_qwen3_hub_id, dtype=torch.bfloat16)
    config = transformer.auto_model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.05)
    assert config.base_model_name_or_path == tiny_qwen3_hub_id
    targets = {name.rsplit(".", 1)[-1] for name in config.target_modules}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    trainable = {n: p for n, p in transformer.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert {p.dtype for p in trainable.values()} == {torch.float32}
    frozen = {p.dtype for n, p in transformer.named_parameters() if "lora_" not in n}
    assert frozen == {torch.bfloat16}


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_quantized_base_runs_forward_and_a_lora_training_step(tiny_qwen3_hub_id, quantization):
    transformer, model = _qwen(tiny_qwen3_hub_id, quantization=quantization)
    layer_types = {type(m).__name__ for m in transformer.auto_model.modules()}
    assert {"8bit": "Linear8bitLt", "4bit": "Linear4bit"}[quantization] in layer_types
    _perturb_adapter(transformer)
    model.encode(TEXTS)  # bitsandbytes repacks 4-bit CPU weights on the first forward
    adapter = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    base = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    features = model.preprocess(TEXTS)
    embeddings = model(features)["sentence_embedding"]
    loss = -(embeddings[0] * embeddings[1]).sum()
    loss.backward()
    # gradients reach every adapter, also through the quantized layers (AdamW's weight decay alone
    # would change a parameter whose gradient is zero)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)
    optimizer.step()
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, adapter[n])]
    assert len(changed) == len(adapter)
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if not p.requires_grad)


def test_missing_bitsandbytes_names_the_fix(monkeypatch, tiny_qwen3_hub_id):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a),
    )
    with pytest.raises(CardioSTError, match="8bit loading needs bitsandbytes: pip install bitsandbytes"):
        lora_transformer(tiny_qwen3_hub_id, quantization="8bit")


def test_resume_does_not_overwrite_a_quantized_base(tiny_qwen3_hub_id):
    # Given an 8-bit model and the float state dict the trainer copies in when it resumes
    transformer, model = _qwen(tiny_qwen3_hub_id, quantization="8bit")
    _perturb_adapter(transformer, seed=1)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    _, float_model = _qwen(tiny_qwen3_hub_id)
    _perturb_adapter(float_model[0], seed=2)
    # When it is loaded
    model.load_state_dict(float_model.state_dict())
    # Then the adapter is restored and the int8 base is untouched
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            assert torch.equal(parameter, float_model.state_dict()[name])
        else:
            assert torch.equal(parameter, base_before[name]), name


def test_adapter_only_checkpoint_is_small(tmp_path_factory):
    HUB_CACHE = os.environ["HF_HUB_CACHE"]  # conftest points it at the private test cache
    from tiny_models import build_tiny_qwen3, publish_to_hub_cache

    folder = build_tiny_qwen3(tmp_path_factory.mktemp("qwen512"), hidden_size=512).parent / "hf"
    hub_id = publish_to_hub_cache(folder, "cardio-st-tests/tiny-qwen3-512", HUB_CACHE)
    _, model = _qwen(hub_id)
    out = tmp_path_factory.mktemp("saved")
    model.save(str(out))
    adapter = os.path.getsize(out / "adapter_model.safetensors")
    full = os.path.getsize(folder / "model.safetensors")
    assert not (out / "model.safetensors").exists()
    assert adapter < full / 10, (adapter, full)


def test_merge_equals_the_adapted_model_and_saves_full_weights(tiny_qwen3_hub_id, tmp_path):
    transformer, model = _qwen(tiny_qwen3_hub_id)
    _perturb_adapter(transformer)
    adapted = model.encode(TEXTS)
    merge_lora(model)
    assert np.allclose(model.encode(TEXTS), adapted, atol=1e-5)
    model.save(str(tmp_path / "merged"))
    assert (tmp_path / "merged" / "model.safetensors").exists()
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    assert np.allclose(SentenceTransformer(str(tmp_path / "merged")).encode(TEXTS), adapted, atol=1e-5)
    with pytest.raises(CardioSTError, match="no LoRA adapter"):
        merge_lora(model)


def test_a_reloaded_adapter_merges_and_saves_weights_that_reload(minilm_hub_id, minilm_path, tmp_path):
    # The documented flow: save adapter-only, reload with SentenceTransformer(path), merge, save. On a
    # BERT-style base, loading the adapter registers key renamings that must not outlive the merge.
    transformer = lora_transformer(str(minilm_path), base_model_id=minilm_hub_id)
    _perturb_adapter(transformer)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
    adapted = model.encode(TEXTS)
    model.save(str(tmp_path / "adapter"))
    reloaded = SentenceTransformer(str(tmp_path / "adapter"), device="cpu")
    merge_lora(reloaded)
    reloaded.save(str(tmp_path / "merged"))
    from safetensors import safe_open

    with safe_open(str(tmp_path / "merged" / "model.safetensors"), "pt") as weights:
        assert not any(key.startswith("base_model.") or "lora_" in key for key in weights.keys())
    np.testing.assert_allclose(
        SentenceTransformer(str(tmp_path / "merged")).encode(TEXTS), adapted, atol=1e-5
    )


def test_merging_into_a_quantized_base_is_refused(tiny_qwen3_hub_id):
    _, model = _qwen(tiny_qwen3_hub_id, quantization="8bit")
    with pytest.raises(CardioSTError, match="cannot merge LoRA into a quantized base"):
        merge_lora(model)


@pytest.mark.slow
def test_qwen3_adapter_reloads_with_plain_sentence_transformers(tiny_qwen3_hub_id, tmp_path):
    from fresh_process import encode_in_fresh_process

    transformer, model = _qwen(tiny_qwen3_hub_id)
    _perturb_adapter(transformer)
    model.save(str(tmp_path / "adapter"))
    (reloaded,), types = encode_in_fresh_process(tmp_path / "adapter", [("encode", TEXTS)])
    assert all(t.startswith("sentence_transformers.") for t in types)
    assert np.allclose(reloaded, model.encode(TEXTS), atol=1e-6)


@pytest.mark.slow
def test_encoder_adapter_reloads_with_plain_sentence_transformers(minilm_hub_id, minilm_path, tmp_path):
    from fresh_process import encode_in_fresh_process

    # A local folder (the embedded MiniLM) with its Hub id given explicitly.
    transformer = lora_transformer(str(minilm_path), base_model_id=minilm_hub_id)
    _perturb_adapter(transformer)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
    model.save(str(tmp_path / "adapter"))
    (reloaded,), _ = encode_in_fresh_process(tmp_path / "adapter", [("encode", TEXTS)])
    assert np.allclose(reloaded, model.encode(TEXTS), atol=1e-6)
    base = SentenceTransformer(str(minilm_path)).encode(TEXTS)
    assert not np.allclose(reloaded, base, atol=1e-3)  # the adapter is really applied


def test_extract_lora_is_exact_for_a_low_rank_change_and_truncates_a_full_one(minilm, tmp_path):
    import copy

    base = minilm  # a BERT-style base, like the default model's (see the test above)

    # Given a "fine-tuned" copy whose linear weights moved by rank-2 changes (and one by a full-rank one)
    tuned = copy.deepcopy(base)
    generator = torch.Generator().manual_seed(0)
    linears = [(n, m) for n, m in tuned[0].auto_model.named_modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for _, module in linears:
            out_features, in_features = module.weight.shape
            b, a = (
                torch.randn(out_features, 2, generator=generator),
                torch.randn(2, in_features, generator=generator),
            )
            module.weight.add_(0.02 * b @ a)
    # When the change is extracted at rank 2 (fp32), loaded onto the base and merged
    kept = extract_lora(tuned, base, tmp_path / "exact", r=2, base_model_id="org/base", dtype="float32")
    assert set(kept) == {name for name, _ in linears} and min(kept.values()) > 0.999999
    rebuilt = copy.deepcopy(base)
    rebuilt.load_adapter(str(tmp_path / "exact"))
    merge_lora(rebuilt)
    # Then the base plus the adapter is the tuned model, also once saved and reloaded
    np.testing.assert_allclose(rebuilt.encode(TEXTS), tuned.encode(TEXTS), atol=1e-5)
    rebuilt.save(str(tmp_path / "merged"))
    np.testing.assert_allclose(
        SentenceTransformer(str(tmp_path / "merged")).encode(TEXTS), tuned.encode(TEXTS), atol=1e-5
    )
    config = (tmp_path / "exact" / "adapter_config.json").read_text()
    assert '"base_model_name_or_path": "org/base"' in config and '"lora_alpha": 2' in config

    # A full-rank change at rank 1 keeps only part of it, and says how much
    name, module = linears[0]
    with torch.no_grad():
        module.weight.add_(0.02 * torch.randn(module.weight.shape, generator=generator))
    kept = extract_lora(tuned, base, tmp_path / "truncated", r=1, base_model_id="org/base")
    assert kept[name] < 0.9
    assert (tmp_path / "truncated" / "adapter_model.safetensors").stat().st_size < (
        tmp_path / "exact" / "adapter_model.safetensors"
    ).stat().st_size

    with pytest.raises(CardioSTError, match="nothing to extract"):
        extract_lora(base, base, tmp_path / "none", base_model_id="org/base")


def test_average_weights_is_the_weighted_mean_and_refuses_what_is_not_one_architecture(minilm, tiny_qwen3):
    import copy

    # Given the base and a copy whose every floating weight moved by +1
    moved = copy.deepcopy(minilm)
    with torch.no_grad():
        for parameter in moved.parameters():
            parameter.add_(1.0)
    # When they are averaged 3:1
    soup = average_weights([minilm, moved], [0.75, 0.25])
    # Then each weight is the weighted mean, integer buffers are the first model's, the inputs unchanged
    for (name, value), base_value, moved_value in zip(
        soup.state_dict().items(), minilm.state_dict().values(), moved.state_dict().values()
    ):
        if value.is_floating_point():
            expected = base_value + (0.25 if name in dict(minilm.named_parameters()) else 0.0)
            torch.testing.assert_close(value, expected, msg=name)
            torch.testing.assert_close(
                moved_value, expected + (0.75 if name in dict(minilm.named_parameters()) else 0.0)
            )
        else:
            assert torch.equal(value, base_value)
    # And the soup of two identical models is the model
    np.testing.assert_allclose(
        average_weights([minilm, minilm], [0.5, 0.5]).encode(TEXTS), minilm.encode(TEXTS), atol=1e-6
    )

    with pytest.raises(CardioSTError, match="sum to 1"):
        average_weights([minilm, moved], [0.5, 0.6])
    with pytest.raises(CardioSTError, match="one weight per model"):
        average_weights([minilm, moved], [1.0])
    with pytest.raises(CardioSTError, match="merge_lora"):
        average_weights([minilm, tiny_qwen3], [0.5, 0.5])


def test_four_bit_on_a_cpu_without_the_kernels_package_gives_the_hint(caplog, monkeypatch):
    import importlib
    import importlib.util

    module = importlib.import_module("cardio_st.modules.lora_transformer")  # the name is also a function

    if torch.cuda.is_available():
        pytest.skip("the hint is for CPUs")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "kernels" else real_find_spec(name, *a)
    )
    with caplog.at_level("WARNING", logger=module.__name__):
        module._check_bitsandbytes("8bit")
        assert "kernels" not in caplog.text
        module._check_bitsandbytes("4bit")
    assert "pip install kernels" in caplog.text
