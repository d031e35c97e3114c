"""Resumable paraphrase generation for training pairs by a local transformers LM or an OpenAI-style server.
Leaves out judging clinical correctness: only cheap filters (length, copy, refusal, a similarity floor).

CardioEmbed (arXiv 2511.10930) pairs each textbook sentence with an LLM paraphrase of it. Generating
150k paraphrases takes hours, so [generate_paraphrases][cardio_st.data.paraphrase.generate_paraphrases]
appends every result to a JSONL checkpoint the moment it arrives; a rerun of the same call asks the
backend only for what is missing.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import logging
import os
import queue
import random
import re
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cardio_st.data.checkpoint import JsonlCheckpoint
from cardio_st.errors import CardioSTError

__all__ = [
    "DEFAULT_PROMPT",
    "SYSTEM_PROMPT",
    "HFParaphraser",
    "OpenAIParaphraser",
    "ParaphraseResult",
    "Paraphraser",
    "clean_output",
    "generate_paraphrases",
    "make_paraphraser",
    "rejection_reason",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_MAX_DELAY_S = 60.0  # cap of one backoff wait

SYSTEM_PROMPT = (
    "You are a careful medical editor. You rewrite clinical text in new words without changing its meaning."
)
"""The system message sent with every paraphrase request (folded into the user turn for chat
templates without a system role)."""

DEFAULT_PROMPT = (
    "Paraphrase the clinical sentence below. Keep its meaning exactly: the same facts, numbers, units, "
    "doses, drug names, laterality and negations. Use different wording and sentence structure. Do not "
    "add, remove, explain or comment on anything. Reply with the paraphrase only: one version, without "
    "quotes or preamble.\n\nSentence: {text}"
)
"""The default user prompt; ``{text}`` is replaced by the sentence."""


@runtime_checkable
class Paraphraser(Protocol):
    """A paraphrase backend.

    Attributes:
        name: Identifies the backend, model and prompt (recorded in checkpoints; a checkpoint is only
            resumed by a paraphraser of the same name).
    """

    name: str

    def stream(self, texts: Sequence[str]) -> Iterator[tuple[int, str]]:
        """Yield ``(index into texts, raw output)`` as results complete, in any order.

        Raises:
            CardioSTError: for fatal problems (unreachable server after retries, unknown model).
        """
        ...


def _prompt_id(prompt: str, system_prompt: str = SYSTEM_PROMPT) -> str:
    if "{text}" not in prompt:
        raise CardioSTError("the paraphrase prompt has no {text} field: put {text} where the sentence goes")
    try:
        prompt.format(text="x")
    except (KeyError, IndexError, ValueError) as error:
        raise CardioSTError(
            f"the paraphrase prompt has a format field other than {{text}} ({error!r}): "
            "write literal braces as {{ and }}"
        ) from error
    return hashlib.sha256(f"{system_prompt}\0{prompt}".encode()).hexdigest()[:8]


class HFParaphraser:
    """Paraphrases with a local transformers causal LM (an instruction-tuned model with a chat template).

    The model loads on the first call of ``stream``. Prompts go through the tokenizer's chat template
    (system + user message, generation prompt, ``enable_thinking=False`` for Qwen3-style templates) when
    it has one, else as plain text. Texts are generated longest first in batches of ``batch_size`` with
    left padding; only the new tokens are decoded.

    Args:
        model_name_or_path: Hub id or local folder of a causal LM, e.g. ``Qwen/Qwen3-4B-Instruct-2507``.
        prompt: Template with a ``{text}`` field.
        batch_size: Texts per ``generate`` call.
        max_new_tokens: Generation length limit.
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available.
        do_sample: Sample instead of greedy decoding.
        temperature: Sampling temperature (only with ``do_sample``).
        seed: Seeds torch once before sampling (a resumed run does not reproduce the same samples).
        system_prompt: The system message (default: the paraphrase editor's).
        role: What the model is for, in error messages (``"paraphrase"``, ``"judge"``).
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        prompt: str = DEFAULT_PROMPT,
        batch_size: int = 8,
        max_new_tokens: int = 128,
        device: str | None = None,
        do_sample: bool = False,
        temperature: float = 0.7,
        seed: int = 0,
        system_prompt: str = SYSTEM_PROMPT,
        role: str = "paraphrase",
    ) -> None:
        self.model_name_or_path = str(model_name_or_path)
        self.prompt, self.system_prompt, self.role = prompt, system_prompt, role
        self.name = f"hf:{self.model_name_or_path}#prompt={_prompt_id(prompt, system_prompt)}"
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
        if not getattr(tokenizer, "chat_template", None):
            return f"{self.system_prompt}\n\n{user}\n"
        if self._system_role:
            messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]
            try:
                return tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
                )
            except Exception:  # some templates (e.g. Gemma's) reject a system message
                self._system_role = False
        messages = [{"role": "user", "content": f"{self.system_prompt}\n\n{user}"}]
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


