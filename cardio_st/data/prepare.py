"""The data pipelines behind ``cardio-st prepare`` and ``cardio-st prepare-icd10``: corpus -> sentences
-> paraphrases -> triplets on disk, with a summary of every count. Leaves out the steps themselves
(corpus.py, paraphrase.py, triplets.py, icd10.py), which it only chains.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cardio_st.data.corpus import read_corpus
from cardio_st.data.icd10 import data_release, icd10_eval_set, icd10_pairs, resolve_scope
from cardio_st.data.pairs import FILE_FORMATS
from cardio_st.data.paraphrase import generate_paraphrases
from cardio_st.data.triplets import PAPER_RATIOS, Pair, make_triplets, save_triplets
from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.data.paraphrase import Paraphraser

__all__ = ["CHECKPOINT_NAME", "prepare_corpus", "prepare_icd10", "read_pairs"]

logger = logging.getLogger(__name__)

#: The paraphrase checkpoint inside the output folder; a rerun resumes from it.
CHECKPOINT_NAME = "paraphrases.jsonl"


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Existing pairs (``paraphraser=None``): a .jsonl / .csv / .parquet file (the formats training
    reads), or a folder of them.

    Needs ``anchor`` and ``positive`` columns; ``source`` (optional) names the document each row came
    from, else the file name is the source. Rows with an empty anchor or positive are an error that
    names the file and row.
    """
    from datasets import load_dataset

    path = Path(path)
    if not path.exists():
        raise CardioSTError(
            f"{path} does not exist: pass a folder of texts, or a pairs file with `paraphraser=None`"
        )
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in FILE_FORMATS)
    if not files or any(f.suffix not in FILE_FORMATS for f in files):
        texts = path.suffix in (".txt", ".md", ".pdf") or (
            path.is_dir() and any(p.suffix in (".txt", ".md", ".pdf") for p in path.rglob("*"))
        )
        raise CardioSTError(
            f"{path} holds texts, and `paraphraser=None` needs existing pairs: choose a paraphraser "
            "('openai:URL' with a model name, or 'hf:MODEL')"
            if texts
            else f"{path}: with `paraphraser=None`, pass .jsonl, .csv or .parquet pairs with anchor and "
            "positive columns (and optionally source)"
        )
    pairs = []
    for file in files:
        rows = load_dataset(FILE_FORMATS[file.suffix], data_files=str(file), split="train")
        missing = {"anchor", "positive"} - set(rows.column_names)
        if missing:
            raise CardioSTError(
                f"{file} has columns {rows.column_names}, missing {sorted(missing)}: name the sentence "
                "column 'anchor' and its paraphrase 'positive'"
            )
        sources = rows["source"] if "source" in rows.column_names else [file.name] * len(rows)
        for row, (anchor, positive, source) in enumerate(zip(rows["anchor"], rows["positive"], sources)):
            if not anchor or not str(anchor).strip() or not positive or not str(positive).strip():
                raise CardioSTError(f"{file}, row {row}: empty anchor or positive; fill or remove the row")
            pairs.append(Pair(str(anchor), str(positive), str(source), row))
    return pairs


