"""Benchmark of the training-data pipelines (CPU, offline): `cardio-st prepare-icd10` wall time, corpus
reading, the paraphrase checkpoint's own overhead (an instant stand-in backend) and triplet building at
CardioEmbed's scale (150k sentences). Leaves out LLM generation speed, which is the server's.

Run:  python benchmarks/bench_prepare.py [--out benchmarks/results/prepare.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGE = """Acute Coronary Syndromes                                   {page}

Primary percutaneous coronary intervention is the preferred reperfu-
sion strategy when it can be performed within {minutes} min of diagnosis in patient {n}.
Patients should receive aspirin {dose} mg p.o. as soon as possible, e.g. in the ambulance.
Unfractionated heparin {units} U/kg i.v. bolus is given during PCI, as Dr. Smith et al. showed
in trial {n} (see Fig. {page}.2).
Figure {page}.1 Timeline of reperfusion therapy.

1. Give oxygen if saturation is below {sat}% in case {n}.
2. Start a high-intensity statin before discharge of patient {n}.
"""


def bench_prepare_icd10(repeats: int) -> dict:
    walls, output = [], ""
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "cardio_st.cli", "prepare-icd10", "--out", out, "--scope", "all"],
                capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"},
            )  # fmt: skip
            walls.append(time.perf_counter() - start)
            if result.returncode != 0:
                raise SystemExit(result.stderr)
            summary = json.loads(Path(out, "summary.json").read_text())
            output = result.stdout
    assert "rows: train" in output
    return {"wall_seconds": walls, "median_seconds": statistics.median(walls), "summary": summary}


def bench_corpus(n_pages: int) -> dict:
    from cardio_st.data.corpus import read_corpus

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        for book in range(7):
            pages = [
                PAGE.format(
                    page=p, minutes=rng.randint(60, 180), n=rng.randrange(10**6), dose=rng.choice([162, 325]),
                    units=rng.randint(50, 100), sat=rng.randint(88, 94),
                )
                for p in range(n_pages // 7)
            ]  # fmt: skip
            Path(folder, f"book{book}.txt").write_text("\n".join(pages), encoding="utf-8")
        size = sum(f.stat().st_size for f in Path(folder).iterdir())
        start = time.perf_counter()
        corpus = read_corpus(folder)
        seconds = time.perf_counter() - start
    return {
        "megabytes": size / 1e6,
        "seconds": seconds,
        "stats": corpus.stats,
        "sentences_per_second": corpus.stats["sentences"] / seconds,
    }


class _Instant:
    """A stand-in backend that answers at once, so only cardio-st's own work is timed."""

    name = "bench:instant"

    def stream(self, texts):
        for i, text in enumerate(texts):
            yield i, "In other words, " + text


def bench_checkpoint(n: int) -> dict:
    from cardio_st.data.paraphrase import generate_paraphrases

    texts = [f"Patient {i} received {i % 90 + 10} mg of aspirin daily for stable angina." for i in range(n)]
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder, "paraphrases.jsonl")
        start = time.perf_counter()
        generate_paraphrases(texts, _Instant(), checkpoint, show_progress=False)
        first = time.perf_counter() - start
        start = time.perf_counter()
        generate_paraphrases(texts, _Instant(), checkpoint, show_progress=False)
        resume = time.perf_counter() - start
        size = checkpoint.stat().st_size
    return {
        "items": n, "first_run_seconds": first, "items_per_second": n / first,
        "rerun_all_finished_seconds": resume, "checkpoint_megabytes": size / 1e6,
    }  # fmt: skip


def bench_triplets(n: int) -> dict:
    from cardio_st.data.triplets import Pair, make_triplets

    rng = random.Random(0)
    words = [f"w{i}" for i in range(5000)]
    pairs = [
        Pair(" ".join(rng.choices(words, k=rng.randint(5, 60))), f"paraphrase {i}", f"book{i % 7}", i)
        for i in range(n)
    ]
    results = {}
    for label, options in {
        "ratio split, length-matched": {"split": "ratio"},
        "ratio split, random": {"split": "ratio", "length_match": False},
    }.items():
        start = time.perf_counter()
        data, _ = make_triplets(pairs, **options)
        results[label] = {
            "seconds": time.perf_counter() - start,
            "rows": {k: len(v) for k, v in data.items()},
        }
    return {"pairs": n, "sources": 7, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/prepare.json")
    args = parser.parse_args()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "prepare_icd10": bench_prepare_icd10(args.repeats),
        "corpus": bench_corpus(7000),
        "checkpoint": bench_checkpoint(20_000),
        "triplets": bench_triplets(150_000),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    icd, corpus, checkpoint = results["prepare_icd10"], results["corpus"], results["checkpoint"]
    print(
        f"prepare-icd10 --scope all: median {icd['median_seconds']:.1f} s "
        f"({', '.join(f'{w:.1f}' for w in icd['wall_seconds'])}); {icd['summary']['rows: train']} train rows"
    )
    print(
        f"read_corpus: {corpus['megabytes']:.1f} MB, {corpus['stats']['sentences']} sentences in "
        f"{corpus['seconds']:.1f} s ({corpus['sentences_per_second']:.0f}/s)"
    )
    print(
        f"checkpoint: {checkpoint['items_per_second']:.0f} items/s; rerun with all finished "
        f"{checkpoint['rerun_all_finished_seconds']:.2f} s; {checkpoint['checkpoint_megabytes']:.1f} MB"
    )
    for label, r in results["triplets"]["results"].items():
        print(f"make_triplets, 150k pairs, {label}: {r['seconds']:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