class _Stopped(Exception):
    """The consumer went away: a worker stops without reporting."""


class OpenAIParaphraser:
    """Paraphrases through an OpenAI-compatible ``/chat/completions`` endpoint (vLLM, TGI, llama.cpp, Ollama).

    ``base_url`` must include the API version prefix, e.g. ``http://127.0.0.1:8000/v1``. Before the first
    request a preflight ``GET {base_url}/models`` checks that the server answers and serves ``model``
    (a server without ``/models`` is accepted). Up to ``concurrency`` requests run at once in daemon
    threads; results are yielded as they complete.

    Each request is retried on timeouts, connection errors (refused, reset, dropped without an answer),
    HTTP 429 and 5xx: at most ``max_retries`` retries after the first attempt, waiting
    ``backoff * 2**attempt`` seconds times a random jitter in [0.5, 1.5) (at most 60 s; a longer
    ``Retry-After`` is honoured up to 60 s). Other answers are fatal at once: 401/403 (API key),
    404/400 naming an unknown model, any other 4xx. Reasoning models: ``<think>`` blocks are removed by
    [clean_output][cardio_st.data.paraphrase.clean_output], but they count against ``max_tokens``.

    Args:
        base_url: Server URL ending in ``/v1``.
        model: Model name the server serves (see ``{base_url}/models``).
        api_key: Bearer token; default ``$OPENAI_API_KEY`` (local servers usually need none).
        prompt: Template with a ``{text}`` field (the user message; the system message is
            [SYSTEM_PROMPT][cardio_st.data.paraphrase.SYSTEM_PROMPT]).
        concurrency: Requests in flight at once.
        timeout: Seconds per socket operation of a request (the preflight waits at most 10 s).
        max_retries: Retries of one request before giving up.
        backoff: Base of the exponential backoff, in seconds.
        max_tokens: Generation length limit.
        temperature: Sampling temperature.
        system_prompt: The system message (default: the paraphrase editor's).
        role: What the server is for, in error messages (``"paraphrase"``, ``"judge"``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_tokens: int = 256,
        temperature: float = 0.7,
        system_prompt: str = SYSTEM_PROMPT,
        role: str = "paraphrase",
    ) -> None:
        if not re.match(r"https?://", base_url or ""):
            raise CardioSTError(
                f"{role} server URL {base_url!r} is not an http(s) URL: use e.g. openai:http://127.0.0.1:8000/v1"
            )
        if not model:
            raise CardioSTError(f"no model name for the server at {base_url}: pass --model")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.prompt, self.system_prompt, self.role = prompt, system_prompt, role
        self.name = f"openai:{model}#prompt={_prompt_id(prompt, system_prompt)}"
        self.concurrency = max(1, int(concurrency))
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._served: list[str] | None = None

    def _request(self, url: str, payload: dict | None, timeout: float) -> tuple[int, bytes, Any]:
        """One HTTP request: (status, body, headers). Transport failures raise OSError/HTTPException."""
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read(), error.headers

    def _auth_error(self, status: int) -> CardioSTError:
        return CardioSTError(
            f"the {self.role} server at {self.base_url} refused the request (HTTP {status}): "
            "set OPENAI_API_KEY or pass --api-key",
            exit_code=2,
        )

    def _unknown_model_error(self) -> CardioSTError:
        if self._served:
            offered = ", ".join(self._served[:20]) + (", ..." if len(self._served) > 20 else "")
            hint = f"pass one of the models it serves with --model: {offered}"
        else:
            hint = f"pass a model it serves with --model (see {self.base_url}/models)"
        return CardioSTError(f"the server at {self.base_url} does not serve model {self.model!r}: {hint}")

    def _preflight(self) -> None:
        url = f"{self.base_url}/models"
        try:
            status, body, _ = self._request(url, None, min(self.timeout, 10.0))
        except (OSError, http.client.HTTPException) as error:
            raise CardioSTError(
                f"cannot reach the {self.role} server at {self.base_url} ({_describe(error)}): "
                "is the server running? check the URL (it must end in /v1, e.g. http://127.0.0.1:8000/v1)",
                exit_code=1,
            ) from error
        if status in (401, 403):
            raise self._auth_error(status)
        if status != 200:
            logger.debug("%s answered HTTP %d; skipping the model check", url, status)
            return
        try:
            self._served = [str(entry["id"]) for entry in json.loads(body)["data"]]
        except (ValueError, KeyError, TypeError):
            logger.debug("%s did not list models; skipping the model check", url)
            return
        if self._served and not any(m in (self.model, f"{self.model}:latest") for m in self._served):
            raise self._unknown_model_error()

    def _complete(self, text: str, stop: threading.Event) -> str:
        url = f"{self.base_url}/chat/completions"
        payload = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": self.system_prompt},
                {"role": "user", "content": self.prompt.format(text=text)},
            ],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            retry_after = 0.0
            try:
                status, body, headers = self._request(url, payload, self.timeout)
            except (OSError, http.client.HTTPException) as error:
                last = _describe(error)
            else:
                if status == 200:
                    try:
                        return _message_content(json.loads(body))
                    except (ValueError, KeyError, IndexError, TypeError):
                        last = f"malformed answer {body[:200]!r}"
                elif status in (401, 403):
                    raise self._auth_error(status)
                elif status in (400, 404) and _names_unknown_model(body):
                    raise self._unknown_model_error()
                elif status == 404:
                    raise CardioSTError(
                        f"{url} answered 404 Not Found: the server URL must end in /v1 "
                        "(e.g. openai:http://127.0.0.1:8000/v1)",
                        exit_code=2,
                    )
                elif status == 429 or status >= 500:
                    last = f"HTTP {status}: {_snippet(body)}"
                    retry_after = _seconds(headers.get("Retry-After") if headers else None)
                else:
                    raise CardioSTError(
                        f"{url} rejected the request with HTTP {status} ({_snippet(body)}): "
                        "check --model and the server's options",
                        exit_code=1,
                    )
            if attempt == self.max_retries:
                break
            delay = self.backoff * 2**attempt * random.uniform(0.5, 1.5)
            delay = min(max(delay, retry_after), _MAX_DELAY_S)
            logger.debug("retrying %s in %.2fs after %s", url, delay, last)
            if stop.wait(delay):
                raise _Stopped
        raise CardioSTError(
            f"the {self.role} server at {self.base_url} failed {self.max_retries + 1} times (last: {last}): "
            "is the server running? check the URL",
            exit_code=1,
        )

    def stream(self, texts: Sequence[str]) -> Iterator[tuple[int, str]]:
        """Yield ``(index, raw output)`` as requests complete; the first fatal error is raised here."""
        if not len(texts):
            return
        self._preflight()
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(len(texts)):
            todo.put(i)
        done: queue.SimpleQueue[tuple[int, str | None, BaseException | None]] = queue.SimpleQueue()
        stop = threading.Event()

        def work() -> None:
            while not stop.is_set():
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put((i, self._complete(texts[i], stop), None))
                except _Stopped:
                    return
                except BaseException as error:  # reported to the consumer, which raises it
                    done.put((i, None, error))
                    return

        workers = [
            threading.Thread(target=work, daemon=True, name=f"paraphrase-{n}")
            for n in range(min(self.concurrency, len(texts)))
        ]
        for worker in workers:
            worker.start()
        try:
            for _ in range(len(texts)):
                while True:  # a timed wait keeps Ctrl-C responsive on every platform
                    try:
                        i, raw, error = done.get(timeout=0.5)
                        break
                    except queue.Empty:
                        continue
                if error is not None:
                    raise error
                yield i, raw or ""
        finally:
            stop.set()  # workers finish their current request and exit; daemon threads never block exit


def _describe(error: BaseException) -> str:
    reason = getattr(error, "reason", None)  # URLError wraps the socket error
    if isinstance(error, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(reason, BaseException):
        return _describe(reason)
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        return "timed out"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _snippet(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").strip().replace("\n", " ")


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


_UNKNOWN_MODEL = re.compile(
    r"model_not_found|(?:unknown|invalid|no such) model|model\b.{0,100}?(?:does not exist|not found)",
    re.DOTALL,
)


def _names_unknown_model(body: bytes) -> bool:
    """Whether an error body says the model does not exist (vLLM, OpenAI, Ollama, LiteLLM wordings)."""
    return bool(_UNKNOWN_MODEL.search(body.decode("utf-8", "replace").lower()))


def _message_content(answer: dict) -> str:
    content = answer["choices"][0]["message"].get("content")
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def make_paraphraser(spec: str, *, model: str | None = None, **kwargs: Any) -> Paraphraser | None:
    """Build a paraphraser from a command-line spec.

    Args:
        spec: ``hf:MODEL_ID_OR_PATH`` (local transformers), ``openai:URL`` (an OpenAI-compatible server;
            needs ``model``) or ``none`` (no generation: the caller uses existing pairs).
        model: The server's model name for ``openai:``; for ``hf`` it may name the model instead of the spec.
        **kwargs: Passed to [HFParaphraser][cardio_st.data.paraphrase.HFParaphraser] or
            [OpenAIParaphraser][cardio_st.data.paraphrase.OpenAIParaphraser]; ``None`` values mean the
            default.

    Returns:
        The paraphraser, or ``None`` for ``none``.
    """
    kwargs = {name: value for name, value in kwargs.items() if value is not None}
    backend, _, target = (spec or "").strip().partition(":")
    backend = backend.lower()
    if backend == "none" and not target:
        return None
    if backend == "hf":
        if target and model and model != target:
            raise CardioSTError(f"{spec!r} already names the model: leave out --model {model}")
        if not (target or model):
            raise CardioSTError(
                "hf: needs a model: use hf:MODEL_ID_OR_PATH, e.g. hf:Qwen/Qwen3-4B-Instruct-2507"
            )
        return HFParaphraser(target or model, **kwargs)
    if backend == "openai" and target:
        if not model:
            raise CardioSTError(
                f"{spec!r} needs a model name: pass --model with a model the server serves "
                f"(listed at {target.rstrip('/')}/models)"
            )
        return OpenAIParaphraser(target, model, **kwargs)
    raise CardioSTError(
        f"unknown paraphraser {spec!r}: use hf:MODEL_ID_OR_PATH, openai:URL (with --model) or none"
    )


_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_COURTESY = re.compile(r"^(?:sure|certainly|of course|okay|ok|absolutely)\s*[!.,:]+\s*", re.IGNORECASE)
_HERE_IS = re.compile(r"^here(?:['\u2019]s| is| are)\b[^:\n]{0,100}:\s*", re.IGNORECASE)
_LABEL = re.compile(
    r"^[*_#\s]*(?:(?:the |a )?(?:paraphrase[sd]?|rephrased|reworded|rewritten|rewrite)"
    r"(?: (?:sentence|version|text))?|answer)[*_\s]*:[*_\s]*",
    re.IGNORECASE,
)
_QUOTES = {
    '"': '"',
    "'": "'",
    "\u201c": "\u201d",
    "\u2018": "\u2019",
    "\u00ab": "\u00bb",
    "`": "`",
    "**": "**",
}


def clean_output(raw: str) -> str:
    """The paraphrase inside a model's raw answer.

    Removes ``<think>...</think>`` reasoning (and an unclosed or unopened block), preambles such as
    "Sure! Here is a paraphrase:" or "Paraphrase:", keeps the first paragraph only (its line breaks
    become spaces) and strips surrounding quotes.

    Example:
        >>> clean_output('Sure! Here is a paraphrase:\\n\\n"The patient has no fever."\\n\\nI kept it short.')
        'The patient has no fever.'
    """
    text = _THINK_BLOCK.sub("", raw or "")
    if "</think>" in text.lower():  # the template opened the block in the prompt
        text = text[text.lower().rfind("</think>") + len("</think>") :]
    if "<think>" in text.lower():  # cut off while reasoning
        text = text[: text.lower().find("<think>")]
    text = text.strip()
    previous = None
    while text != previous:
        previous = text
        for pattern in (_COURTESY, _HERE_IS, _LABEL):
            text = pattern.sub("", text, count=1).strip()
    paragraph = next((p for p in re.split(r"\n\s*\n", text) if p.strip()), "")
    text = " ".join(paragraph.split())
    changed = True
    while changed and text:
        changed = False
        for opening, closing in _QUOTES.items():
            if (
                len(text) > len(opening) + len(closing)
                and text.startswith(opening)
                and text.endswith(closing)
            ):
                text, changed = text[len(opening) : -len(closing)].strip(), True
    return text


_REFUSALS = re.compile(
    r"^sorry\b|\bI(?:'m| am) (?:sorry|unable|not able)\b|\bI (?:cannot|can't|can not|won't|will not)\b"
    r"|\bI apologi[sz]e\b|\bas an ai\b|\b(?:ai|large) language model\b",
    re.IGNORECASE,
)


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def rejection_reason(
    source: str, paraphrase: str, *, min_length_ratio: float = 0.5, max_length_ratio: float = 2.0
) -> str | None:
    """Why a cleaned paraphrase is unusable, or ``None`` when it is accepted.

    Checks, in order: ``"empty"``; ``"refusal"`` (an "I'm sorry", "I cannot", "As an AI" ... that the
    source does not itself contain); ``"copy"`` (equal to the source ignoring case, punctuation and
    spacing); ``"too short"`` / ``"too long"`` (word count over the source's outside
    ``[min_length_ratio, max_length_ratio]``).

    Example:
        >>> rejection_reason("No chest pain.", "I'm sorry, I can't help with that.")
        'refusal'
    """
    paraphrase = (paraphrase or "").strip()
    if not paraphrase:
        return "empty"
    straight = paraphrase.replace("\u2019", "'")
    match = _REFUSALS.search(straight)
    if match and not re.search(re.escape(match.group(0)), source.replace("\u2019", "'"), re.IGNORECASE):
        return "refusal"
    if _normalised(paraphrase) == _normalised(source):
        return "copy"
    source_words = len(source.split())
    if source_words:
        ratio = len(paraphrase.split()) / source_words
        if ratio < min_length_ratio:
            return "too short"
        if ratio > max_length_ratio:
            return "too long"
    return None


@dataclass(frozen=True)
class ParaphraseResult:
    """One item's outcome: exactly one of ``paraphrase`` and ``rejected`` is set.

    Attributes:
        key: The caller's id of the item.
        text: The source sentence.
        paraphrase: The cleaned, accepted paraphrase, or ``None`` when rejected.
        rejected: Why it was rejected ("empty", "refusal", "copy", "too short", "too long",
            "low similarity"), or ``None``.
    """

    key: str
    text: str
    paraphrase: str | None
    rejected: str | None


def _verdict(
    source: str, raw: str, min_length_ratio: float, max_length_ratio: float
) -> tuple[str | None, str | None]:
    cleaned = clean_output(raw)
    reason = rejection_reason(
        source, cleaned, min_length_ratio=min_length_ratio, max_length_ratio=max_length_ratio
    )
    return (None, reason) if reason else (cleaned, None)


def _similarities(model: Any, sources: list[str], paraphrases: list[str], show_progress: bool) -> list[float]:
    """Cosine similarity of each (source, paraphrase) pair, embedded in batches."""
    options = {"convert_to_tensor": True, "normalize_embeddings": True, "show_progress_bar": show_progress}
    a = model.encode(sources, **options)
    b = model.encode(paraphrases, **options)
    return (a * b).sum(-1).float().cpu().tolist()


def generate_paraphrases(
    texts: Sequence[str],
    paraphraser: Paraphraser,
    checkpoint: str | os.PathLike,
    *,
    keys: Sequence[str] | None = None,
    similarity_model: Any = None,
    min_similarity: float | None = None,
    min_length_ratio: float = 0.5,
    max_length_ratio: float = 2.0,
    show_progress: bool = True,
) -> list[ParaphraseResult]:
    """Paraphrase every text once, resumably: one accepted paraphrase or an explicit rejection per item.

    The checkpoint is a JSONL file. Its first line is a header ``{"format": 1, "paraphraser": name,
    "filters": {...}}`` (the filters of the run that created it, for the record). Every later line is
    one finished item ``{"key", "text", "raw", "paraphrase", "rejected"}``, appended and flushed the
    moment its result arrives and fsynced at least once a second. A rerun skips finished keys (the
    backend is never asked for them again), drops a cut-off or damaged last line (the file is truncated
    back to its last complete line and that item regenerated) and refuses a checkpoint written by
    another paraphraser (unless it holds no items yet) or whose item text changed under the same key.
    Items in the checkpoint whose keys are not among ``keys`` are ignored and kept.

    Filters are re-applied from ``"raw"`` on every run, so changing them costs no generation:
    [clean_output][cardio_st.data.paraphrase.clean_output], then
    [rejection_reason][cardio_st.data.paraphrase.rejection_reason] with the length ratios (the
    verdict written in each line is this one, at the time it was written), then, with a
    ``similarity_model`` and ``min_similarity``, a cosine floor between source and paraphrase
    (``"low similarity"``), computed in one batched pass over all accepted items at the end.

    On Ctrl-C or any error everything already appended stays in the file and the exception propagates;
    rerun the same call to resume. A summary of rejection reasons is logged at the end.

    Args:
        texts: Source sentences.
        paraphraser: The backend ([make_paraphraser][cardio_st.data.paraphrase.make_paraphraser]).
        checkpoint: Path of the JSONL checkpoint (created if missing).
        keys: A unique id per text (default ``"0"``, ``"1"``, ...); resuming matches items by key.
        similarity_model: A SentenceTransformer for the similarity floor.
        min_similarity: Cosine floor; needs ``similarity_model``.
        min_length_ratio: Smallest accepted paraphrase/source word-count ratio.
        max_length_ratio: Largest accepted paraphrase/source word-count ratio.
        show_progress: Show a tqdm bar (total: all items; initial: those already finished).

    Returns:
        One [ParaphraseResult][cardio_st.data.paraphrase.ParaphraseResult] per text, in input order.

    Raises:
        CardioSTError: bad arguments, a checkpoint from another paraphraser or other texts, or a fatal
            backend problem.
    """
    from tqdm.auto import tqdm

    texts = list(texts)
    keys = [str(i) for i in range(len(texts))] if keys is None else [str(k) for k in keys]
    if len(keys) != len(texts):
        raise CardioSTError(f"{len(texts)} texts but {len(keys)} keys: pass one key per text")
    if len(set(keys)) != len(keys):
        duplicate = next(k for k, n in Counter(keys).items() if n > 1)
        raise CardioSTError(f"key {duplicate!r} occurs more than once: give every text a unique key")
    if not 0 <= min_length_ratio <= max_length_ratio:
        raise CardioSTError(
            f"length ratios {min_length_ratio}..{max_length_ratio} are not a range: "
            "use 0 <= min_length_ratio <= max_length_ratio"
        )
    if min_similarity is not None and similarity_model is None:
        raise CardioSTError("min_similarity needs a similarity model: pass one, or leave out min_similarity")
    if not texts:
        return []
    use_similarity = similarity_model is not None and min_similarity is not None
    filters = {
        "min_length_ratio": min_length_ratio,
        "max_length_ratio": max_length_ratio,
        "min_similarity": min_similarity if use_similarity else None,
    }
    path = Path(checkpoint)
    header = {"format": FORMAT_VERSION, "paraphraser": paraphraser.name, "filters": filters}
    store = JsonlCheckpoint(path, header, identity="paraphraser", what="paraphrase")
    finished: dict[str, dict] = {}
    for record in store.records:
        finished.setdefault(record["key"], record)
    raws: list[str | None] = [None] * len(texts)
    try:
        for i, (key, text) in enumerate(zip(keys, texts)):
            record = finished.get(key)
            if record is None:
                continue
            if record.get("text") != text:
                raise CardioSTError(
                    f"{path} has item {key!r} paraphrased from other text ({str(record.get('text'))[:60]!r} "
                    f"vs {text[:60]!r}): the input changed; delete the checkpoint or choose another --out"
                )
            raws[i] = str(record.get("raw") or "")
        ignored = len(finished) - sum(raw is not None for raw in raws)
        if ignored:
            logger.info("%s: %d finished items are not in this input; ignored", path, ignored)
        pending = [i for i, raw in enumerate(raws) if raw is None]
        bar = tqdm(
            total=len(texts),
            initial=len(texts) - len(pending),
            desc="Paraphrasing",
            unit="sentence",
            disable=not show_progress,
            smoothing=0.05,
        )
        with bar:
            if pending:
                stream = paraphraser.stream([texts[i] for i in pending])
                try:
                    for j, raw in stream:
                        i = pending[j]
                        if raws[i] is not None:
                            continue
                        raw = "" if raw is None else str(raw)
                        paraphrase, rejected = _verdict(texts[i], raw, min_length_ratio, max_length_ratio)
                        record = {"key": keys[i], "text": texts[i], "raw": raw}
                        store.append({**record, "paraphrase": paraphrase, "rejected": rejected})
                        raws[i] = raw
                        bar.update(1)
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
        missing = sum(raw is None for raw in raws)
        if missing:
            raise CardioSTError(
                f"{paraphraser.name} returned no output for {missing} texts: rerun to retry them", exit_code=1
            )
    finally:
        store.close()

    verdicts = [
        _verdict(text, raw or "", min_length_ratio, max_length_ratio) for text, raw in zip(texts, raws)
    ]
    if use_similarity:
        accepted = [i for i, (paraphrase, _) in enumerate(verdicts) if paraphrase is not None]
        if accepted:
            scores = _similarities(
                similarity_model,
                [texts[i] for i in accepted],
                [verdicts[i][0] for i in accepted],
                show_progress,
            )
            for i, score in zip(accepted, scores):
                if score < min_similarity:
                    verdicts[i] = (None, "low similarity")
    results = [
        ParaphraseResult(key, text, paraphrase, rejected)
        for key, text, (paraphrase, rejected) in zip(keys, texts, verdicts)
    ]
    reasons = Counter(r.rejected for r in results if r.rejected)
    summary = ", ".join(f"{reason}: {n}" for reason, n in reasons.most_common()) or "none"
    logger.info(
        "paraphrases: %d accepted, %d rejected (%s); %d generated now, %d from %s",
        len(results) - sum(reasons.values()),
        sum(reasons.values()),
        summary,
        len(pending),
        len(texts) - len(pending),
        path,
    )
    if sum(reasons.values()) > len(results) / 2:
        logger.warning(
            "most paraphrases were rejected (%s): check the model, the prompt and the filters", summary
        )
    return results
