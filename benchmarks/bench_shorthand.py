"""Everyday queries side by side (issue 17): each system with and without abbreviation expansion on the
clinical-shorthand test part (overall and by kind), the held-out circulatory ICD-10-CM set and the
held-out all-chapters set, with bootstrap 95% intervals and paired-bootstrap differences.

Run:  python benchmarks/bench_shorthand.py --systems bm25,tfidf,minilm,MPNET_DIR,today=DIR,default \
          [--side test|validation [--validation-fraction 0.1]] [--sets shorthand,cardio,all] \
          [--pairs A:B,...] [--merge FILE.json] [--out FILE.json]

A system is anything ``cardio-st evaluate --model`` accepts (an alias, a folder, tfidf, bm25), optionally
named ``label=SYSTEM``. A model embeds each corpus once: the runs with and without expansion share its
document embeddings. ``--side validation`` scores the validation parts instead (for choices; the
ICD-10-CM sets are then the train-side validation categories, ``--validation-fraction`` of them, as
the models were trained with: 0.3 for ``examples/07_train_default_model.py --validation-fraction 0.3``).
``--merge`` adds the runs of an earlier invocation (same script, same release) to the output and to the
``--pairs`` comparisons: accuracy does not depend on the machine's load, so systems can be scored in two
invocations and compared as one run.
Benchmarks only: no test depends on it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from pathlib import Path

import numpy as np
import sentence_transformers
import torch

from cardio_st.data.icd10 import data_release
from cardio_st.data.shorthand import KINDS
from cardio_st.evaluation.codes import bootstrap_means, code_resamples, percentile_interval
from cardio_st.evaluation.icd10 import evaluate_icd10
from cardio_st.evaluation.shorthand import evaluate_shorthand
from cardio_st.retrieval.base import Encoder
from cardio_st.retrieval.named import load_retriever


class SharedDocuments:
    """A model whose document embeddings are computed once per corpus and reused."""

    def __init__(self, model):
        self.model, self._documents = model, {}

    def encode_query(self, sentences, **kwargs):
        return self.model.encode_query(sentences, **kwargs)

    def encode_document(self, sentences, **kwargs):
        key = hashlib.sha256("\0".join(sentences).encode()).hexdigest()
        if key not in self._documents:
            self._documents[key] = self.model.encode_document(sentences, **kwargs)
        return self._documents[key]


def _run(system, label: str, data_set: str, side: str, expand: bool, validation_fraction: float):
    if data_set == "shorthand":
        return evaluate_shorthand(system, side=side, name=label, expand=expand, batch_size=128)
    scope = "cardio" if data_set == "cardio" else "all"
    return evaluate_icd10(
        system,
        scope,
        side=side,
        validation_fraction=validation_fraction,
        name=label,
        expand=expand,
        batch_size=128,
    )


def paired(row_a: dict, row_b: dict, resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """exact@1 of B minus A over the same queries, with a paired bootstrap 95% interval resampling concepts
    (codes; for shorthand the first accepted code), as cardio_st.evaluation.icd10.paired_bootstrap does."""
    if row_a["units"] != row_b["units"]:
        raise SystemExit(f"{row_a['system']} and {row_b['system']} were scored on different queries")
    differences = np.asarray(row_b["exact"], dtype=float) - np.asarray(row_a["exact"], dtype=float)
    groups, draws = code_resamples(row_a["units"], resamples, seed)
    low, high = percentile_interval(bootstrap_means(differences, groups, draws))
    return {"difference": float(differences.mean()), "low": low, "high": high}


def _cell(row: dict | None, metric: str = "exact@1", kind: str | None = None) -> str:
    if row is None:
        return "not run"
    value = row["by_kind"][kind][metric] if kind else row["metrics"][metric]
    interval = row["by_kind_intervals"][kind][metric] if kind else row["intervals"].get(metric)
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else f"{value:.3f}"


def markdown(by_key: dict[str, dict]) -> str:
    """One row per system and expansion: shorthand overall and by kind, held-out circulatory, all chapters
    (exact@1 with 95% intervals). A later run of the same system, expansion and set replaces an earlier."""
    systems = list(dict.fromkeys((r["system"], r["expansion"]) for r in by_key.values()))
    lines = [
        "| system | expansion | shorthand | abbreviation | lay | terse | circulatory | all chapters |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for system, expansion in systems:
        key = f"{system}{'+expansion' if expansion else ''}"
        shorthand = by_key.get(f"{key}|shorthand")
        kinds = [_cell(shorthand, kind=k) if shorthand else "not run" for k in KINDS]
        cells = [
            _cell(shorthand),
            *kinds,
            _cell(by_key.get(f"{key}|cardio")),
            _cell(by_key.get(f"{key}|all")),
        ]
        lines.append(f"| {system} | {'on' if expansion else 'off'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="bm25,tfidf,minilm,default")
    parser.add_argument("--side", default="test", choices=("test", "validation"))
    parser.add_argument("--sets", default="shorthand,cardio,all")
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="With --side validation, the share of train-side categories the models were trained without.",
    )
    parser.add_argument("--pairs", default="", help="Comma-separated A:B label pairs to compare (B - A).")
    parser.add_argument("--merge", default=None, help="Runs of an earlier invocation to include.")
    parser.add_argument("--out", default="benchmarks/results/shorthand.json")
    args = parser.parse_args()
    earlier = json.loads(Path(args.merge).read_text()) if args.merge else {"runs": [], "commands": []}
    runs = earlier["runs"]
    command = "python benchmarks/bench_shorthand.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if k != "out"
    )
    # Files written before "commands" existed hold one "command".
    commands = [*earlier.get("commands", [earlier["command"]] if "command" in earlier else []), command]
    for entry in args.systems.split(","):
        label, _, source = entry.rpartition("=")
        label = label or Path(source).name or source
        system = load_retriever(source)
        if isinstance(system, Encoder):
            system = SharedDocuments(system)
        for data_set in args.sets.split(","):
            for expand in (False, True):
                start = time.perf_counter()
                result = _run(system, label, data_set, args.side, expand, args.validation_fraction)
                key = f"{label}{'+expansion' if expand else ''}|{data_set}"
                by_kind = getattr(result, "by_kind", {})
                row = {
                    "system": label,
                    "source": source,
                    "expansion": expand,
                    "set": data_set,
                    "side": args.side,
                    "validation_fraction": args.validation_fraction if args.side == "validation" else None,
                    "queries": len(result.codes),
                    "metrics": result.metrics,
                    "intervals": {m: list(i) for m, i in result.intervals.items()},
                    "by_kind": by_kind,
                    "by_kind_intervals": {
                        k: {m: list(i) for m, i in v.items()}
                        for k, v in getattr(result, "by_kind_intervals", {}).items()
                    },
                    "seconds": round(time.perf_counter() - start, 1),
                    "units": [c if isinstance(c, str) else c[0] for c in result.codes],
                    "exact": result.per_query("exact@1").astype(int).tolist(),
                }
                runs.append(row)
                kinds = " ".join(f"{kind}={m['exact@1']:.3f}" for kind, m in by_kind.items())
                print(
                    f"{key:>36} n={len(result.codes):4d} exact@1={result.metrics['exact@1']:.3f} "
                    f"{result.intervals.get('exact@1', '')} {kinds}",
                    flush=True,
                )
    by_key = {f"{r['system']}{'+expansion' if r['expansion'] else ''}|{r['set']}": r for r in runs}
    comparisons = []
    for pair in filter(None, args.pairs.split(",")):
        a, b = pair.split(":")
        for data_set in dict.fromkeys(r["set"] for r in runs):  # merged sets too
            key_a, key_b = f"{a}|{data_set}", f"{b}|{data_set}"
            if key_a in by_key and key_b in by_key:
                difference = paired(by_key[key_a], by_key[key_b])
                comparisons.append({"a": a, "b": b, "set": data_set, **difference})
                print(f"{b} - {a} on {data_set}: {difference}", flush=True)
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}",
        "icd10_release": data_release(),
        "commands": commands,  # this invocation's last, after those of the merged runs
        "runs": runs,
        "comparisons": comparisons,
    }
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(markdown(by_key))


if __name__ == "__main__":
    main()
