"""Fault injection: kill `cardio-st prepare`, `index` and `train` at random points and rerun them, damage
every kind of file cardio-st caches or writes for reuse, and count what was lost. Everything runs as a user
runs it -- fresh `cardio-st` processes -- offline, with a flaky OpenAI-compatible server on 127.0.0.1.

Run:  python benchmarks/bench_faults.py [--kills 5] [--damages 2] [--seed 0] [--out FILE.json]

Each scenario first makes an uninterrupted reference, then for every fault starts from nothing, injects
the fault and reruns the same command until it exits 0 (at most three reruns), and compares the result
with the reference:
- prepare: SIGKILL at a random time while paraphrasing against a server that fails 30% of requests with
  HTTP 500 and answers `content: null` or no choices to 20% more. Lost: reference sentences without their
  paraphrase in the result.
- index: SIGKILL at a random time while embedding a corpus. Lost: rows missing from the index, or whose
  search results differ from the reference.
- train: SIGKILL at a random time while training a LoRA adapter on MiniLM (a local base, offline). Lost:
  adapter tensors not bit-identical to the uninterrupted run's.
- damage: a NaN row, 2,000 flipped bytes or a truncation in the cached ICD-10 index, in the cached merged
  default model, and in a chunk of a partial `index` build; 2,000 flipped bytes in a user's `--index`
  file. A cache must be rebuilt (search answers as the reference, exit 0); a user's file must be refused
  in one line (exit 2) and left byte for byte as it was. Lost: answers that differ, or a changed user file.

Survived: the fault was detected or absorbed and the rerun ended with the reference's result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

QUERIES = ["afib", "heart attack with ST elevation of the anterior wall", "CHF"]


def _env(cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CARDIO_ST_CACHE": str(cache),
        "TOKENIZERS_PARALLELISM": "false",
    }


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cardio_st.cli", *args]


def _run(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def _killed_then_rerun(
    args: list[str], env: dict[str, str], at: float, done: Path
) -> tuple[bool, int, float]:
    """Start ``args``, SIGKILL it after ``at`` seconds (unless it finished), then rerun it until it exits 0
    (at most three times). Returns (killed mid-run, reruns, seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=at)
        killed = False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed = True
    reruns = 0
    while reruns < 3:
        reruns += 1
        result = _run(args, env)
        if result.returncode == 0:
            break
        print(f"    rerun {reruns} exited {result.returncode}: {result.stderr.strip().splitlines()[-1:]}")
    return killed, reruns, time.perf_counter() - started


def _search_json(env: dict[str, str], *extra: str) -> tuple[int, str, list]:
    result = _run(_cli("search", *QUERIES, "--json", "--top-k", "5", *extra), env)
    try:
        answers = json.loads(result.stdout) if result.returncode == 0 else []
    except ValueError:
        answers = []
    return result.returncode, result.stderr, answers


# ------------------------------------------------------------------------------------------- prepare


def _prepare_corpus(folder: Path) -> Path:
    from fake_openai import SENTENCES

    folder.mkdir(parents=True)
    half = len(SENTENCES) // 2
    (folder / "book_a.txt").write_text(" ".join(SENTENCES[:half]))
    (folder / "book_b.txt").write_text(" ".join(SENTENCES[half:]))
    return folder


def _paraphrased(out: Path) -> dict[str, str]:
    from datasets import load_from_disk

    data = load_from_disk(str(out))
    return {row["anchor"]: row["positive"] for split in data for row in data[split]}


def prepare_scenario(work: Path, kills: int, rnd: random.Random) -> dict:
    from fake_openai import MODEL, FakeServer

    fake = FakeServer(delay=0.15, null_rate=0.15, no_choices_rate=0.05)
    corpus = _prepare_corpus(work / "texts")
    env = _env(work / "cache")

    def args(out: Path) -> list[str]:
        return _cli(
            "prepare",
            str(corpus),
            "--out",
            str(out),
            "--paraphraser",
            f"openai:{fake.url}",
            "--model",
            MODEL,
            "--split",
            "ratio",
        )

    started = time.perf_counter()
    reference = _run(args(work / "reference"), env)
    assert reference.returncode == 0, reference.stderr[-2000:]
    wall = time.perf_counter() - started
    expected = _paraphrased(work / "reference")
    rows = []
    for k in range(kills):
        out = work / f"killed-{k}"
        at = rnd.uniform(0.3, 0.95) * wall
        killed, reruns, _ = _killed_then_rerun(args(out), env, at, out)
        got = _paraphrased(out) if out.is_dir() else {}
        lost = sum(1 for anchor, positive in expected.items() if got.get(anchor) != positive)
        rows.append({"kill_at_s": round(at, 1), "killed": killed, "reruns": reruns, "lost": lost})
    fake.close()
    return {
        "scenario": "prepare (kill)",
        "reference_rows": len(expected),
        "reference_s": round(wall, 1),
        "runs": rows,
    }


