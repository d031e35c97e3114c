"""A sentence-transformers ``Transformer`` with a PEFT LoRA adapter, over an optional 8-bit or 4-bit
base, and its merge into full weights. Leaves out training loops and pooling (see the recipe).

Why functions that return built-in modules, not a subclass: sentence-transformers records each
module's class in ``modules.json`` and loads classes outside its namespace only with
``trust_remote_code=True``. A ``Transformer`` whose model carries a PEFT adapter already saves
as an adapter-only folder that ``SentenceTransformer(path)`` reloads, so the set-up (quantization,
k-bit preparation, LoRA config, fp32 adapter weights, the base's Hub id) is done here, once, and
the saved model needs nothing from cardio-st.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import re
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cardio_st.compat import drop_adapter_key_renamings
from cardio_st.errors import CardioSTError
from cardio_st.utils.hub import recorded_base

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer

logger = logging.getLogger(__name__)

__all__ = [
    "average_weights",
    "extract_lora",
    "lora_transformer",
    "merge_lora",
    "quantization_config",
]


def _check_bitsandbytes(quantization: str) -> None:
    import torch

    if importlib.util.find_spec("bitsandbytes") is None:
        raise CardioSTError(
            f"{quantization} loading needs bitsandbytes: pip install bitsandbytes "
            "(or use `quantization=None`)"
        )
    if torch.cuda.is_available():
        return
    version = tuple(int(part) for part in re.findall(r"\d+", metadata.version("bitsandbytes"))[:2])
    if version < (0, 48):
        raise CardioSTError(
            f"{quantization} loading without a CUDA GPU needs bitsandbytes >= 0.48 (installed: "
            f"{metadata.version('bitsandbytes')}): pip install -U bitsandbytes, or run on a GPU"
        )
    if quantization == "4bit" and importlib.util.find_spec("kernels") is None:
        # the hint bitsandbytes gives at import, dropped there (cardio_st/__init__.py) and given here
        logger.warning("4-bit on a CPU runs faster with bitsandbytes' CPU kernel: pip install kernels")


def quantization_config(quantization: Literal["8bit", "4bit"] | None):
    """The ``BitsAndBytesConfig`` for a quantized base, or None.

    ``"8bit"``: LLM.int8() as in CardioEmbed. ``"4bit"``: NF4 with double quantization (QLoRA),
    computing in bf16 on a GPU and fp32 on a CPU.
    """
    if quantization is None:
        return None
    if quantization not in ("8bit", "4bit"):
        raise CardioSTError(f"unknown quantization {quantization!r}: use '8bit', '4bit' or None")
    _check_bitsandbytes(quantization)
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute_dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def _restore_only_the_adapter(model) -> None:
    """Make ``load_state_dict`` leave a quantized base alone and restore only the adapter.

    When the trainer resumes from a checkpoint, sentence-transformers reloads the checkpoint (its
    base comes back unquantized, in float) and copies that state dict into the model being
    trained. Copied into 8-bit storage, float weights are cast to int8 (0.02 becomes 0) and the
    quantization scales are lost: the resumed run would train on a destroyed base. The base is
    frozen, so the checkpoint's copy of it carries nothing new; these hooks drop it on load.
    """
    prefixes: list[str] = []

    def drop_base(
        module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        prefixes.append(prefix)
        for key in [k for k in state_dict if k.startswith(prefix) and "lora_" not in k]:
            del state_dict[key]

    def forgive_missing_base(module, incompatible_keys):
        while prefixes:
            prefix = prefixes.pop()
            incompatible_keys.missing_keys[:] = [
                k for k in incompatible_keys.missing_keys if not (k.startswith(prefix) and "lora_" not in k)
            ]

    model.register_load_state_dict_pre_hook(drop_base)
    model.register_load_state_dict_post_hook(forgive_missing_base)


def lora_transformer(
    model_name_or_path: str,
    *,
    base_model_id: str | None = None,
    r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    target_modules: str | Sequence[str] = "all-linear",
    quantization: Literal["8bit", "4bit"] | None = None,
    dtype: Any = None,
    max_seq_length: int | None = None,
    gradient_checkpointing: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    **transformer_kwargs: Any,
) -> Transformer:
    """A ``Transformer`` whose Hugging Face model (encoder or decoder) carries a trainable LoRA adapter.

    Defaults are CardioEmbed's: r=16, alpha=32, dropout 0.05, on every linear projection of the
    attention and MLP blocks (``"all-linear"``; a bare ``AutoModel`` has no output head), adapter
    weights in fp32 whatever the base dtype.

    Args:
        model_name_or_path: Hub id or local folder of the base model. A folder is recorded in the
            adapter by its absolute path ([recorded_base][cardio_st.utils.hub.recorded_base]):
            the saved model and its checkpoints reload on exactly these weights, offline.
        base_model_id: Hub id the base weights came from, for publishing (a push names it as the
            adapter's base); optional.
        r: LoRA rank.
        lora_alpha: LoRA scaling numerator (the update is scaled by ``lora_alpha / r``).
        lora_dropout: Dropout on the adapter's input.
        target_modules: ``"all-linear"`` or module names, e.g. ``["q_proj", "v_proj"]``.
        quantization: ``"8bit"``, ``"4bit"`` or None: load the base through bitsandbytes and prepare
            it with ``peft.prepare_model_for_kbit_training``.
        dtype: Base weights dtype (e.g. ``torch.bfloat16``); None keeps the checkpoint's.
        max_seq_length: Tokens per text (longer texts are truncated).
        gradient_checkpointing: Trade compute for activation memory.
        model_kwargs: More ``from_pretrained`` arguments for the base.
        **transformer_kwargs: Passed to sentence-transformers' ``Transformer``.

    Returns:
        A sentence-transformers ``Transformer`` with the adapter active and only its weights trainable.
        Saving the model writes an adapter-only checkpoint (``adapter_model.safetensors``).

    Note:
        Quantization is not saved: ``SentenceTransformer(path)`` reloads the base in full
        precision with the adapter on top. Pass ``model_kwargs={"quantization_config": ...}`` to
        reload it quantized, or [merge_lora][cardio_st.modules.lora_transformer.merge_lora] it.
    """
    import torch
    from peft import LoraConfig, prepare_model_for_kbit_training
    from sentence_transformers.base.modules import Transformer

    if r < 1 or lora_alpha <= 0 or not 0 <= lora_dropout < 1:
        raise CardioSTError(f"invalid LoRA settings r={r}, alpha={lora_alpha}, dropout={lora_dropout}")
    recorded, hub_id = recorded_base(model_name_or_path, base_model_id)
    kwargs = dict(model_kwargs or {})
    config = quantization_config(quantization)
    if config is not None:
        kwargs["quantization_config"] = config
    if dtype is not None:
        kwargs["dtype"] = dtype
    transformer = Transformer(
        model_name_or_path, model_kwargs=kwargs, max_seq_length=max_seq_length, **transformer_kwargs
    )
    model = transformer.auto_model
    if config is not None:
        prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
        _restore_only_the_adapter(model)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    targets = target_modules if isinstance(target_modules, str) else list(target_modules)
    model.add_adapter(
        LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=targets, bias="none")
    )
    for adapter in model.peft_config.values():
        adapter.base_model_name_or_path = recorded
    transformer.base_hub_id = hub_id  # read by the record (cardio_st.models.record.describe_model)
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            parameter.data = parameter.data.to(torch.float32)
    return transformer


def _transformers_of(model: SentenceTransformer | Transformer) -> list[Transformer]:
    from sentence_transformers.base.modules import Transformer

    if isinstance(model, Transformer):
        return [model]
    return [module for module in model.modules() if isinstance(module, Transformer)]


def merge_lora(model: SentenceTransformer | Transformer) -> SentenceTransformer | Transformer:
    """Fold every LoRA adapter of ``model`` into its base weights, in place, for serving.

    Afterwards the model has no adapter and saves full weights that any tool loads without PEFT;
    its embeddings equal the adapted model's (up to float rounding).

    Raises:
        CardioSTError: if the model has no adapter, or its base is quantized (merging into 8-bit or
            4-bit weights loses the adapter's precision: reload the adapter folder with
            ``SentenceTransformer(path)``, which loads the base unquantized, then merge).
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    merged = 0
    for transformer in _transformers_of(model):
        auto_model = transformer.auto_model
        if not getattr(auto_model, "peft_config", None):
            continue
        if getattr(auto_model, "is_quantized", False) or getattr(auto_model, "is_loaded_in_8bit", False):
            raise CardioSTError(
                "cannot merge LoRA into a quantized base without losing precision: save the model, reload "
                "it with SentenceTransformer(path) (the base loads unquantized), then merge"
            )
        layers = [
            (name, module)
            for name, module in auto_model.named_modules()
            if isinstance(module, BaseTunerLayer)
        ]
        for _, layer in layers:
            layer.merge()
        auto_model.delete_adapter(list(auto_model.peft_config))
        for name, layer in layers:
            parent_name, _, child = name.rpartition(".")
            parent = auto_model.get_submodule(parent_name) if parent_name else auto_model
            setattr(parent, child, layer.get_base_layer())
        drop_adapter_key_renamings(auto_model)  # else the merged weights save under adapter keys
        merged += 1
    if not merged:
        raise CardioSTError("the model has no LoRA adapter to merge")
    return model


def extract_lora(
    tuned: SentenceTransformer,
    base: SentenceTransformer,
    out_dir: str | os.PathLike,
    *,
    r: int = 64,
    base_model_id: str | None = None,
    dtype: Any = "float16",
) -> dict[str, float]:
    """Write a fully fine-tuned model's change to its base as a LoRA adapter: a small file that
    ships where the full weights would not.

    For every linear layer whose weight changed, the change ``W_tuned - W_base`` is replaced by its
    best rank-``r`` approximation (truncated SVD, ``B = U_r S_r^1/2``, ``A = S_r^1/2 V_r^T``, so
    ``lora_alpha = r`` and ``B A`` is the approximation itself). Changes to anything else --
    embeddings, biases, LayerNorms -- are left out: measure what that costs before shipping (for
    cardio-st's default model it cost nothing measurable; docs/guides/default-model.md). The folder
    is a standard PEFT adapter (``adapter_config.json``, ``adapter_model.safetensors``), loadable with
    ``model.load_adapter(out_dir)`` on the base and foldable with
    [merge_lora][cardio_st.modules.lora_transformer.merge_lora].

    Args:
        tuned: The fine-tuned model.
        base: The model it was fine-tuned from (same architecture).
        out_dir: Folder to write the adapter to.
        r: Rank of the approximation.
        base_model_id: Hub id recorded as the adapter's base; default: the base's known Hub id, else
            its folder's absolute path (see [recorded_base][cardio_st.utils.hub.recorded_base]).
        dtype: Dtype the adapter weights are stored in (``"float16"`` halves the file; ``"float32"``).

    Returns:
        Per layer name, the share of the change's Frobenius norm that the rank-``r`` approximation
        keeps (1.0 = exact).

    Raises:
        CardioSTError: if the two models' weights do not match in names and shapes, or no linear
            weight changed.
    """
    import torch
    from peft import LoraConfig
    from safetensors.torch import save_file

    if r < 1:
        raise CardioSTError(f"r must be at least 1, got {r}")
    tuned_model, base_model = tuned[0].auto_model, base[0].auto_model
    base_modules = dict(base_model.named_modules())
    changed: dict[str, torch.Tensor] = {}
    for name, module in tuned_model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        other = base_modules.get(name)
        if not isinstance(other, torch.nn.Linear) or other.weight.shape != module.weight.shape:
            raise CardioSTError(
                f"layer {name!r} differs between the two models: "
                "pass the model that was fine-tuned from this base"
            )
        delta = module.weight.detach().float() - other.weight.detach().float()
        if delta.abs().max() > 0:
            changed[name] = delta
    if not changed:
        raise CardioSTError("no linear weight differs between the two models: nothing to extract")
    recorded, recorded_hub_id = recorded_base(
        getattr(base_model.config, "_name_or_path", "") or "", base_model_id
    )
    config = LoraConfig(
        r=r,
        lora_alpha=r,
        lora_dropout=0.0,
        target_modules=sorted(changed),
        base_model_name_or_path=recorded_hub_id or recorded,
    )
    state: dict[str, torch.Tensor] = {}
    kept: dict[str, float] = {}
    store = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    for name, delta in changed.items():
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        rank = min(r, len(s))
        root = s[:rank].sqrt()
        state[f"base_model.model.{name}.lora_B.weight"] = (u[:, :rank] * root).to(store).contiguous()
        state[f"base_model.model.{name}.lora_A.weight"] = (root[:, None] * vh[:rank]).to(store).contiguous()
        kept[name] = float(s[:rank].square().sum().sqrt() / s.square().sum().sqrt())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out))
    save_file(state, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    return kept


def average_weights(models: Sequence[SentenceTransformer], weights: Sequence[float]) -> SentenceTransformer:
    """A model whose every floating-point weight is the weighted mean of ``models``' (a model soup).

    Models fine-tuned from one base on overlapping data stay in one basin, so their weighted mean
    often keeps what each learnt (Wortsman et al., 2022, "Model soups"); cardio-st's default model
    mixes a run trained on everyday-language terms with one trained without them this way. Use it
    on merged models (no adapter): [merge_lora][cardio_st.modules.lora_transformer.merge_lora] first,
    then [extract_lora][cardio_st.modules.lora_transformer.extract_lora] to ship the mean as an
    adapter. Integer buffers (e.g. position ids) are taken from the first model.

    Args:
        models: Two or more models of one architecture (same weight names and shapes).
        weights: One non-negative weight per model, summing to 1.

    Returns:
        A new model (a deep copy of the first, with the mean weights); the inputs are unchanged.

    Raises:
        CardioSTError: if the weights do not match the models in number, are negative or do not sum
            to 1, or the models' weights differ in names or shapes.
    """
    if len(models) < 2 or len(weights) != len(models):
        raise CardioSTError(
            f"average_weights needs two or more models and one weight per model, got {len(models)} "
            f"models and {len(weights)} weights"
        )
    if any(weight < 0 for weight in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise CardioSTError(f"weights must be non-negative and sum to 1, got {list(weights)}")
    states = [model.state_dict() for model in models]
    first = states[0]
    for index, state in enumerate(states[1:], start=1):
        if state.keys() != first.keys() or any(state[key].shape != first[key].shape for key in first):
            raise CardioSTError(
                f"models[{index}] does not have models[0]'s weights (names or shapes differ): average "
                "models fine-tuned from one base, with any LoRA adapter merged first (merge_lora)"
            )
    mean = {
        key: (
            sum(weight * state[key].double() for weight, state in zip(weights, states)).to(value.dtype)
            if value.is_floating_point()
            else value.clone()
        )
        for key, value in first.items()
    }
    soup = copy.deepcopy(models[0])
    soup.load_state_dict(mean)
    return soup
