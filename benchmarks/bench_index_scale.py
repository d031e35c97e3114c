"""Benchmark of the index format at scale: 2,000,000 rows with about 500 MB of text and synthetic unit
vectors save, load (verifying every checksum) and search, with wall times and peak memory per phase.
Leaves out the encoder: the vectors are random, the format is what is measured.

Each phase runs in a fresh process, so its peak resident memory (``ru_maxrss``) is its own: ``save``
(making the rows, then ``EmbeddingIndex.save``), ``load`` (``EmbeddingIndex.load``: SHA-256 of both files,
finiteness, Arrow to Python lists) and ``search`` (load, then exact top-10 of 100 queries). It also
shows that format 1 (texts in the safetensors header) cannot hold these texts, and that an index
written in format 1 still loads.

Run:  python benchmarks/bench_index_scale.py [--rows 2000000] [--dim 64]
      [--out benchmarks/results/index_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_WORDS = (
    "acute chronic atrial fibrillation flutter heart failure systolic diastolic hypertension "
    "myocardial infarction anterior wall coronary artery disease angina pectoris unstable stable "
    "with without complication unspecified other specified left right ventricular valve mitral aortic "
    "stenosis insufficiency embolism pulmonary thrombosis vein deep lower extremity patient history "
    "presents reports denies shortness breath chest pain radiating arm jaw exertion rest"
).split()


def _rows(n: int, mean_chars: int) -> tuple[list[str], list[str]]:
    """``n`` ids and texts of ``mean_chars`` characters on average (150 to 350), cut from one long
    pseudo-clinical string so that making them costs little next to what is measured."""
    import random

    generator = random.Random(0)
    base = " ".join(generator.choices(_WORDS, k=2_000_000))
    lengths = [generator.randint(mean_chars - 100, mean_chars + 100) for _ in range(n)]
    starts = [generator.randrange(0, len(base) - 400) for _ in range(n)]
    texts = [f"{i} {base[s : s + length]}" for i, (s, length) in enumerate(zip(starts, lengths))]
    return [f"D{i:07d}" for i in range(n)], texts


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def phase_save(path: Path, rows: int, dim: int, mean_chars: int) -> dict:
    import torch

    from cardio_st.retrieval.index import EmbeddingIndex, rows_file

    start = time.perf_counter()
    ids, texts = _rows(rows, mean_chars)
    embeddings = torch.nn.functional.normalize(
        torch.randn(rows, dim, generator=torch.Generator().manual_seed(0))
    )
    made = time.perf_counter() - start
    index = EmbeddingIndex(
        embeddings, ids, texts, {"kind": "documents", "corpus": "synthetic", "model": "none"}
    )
    start = time.perf_counter()
    index.save(path)
    saved = time.perf_counter() - start
    result = {
        "make_rows_seconds": made,
        "text_megabytes": sum(len(t.encode()) for t in texts) / 1e6,
        "save_seconds": saved,
        "embeddings_file_megabytes": path.stat().st_size / 1e6,
        "rows_file_megabytes": rows_file(path).stat().st_size / 1e6,
        "save_peak_rss_megabytes": _peak_mb(),
    }
    # Format 1 kept ids and texts in the safetensors header, which safetensors caps at 100 MB.
    from safetensors.torch import save_file

    header = {"format_version": 1, "ids": ids, "texts": texts, "metadata": {}}
    try:
        save_file(
            {"embeddings": embeddings},
            str(path.with_name("format1.safetensors")),
            metadata={"cardio_st": json.dumps(header)},
        )
        result["format_1_at_this_size"] = "saved"
    except Exception as error:  # noqa: BLE001 - report whatever safetensors says
        result["format_1_at_this_size"] = f"{type(error).__name__}: {error}"
    path.with_name("format1.safetensors").unlink(missing_ok=True)
    return result


def phase_load(path: Path) -> dict:
    from cardio_st.retrieval.index import EmbeddingIndex, rows_file
    from cardio_st.utils.integrity import file_sha256

    start = time.perf_counter()
    index = EmbeddingIndex.load(path)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    for file in (path, rows_file(path)):
        file_sha256(file)
    hashed = time.perf_counter() - start
    return {
        "rows": len(index),
        "load_seconds": loaded,
        "sha256_both_files_seconds": hashed,
        "load_peak_rss_megabytes": _peak_mb(),
    }


def phase_search(path: Path, queries: int) -> dict:
    import torch

    from cardio_st.retrieval.index import EmbeddingIndex

    start = time.perf_counter()
    index = EmbeddingIndex.load(path)
    loaded = time.perf_counter() - start
    vectors = torch.randn(queries, index.dim, generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    hits = index.search(vectors, top_k=10)
    searched = time.perf_counter() - start
    assert len(hits) == queries and all(len(row) == 10 for row in hits)
    return {
        "queries": queries,
        "search_seconds": searched,
        "search_load_seconds": loaded,
        "search_peak_rss_megabytes": _peak_mb(),
    }


def phase_old_layout() -> dict:
    from cardio_st.retrieval.index import EmbeddingIndex

    fixture = Path(__file__).parent.parent / "tests" / "fixtures" / "index-v1.safetensors"
    index = EmbeddingIndex.load(fixture)
    return {"format_1_fixture_loads": len(index) == 3 and index.texts[0] == "Unspecified atrial fibrillation"}


def _run_phase(args: list[str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--phase", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"phase {args[0]} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result[f"{args[0]}_process_seconds"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--chars", type=int, default=250, help="mean characters per text")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/index_scale.json")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        if name == "save":
            result = phase_save(Path(rest[0]), args.rows, args.dim, args.chars)
        elif name == "load":
            result = phase_load(Path(rest[0]))
        elif name == "search":
            result = phase_search(Path(rest[0]), args.queries)
        else:
            result = phase_old_layout()
        print(json.dumps(result))
        return

    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}",
        "rows": args.rows,
        "dim": args.dim,
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scale.safetensors"
        common = ["--rows", str(args.rows), "--dim", str(args.dim), "--chars", str(args.chars)]
        results.update(_run_phase(["save", str(path), *common]))
        results.update(_run_phase(["load", str(path)]))
        results.update(_run_phase(["search", str(path), "--queries", str(args.queries)]))
    results.update(_run_phase(["old"]))
    results["total_seconds"] = time.perf_counter() - start
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    r = results
    print(f"{r['rows']:,} rows, {r['text_megabytes']:.0f} MB of text, {r['dim']}-d vectors")
    print("| phase | wall | peak RSS |\n|---|---|---|")
    print(
        f"| save (embeddings {r['embeddings_file_megabytes']:.0f} MB + rows "
        f"{r['rows_file_megabytes']:.0f} MB) "
        f"| {r['save_seconds']:.1f} s | {r['save_peak_rss_megabytes']:.0f} MB (with making the rows) |"
    )
    print(
        f"| load, verified (of which SHA-256 of both files {r['sha256_both_files_seconds']:.1f} s) "
        f"| {r['load_seconds']:.1f} s | {r['load_peak_rss_megabytes']:.0f} MB |"
    )
    print(
        f"| search {r['queries']} queries, top 10, exact | {r['search_seconds']:.1f} s "
        f"| {r['search_peak_rss_megabytes']:.0f} MB (with the load) |"
    )
    print(
        f"format 1 at this size: {r['format_1_at_this_size']}; format 1 fixture loads: "
        f"{r['format_1_fixture_loads']}; total {r['total_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