# ------------------------------------------------------------------------------------------- index


def _corpus(path: Path, n: int) -> Path:
    from cardio_st.data.icd10_codes import load_codes

    codes = load_codes("all", billable_only=True)[:n]
    with path.open("w") as handle:
        for code in codes:
            handle.write(json.dumps({"id": code.code, "text": code.description}) + "\n")
    return path


def _index_answers(index: Path, env: dict[str, str]) -> tuple[int, str, list]:
    return _search_json(env, "--index", str(index))


def index_scenario(work: Path, kills: int, rnd: random.Random, rows: int = 4000) -> dict:
    corpus = _corpus(work / "corpus.jsonl", rows)
    env = _env(work / "cache")

    def args(out: Path) -> list[str]:
        return _cli("index", str(corpus), "--model", "minilm", "--out", str(out))

    started = time.perf_counter()
    reference = _run(args(work / "reference.safetensors"), env)
    assert reference.returncode == 0, reference.stderr[-2000:]
    wall = time.perf_counter() - started
    _, _, expected = _index_answers(work / "reference.safetensors", env)
    results = []
    for k in range(kills):
        out = work / f"killed-{k}.safetensors"
        at = rnd.uniform(0.3, 0.95) * wall
        killed, reruns, _ = _killed_then_rerun(args(out), env, at, out)
        code, _, got = _index_answers(out, env)
        lost = sum(1 for a, b in zip(expected, got) if a != b) + abs(len(expected) - len(got))
        results.append({"kill_at_s": round(at, 1), "killed": killed, "reruns": reruns, "lost": lost})
    return {
        "scenario": "index (kill)",
        "reference_rows": rows,
        "reference_s": round(wall, 1),
        "runs": results,
    }


# ------------------------------------------------------------------------------------------- train


def _pairs(path: Path, n: int = 96) -> Path:
    from cardio_st.data.icd10_codes import load_codes

    codes = [code for code in load_codes("cardio", billable_only=True) if code.inclusion_terms][:n]
    with path.open("w") as handle:
        for code in codes:
            handle.write(json.dumps({"anchor": code.inclusion_terms[0], "positive": code.description}) + "\n")
    return path


def train_scenario(work: Path, kills: int, rnd: random.Random) -> dict:
    from safetensors.torch import load_file

    from cardio_st.models.embedded import embedded_models

    base = work / "minilm"  # a local base folder outside any Hub cache, as on an air-gapped cluster
    shutil.copytree(embedded_models()["minilm"], base)
    data = _pairs(work / "pairs.jsonl")
    env = _env(work / "cache")

    def args(out: Path) -> list[str]:
        return _cli(
            "train",
            "--base",
            str(base),
            "--data",
            str(data),
            "--out",
            str(out),
            "--quantize",
            "none",
            "--batch-size",
            "16",
            "--epochs",
            "2",
            "--save-steps",
            "2",
            "--max-length",
            "32",
        )

    started = time.perf_counter()
    reference = _run(args(work / "reference"), env)
    assert reference.returncode == 0, reference.stderr[-2000:]
    wall = time.perf_counter() - started
    expected = load_file(str(work / "reference" / "final" / "adapter_model.safetensors"))
    results = []
    for k in range(kills):
        out = work / f"killed-{k}"
        at = rnd.uniform(0.3, 0.95) * wall
        killed, reruns, _ = _killed_then_rerun(args(out), env, at, out)
        final = out / "final" / "adapter_model.safetensors"
        got = load_file(str(final)) if final.is_file() else {}
        lost = sum(
            1 for key, value in expected.items() if key not in got or not bool((got[key] == value).all())
        )
        results.append({"kill_at_s": round(at, 1), "killed": killed, "reruns": reruns, "lost": lost})
    return {
        "scenario": "train (kill)",
        "reference_tensors": len(expected),
        "reference_s": round(wall, 1),
        "runs": results,
    }


# ------------------------------------------------------------------------------------------- damage


def _flip(path: Path, rnd: random.Random, count: int = 2000) -> None:
    data = bytearray(path.read_bytes())
    for offset in rnd.sample(range(len(data)), min(count, len(data))):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path, rnd: random.Random) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nan_row(path: Path, rnd: random.Random) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    name = max(tensors, key=lambda key: tensors[key].numel())
    tensors[name][rnd.randrange(tensors[name].shape[0])] = float("nan")
    save_file(tensors, str(path), metadata=metadata)


