"""Tiny random models for offline tests: a Qwen3-shaped embedder whose tokenizer appends EOS.
Leaves out real weights: for quality, tests use the embedded all-MiniLM-L6-v2.
"""

from __future__ import annotations

from pathlib import Path

EOS = "<|endoftext|>"

# A little clinical text to learn a byte-level BPE vocabulary from; any text encodes (byte fallback).
_CORPUS = [
    "Acute ST elevation myocardial infarction of the anterior wall.",
    "Essential (primary) hypertension; high blood pressure.",
    "Paroxysmal atrial fibrillation with rapid ventricular response.",
    "Heart failure with reduced ejection fraction, NYHA class III.",
    "Chest pain on exertion relieved by rest suggests stable angina.",
    "Aspirin 75 mg daily and atorvastatin 80 mg at night.",
    "Transthoracic echocardiography showed moderate mitral regurgitation.",
    "Deep vein thrombosis of the left lower extremity.",
]


def build_tokenizer(folder: Path):
    """A byte-level BPE tokenizer (Qwen3's kind) that appends EOS and pads on the left."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer)
    eos_id = tokenizer.token_to_id(EOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A {EOS} $B:1 {EOS}:1", special_tokens=[(EOS, eos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS, padding_side="left", model_max_length=128
    )
    fast.save_pretrained(folder)
    return fast


def build_tiny_qwen3(folder: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer, 32-wide random Qwen3 as a sentence-transformers folder: Transformer ->
    last-token Pooling -> Normalize, left padding, EOS appended by the tokenizer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import Qwen3Config, Qwen3Model

    folder = Path(folder)
    hf_folder = folder / "hf"
    tokenizer = build_tokenizer(hf_folder)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    Qwen3Model(config).save_pretrained(hf_folder)
    transformer = Transformer(str(hf_folder), max_seq_length=64)
    pooling = Pooling(transformer.get_embedding_dimension(), "lasttoken")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
    st_folder = folder / "st"
    model.save(str(st_folder))
    return st_folder
