"""The CardioEmbed recipe (arXiv 2511.10930): a base embedder with a LoRA adapter over an optional
8-bit base, EOS pooling and L2 normalisation, with Qwen3-Embedding's query prompt. Leaves out training.

The recipe also takes encoder bases (BERT, MiniLM, MPNet): they get mean pooling and no prompt,
which is how those models were pre-trained. What it builds is a plain sentence-transformers model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from cardio_st.errors import CardioSTError
from cardio_st.models.names import BUILTIN_NAMES, resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["DEFAULT_BASE", "DEFAULT_TASK", "cardioembed", "is_decoder", "query_prompt"]

#: CardioEmbed's base model.
DEFAULT_BASE = "Qwen/Qwen3-Embedding-8B"
#: The retrieval instruction put in front of queries (Qwen3-Embedding format).
DEFAULT_TASK = "Given a clinical cardiology question, retrieve passages that answer it"


def query_prompt(task: str = DEFAULT_TASK) -> str:
    """Qwen3-Embedding's query prompt: ``"Instruct: {task}\\nQuery:"`` (documents get none)."""
    return f"Instruct: {task}\nQuery:"


def is_decoder(config: Any) -> bool:
    """Whether a Hugging Face config describes a decoder-only (causal) model.

    Decided from transformers' own model registries: a model type with a masked-LM head (BERT,
    RoBERTa, MPNet, ...) is an encoder even if a causal-LM head exists for it too.
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    return (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def cardioembed(
    base: str = DEFAULT_BASE,
    *,
    base_model_id: str | None = None,
    lora: bool = True,
    quantization: Literal["8bit", "4bit"] | None = "8bit",
    r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    target_modules: str | list[str] = "all-linear",
    max_seq_length: int | None = 128,
    output_dim: int | None = None,
    pooling: Literal["auto", "eos", "mean", "cls"] = "auto",
    task: str | None = DEFAULT_TASK,
    dtype: Any = None,
    gradient_checkpointing: bool = False,
    device: str | None = None,
) -> SentenceTransformer:
    """Build a CardioEmbed-style model, ready for ``SentenceTransformerTrainer``.

    Paper defaults: Qwen3-Embedding-8B, LoRA r=16 / alpha=32 / dropout 0.05 on the attention and
    MLP projections, 8-bit base, EOS (last-token) pooling, L2 normalisation. Following
    Qwen3-Embedding's conventions the tokenizer pads on the left and appends EOS, queries get the
    prompt ``"Instruct: {task}\\nQuery:"`` and documents none; the prompts are stored in the
    model, so ``encode_query`` / ``encode_document`` apply them after a reload too.

    Args:
        base: Hub id or folder of the base model (a Hugging Face or sentence-transformers folder), or a
            built-in name (``"minilm"``, ``"default"``) as every command accepts.
        base_model_id: Hub id the base weights came from, recorded for publishing (optional: a local
            folder is recorded by its path, so the model trains, resumes and reloads offline).
        lora: Train a LoRA adapter (True) or all weights (False).
        quantization: ``"8bit"`` (paper), ``"4bit"`` or None; only with ``lora=True``.
        r: LoRA rank.
        lora_alpha: LoRA alpha.
        lora_dropout: LoRA dropout.
        target_modules: Modules that get adapters (``"all-linear"``: attention and MLP projections).
        max_seq_length: Tokens per text (128 as in CardioEmbed's training); longer texts are
            truncated, EOS kept.
        output_dim: Matryoshka output dimension: embeddings are truncated to their first
            ``output_dim`` values (stored as the model's ``truncate_dim``). Qwen3-Embedding supports
            32 to 4096; other bases only if trained with MatryoshkaLoss.
        pooling: ``"auto"`` (EOS for decoders, mean for encoders), ``"eos"``, ``"mean"`` or ``"cls"``.
        task: The query instruction; None for no prompt. Default: a clinical-cardiology retrieval
            task for decoders; encoders get no prompt unless ``pooling`` is ``"eos"``.
        dtype: Base weights dtype, e.g. ``torch.bfloat16`` on a GPU.
        gradient_checkpointing: Trade compute for activation memory during training.
        device: ``"cuda"``, ``"cpu"``, ...; None lets sentence-transformers choose.

    Returns:
        A ``SentenceTransformer`` of built-in modules: Transformer (with adapter) -> Pooling -> Normalize.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    # Imported here: cardio_st.models must stay torch-free (resolving a model name imports it).
    from cardio_st.modules import eos_pooling, lora_transformer

    source = resolve_model(base)  # the names every command accepts; a typo fails here, before loading
    if base in BUILTIN_NAMES:
        if base == "minilm" and base_model_id is None:
            base_model_id = "sentence-transformers/all-MiniLM-L6-v2"  # what the built-in minilm is
        base = str(source.path)
    if quantization is not None and not lora:
        raise CardioSTError(
            "a quantized base can only be trained through LoRA: pass `lora=True` or `quantization=None`"
        )
    if pooling not in ("auto", "eos", "mean", "cls"):
        raise CardioSTError(f"unknown pooling {pooling!r}: use auto, eos, mean or cls")
    if lora:
        transformer = lora_transformer(
            base,
            base_model_id=base_model_id,
            r=r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=target_modules,
            quantization=quantization,
            dtype=dtype,
            max_seq_length=max_seq_length,
            gradient_checkpointing=gradient_checkpointing,
        )
    else:
        kwargs = {"dtype": dtype} if dtype is not None else {}
        transformer = Transformer(base, model_kwargs=kwargs, max_seq_length=max_seq_length)
        if gradient_checkpointing:
            transformer.auto_model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
    decoder = is_decoder(transformer.auto_model.config)
    mode = ("eos" if decoder else "mean") if pooling == "auto" else pooling
    if mode == "eos":
        pooler = eos_pooling(transformer)
    else:
        pooler = Pooling(transformer.get_embedding_dimension(), mode)
    dimension = transformer.get_embedding_dimension()
    if output_dim is not None and not 0 < output_dim <= dimension:
        raise CardioSTError(
            f"output_dim must be between 1 and the model's {dimension} dimensions, got {output_dim}"
        )
    prompts = {"query": query_prompt(task), "document": ""} if task and mode == "eos" else None
    return SentenceTransformer(
        modules=[transformer, pooler, Normalize()],
        device=device,
        prompts=prompts,
        truncate_dim=output_dim,
        similarity_fn_name="cosine",
    )
