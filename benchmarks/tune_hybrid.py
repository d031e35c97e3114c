"""Fusion choices for `cardio-st search --hybrid`, scored on the VALIDATION side of the ICD-10-CM
split (never the held-out side): the model alone, TF-IDF character 3-5-grams alone, and their fusions.

Run:  python benchmarks/tune_hybrid.py MODEL_DIR [--scope all] [--validation-fraction 0.3]

MODEL_DIR must have been trained without the validation categories of that fraction, e.g. by
`python benchmarks/tune_default.py '{"epochs": 3, "lora": false, "lr": 1e-4, "symmetric": true,
"validation_fraction": 0.3}' OUT_DIR` (the default model's recipe; 1,340 validation queries instead of
the 554 of the usual 10%, because one point of exact@1 is what the fusions differ by). Each fusion is
compared with the model alone by a paired bootstrap over codes. Fusions:
- ``score``: cardio_st's HybridRetriever, normalised score fusion (each side's top 100 candidates,
  min-max scaled over its own candidates, a candidate missing from one side scoring 0 there);
- ``rrf``: the same with reciprocal rank fusion (k=60);
- ``union``: both sides' exact scores for every candidate of either side, min-max scaled over that
  union (defined here, not in cardio_st: it did not win).
Appends one JSON line per fusion to benchmarks/results/hybrid_validation.jsonl.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_icd10 import Embedded  # the dense embeddings are computed once for every fusion
from sentence_transformers import SentenceTransformer

from cardio_st.evaluation.icd10 import evaluate_icd10, paired_bootstrap
from cardio_st.retrieval.fusion import HybridRetriever
from cardio_st.retrieval.lexical import TfidfCharRetriever

warnings.filterwarnings("ignore")
torch.set_num_threads(2)


class UnionFusion(HybridRetriever):
    """Score fusion over the union of both sides' candidates, each scored exactly on both sides."""

    def topk(self, queries, k=10):
        queries = list(queries)
        depth = max(self.candidates, k)
        encoded = self.model.encode_query(queries, batch_size=self.batch_size, convert_to_tensor=True)
        encoded = encoded.detach().cpu().float()
        out_scores = np.zeros((len(queries), k))
        out_rows = np.zeros((len(queries), k), dtype=np.int64)
        for start in range(0, len(queries), 64):
            dense = (encoded[start : start + 64] @ self._embeddings.T).numpy()
            lexical = self.lexical.scores(queries[start : start + 64])
            for j in range(len(dense)):
                d, lex = dense[j].astype(np.float64), np.asarray(lexical[j], dtype=np.float64).ravel()
                lexical_rows = np.argpartition(-lex, depth)[:depth]
                rows = np.union1d(np.argpartition(-d, depth)[:depth], lexical_rows[lex[lexical_rows] > 0])
                fused = self.weight * _minmax(d[rows]) + (1 - self.weight) * _minmax(lex[rows])
                order = np.lexsort((rows, -fused))[:k]
                out_rows[start + j], out_scores[start + j] = rows[order], fused[order]
        return out_scores, out_rows


def _minmax(values):
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("--scope", default="all")
parser.add_argument("--validation-fraction", type=float, default=0.3)
parser.add_argument("--score-weights", type=float, nargs="*", default=[0.5, 0.6, 0.7, 0.8, 0.9])
parser.add_argument("--rrf-weights", type=float, nargs="*", default=[0.5, 0.7, 0.8])
parser.add_argument("--union-weights", type=float, nargs="*", default=[0.7, 0.8, 0.85])
args = parser.parse_args()


def evaluate(retriever):
    return evaluate_icd10(
        retriever,
        args.scope,
        side="validation",
        validation_fraction=args.validation_fraction,
        batch_size=128,
        bootstrap=0,
    )


model = Embedded(SentenceTransformer(args.model, device="cpu"))
dense = evaluate(model)
common = {
    "date": time.strftime("%Y-%m-%d"),
    "model": args.model,
    "scope": args.scope,
    "validation_fraction": args.validation_fraction,
    "queries": len(dense.codes),
    "dense exact@1": round(dense.metrics["exact@1"], 4),
}
fusions = [("tfidf alone", TfidfCharRetriever((3, 5)))]
fusions += [(f"score@{w}", HybridRetriever(model, method="score", weight=w)) for w in args.score_weights]
fusions += [(f"rrf@{w}", HybridRetriever(model, method="rrf", weight=w)) for w in args.rrf_weights]
fusions += [(f"union@{w}", UnionFusion(model, method="score", weight=w)) for w in args.union_weights]
with open(Path(__file__).parent / "results" / "hybrid_validation.jsonl", "a") as handle:
    for label, retriever in fusions:
        result = evaluate(retriever)
        gain = paired_bootstrap(dense, result)
        row = {
            **common,
            "fusion": label,
            "exact@1": round(result.metrics["exact@1"], 4),
            "gain over dense (points) [95%]": [
                round(100 * gain[key], 1) for key in ("difference", "low", "high")
            ],
        }
        if label == "tfidf alone":  # how complementary the two views are
            right, right_dense = result.per_query("exact@1") > 0, dense.per_query("exact@1") > 0
            row["right where dense is wrong"] = round(float((right & ~right_dense).mean()), 4)
            row["wrong where dense is right"] = round(float((~right & right_dense).mean()), 4)
        print(json.dumps(row), flush=True)
        handle.write(json.dumps(row) + "\n")