def prepare_corpus(
    corpus: str | os.PathLike,
    out: str | os.PathLike,
    *,
    paraphraser: Paraphraser | None,
    min_words: int = 3,
    max_words: int = 500,
    skip_unreadable: bool = False,
    split: Literal["source", "ratio"] = "source",
    ratios: Sequence[float] = PAPER_RATIOS,
    seed: int = 0,
    length_match: bool = True,
    mine_with: SentenceTransformer | None = None,
    similarity_model: SentenceTransformer | None = None,
    min_similarity: float | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Turn a folder of clinical texts into CardioEmbed training triplets in ``out``.

    Steps: read and clean the texts into sentences ([read_corpus][cardio_st.data.corpus.read_corpus]),
    paraphrase each one ([generate_paraphrases][cardio_st.data.paraphrase.generate_paraphrases],
    checkpointed in ``out/paraphrases.jsonl`` as results arrive, so a rerun of the same call resumes
    and never regenerates finished sentences), then build triplets with negatives from other sources
    ([make_triplets][cardio_st.data.triplets.make_triplets]) and save them
    ([save_triplets][cardio_st.data.triplets.save_triplets]). With ``paraphraser=None``, ``corpus``
    already holds pairs ([read_pairs][cardio_st.data.prepare.read_pairs]).

    Returns:
        The summary also written to ``out/summary.json``: counts of sentences read, dropped by each
        rule, paraphrases accepted and rejected by reason, triplets per split.
    """
    out = Path(out)
    started = time.perf_counter()
    summary: dict[str, Any] = {"corpus": str(corpus), "paraphraser": getattr(paraphraser, "name", "none")}
    out.mkdir(parents=True, exist_ok=True)
    if paraphraser is None:
        pairs = read_pairs(corpus)
        summary["pairs read"] = len(pairs)
    else:
        sentences = read_corpus(
            corpus, min_words=min_words, max_words=max_words, skip_unreadable=skip_unreadable
        )
        summary.update(sentences.stats)
        results = generate_paraphrases(
            [s.text for s in sentences.sentences],
            paraphraser,
            out / CHECKPOINT_NAME,
            keys=[f"{s.source}#{s.position}" for s in sentences.sentences],
            similarity_model=similarity_model,
            min_similarity=min_similarity,
            show_progress=show_progress,
        )
        rejected = Counter(r.rejected for r in results if r.rejected)
        summary["paraphrases accepted"] = sum(r.paraphrase is not None for r in results)
        summary.update({f"paraphrases rejected: {reason}": n for reason, n in sorted(rejected.items())})
        pairs = [
            Pair(s.text, r.paraphrase, s.source, s.position)
            for s, r in zip(sentences.sentences, results)
            if r.paraphrase is not None
        ]
    if not pairs:
        summary["seconds"] = round(time.perf_counter() - started, 1)
        _write_summary(out, summary)
        reasons = ", ".join(
            f"{k.split(': ')[1]} {v}" for k, v in summary.items() if k.startswith("paraphrases rejected")
        )
        raise CardioSTError(
            f"no pairs from {corpus}: every paraphrase was rejected ({reasons or 'no sentences'}; each "
            f"with its raw output in {out / CHECKPOINT_NAME}); check the paraphrase model and prompt",
            exit_code=1,
        )
    data, provenance = make_triplets(
        pairs, split=split, ratios=ratios, seed=seed, length_match=length_match, mine_with=mine_with
    )
    save_triplets(data, out, provenance)
    summary.update(provenance["counts"])
    summary["seconds"] = round(time.perf_counter() - started, 1)
    _write_summary(out, summary)
    return summary


def prepare_icd10(
    out: str | os.PathLike,
    *,
    scope: str = "all",
    negatives: bool = True,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Write ICD-10-CM training pairs and the held-out evaluation set to ``out``.

    ``out`` gets the pairs ([icd10_pairs][cardio_st.data.icd10.icd10_pairs]: train and validation, from
    train-side categories only) as a ``save_to_disk`` folder that ``cardio-st train --data OUT`` reads,
    plus ``out/parquet/``; ``out/eval/`` gets the evaluation set
    ([icd10_eval_set][cardio_st.data.icd10.icd10_eval_set]) from the held-out categories.

    Returns:
        The summary also written to ``out/summary.json``.
    """
    started = time.perf_counter()
    resolve_scope(scope)  # fail on a bad scope before any work
    data, counts = icd10_pairs(scope, negatives=negatives, validation_fraction=validation_fraction, seed=seed)
    out = Path(out)
    save_triplets(data, out)
    evaluation = icd10_eval_set(scope)
    evaluation.save_to_disk(str(out / "eval"))
    summary = {"release": data_release(), "scope": scope, **counts}
    summary["eval: queries (held-out terms)"] = len(evaluation["queries"])
    summary["eval: corpus (billable codes)"] = len(evaluation["corpus"])
    summary["seconds"] = round(time.perf_counter() - started, 1)
    _write_summary(out, summary)
    return summary
