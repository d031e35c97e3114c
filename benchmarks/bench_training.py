"""Benchmark of CardioEmbed training parts on all-MiniLM-L6-v2 (CPU): LoRA against full fine-tuning
(steps/s and peak memory, each run in its own process), and encode throughput of a cardio-st built
model against the same model built with plain sentence-transformers. Leaves out quality.

Run:  python benchmarks/bench_training.py [--steps 30] [--repeats 3] [--out benchmarks/results/training.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

_TRAIN_CHILD = r"""
import json, resource, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
mode, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
from datasets import Dataset, DatasetDict
from transformers import set_seed
from cardio_st.data.icd10 import load_codes
from cardio_st.models import cardioembed, embedded_models
from cardio_st.training.trainer import train
codes = load_codes("all", billable_only=True, split="train")
pairs = [(term, c.description) for c in codes for term in c.alternative_terms]
columns = {"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]}
data = DatasetDict({"train": Dataset.from_dict(columns)})
set_seed(0)
model = cardioembed(str(embedded_models()["minilm"]), base_model_id="sentence-transformers/all-MiniLM-L6-v2",
                    lora=(mode == "lora"), quantization=None, max_seq_length=64, device="cpu")
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory() as out:
    result = train(model, data, out, batch_size=batch, max_steps=steps, save_steps=10**6, logging_steps=10**6,
                   show_progress=False, lr=2e-4 if mode == "lora" else 2e-5)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mode": mode, "steps": result.steps, "seconds": result.seconds, "trainable": trainable,
                  "rss_after_load_mb": baseline / 1024, "peak_rss_mb": peak / 1024}))
"""


def bench_training(steps: int, batch: int, repeats: int) -> dict:
    runs = []
    for repeat in range(repeats):
        for mode in ("lora", "full") if repeat % 2 == 0 else ("full", "lora"):
            result = subprocess.run(
                [sys.executable, "-c", _TRAIN_CHILD, mode, str(steps), str(batch)],
                capture_output=True,
                text=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )
            if result.returncode != 0:
                raise SystemExit(result.stderr[-3000:])
            runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    summary = {}
    for mode in ("lora", "full"):
        mine = [r for r in runs if r["mode"] == mode]
        summary[mode] = {
            "steps_per_second": statistics.median(r["steps"] / r["seconds"] for r in mine),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in mine),
            "training_rss_mb": statistics.median(r["peak_rss_mb"] - r["rss_after_load_mb"] for r in mine),
            "trainable_parameters": mine[0]["trainable"],
        }
    return {"batch_size": batch, "steps": steps, "max_seq_length": 64, "runs": runs, "summary": summary}


def bench_encode(repeats: int, n_texts: int) -> dict:
    """Same architecture built two ways; throughput measured interleaved in one process."""
    import random

    from peft import LoraConfig
    from sentence_transformers import SentenceTransformer

    from cardio_st.data.icd10 import load_codes
    from cardio_st.models import cardioembed, embedded_models

    folder = str(embedded_models()["minilm"])
    texts = [c.description for c in random.Random(0).sample(load_codes("all", billable_only=True), n_texts)]
    ours = cardioembed(
        folder,
        base_model_id="sentence-transformers/all-MiniLM-L6-v2",
        quantization=None,
        max_seq_length=256,
        device="cpu",
    )
    plain = SentenceTransformer(folder, device="cpu")
    plain.add_adapter(LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"))
    ours_full = cardioembed(folder, lora=False, quantization=None, max_seq_length=256, device="cpu")
    plain_full = SentenceTransformer(folder, device="cpu")
    pairs = {"lora": (ours, plain), "no adapter": (ours_full, plain_full)}
    for model in (ours, plain, ours_full, plain_full):
        model.encode(texts[:64])
    results = {}
    for name, (a, b) in pairs.items():
        times = {"cardio-st": [], "plain": []}
        for repeat in range(repeats):
            order = [("cardio-st", a), ("plain", b)] if repeat % 2 == 0 else [("plain", b), ("cardio-st", a)]
            for label, model in order:
                start = time.perf_counter()
                model.encode(texts, batch_size=32)
                times[label].append(time.perf_counter() - start)
        ratios = [p / o for p, o in zip(times["plain"], times["cardio-st"])]
        results[name] = {
            "cardio_st_texts_per_second": n_texts / statistics.median(times["cardio-st"]),
            "plain_texts_per_second": n_texts / statistics.median(times["plain"]),
            "ratio_per_pair": ratios,
            "ratio_median": statistics.median(ratios),
        }
    return {"texts": n_texts, "max_seq_length": 256, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--out", default="benchmarks/results/training.json")
    args = parser.parse_args()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "training": bench_training(args.steps, args.batch_size, args.repeats),
        "encode": bench_encode(max(args.repeats, 5), args.texts),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    training, encode = results["training"]["summary"], results["encode"]["results"]
    print("| run | steps/s | peak RSS (MB) | RSS growth while training (MB) | trainable parameters |")
    print("|---|---:|---:|---:|---:|")
    for mode in ("lora", "full"):
        t = training[mode]
        print(
            f"| {mode} | {t['steps_per_second']:.2f} | {t['peak_rss_mb']:.0f} | {t['training_rss_mb']:.0f} | "
            f"{t['trainable_parameters']:,} |"
        )
    print("\n| model | cardio-st texts/s | plain texts/s | ratio (median, per pair) |\n|---|---:|---:|---|")
    for name, e in encode.items():
        pairs = ", ".join(f"{r:.3f}" for r in e["ratio_per_pair"])
        print(
            f"| {name} | {e['cardio_st_texts_per_second']:.0f} | {e['plain_texts_per_second']:.0f} | "
            f"{e['ratio_median']:.3f} ({pairs}) |"
        )


if __name__ == "__main__":
    main()
