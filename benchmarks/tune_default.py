"""Hyperparameter search for the new embedded default (issue 5): fine-tune all-MiniLM-L6-v2 on the
ICD-10-CM train-side pairs and score exact@1 on the VALIDATION side (never the held-out side).

Run:  python benchmarks/tune_default.py '{"epochs": 3, "lora": false, "lr": 5e-5}' OUT_DIR
Appends one JSON line to benchmarks/results/default_model_search.jsonl. Work in progress.
"""

import json
import sys
import time
import warnings
from pathlib import Path

import torch
from datasets import DatasetDict
from transformers import set_seed

from cardio_st.data.icd10 import icd10_eval_set, icd10_pairs
from cardio_st.models import cardioembed, embedded_models
from cardio_st.search import topk
from cardio_st.training import train

warnings.filterwarnings("ignore")
torch.set_num_threads(2)
cfg = json.loads(sys.argv[1])
out = sys.argv[2]
folder = str(embedded_models()["minilm"])


def exact_at_1(model, ev):
    q, c = ev["queries"], ev["corpus"]
    t = time.perf_counter()
    Q = model.encode_query(q["query"], batch_size=128, convert_to_tensor=True)
    D = model.encode_document(c["description"], batch_size=128, convert_to_tensor=True)
    _, idx = topk(Q, D, 10)
    codes = c["code"]
    top = [[codes[j] for j in row] for row in idx.tolist()]
    ex = sum(t[0] == g for t, g in zip(top, q["code"])) / len(top)
    cat = sum(t[0][:3] == g[:3] for t, g in zip(top, q["code"])) / len(top)
    r10 = sum(g in t for t, g in zip(top, q["code"])) / len(top)
    return {"exact@1": ex, "category@1": cat, "recall@10": r10, "s": time.perf_counter() - t}


ev_name = cfg.get("eval", "validation")
ev = icd10_eval_set(cfg.get("eval_scope", "all"), side=ev_name)
set_seed(cfg.get("seed", 42))
if cfg.get("epochs", 0) == 0:
    model = cardioembed(
        folder,
        base_model_id="sentence-transformers/all-MiniLM-L6-v2",
        lora=False,
        quantization=None,
        max_seq_length=64,
        device="cpu",
    )
    print(json.dumps({"cfg": cfg, **exact_at_1(model, ev)}), flush=True)
    sys.exit()
data, _ = icd10_pairs("all", negatives=cfg.get("negatives", True))
train_data = DatasetDict({"train": data["train"]})
model = cardioembed(
    folder,
    base_model_id="sentence-transformers/all-MiniLM-L6-v2",
    lora=cfg.get("lora", True),
    r=cfg.get("r", 16),
    lora_alpha=cfg.get("alpha", 32),
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
    **exact_at_1(model, ev),
}
print(json.dumps(row), flush=True)
with open(Path(__file__).parent / "results" / "default_model_search.jsonl", "a") as handle:
    handle.write(json.dumps(row) + "\n")
