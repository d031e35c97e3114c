"""(anchor, positive, negative) triplets from paraphrase pairs, CardioEmbed style: the negative is a
sentence from another source, optionally of matched length or mined with a model; splits by source or
by a seeded ratio with no sentence in two splits. Leaves out generating the pairs (paraphrase.py).
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import random
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from datasets import DatasetDict
    from sentence_transformers import SentenceTransformer

__all__ = ["PAPER_RATIOS", "Pair", "make_triplets", "save_triplets", "split_pairs"]

logger = logging.getLogger(__name__)

#: CardioEmbed's train / validation / test shares (106,386 / 12,516 / 6,259 triplets).
PAPER_RATIOS = (0.85, 0.10, 0.05)
SPLIT_NAMES = ("train", "validation", "test")
_LENGTH_WINDOW = 32  # length-matched negatives are drawn from the 32 other-source sentences nearest in length


@dataclass(frozen=True)
class Pair:
    """A sentence and its paraphrase, with where the sentence came from.

    Attributes:
        anchor: The source sentence.
        positive: Its paraphrase (or any text of the same meaning).
        source: The document it came from (a book, a guideline): negatives come from other sources.
        position: Its index within the source, kept for provenance.
    """

    anchor: str
    positive: str
    source: str
    position: int = 0


def _check_ratios(ratios: Sequence[float]) -> tuple[float, ...]:
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) != 3 or any(r < 0 for r in ratios) or ratios[0] <= 0 or abs(sum(ratios) - 1) > 1e-6:
        raise CardioSTError(
            f"ratios {ratios} must be three non-negative shares (train, validation, test) that sum to 1, "
            "with train > 0: e.g. 0.85,0.1,0.05"
        )
    return ratios


def split_pairs(
    pairs: Sequence[Pair],
    *,
    by: Literal["source", "ratio"] = "source",
    ratios: Sequence[float] = PAPER_RATIOS,
    seed: int = 0,
) -> dict[str, list[Pair]]:
    """Split pairs into train / validation / test, every sentence in exactly one split.

    ``by="source"`` puts whole sources into one split (in a seeded order, each to the split furthest
    below its share of sentences), so a test book is unseen in training: the honest measure when
    sentences of one book share phrasing. Every split gets at least two sources, because negatives
    come from another source of the same split; with few sources the shares are therefore approximate.
    ``by="ratio"`` splits the pairs at random (seeded), as the CardioEmbed paper does. Splits with a
    zero share are left out.

    Raises:
        CardioSTError: for bad ratios, or with ``by="source"`` when there are fewer than two sources
            per split.
    """
    return _split_pairs(pairs, by, ratios, seed, keyword="by")


def _split_pairs(
    pairs: Sequence[Pair], by: str, ratios: Sequence[float], seed: int, *, keyword: str
) -> dict[str, list[Pair]]:
    """[split_pairs][cardio_st.data.triplets.split_pairs], its errors naming ``by`` as ``keyword`` (the
    caller's parameter)."""
    ratios = _check_ratios(ratios)
    wanted = [name for name, share in zip(SPLIT_NAMES, ratios) if share > 0]
    rng = random.Random(seed)
    if by == "ratio":
        order = list(pairs)
        rng.shuffle(order)
        bounds = [round(sum(ratios[: i + 1]) * len(order)) for i in range(3)]
        parts = {name: order[start:end] for name, start, end in zip(SPLIT_NAMES, [0, *bounds[:2]], bounds)}
        return {name: parts[name] for name in wanted}
    if by != "source":
        raise CardioSTError(f"unknown split {by!r}: use 'source' or 'ratio'")
    by_source: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_source.setdefault(pair.source, []).append(pair)
    if len(by_source) < 2 * len(wanted):
        raise CardioSTError(
            f"{len(by_source)} source(s) cannot fill the {len(wanted)} splits {wanted} by source: each "
            "needs two (negatives come from another source of the same split); add sources, give "
            "validation/test a zero share in `ratios=...` (e.g. 0.9, 0.1, 0), or split by ratio "
            f"(`{keyword}='ratio'`)"
        )
    sources = sorted(by_source)
    rng.shuffle(sources)
    # Largest sources first, so the small splits are not filled by one huge book.
    sources.sort(key=lambda s: len(by_source[s]), reverse=True)
    parts: dict[str, list[Pair]] = {name: [] for name in wanted}
    total = len(pairs)
    shares = dict(zip(SPLIT_NAMES, ratios))
    # Each split first gets two sources (the smallest splits the smallest sources), then the rest go
    # one by one to the split furthest below its share.
    smallest_first = list(reversed(sources))
    for rank, name in enumerate(sorted(wanted, key=lambda n: shares[n])):
        for source in smallest_first[2 * rank : 2 * rank + 2]:
            parts[name].extend(by_source[source])
    for source in sources[: len(sources) - 2 * len(wanted)]:
        name = max(wanted, key=lambda n: shares[n] * total - len(parts[n]))
        parts[name].extend(by_source[source])
    return parts


def _length(text: str) -> int:
    return len(text.split())


def _random_negatives(pairs: list[Pair], rng: random.Random, length_match: bool) -> list[int]:
    """Index of a negative for each pair: another source's anchor, near in length when asked.

    The caller guarantees at least two sources, so every pair has a candidate.
    """
    if not length_match:
        chosen = []
        for pair in pairs:
            j = rng.randrange(len(pairs))
            while pairs[j].source == pair.source:  # terminates: another source exists
                j = rng.randrange(len(pairs))
            chosen.append(j)
        return chosen
    order = sorted(range(len(pairs)), key=lambda i: (_length(pairs[i].anchor), i))
    lengths = [_length(pairs[i].anchor) for i in order]
    chosen = []
    for pair in pairs:
        # Walk outwards from the anchor's length, nearest length first, collecting other-source sentences.
        length = _length(pair.anchor)
        high = bisect.bisect_left(lengths, length)
        low = high - 1
        window: list[int] = []
        while len(window) < _LENGTH_WINDOW and (low >= 0 or high < len(order)):
            take_low = high >= len(order) or (low >= 0 and length - lengths[low] <= lengths[high] - length)
            if take_low:
                candidate, low = order[low], low - 1
            else:
                candidate, high = order[high], high + 1
            if pairs[candidate].source != pair.source:
                window.append(candidate)
        chosen.append(rng.choice(window))
    return chosen


def _mined_negatives(
    pairs: list[Pair], model: SentenceTransformer, margin: float, top_k: int, batch_size: int
) -> list[int | None]:
    """The most similar other-source anchor whose similarity stays ``margin`` below the positive's."""
    # Imported here: it imports torch, which only mining needs (prepare-icd10 must stay light).
    from cardio_st.utils.topk import topk

    anchors = model.encode([p.anchor for p in pairs], batch_size=batch_size, convert_to_tensor=True)
    positives = model.encode([p.positive for p in pairs], batch_size=batch_size, convert_to_tensor=True)
    positive_scores = model.similarity_pairwise(anchors, positives).tolist()
    scores, indices = topk(anchors, anchors, top_k=min(top_k + 1, len(pairs)))
    chosen: list[int | None] = []
    for i, pair in enumerate(pairs):
        ceiling = positive_scores[i] - margin  # above it, a "negative" is probably a paraphrase too
        found = None
        for score, j in zip(scores[i].tolist(), indices[i].tolist()):
            if j != i and pairs[j].source != pair.source and score < ceiling:
                found = j
                break
        chosen.append(found)
    return chosen


def make_triplets(
    pairs: Sequence[Pair],
    *,
    split: Literal["source", "ratio"] = "source",
    ratios: Sequence[float] = PAPER_RATIOS,
    seed: int = 0,
    length_match: bool = True,
    mine_with: SentenceTransformer | None = None,
    margin: float = 0.05,
    top_k: int = 50,
    batch_size: int = 64,
) -> tuple[DatasetDict, dict[str, Any]]:
    """CardioEmbed triplets: (anchor, positive, negative) where the negative is another source's sentence.

    Negatives are anchors of the **same split**, so no sentence appears in two splits. By default a
    negative is a random other-source sentence of about the anchor's length (one of the 32 nearest in
    word count), as in the paper, so length is no shortcut. With ``mine_with`` (any
    SentenceTransformer), the negative is instead the most similar other-source sentence whose
    similarity to the anchor stays ``margin`` below the anchor-positive similarity (closer ones are
    likely false negatives, i.e. other phrasings of the same fact); a pair without such a sentence in
    its ``top_k`` neighbours falls back to the random choice.

    Args:
        pairs: The (anchor, positive, source) pairs; anchors should be unique (``read_corpus`` dedups).
        split: ``"source"`` (whole sources per split) or ``"ratio"`` (seeded random split).
        ratios: Shares of train, validation and test; default the paper's 0.85 / 0.10 / 0.05.
        seed: Seeds the split and the negatives.
        length_match: Draw random negatives among sentences of similar length.
        mine_with: A model for hard-negative mining (optional).
        margin: Mining's false-negative margin (cosine).
        top_k: Neighbours examined per anchor when mining.
        batch_size: Encoding batch size when mining.

    Returns:
        ``(DatasetDict, provenance)``: splits with exactly the columns ``anchor``, ``positive``,
        ``negative`` (what SentenceTransformerTrainer expects), and for each split a list of
        ``{"source", "position", "negative_source", "negative_position", "negative_kind"}`` rows.

    Raises:
        CardioSTError: when a split holds a single source, so no negative can come from another one.
    """
    from datasets import Dataset, DatasetDict

    if not pairs:
        raise CardioSTError("no pairs to make triplets from: check the corpus and the paraphrase step")
    parts = _split_pairs(pairs, split, ratios, seed, keyword="split")
    rng = random.Random(seed)
    data, provenance, counts = {}, {}, Counter()
    placed: dict[str, str] = {}  # text -> split, to keep any text out of two splits
    for name, members in parts.items():
        sources = {p.source for p in members}
        if len(sources) < 2:
            raise CardioSTError(
                f"the {name} split holds a single source ({next(iter(sources), 'none')}): its negatives "
                "must come from another source of the same split; add sources, change `ratios=...`, or use "
                "`split='ratio'`"
            )
        negatives = _random_negatives(members, rng, length_match)
        kinds = ["length-matched" if length_match else "random"] * len(members)
        if mine_with is not None:
            mined = _mined_negatives(members, mine_with, margin, top_k, batch_size)
            for i, j in enumerate(mined):
                if j is not None:
                    negatives[i], kinds[i] = j, "mined"
        rows: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
        rows_provenance = []
        for pair, j, kind in zip(members, negatives, kinds):
            negative = members[j]
            texts = (pair.anchor, pair.positive, negative.anchor)
            if any(placed.get(text, name) != name for text in texts):
                counts[f"{name}: dropped, text in another split"] += 1
                continue
            for text in texts:
                placed.setdefault(text, name)
            rows["anchor"].append(pair.anchor)
            rows["positive"].append(pair.positive)
            rows["negative"].append(negative.anchor)
            rows_provenance.append(
                {
                    "source": pair.source,
                    "position": pair.position,
                    "negative_source": negative.source,
                    "negative_position": negative.position,
                    "negative_kind": kind,
                }
            )
            counts[f"{name}: negatives {kind}"] += 1
        data[name] = Dataset.from_dict(rows)
        provenance[name] = rows_provenance
        counts[f"{name}: sources"] = len(sources)
        counts[f"{name}: triplets"] = len(rows["anchor"])
    return DatasetDict(data), {"splits": provenance, "counts": dict(counts)}


def save_triplets(
    data: DatasetDict, out: str | os.PathLike, provenance: dict[str, Any] | None = None
) -> Path:
    """Save triplets where ``cardio-st train --data OUT`` and ``datasets.load_from_disk(OUT)`` read them.

    Writes ``OUT`` with ``save_to_disk`` (``dataset_dict.json`` and one folder per split), the same
    splits as ``OUT/parquet/<split>.parquet`` (for the Hub or pandas) and, when given,
    ``OUT/provenance/<split>.jsonl`` (source and position of each row's anchor and negative).
    What an earlier save wrote there is replaced (also splits it had and this one lacks); other files,
    such as the paraphrase checkpoint, are left alone.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "dataset_dict.json"
    stale = set(json.loads(previous.read_text())["splits"]) - set(data) if previous.is_file() else set()
    for name in stale:  # a split an earlier run wrote and this one does not
        shutil.rmtree(out / name, ignore_errors=True)
    for folder in ("parquet", "provenance"):
        shutil.rmtree(out / folder, ignore_errors=True)
    data.save_to_disk(str(out))
    (out / "parquet").mkdir()
    for name, split in data.items():
        split.to_parquet(str(out / "parquet" / f"{name}.parquet"))
    if provenance is not None:
        (out / "provenance").mkdir()
        for name, rows in provenance["splits"].items():
            with open(out / "provenance" / f"{name}.jsonl", "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row) + "\n")
    return out
