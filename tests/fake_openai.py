"""A fake OpenAI-compatible chat server on 127.0.0.1 for the LLM-client, paraphrase and prepare tests: slow,
fails about 30% of requests with HTTP 500, drops one connection, optionally answers without content
(``content: null``, empty ``choices``), and records what it is asked."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cardio_st.data.paraphrase import DEFAULT_PROMPT

MODEL = "fake-model"
PREFIX, SUFFIX = DEFAULT_PROMPT.split("{text}")
DRUGS = [
    "aspirin",
    "bisoprolol",
    "ramipril",
    "apixaban",
    "furosemide",
    "atorvastatin",
    "digoxin",
    "amiodarone",
]
CONDITIONS = ["stable angina", "heart failure", "atrial fibrillation"]
SENTENCES = [
    f"Patient {i} received {5 * (i + 1)} mg of {DRUGS[i % len(DRUGS)]} daily for {CONDITIONS[i % 3]}."
    for i in range(40)
]
SPECIAL = {
    "Please REFUSE to rewrite this note about warfarin dosing in elderly patients.": "refusal",
    "Echo shows COPY of normal left ventricular function without wall motion abnormality.": "copy",
    "The EMPTY answer case concerns a patient with no chest pain at rest.": "empty",
    "A LONG answer case: mild mitral regurgitation was seen on echo.": "too long",
}


def _fake_answer(text: str) -> str:
    """What the fake model answers: a reversible rewording, wrapped in the noise real models add."""
    if "REFUSE" in text:
        return "I'm sorry, but I cannot help with that request."
    if "COPY" in text:
        return f'"{text.lower()}"'
    if "EMPTY" in text:
        return "  "
    if "LONG" in text:
        return " ".join([text] * 3)
    body = _reworded(text)
    variant = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 3
    if variant == 1:
        return f'Here is a paraphrase:\n\n"{body}"'
    if variant == 2:
        return f"<think>Keep the dose.</think>\n\n{body}\n\nI kept every number."
    return body


def _reworded(text: str) -> str:
    return "In other words, " + text[0].lower() + text[1:]


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers JSON."""

    def log_message(self, *args):
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed client leaves broken pipes behind


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``handler`` on a free port of 127.0.0.1 in a daemon thread; returns the server and its
    OpenAI-style base URL (``http://127.0.0.1:PORT/v1``)."""
    httpd = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"


class FakeServer:
    """An OpenAI-compatible server on 127.0.0.1: slow, fails about 30% of chat requests with HTTP 500
    (by a hash of text and attempt number, never from the fourth attempt on), drops the first chat
    connection without answering, and records every text it is asked for.

    With ``null_rate`` / ``no_choices_rate``, that share of the answers it does give (by a hash of text
    and attempt number, on every attempt) come back as HTTP 200 with ``content: null`` / with an empty
    ``choices`` list: transient failures, as overloaded servers and proxies send them. ``fail_rate`` is
    the share of HTTP 500s, in tenths (0.3).
    """

    def __init__(
        self,
        *,
        delay: float = 0.02,
        models: list[str] | None = (MODEL,),
        api_key: str | None = None,
        always_fail: bool = False,
        null_rate: float = 0.0,
        no_choices_rate: float = 0.0,
        fail_rate: float = 0.3,
    ):
        self.delay, self.models, self.api_key, self.always_fail = delay, models, api_key, always_fail
        self.null_rate, self.no_choices_rate, self.fail_rate = null_rate, no_choices_rate, fail_rate
        self.nulls = self.no_choices = 0  # answers sent without content / without choices
        self.asked: list[str] = []
        self.systems: list[str | None] = []  # the system message of each chat request, if any
        self.attempts: Counter[str] = Counter()
        self.failures = self.drops = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(JsonHandler):
            def _authorised(self) -> bool:
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._send(401, {"error": {"message": "Invalid API key"}})
                    return False
                return True

            def do_GET(self):
                if self.path != "/v1/models" or fake.models is None:
                    self._send(404, {"error": "Not Found"})
                elif self._authorised():
                    self._send(
                        200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]}
                    )

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": "Not Found"})
                    return
                if not self._authorised():
                    return
                if request["model"] != MODEL:
                    message = f"The model `{request['model']}` does not exist."
                    self._send(404, {"error": {"message": message, "type": "NotFoundError", "code": 404}})
                    return
                *system, user = request["messages"]
                assert [m["role"] for m in system] in ([], ["system"]) and user["role"] == "user"
                text = user["content"].removeprefix(PREFIX).removesuffix(SUFFIX)
                digest = int(hashlib.sha256(text.encode()).hexdigest(), 16)
                with fake.lock:
                    fake.asked.append(text)
                    fake.systems.append(system[0]["content"] if system else None)
                    attempt = fake.attempts[text]
                    fake.attempts[text] += 1
                    drop = fake.drops == 0
                    fake.drops += drop
                    unlucky = int(hashlib.sha256(f"{text}|{attempt}".encode()).hexdigest(), 16) % 10 < round(
                        fake.fail_rate * 10
                    )
                    fail = fake.always_fail or (not drop and attempt < 3 and unlucky)
                    fake.failures += fail
                time.sleep(fake.delay + (digest % 30) / 1000)
                if drop:  # close the socket without a word
                    self.close_connection = True
                    return
                if fail:
                    self._send(500, {"error": "overloaded"})
                    return
                roll = int(hashlib.sha256(f"{text}|{attempt}|answer".encode()).hexdigest(), 16) % 1000 / 1000
                null = roll < fake.null_rate
                empty = not null and roll < fake.null_rate + fake.no_choices_rate
                with fake.lock:
                    fake.nulls += null
                    fake.no_choices += empty
                answer = {
                    "message": {"role": "assistant", "content": None if null else _fake_answer(text)},
                    "finish_reason": "stop",
                }
                choices = [] if empty else [{"index": 0, **answer}]
                self._send(200, {"object": "chat.completion", "choices": choices})

        self.httpd, self.url = serve(Handler)

    def forget(self) -> None:
        with self.lock:
            self.asked.clear()
            self.systems.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
