"""Three fake LLM relevance judges on 127.0.0.1 for the labelling tests: OpenAI-compatible servers that
grade from a scripted table (the three disagree in known ways), one answering malformed JSON on the first
try of some batches, one slow; each records every (query, passage) pair it is asked about."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

from fake_openai import JsonHandler, serve

DATA = Path(__file__).parent / "fixtures" / "labelling"
MODEL = "judge-model"

#: Grades of judges A, B and C for every pair the pooled candidates can hold.
GRADES = {
    ("q1", "d1"): (3, 3, 3),
    ("q1", "d2"): (3, 2, 3),
    ("q1", "d3"): (0, 0, 0),
    ("q1", "d4"): (0, 0, 1),
    ("q1", "d5"): (0, 1, 0),
    ("q1", "d6"): (1, 0, 0),
    ("q2", "d1"): (0, 0, 0),
    ("q2", "d2"): (0, 0, 0),
    ("q2", "d3"): (1, 1, 2),
    ("q2", "d4"): (3, 3, 2),
    ("q2", "d5"): (0, 0, 0),
    ("q2", "d6"): (0, 2, 1),  # all three differ: a tie
    ("q3", "d1"): (0, 0, 0),
    ("q3", "d2"): (0, 0, 0),
    ("q3", "d3"): (0, 0, 0),
    ("q3", "d4"): (0, 0, 0),
    ("q3", "d5"): (3, 1, 3),  # grades two levels apart: low agreement
    ("q3", "d6"): (1, 1, 1),
}
JUDGES = "ABC"


def _texts(name: str) -> dict[str, str]:
    rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
    return {" ".join(row["text"].split()): row["id"] for row in rows}


class FakeJudge:
    """One judge's server. ``behaviour``: ``"good"``, ``"flaky"`` (malformed JSON on the first answer
    about any batch of query q2), ``"invalid"`` (never JSON) or ``"slow"`` (``delay`` seconds a request)."""

    def __init__(self, judge: str, behaviour: str = "good", delay: float = 0.0) -> None:
        self.column, self.behaviour, self.delay = JUDGES.index(judge), behaviour, delay
        self.asked: list[tuple[str, str, int]] = []  # (query, passage, phase)
        self.phase = 1
        self.lock = threading.Lock()
        self.seen_batches: set[tuple[str, ...]] = set()
        queries, passages = _texts("queries.jsonl"), _texts("corpus.jsonl")
        fake = self

        class Handler(JsonHandler):
            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = request["messages"][1]["content"]
                query = queries[re.search(r"^Query: (.*)$", prompt, flags=re.MULTILINE).group(1)]
                shown = re.findall(r"^\[P\d+\] (.*)$", prompt, flags=re.MULTILINE)
                # A passage edited since (text appended) is still known by its start.
                docs = [next(i for t, i in passages.items() if text.startswith(t)) for text in shown]
                with fake.lock:
                    fake.asked += [(query, doc, fake.phase) for doc in docs]
                    first = (query, *docs) not in fake.seen_batches
                    fake.seen_batches.add((query, *docs))
                time.sleep(fake.delay)
                grades = [
                    {"id": f"P{i}", "grade": GRADES[(query, doc)][fake.column]}
                    for i, doc in enumerate(docs, 1)
                ]
                answer = json.dumps({"query_quality": "ok", "grades": grades})
                if fake.behaviour == "invalid":
                    answer = "Passage 1 looks relevant to me; the others less so."
                elif fake.behaviour == "flaky" and query == "q2" and first:
                    answer = answer[: len(answer) // 2]  # cut off mid-object, as a length limit does
                message = {"role": "assistant", "content": f"```json\n{answer}\n```"}
                self._send(200, {"object": "chat.completion", "choices": [{"index": 0, "message": message}]})

        self.httpd, self.url = serve(Handler)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