DAMAGES = {"nan row": _nan_row, "2,000 flipped bytes": _flip, "truncated": _truncate}


def _largest(folder: Path, suffix: str = ".safetensors") -> Path:
    return max(folder.rglob(f"*{suffix}"), key=lambda path: path.stat().st_size)


def damage_scenario(work: Path, damages: int, rnd: random.Random) -> list[dict]:
    cache = work / "cache"
    env = _env(cache)
    code, stderr, expected = _search_json(env)
    assert code == 0, stderr[-2000:]
    rows = []

    def cached(kind: str, find, how: str, fault) -> None:
        target = find()
        fault(target, rnd)
        code, stderr, got = _search_json(env)
        again, _, settled = _search_json(env)  # and the rebuilt cache serves the next search too
        lost = sum(1 for a, b in zip(expected, got) if a != b) + abs(len(expected) - len(got))
        lost += 0 if settled == expected else 1
        rows.append(
            {
                "artifact": kind,
                "damage": how,
                "exit": code,
                "lost": lost,
                "message": stderr.strip().splitlines()[-1:],
            }
        )

    for _ in range(damages):
        for how, fault in DAMAGES.items():
            cached(
                "cached ICD-10 index",
                lambda: _largest(cache / "indexes") if (cache / "indexes").is_dir() else _largest(cache),
                how,
                fault,
            )
        for how in ("2,000 flipped bytes", "truncated"):
            cached("cached merged default model", lambda: _largest(cache / "models"), how, DAMAGES[how])
    # a user's index file: refused in one line, never changed
    corpus = _corpus(work / "corpus.jsonl", 500)
    user_index = work / "notes.safetensors"
    built = _run(_cli("index", str(corpus), "--model", "minilm", "--out", str(user_index)), env)
    assert built.returncode == 0, built.stderr[-2000:]
    for _ in range(damages):
        damaged = work / "damaged.safetensors"
        shutil.copy(user_index, damaged)
        for sidecar in user_index.parent.glob(user_index.name + ".*"):
            shutil.copy(sidecar, work / sidecar.name.replace(user_index.name, damaged.name))
        _flip(damaged, rnd)
        before = damaged.read_bytes()
        code, stderr, _ = _index_answers(damaged, env)
        lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
        lost = 0 if (code == 2 and len(lines) == 1 and damaged.read_bytes() == before) else 1
        rows.append(
            {
                "artifact": "user --index file",
                "damage": "2,000 flipped bytes",
                "exit": code,
                "lost": lost,
                "message": lines[-1:],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--damages", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["prepare", "index", "train", "damage"], action="append")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "faults.json")
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    chosen = args.only or ["prepare", "index", "train", "damage"]
    work = Path(tempfile.mkdtemp(prefix="cardio-st-faults-"))
    scenarios, damage_rows = [], []
    started = time.perf_counter()
    try:
        for name in chosen:
            print(f"{name} ...", flush=True)
            if name == "damage":
                damage_rows = damage_scenario(work / name, args.damages, rnd)
            else:
                function = {"prepare": prepare_scenario, "index": index_scenario, "train": train_scenario}[
                    name
                ]
                (work / name).mkdir()
                scenarios.append(function(work / name, args.kills, rnd))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = []
    for scenario in scenarios:
        runs = scenario["runs"]
        table.append(
            {
                "scenario": scenario["scenario"],
                "runs": len(runs),
                "faults injected": sum(run["killed"] for run in runs),
                "faults survived": sum(run["killed"] and run["lost"] == 0 for run in runs),
                "items lost": sum(run["lost"] for run in runs),
            }
        )
    for artifact in dict.fromkeys(row["artifact"] for row in damage_rows):
        rows = [row for row in damage_rows if row["artifact"] == artifact]
        table.append(
            {
                "scenario": f"damage: {artifact}",
                "runs": len(rows),
                "faults injected": len(rows),
                "faults survived": sum(row["lost"] == 0 for row in rows),
                "items lost": sum(row["lost"] for row in rows),
            }
        )
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU threads",
        "seconds": round(time.perf_counter() - started),
        "table": table,
        "scenarios": scenarios,
        "damage": damage_rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'scenario':<36} runs  injected  survived  lost")
    for row in table:
        counts = f"{row['runs']:>4}  {row['faults injected']:>8}  {row['faults survived']:>8}"
        print(f"{row['scenario']:<36} {counts}  {row['items lost']:>4}")
    print(f"written to {args.out} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
