"""Text generation through an OpenAI-compatible ``/chat/completions`` server (vLLM, TGI, llama.cpp, Ollama):
concurrent requests, retries with backoff, errors that name the fix. Leaves out local models (local.py).
"""

from __future__ import annotations

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
from collections.abc import Iterator, Sequence
from typing import Any

from cardio_st.errors import CardioSTError
from cardio_st.llm.base import Unanswered, prompt_id

__all__ = ["OpenAIGenerator"]

logger = logging.getLogger(__name__)

_MAX_DELAY_S = 60.0  # cap of one backoff wait


class _Stopped(Exception):
    """The consumer went away: a worker stops without reporting."""


class OpenAIGenerator:
    """Generates through an OpenAI-compatible ``/chat/completions`` endpoint (vLLM, TGI, llama.cpp, Ollama).

    ``base_url`` must include the API version prefix, e.g. ``http://127.0.0.1:8000/v1``. Before the first
    request a preflight ``GET {base_url}/models`` checks that the server answers and serves ``model``
    (a server without ``/models`` is accepted). Up to ``concurrency`` requests run at once in daemon
    threads; results are yielded as they complete.

    Each request is retried on timeouts, connection errors (refused, reset, dropped without an answer),
    HTTP 429 and 5xx, and answers without content (``content: null`` or an empty ``choices`` list, which
    overloaded servers and proxies send): at most ``max_retries`` retries after the first attempt,
    waiting ``backoff * 2**attempt`` seconds times a random jitter in [0.5, 1.5) (at most 60 s; a longer
    ``Retry-After`` is honoured up to 60 s). A text whose attempts all failed but at least one of which
    came back without content is yielded as [Unanswered][cardio_st.llm.base.Unanswered] (the server
    works; the job records it as retryable and goes on); a server that never answered is an error.
    Other answers are fatal at once: 401/403 (API key), 404/400 naming an unknown model, any other 4xx.
    A refusal in the ``refusal`` field is returned as the answer. Reasoning models: ``<think>`` blocks
    come back in the raw output (the jobs remove them) and count against ``max_tokens``.

    Args:
        base_url: Server URL ending in ``/v1``.
        model: Model name the server serves (see ``{base_url}/models``).
        api_key: Bearer token; default ``$OPENAI_API_KEY`` (local servers usually need none).
        prompt: Template of the user message, with a ``{text}`` field (default: the text alone).
        concurrency: Requests in flight at once.
        timeout: Seconds per socket operation of a request (the preflight waits at most 10 s).
        max_retries: Retries of one request before giving up.
        backoff: Base of the exponential backoff, in seconds.
        max_tokens: Generation length limit.
        temperature: Sampling temperature.
        system_prompt: The system message; ``None`` sends none.
        role: What the server is for, in error messages (``"paraphrase"``, ``"judge"``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        prompt: str = "{text}",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_tokens: int = 256,
        temperature: float = 0.7,
        system_prompt: str | None = None,
        role: str = "LLM",
    ) -> None:
        if not re.match(r"https?://", base_url or ""):
            raise CardioSTError(
                f"{role} server URL {base_url!r} is not an http(s) URL: use e.g. openai:http://127.0.0.1:8000/v1"
            )
        if not model:
            raise CardioSTError(f"no model name for the server at {base_url}: pass `model='NAME'`")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.prompt, self.system_prompt, self.role = prompt, system_prompt, role
        self.name = f"openai:{model}#prompt={prompt_id(prompt, system_prompt)}"
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
            "set OPENAI_API_KEY or pass `api_key='KEY'`",
            exit_code=2,
        )

    def _unknown_model_error(self) -> CardioSTError:
        if self._served:
            offered = ", ".join(self._served[:20]) + (", ..." if len(self._served) > 20 else "")
            hint = f"pass `model={self._served[0]!r}` or another model it serves: {offered}"
        else:
            hint = f"pass `model='NAME'` with a model it serves (see {self.base_url}/models)"
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

    def _complete(self, text: str, stop: threading.Event) -> str | Unanswered:
        url = f"{self.base_url}/chat/completions"
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        payload = {
            "model": self.model,
            "messages": [*messages, {"role": "user", "content": self.prompt.format(text=text)}],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        last, answered = "no attempt", False
        for attempt in range(self.max_retries + 1):
            retry_after = 0.0
            try:
                status, body, headers = self._request(url, payload, self.timeout)
            except (OSError, http.client.HTTPException) as error:
                last = _describe(error)
            else:
                if status == 200:
                    try:
                        content = _message_content(json.loads(body))
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                        last = f"malformed answer {body[:200]!r}"
                    else:
                        if isinstance(content, str):
                            return content
                        last, answered = content.reason, True
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
                        f"check `model={self.model!r}` and the server's options",
                        exit_code=1,
                    )
            if attempt == self.max_retries:
                break
            delay = self.backoff * 2**attempt * random.uniform(0.5, 1.5)
            delay = min(max(delay, retry_after), _MAX_DELAY_S)
            logger.debug("retrying %s in %.2fs after %s", url, delay, last)
            if stop.wait(delay):
                raise _Stopped
        if answered:  # the server works but gave no content: transient, the job asks again later
            logger.debug("no answer from %s after %d attempts (last: %s)", url, self.max_retries + 1, last)
            return Unanswered(f"{last} ({self.max_retries + 1} attempts)")
        raise CardioSTError(
            f"the {self.role} server at {self.base_url} failed {self.max_retries + 1} times (last: {last}): "
            "is the server running? check the URL",
            exit_code=1,
        )

    def stream(self, texts: Sequence[str]) -> Iterator[tuple[int, str | Unanswered]]:
        """Yield ``(index, raw output)`` as requests complete (an [Unanswered][cardio_st.llm.base.Unanswered]
        for a text that got no content); the first fatal error is raised here."""
        if not len(texts):
            return
        self._preflight()
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(len(texts)):
            todo.put(i)
        done: queue.SimpleQueue[tuple[int, str | Unanswered | None, BaseException | None]] = (
            queue.SimpleQueue()
        )
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
            threading.Thread(target=work, daemon=True, name=f"{self.role}-{n}")
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
                yield i, raw if isinstance(raw, Unanswered) else (raw or "")
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


def _message_content(answer: dict) -> str | Unanswered:
    """The answer's text; [Unanswered][cardio_st.llm.base.Unanswered] when it has no choice or its
    content is null or missing (a refusal field is the text then). Other shapes raise."""
    choices = answer["choices"]
    if not choices:
        return Unanswered("an answer with no choices")
    message = choices[0]["message"]
    content = message.get("content")
    if content is None and isinstance(message.get("refusal"), str) and message["refusal"].strip():
        return message["refusal"]
    if content is None:
        finish = choices[0].get("finish_reason")
        return Unanswered("an answer with content null" + (f" (finish_reason {finish})" if finish else ""))
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""
