"""Benchmark of the main job: CLI start-up, cached search wall time, and index-build speed against
plain ``model.encode``, measured side by side. Leaves out quality (see the evaluation benchmarks).

Run:  python benchmarks/bench_search.py [--repeats 5] [--out benchmarks/results/search.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _wall(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr}")
    return elapsed


def bench_cli(repeats: int, env: dict) -> dict:
    cli = shutil.which("cardio-st") or sys.exit("cardio-st is not on PATH: pip install -e .")
    query = "heart attack with ST elevation of the anterior wall"
    help_times = [_wall([cli, "--help"], env) for _ in range(repeats)]
    _wall([cli, "search", query], env)  # builds (or finds) the cached index
    search_times = [_wall([cli, "search", query], env) for _ in range(repeats)]
    return {
        "help_seconds": help_times,
        "help_median": statistics.median(help_times),
        "cached_search_seconds": search_times,
        "cached_search_median": statistics.median(search_times),
    }


def bench_build(repeats: int, n_texts: int) -> dict:
    """Throughput of build_index against model.encode_document on the same texts, interleaved."""
    from cardio_st.data.icd10 import load_codes
    from cardio_st.models.default import load_model
    from cardio_st.retrieval.index import build_index

    model, _ = load_model(None, device="cpu")
    codes = load_codes("all", billable_only=True)
    sample = random.Random(0).sample(codes, n_texts)
    texts, ids = [c.description for c in sample], [c.code for c in sample]
    model.encode_document(texts[:256], batch_size=32)  # warm-up
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(repeats):
            order = [("plain", plain), ("ours", ours)] if run % 2 == 0 else [("ours", ours), ("plain", plain)]
            for name, times in order:
                start = time.perf_counter()
                if name == "plain":
                    model.encode_document(texts, batch_size=32, convert_to_tensor=True)
                else:
                    build_index(
                        model,
                        texts,
                        ids,
                        Path(folder) / f"run{run}.safetensors",
                        key=f"bench-{run}",
                        batch_size=32,
                        show_progress=False,
                    )
                times.append(time.perf_counter() - start)
    ratios = [p / o for p, o in zip(plain, ours)]
    return {
        "texts": n_texts,
        "plain_encode_seconds": plain,
        "build_index_seconds": ours,
        "plain_texts_per_second": n_texts / statistics.median(plain),
        "build_texts_per_second": n_texts / statistics.median(ours),
        "speed_ratio_per_pair": ratios,
        "speed_ratio_median": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--texts", type=int, default=6000, help="descriptions embedded per build run")
    parser.add_argument("--out", default="benchmarks/results/search.json")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}",
        "cli": bench_cli(args.repeats, env),
        "build": bench_build(max(3, args.repeats // 2 + 1), args.texts),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    cli, build = results["cli"], results["build"]
    print("| measure | result | target |\n|---|---|---|")
    print(f"| `cardio-st --help` wall (median of {args.repeats}) | {cli['help_median']:.2f} s | < 1 s |")
    print(
        f"| repeated `cardio-st search` wall, cached index (median of {args.repeats}) | "
        f"{cli['cached_search_median']:.2f} s | < 10 s |"
    )
    print(
        f"| index build vs plain `encode_document`, {build['texts']} texts (median ratio of "
        f"{len(build['speed_ratio_per_pair'])} interleaved pairs) | {build['speed_ratio_median']:.3f} "
        f"({build['build_texts_per_second']:.0f} vs {build['plain_texts_per_second']:.0f} texts/s) "
        "| >= 0.95 |"
    )


if __name__ == "__main__":
    main()
