"""Label your own corpus for retrieval evaluation with several judges, then score models on the labels.

Run: python examples/10_label_your_corpus.py [OUT_DIR] [--judge openai:URL --model NAME ...]
With --judge (three, as CMedTEB used) it asks real LLMs on OpenAI-compatible servers (vLLM, llama.cpp,
Ollama). Without, it runs offline with three stand-in judges -- word-overlap graders, not LLMs, that
answer in the judges' JSON format -- so the whole pipeline runs anywhere in about a minute: pooling,
judging, voting, agreement, the dataset, the expert review file, and evaluating models on the labels.
The corpus is the ICD-10-CM circulatory chapter's descriptions; the queries are a few clinical questions.
"""

import argparse
import json
import re
import tempfile
from pathlib import Path

from cardio_st.evaluation.graded import evaluate_labelled
from cardio_st.labelling.judges import Judge, make_judge
from cardio_st.labelling.pipeline import label_corpus
from cardio_st.models.default import load_model
from cardio_st.retrieval.lexical import BM25Retriever

parser = argparse.ArgumentParser()
parser.add_argument("out", nargs="?", default=tempfile.mkdtemp())
parser.add_argument("--judge", action="append", default=[])
parser.add_argument("--model", action="append", default=[])
args = parser.parse_args()
out = Path(args.out)

QUERIES = {
    "q1": "heart attack involving the front wall of the heart",
    "q2": "irregular heartbeat coming and going",
    "q3": "high blood pressure with kidney disease",
    "q4": "clot in a deep leg vein",
    "q5": "leaky mitral valve not due to rheumatic fever",
}


class OverlapGrader:
    """A stand-in judge: grades by the share of the query's words found in the passage. ``strictness``
    shifts its thresholds, so the three stand-ins disagree the way different LLMs do."""

    def __init__(self, strictness: float) -> None:
        self.strictness = strictness

    def _grade(self, query: str, passage: str) -> int:
        words = {w for w in re.findall(r"[a-z]+", query.lower()) if len(w) > 3}
        share = len(words & set(re.findall(r"[a-z]+", passage.lower()))) / max(len(words), 1)
        return sum(share >= limit + self.strictness for limit in (0.15, 0.35, 0.6))

    def stream(self, prompts):
        for index, prompt in enumerate(prompts):
            query = re.search(r"^Query: (.*)$", prompt, flags=re.MULTILINE).group(1)
            passages = re.findall(r"^\[(P\d+)\] (.*)$", prompt, flags=re.MULTILINE)
            grades = [{"id": pid, "grade": self._grade(query, text)} for pid, text in passages]
            yield index, json.dumps({"query_quality": "ok", "grades": grades})


# --8<-- [start:judges]
if args.judge:  # real LLM judges, e.g. --judge openai:http://127.0.0.1:8000/v1 --model Qwen/Qwen3-32B
    models = iter(args.model if len(args.model) != 1 else args.model * len(args.judge))
    judges = [make_judge(spec, model=next(models, None)) for spec in args.judge]
else:
    judges = [Judge(f"overlap{s:+}", OverlapGrader(s)) for s in (0.0, 0.12, -0.12)]
# --8<-- [end:judges]

out.mkdir(parents=True, exist_ok=True)
(out / "queries.jsonl").write_text(
    "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in QUERIES.items())
)

# --8<-- [start:label]
summary = label_corpus(
    "icd10:cardio",  # or your passages: .jsonl / .csv / .txt / .parquet / a BEIR folder
    out / "queries.jsonl",
    judges,
    out / "labels",
    retrievers=["bm25", "minilm"],  # candidates: the union of both retrievers' top 5
    k=5,
    review_size=20,
    show_progress=False,
)
# --8<-- [end:label]
print(
    f"{summary.pairs} pairs judged; labels by grade {summary.grades}; ties {summary.ties}, "
    f"low agreement {summary.low_agreement}; Fleiss' kappa {summary.agreement['fleiss_kappa']:.3f}"
)
print(f"dataset: {summary.dataset}; expert review file: {summary.review}")

# --8<-- [start:evaluate]
for name, model in (("bm25", BM25Retriever()), ("minilm", load_model("minilm")[0])):
    metrics = evaluate_labelled(model, out / "labels")
    scores = ", ".join(f"{metric} {metrics[metric]:.3f}" for metric in ("ndcg@10", "map@10", "mrr@10"))
    print(f"{name}: {scores}")
# --8<-- [end:evaluate]
