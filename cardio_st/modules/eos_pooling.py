"""Last-token (EOS) pooling for decoder-only embedders: makes the tokenizer append EOS, then returns
sentence-transformers' own ``Pooling(dim, "lasttoken")``. Leaves out the pooling arithmetic itself.

Why a function that returns a built-in module, not a subclass: sentence-transformers records each
module's Python class in ``modules.json``, and since 6.0 loads any class outside its own namespace
only with ``trust_remote_code=True``. Everything this pooler adds lives in the tokenizer (a
post-processor that appends EOS, kept after truncation) and in the padding side, both of which
``tokenizer.json`` / ``tokenizer_config.json`` save. So the saved model is a plain Transformer ->
Pooling -> Normalize folder that ``SentenceTransformer(path)`` reloads exactly.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Literal

from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import PreTrainedTokenizerBase

__all__ = ["appends_eos", "ensure_eos", "eos_pooling"]

_PROBE = "atrial fibrillation"


def appends_eos(tokenizer: PreTrainedTokenizerBase, *, max_length: int = 4) -> bool:
    """Whether ``tokenizer`` ends every text with its EOS token, also when it truncates."""
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        return False
    short = tokenizer(_PROBE)["input_ids"]
    truncated = tokenizer(
        _PROBE + " with rapid ventricular response" * 8, truncation=True, max_length=max_length
    )
    return short[-1] == eos_id and truncated["input_ids"][-1] == eos_id


def ensure_eos(tokenizer: PreTrainedTokenizerBase, eos_token: str | None = None) -> bool:
    """Make a fast tokenizer append ``eos_token`` to every text, and keep it after truncation.

    Hugging Face fast tokenizers reserve room for the tokens their post-processor adds before
    truncating, so an EOS added by the post-processor survives ``truncation=True``. Tokenizers
    that rebuild their post-processor from an ``add_eos_token`` flag (Llama, Gemma) get the flag
    instead. The result is checked after a save and reload, so what is saved is what runs.

    Args:
        tokenizer: A ``PreTrainedTokenizerFast``; changed in place.
        eos_token: The token to append; defaults to the tokenizer's own EOS token.

    Returns:
        True if the tokenizer was changed, False if it already appended EOS.

    Raises:
        CardioSTError: for a slow tokenizer, a tokenizer without an EOS token, or one whose saved
            form does not keep the change.
    """
    from tokenizers import processors
    from transformers import AutoTokenizer

    if eos_token is not None and eos_token != tokenizer.eos_token:
        if tokenizer.convert_tokens_to_ids(eos_token) in (None, tokenizer.unk_token_id):
            raise CardioSTError(f"eos_token {eos_token!r} is not in the tokenizer's vocabulary")
        tokenizer.eos_token = eos_token
    if tokenizer.eos_token is None:
        raise CardioSTError(
            "the tokenizer has no EOS token, so last-token pooling has nothing to pool: pass `eos_token=...`"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if appends_eos(tokenizer):
        return False
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise CardioSTError(
            f"{type(tokenizer).__name__} is a slow tokenizer; EOS pooling needs a fast one "
            "(load it with use_fast=True, or convert it with transformers)"
        )
    if hasattr(tokenizer, "add_eos_token"):
        tokenizer.add_eos_token = True
    if not appends_eos(tokenizer):
        eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
        template = processors.TemplateProcessing(
            single=f"$A {eos}", pair=f"$A {eos} $B:1 {eos}:1", special_tokens=[(eos, eos_id)]
        )
        current = backend.post_processor
        backend.post_processor = template if current is None else processors.Sequence([current, template])
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        reloaded = AutoTokenizer.from_pretrained(folder)
    if not (appends_eos(tokenizer) and appends_eos(reloaded)):
        raise CardioSTError(
            f"could not make {type(tokenizer).__name__} append {tokenizer.eos_token!r} in a way that "
            "survives saving; add EOS in its tokenizer.json post-processor by hand"
        )
    return True


def eos_pooling(
    transformer: Transformer,
    *,
    eos_token: str | None = None,
    padding_side: Literal["left", "right"] = "left",
) -> Pooling:
    """Last-token pooling over an EOS that the tokenizer guarantees.

    Makes ``transformer``'s tokenizer append EOS ([ensure_eos][cardio_st.modules.eos_pooling.ensure_eos]),
    sets its padding side, and returns ``Pooling(dim, "lasttoken")``. That pooling finds the last
    real token from the attention mask, so it is correct under left and right padding, and it
    gathers hidden states in whatever dtype they come (fp32, bf16, or the fp16 of an 8-bit base).

    Args:
        transformer: The sentence-transformers ``Transformer`` of a decoder-only model.
        eos_token: The token to append; defaults to the tokenizer's EOS.
        padding_side: ``"left"`` (default, as Qwen3-Embedding): the EOS of every text of a batch
            sits in the last position. ``"right"`` works too.

    Returns:
        A sentence-transformers ``Pooling`` module: save and reload need nothing from cardio-st.

    Examples:
        ```python
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules import Normalize, Transformer
        from cardio_st.modules import eos_pooling

        transformer = Transformer("Qwen/Qwen3-Embedding-0.6B")
        model = SentenceTransformer(modules=[transformer, eos_pooling(transformer), Normalize()])
        ```
    """
    from sentence_transformers.sentence_transformer.modules import Pooling

    if padding_side not in ("left", "right"):
        raise CardioSTError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    tokenizer = transformer.tokenizer
    ensure_eos(tokenizer, eos_token)
    tokenizer.padding_side = padding_side
    return Pooling(transformer.get_embedding_dimension(), "lasttoken")
