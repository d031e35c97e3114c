"""Text generation with a local transformers causal LM, batched, through its chat template.
Leaves out serving and retries (openai.py talks to a server) and what the answers are for.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

from cardio_st.errors import CardioSTError
from cardio_st.llm.base import prompt_id

__all__ = ["HFGenerator"]


class HFGenerator:
    """Generates with a local transformers causal LM (an instruction-tuned model with a chat template).

    The model loads on the first call of ``stream``. Prompts go through the tokenizer's chat template
    (system + user message, generation prompt, ``enable_thinking=False`` for Qwen3-style templates) when
    it has one, else as plain text. Texts are generated longest first in batches of ``batch_size`` with
    left padding; only the new tokens are decoded.

    Args:
        model_name_or_path: Hub id or local folder of a causal LM, e.g. ``Qwen/Qwen3-4B-Instruct-2507``.
        prompt: Template of the user message, with a ``{text}`` field (default: the text alone).
        batch_size: Texts per ``generate`` call.
        max_new_tokens: Generation length limit.
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available.
        do_sample: Sample instead of greedy decoding.
        temperature: Sampling temperature (only with ``do_sample``).
        seed: Seeds torch once before sampling (a resumed run does not reproduce the same samples).
        system_prompt: The system message (folded into the user turn for chat templates without a
            system role); ``None`` sends none.
        role: What the model is for, in error messages (``"paraphrase"``, ``"judge"``).
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        prompt: str = "{text}",
        batch_size: int = 8,
        max_new_tokens: int = 128,
        device: str | None = None,
        do_sample: bool = False,
        temperature: float = 0.7,
        seed: int = 0,
        system_prompt: str | None = None,
        role: str = "LLM",
    ) -> None:
        self.model_name_or_path = str(model_name_or_path)
        self.prompt, self.system_prompt, self.role = prompt, system_prompt, role
        self.name = f"hf:{self.model_name_or_path}#prompt={prompt_id(prompt, system_prompt)}"
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        self.device = device
        self.do_sample = do_sample
        self.temperature = temperature
        self.seed = seed
        self._loaded: tuple[Any, Any] | None = None
        self._system_role = True

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is not None:
            return self._loaded
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        source = self.model_name_or_path
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype="auto" if device.startswith("cuda") else torch.float32
            )
        except OSError as error:
            raise CardioSTError(
                f"cannot load the {self.role} model {source!r} ({error}): pass hf:<Hub id or local folder> "
                "of a causal LM (download it first when offline)"
            ) from error
        except ValueError as error:
            raise CardioSTError(
                f"{source!r} is not a causal (generative) language model ({error}): "
                "pass an instruction-tuned LM such as hf:Qwen/Qwen3-4B-Instruct-2507"
            ) from error
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.to(device).eval()
        self._loaded = (tokenizer, model)
        return self._loaded

    def _render(self, tokenizer: Any, text: str) -> str:
        user = self.prompt.format(text=text)
        system = self.system_prompt
        if not getattr(tokenizer, "chat_template", None):
            return f"{system}\n\n{user}\n" if system else f"{user}\n"
        if system and self._system_role:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            try:
                return tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
                )
            except Exception:  # some templates (e.g. Gemma's) reject a system message
                self._system_role = False
        messages = [{"role": "user", "content": f"{system}\n\n{user}" if system else user}]
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )

    def stream(self, texts: Sequence[str]) -> Iterator[tuple[int, str]]:
        """Yield ``(index, raw output)`` for each text, batch by batch (longest texts first)."""
        if not len(texts):
            return
        import torch

        tokenizer, model = self._load()
        generation = copy.deepcopy(model.generation_config)
        generation.max_new_tokens = self.max_new_tokens
        generation.do_sample = self.do_sample
        if self.do_sample:
            generation.temperature = self.temperature
            torch.manual_seed(self.seed)
        else:  # unset sampling knobs a model ships with, which greedy decoding would warn about
            generation.temperature = generation.top_p = generation.top_k = None
        generation.pad_token_id = tokenizer.pad_token_id
        if generation.eos_token_id is None:
            generation.eos_token_id = tokenizer.eos_token_id
        templated = bool(getattr(tokenizer, "chat_template", None))
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            prompts = [self._render(tokenizer, texts[i]) for i in batch]
            encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not templated)
            inputs = {name: encoded[name].to(model.device) for name in ("input_ids", "attention_mask")}
            try:
                with torch.inference_mode():
                    output = model.generate(**inputs, generation_config=generation)
            except torch.cuda.OutOfMemoryError as error:
                raise CardioSTError(
                    f"out of GPU memory generating {self.role} answers in batches of {self.batch_size}: "
                    "lower the batch size",
                    exit_code=1,
                ) from error
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            yield from zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
