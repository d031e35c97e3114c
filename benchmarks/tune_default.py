"""Hyperparameter search for the new embedded default (issue 5): fine-tune all-MiniLM-L6-v2 on the
ICD-10-CM train-side pairs and score exact@1 on the VALIDATION side (never the held-out side).

Run:  python benchmarks/tune_default.py '{"epochs": 3, "lora": false, "lr": 5e-5}' OUT_DIR
      python benchmarks/tune_default.py '{"load": "MODEL_DIR", "hybrid": [0.5, 0.7, 0.9]}' -
The first trains and scores; the second scores a saved model, and the hybrid (score fusion with
TF-IDF character n-grams) at each dense weight listed. ``"validation_fraction": 0.3`` holds back 30%
of the train-side categories instead of 10% (trained and scored alike). Each run appends a JSON line
to benchmarks/results/default_model_search.jsonl.
"""

import json
import sys
import time
import warnings
from pathlib import Path

import torch
from datasets import DatasetDict
from transformers import set_seed

from cardio_st.data.icd10 import icd10_pairs
from cardio_st.evaluation.icd10 import evaluate_icd10
from cardio_st.models import cardioembed, embedded_models
from cardio_st.training.trainer import train

warnings.filterwarnings("ignore")
torch.set_num_threads(2)
cfg = json.loads(sys.argv[1])
out = sys.argv[2]
folder = str(embedded_models()["minilm"])


def exact_at_1(model, ev_name, scope):
    t = time.perf_counter()
    result = evaluate_icd10(
        model, scope, side=ev_name, batch_size=128, bootstrap=0, validation_fraction=fraction
    )
    keep = ("exact@1", "category@1", "recall@10")
    return {**{k: result.metrics[k] for k in keep}, "s": time.perf_counter() - t}


def log(row):
    print(json.dumps(row), flush=True)
    with open(Path(__file__).parent / "results" / "default_model_search.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")


ev_name = cfg.get("eval", "validation")
scope = cfg.get("eval_scope", "all")
fraction = cfg.get("validation_fraction", 0.1)  # share of train-side categories held back
set_seed(cfg.get("seed", 42))
if "load" in cfg:
    from bench_icd10 import Embedded  # one embedding pass shared by the dense and every hybrid evaluation
    from sentence_transformers import SentenceTransformer

    from cardio_st.retrieval.fusion import HybridRetriever

    model = Embedded(SentenceTransformer(cfg["load"], device="cpu"))
    row = {"date": time.strftime("%Y-%m-%d"), "cfg": cfg, **exact_at_1(model, ev_name, scope)}
    for weight in cfg.get("hybrid", []):
        hybrid = HybridRetriever(model, method="score", weight=weight, batch_size=128)
        row[f"hybrid@{weight}"] = exact_at_1(hybrid, ev_name, scope)["exact@1"]
    log(row)
    sys.exit()
if cfg.get("epochs", 0) == 0:
    model = cardioembed(
        folder,
        base_model_id="sentence-transformers/all-MiniLM-L6-v2",
        lora=False,
        quantization=None,
        max_seq_length=64,
        device="cpu",
    )
    print(json.dumps({"cfg": cfg, **exact_at_1(model, ev_name, scope)}), flush=True)
    sys.exit()
data, _ = icd10_pairs(
    "all",
    negatives=cfg.get("negatives", True),
    notes=cfg.get("notes", False),
    validation_fraction=fraction,
)
train_data = DatasetDict({"train": data["train"]})
model = cardioembed(
    folder,
    base_model_id="sentence-transformers/all-MiniLM-L6-v2",
    lora=cfg.get("lora", True),
    r=cfg.get("r", 16),
    lora_alpha=cfg.get("alpha", 2 * cfg.get("r", 16)),
    quantization=None,
    max_seq_length=64,
    device="cpu",
)
t = time.perf_counter()
res = train(
    model,
    train_data,
    out,
    epochs=cfg.get("epochs", 1),
    batch_size=cfg.get("batch", 64),
    lr=cfg.get("lr", 2e-4),
    temperature=cfg.get("temperature", 0.05),
    symmetric=cfg.get("symmetric", False),
    seed=cfg.get("seed", 42),
    save_steps=10**6,
    logging_steps=50,
    resume=False,
    show_progress=False,
)
tt = time.perf_counter() - t
row = {
    "date": time.strftime("%Y-%m-%d"),
    "cfg": cfg,
    "train_s": round(tt, 1),
    "steps": res.steps,
    **exact_at_1(model, ev_name, scope),
}
log(row)
