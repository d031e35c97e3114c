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
from cardio_st.data.triplets import PAPER_RATIOS, Pair, _split_pairs, make_triplets, save_triplets
from cardio_st.errors import CardioSTError
from cardio_st.utils.files import claim_folder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.data.paraphrase import Paraphraser

__all__ = ["CHECKPOINT_NAME", "UNANSWERED", "prepare_corpus", "prepare_icd10", "read_pairs"]

logger = logging.getLogger(__name__)

#: The paraphrase checkpoint inside the output folder; a rerun resumes from it.
CHECKPOINT_NAME = "paraphrases.jsonl"

UNANSWERED = "paraphrases without an answer (rerun to ask again)"
"""The summary key counting sentences that got no answer (transient failures, asked again on a rerun)."""


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    path = out / "summary.json"
    path.unlink(missing_ok=True)  # replaced, never written through a link to a file elsewhere
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def _json_head(path: Path) -> dict[str, Any]:
    """The JSON object on the first line of ``path`` (or the whole file), or ``{}``."""
    try:
        with open(path, encoding="utf-8") as handle:
            head = handle.readline() if path.suffix == ".jsonl" else handle.read()
        value = json.loads(head)
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _is_prepare_folder(folder: Path) -> bool:
    """Whether an unmarked folder is an earlier ``prepare`` run's: its paraphrase checkpoint, or its
    summary (a labelling run's or prepare-icd10's summary is not)."""
    summary = _json_head(folder / "summary.json")
    return "paraphraser" in _json_head(folder / CHECKPOINT_NAME) or {"corpus", "paraphraser"} <= set(summary)


def _is_icd10_folder(folder: Path) -> bool:
    """Whether an unmarked folder is an earlier ``prepare-icd10`` run's, by its summary."""
    return {"release", "scope"} <= set(_json_head(folder / "summary.json"))


