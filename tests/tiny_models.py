"""Tiny random models for offline tests: a Qwen3-shaped embedder whose tokenizer appends EOS.
Leaves out real weights: for quality, tests use the embedded all-MiniLM-L6-v2.
"""

from __future__ import annotations

import json
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


def build_tokenizer(folder: Path, *, append_eos: bool = True, vocab_size: int = 400):
    """A byte-level BPE tokenizer (Qwen3's kind) that pads on the left and, by default, appends EOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer)
    eos_id = tokenizer.token_to_id(EOS)
    if append_eos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"$A {EOS}", pair=f"$A {EOS} $B:1 {EOS}:1", special_tokens=[(EOS, eos_id)]
        )
    else:  # as Qwen2/Qwen3 chat tokenizers ship: byte-level offsets only, no EOS
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS, padding_side="left", model_max_length=128
    )
    fast.save_pretrained(folder)
    return fast


def build_tiny_qwen3(
    folder: Path, *, seed: int = 0, hidden_size: int = 64, append_eos: bool = True, vocab_size: int = 400
) -> Path:
    """Save a 2-layer random Qwen3 (64 wide by default: the smallest width whose projections
    bitsandbytes' 4-bit CPU kernels accept, blocks of 64) as a sentence-transformers folder:
    Transformer -> last-token Pooling -> Normalize, left padding, EOS appended by the tokenizer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import Qwen3Config, Qwen3Model

    folder = Path(folder)
    hf_folder = folder / "hf"
    tokenizer = build_tokenizer(hf_folder, append_eos=append_eos, vocab_size=vocab_size)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden_size // 4,
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


def publish_to_hub_cache(folder: Path, repo_id: str, cache: Path) -> str:
    """Place a model folder in a Hugging Face Hub cache as if downloaded from ``repo_id``.

    With ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE=cache``, ``from_pretrained(repo_id)`` then resolves
    it the way it resolves a real download: the code path of a Hub id, without network.
    """
    import shutil

    revision = "0" * 40
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    if not snapshot.exists():
        shutil.copytree(folder, snapshot)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
    return repo_id


def build_tiny_causal_lm(folder: Path, *, chat_template: bool = True) -> Path:
    """A 2-layer random Qwen3 causal LM with the tiny tokenizer, for generation tests (its output is
    gibberish), optionally with a ChatML chat template."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer(folder, append_eos=False)
    tokenizer.model_max_length = 4096
    if chat_template:
        tokenizer.chat_template = (
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        )
    tokenizer.save_pretrained(folder)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(folder)
    return folder


class Memoised:
    """Wraps a model so that several evaluations embed the same queries and corpus once (saves seconds)."""

    def __init__(self, model) -> None:
        self.model, self.cache = model, {}

    def _encode(self, kind: str, texts, **kwargs):
        key = (kind, tuple(texts))
        if key not in self.cache:
            self.cache[key] = getattr(self.model, kind)(texts, **kwargs)
        return self.cache[key]

    def encode_query(self, texts, **kwargs):
        return self._encode("encode_query", texts, **kwargs)

    def encode_document(self, texts, **kwargs):
        return self._encode("encode_document", texts, **kwargs)


def write_corpus(path: Path, texts: list[str]) -> Path:
    """A JSON-lines corpus of ``texts`` with ids D0, D1, ... (the format `cardio-st index` reads)."""
    import json

    path.write_text("\n".join(json.dumps({"id": f"D{i}", "text": text}) for i, text in enumerate(texts)))
    return path


def build_raw_adapter(folder: Path, base_id: str, *, seed: int = 2) -> Path:
    """Save a LoRA adapter with random (non-zero) weights for ``base_id`` as PEFT writes it, plus the
    base's tokenizer files and a PEFT model card: the layout of a raw adapter repo on the Hub."""
    import shutil

    import torch
    from huggingface_hub import snapshot_download
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    base_folder = Path(snapshot_download(base_id))
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False
    )
    model = get_peft_model(AutoModel.from_pretrained(base_folder), config)
    for name, parameter in model.named_parameters():
        if "lora_" in name:  # large enough to move the embeddings visibly
            parameter.data.normal_(0, 0.3)
    model.save_pretrained(folder)
    settings = json.loads((folder / "adapter_config.json").read_text())
    settings["base_model_name_or_path"] = base_id
    (folder / "adapter_config.json").write_text(json.dumps(settings, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(base_folder / name, folder / name)
    (folder / "README.md").write_text(
        f"---\nbase_model: {base_id}\nlibrary_name: peft\nlicense: apache-2.0\ntags:\n- lora\n---\n\n"
        "# A cardiology adapter\n\nTrained with last-token pooling over left-padded inputs.\n"
    )
    return folder
