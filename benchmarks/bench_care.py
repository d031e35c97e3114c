"""CARE side by side: symmetric MiniLM, symmetric MPNet and the aligned MiniLM-query / MPNet-document
retriever on the held-out ICD-10-CM circulatory chapter, their query-encoding latency, and a cold
`cardio-st search --index`.

Run:  python examples/08_care_asymmetric_retriever.py runs/care --document MPNET_DIR   (trains it)
      python benchmarks/bench_care.py --care runs/care/stage1/final --mpnet MPNET_DIR [--out FILE.json]

Quality: exact@1, MRR@10 and the other ICD-10-CM metrics with 95% bootstrap intervals by code, and the
paired-bootstrap difference aligned - MPNet. Latency: ``encode_query`` of the held-out queries one at
a time (batch 1) and 32 at a time, the three query encoders interleaved over several rounds in one
process, median per call, at torch's default thread count and at each ``--threads``; the aligned
retriever's query encoder is loaded alone, as search loads it.
Cold search: wall time of fresh `cardio-st search --index` processes with an empty cardio-st cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from cardio_st.data.icd10 import icd10_eval_set
from cardio_st.evaluation.icd10 import METRICS, evaluate_icd10, paired_bootstrap
from cardio_st.models.default import load_model
from cardio_st.models.routes import load_route
from cardio_st.retrieval.documents import index_documents

QUERY = "heart attack with ST elevation of the anterior wall"


def query_latency(encoders: dict, queries: list[str], rounds: int) -> dict:
    """Median milliseconds per ``encode_query`` call at batch 1 and batch 32, encoders interleaved."""
    full = queries[: len(queries) // 32 * 32]
    times = {name: {"batch 1": [], "batch 32": []} for name in encoders}
    for encoder in encoders.values():  # warm-up: first calls allocate
        encoder.encode_query(queries[:32], batch_size=32)
    for _ in range(rounds):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            for query in queries:
                encoder.encode_query([query], batch_size=1)
            times[name]["batch 1"].append((time.perf_counter() - start) * 1000 / len(queries))
            start = time.perf_counter()
            for begin in range(0, len(full), 32):
                encoder.encode_query(full[begin : begin + 32], batch_size=32)
            times[name]["batch 32"].append((time.perf_counter() - start) * 1000 / (len(full) // 32))
    return {
        name: {kind: {"median_ms": statistics.median(v), "rounds_ms": v} for kind, v in kinds.items()}
        for name, kinds in times.items()
    }


def speedups(latency: dict) -> dict:
    """MPNet's median time over the aligned query encoder's, per batch size."""
    return {
        kind: latency["all-mpnet-base-v2"][kind]["median_ms"]
        / latency["aligned (query encoder alone)"][kind]["median_ms"]
        for kind in ("batch 1", "batch 32")
    }


def cold_search(index: Path, runs: int) -> list[float]:
    """Wall seconds of fresh `cardio-st search --index` processes, each with an empty cardio-st cache."""
    seconds = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "CARDIO_ST_CACHE": cache, "HF_HUB_OFFLINE": "1"}
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "cardio_st.cli", "search", QUERY, "--index", str(index), "--json"],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            seconds.append(time.perf_counter() - start)
    top = json.loads(result.stdout.splitlines()[0])
    print(f"cold search: {[round(s, 2) for s in seconds]} s; first hit {top['id']} {top['text']}", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--care", type=Path, required=True, help="The aligned router (Stage I OUT/final).")
    parser.add_argument("--mpnet", type=Path, required=True, help="all-mpnet-base-v2 folder.")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1],
        help="Thread counts to time query encoding at, besides torch's default (a query server often "
        "runs one thread per worker)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "care.json")
    args = parser.parse_args()

    aligned = SentenceTransformer(str(args.care), device="cpu")
    systems = {
        "all-MiniLM-L6-v2": load_model("minilm", device="cpu")[0],
        "all-mpnet-base-v2": load_model(str(args.mpnet), device="cpu")[0],
        "aligned: MiniLM query / MPNet document": aligned,
    }
    results = {}
    for name, system in systems.items():
        result = evaluate_icd10(system, "cardio", name=name, batch_size=128, bootstrap=args.bootstrap)
        results[name] = result
        print(
            f"{name}: exact@1 {result.metrics['exact@1']:.3f} mrr@10 {result.metrics['mrr@10']:.3f}",
            flush=True,
        )
    mpnet, care = results["all-mpnet-base-v2"], results["aligned: MiniLM query / MPNet document"]
    gains = {m: paired_bootstrap(mpnet, care, m, resamples=args.bootstrap) for m in ("exact@1", "mrr@10")}

    queries = list(icd10_eval_set("cardio")["queries"]["query"])
    encoders = {
        "all-MiniLM-L6-v2": systems["all-MiniLM-L6-v2"],
        "all-mpnet-base-v2": systems["all-mpnet-base-v2"],
        "aligned (query encoder alone)": load_route(args.care, "query", device="cpu"),
    }
    default_threads = torch.get_num_threads()
    latency = {}
    for threads in sorted({default_threads, *args.threads}, reverse=True):  # the default first
        torch.set_num_threads(threads)
        latency[threads] = query_latency(encoders, queries, args.rounds)
    torch.set_num_threads(default_threads)

    with tempfile.TemporaryDirectory() as folder:
        index = Path(folder) / "icd10-cardio.safetensors"
        start = time.perf_counter()
        index_documents(args.care, "icd10:cardio", index, batch_size=64, show_progress=False)
        index_seconds = time.perf_counter() - start
        cold = cold_search(index, args.cold_runs)

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}, "
        f"sentence-transformers {version('sentence-transformers')}",
        "care_model": str(args.care),
        "queries": len(care.codes),
        "quality": {name: {"metrics": r.metrics, "intervals": r.intervals} for name, r in results.items()},
        "aligned_over_mpnet": {m: care.metrics[m] / mpnet.metrics[m] for m in ("exact@1", "mrr@10")},
        "gains_over_mpnet": gains,
        "latency_by_threads": {str(threads): by_model for threads, by_model in latency.items()},
        "speedup_over_mpnet_by_threads": {
            str(threads): speedups(by_model) for threads, by_model in latency.items()
        },
        "index_seconds": index_seconds,
        "cold_search_seconds": cold,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\ncardio, held out: {len(care.codes)} queries")
    print("| system | " + " | ".join(METRICS) + " |")
    print("|---" * (len(METRICS) + 1) + "|")
    for name, r in results.items():
        cells = [f"{r.metrics[m]:.3f} [{r.intervals[m][0]:.3f}, {r.intervals[m][1]:.3f}]" for m in METRICS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for metric, gain in gains.items():
        print(
            f"aligned - MPNet {metric}: {gain['difference']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]"
        )
    print("aligned / MPNet:", {m: round(v, 3) for m, v in report["aligned_over_mpnet"].items()})
    for threads, by_model in latency.items():
        print(f"{threads} thread(s)\n| query encoder | batch 1 (ms) | batch 32 (ms) |\n|---|---:|---:|")
        for name, kinds in by_model.items():
            print(f"| {name} | {kinds['batch 1']['median_ms']:.2f} | {kinds['batch 32']['median_ms']:.1f} |")
        print("speed-up over MPNet:", {k: round(v, 2) for k, v in speedups(by_model).items()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