def _check_split(sentences: Sequence[Any], split: str, ratios: Sequence[float], seed: int) -> None:
    """The split's checks on the sentences before any paraphrase is asked for: the ratios, enough sources
    for every split, no split of a single source (rejected paraphrases can still empty one later)."""
    pairs = [Pair(s.text, s.text, s.source, s.position) for s in sentences]
    for name, members in _split_pairs(pairs, split, ratios, seed, keyword="split").items():
        sources = {pair.source for pair in members}
        if len(sources) < 2:
            raise CardioSTError(
                f"the {name} split would hold {len(sources) or 'no'} source"
                f"{f' ({next(iter(sources))})' if sources else ''}: its negatives must come from another "
                "source of the same split; add sources or change `ratios=...`"
                + ("" if split == "ratio" else ", or use `split='ratio'`")
            )


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
    retry_rejected: bool = False,
    retry_unparsed: bool = False,
    overwrite: bool = False,
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

    The split is checked on the sentences before any paraphrase is asked for, so a corpus with too few
    sources for ``split`` and ``ratios`` fails at once. A sentence the paraphraser got no answer for
    (``content: null`` and other transient failures, after its retries) is counted under
    [UNANSWERED][cardio_st.data.prepare.UNANSWERED], left out of this run's triplets and asked again on
    the next run of the same call; ``retry_rejected`` / ``retry_unparsed`` also ask again for sentences
    whose earlier answer was rejected / held no paraphrase.

    ``out`` is claimed with [claim_folder][cardio_st.utils.files.claim_folder]: a new or empty folder,
    or an earlier ``prepare`` run's (resumed); any other non-empty folder is refused unless
    ``overwrite=True``, which writes into it without deleting anything else there.

    Args:
        corpus: Folder of .txt/.md/.pdf texts, or (``paraphraser=None``) pairs files.
        out: Output folder: triplets, ``paraphrases.jsonl``, ``summary.json``.
        paraphraser: The backend, or ``None`` when ``corpus`` holds pairs.
        min_words: Drop sentences shorter than this.
        max_words: Drop sentences longer than this.
        skip_unreadable: Skip binary or non-UTF-8 files instead of stopping.
        split: ``"source"`` (whole files per split) or ``"ratio"`` (random).
        ratios: Train, validation and test shares.
        seed: Seeds the split and the negatives.
        length_match: Draw negatives among other-source sentences of similar length.
        mine_with: Mine hard negatives with this model.
        similarity_model: Model for ``min_similarity``.
        min_similarity: Reject paraphrases whose cosine to the sentence is below this.
        retry_rejected: Ask again for sentences whose answer the filters rejected (refusal, copy, too
            short, too long).
        retry_unparsed: Ask again for sentences whose answer held no paraphrase ("empty").
        overwrite: Write into a non-empty folder that is not an earlier ``prepare`` run's.
        show_progress: Progress bars.

    Returns:
        The summary also written to ``out/summary.json``: counts of sentences read, dropped by each
        rule, paraphrases accepted, rejected by reason and without an answer, triplets per split.
    """
    started = time.perf_counter()
    summary: dict[str, Any] = {"corpus": str(corpus), "paraphraser": getattr(paraphraser, "name", "none")}
    out = claim_folder(out, owner="prepare", overwrite=overwrite, recognise=_is_prepare_folder)
    if paraphraser is None:
        pairs = read_pairs(corpus)
        summary["pairs read"] = len(pairs)
    else:
        sentences = read_corpus(
            corpus, min_words=min_words, max_words=max_words, skip_unreadable=skip_unreadable
        )
        summary.update(sentences.stats)
        _check_split(sentences.sentences, split, ratios, seed)
        results = generate_paraphrases(
            [s.text for s in sentences.sentences],
            paraphraser,
            out / CHECKPOINT_NAME,
            keys=[f"{s.source}#{s.position}" for s in sentences.sentences],
            similarity_model=similarity_model,
            min_similarity=min_similarity,
            retry_rejected=retry_rejected,
            retry_unparsed=retry_unparsed,
            show_progress=show_progress,
        )
        rejected = Counter(r.rejected for r in results if r.rejected)
        summary["paraphrases accepted"] = sum(r.paraphrase is not None for r in results)
        summary.update({f"paraphrases rejected: {reason}": n for reason, n in sorted(rejected.items())})
        unanswered = sum(r.failed is not None for r in results)
        if unanswered:
            summary[UNANSWERED] = unanswered
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
        if summary.get(UNANSWERED):
            raise CardioSTError(
                f"no pairs from {corpus} yet: {summary[UNANSWERED]} sentences got no answer from the "
                f"paraphraser (rejected: {reasons or 'none'}); rerun the same command to ask again",
                exit_code=1,
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
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ICD-10-CM training pairs and the held-out evaluation set to ``out``.

    ``out`` gets the pairs ([icd10_pairs][cardio_st.data.icd10.icd10_pairs]: train and validation, from
    train-side categories only) as a ``save_to_disk`` folder that ``cardio-st train --data OUT`` reads,
    plus ``out/parquet/``; ``out/eval/`` gets the evaluation set
    ([icd10_eval_set][cardio_st.data.icd10.icd10_eval_set]) from the held-out categories.

    ``out`` is claimed with [claim_folder][cardio_st.utils.files.claim_folder]: a new or empty folder, or
    an earlier ``prepare-icd10`` run's (rewritten); any other non-empty folder is refused unless
    ``overwrite=True``, which writes into it without deleting anything else there.

    Args:
        out: Output folder.
        scope: ICD-10-CM codes to use (``all``, ``cardio``, chapters, categories).
        negatives: Add a negative column (a sibling code's description).
        validation_fraction: Share of train-side categories held back for validation.
        seed: Seeds the validation categories and the negatives.
        overwrite: Write into a non-empty folder that is not an earlier ``prepare-icd10`` run's.

    Returns:
        The summary also written to ``out/summary.json``.
    """
    started = time.perf_counter()
    resolve_scope(scope)  # fail on a bad scope before any work
    out = claim_folder(out, owner="prepare-icd10", overwrite=overwrite, recognise=_is_icd10_folder)
    data, counts = icd10_pairs(scope, negatives=negatives, validation_fraction=validation_fraction, seed=seed)
    save_triplets(data, out)
    evaluation = icd10_eval_set(scope)
    evaluation.save_to_disk(str(out / "eval"))
    summary = {"release": data_release(), "scope": scope, **counts}
    summary["eval: queries (held-out terms)"] = len(evaluation["queries"])
    summary["eval: corpus (billable codes)"] = len(evaluation["corpus"])
    summary["seconds"] = round(time.perf_counter() - started, 1)
    _write_summary(out, summary)
    return summary
