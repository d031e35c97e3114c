"""cardio_st.data.triplets: splits with no shared sentence, negatives from another source, length
matching, hard-negative mining with a false-negative margin, and the saved layout."""

from __future__ import annotations

import json
import statistics

import pytest
from datasets import load_from_disk

from cardio_st.data.pairs import load_pairs
from cardio_st.data.triplets import Pair, make_triplets, save_triplets, split_pairs
from cardio_st.errors import CardioSTError


def _pairs(n_sources=6, per_source=30):
    """Sentences of varied length (3..32 words) from several sources, each with a fake paraphrase."""
    pairs = []
    for s in range(n_sources):
        for i in range(per_source):
            words = 3 + (7 * i + s) % 30
            anchor = " ".join(f"s{s}w{i}t{k}" for k in range(words))
            pairs.append(Pair(anchor, "para " + anchor, f"book{s}.txt", i))
    return pairs


def _texts(split):
    return set(split["anchor"]) | set(split["positive"]) | set(split["negative"])


@pytest.mark.parametrize("by", ["source", "ratio"])
def test_no_sentence_in_two_splits_and_negatives_from_another_source(by):
    pairs = _pairs()
    source_of = {p.anchor: p.source for p in pairs}
    data, provenance = make_triplets(pairs, split=by, ratios=(0.6, 0.2, 0.2), seed=1)
    assert set(data) == {"train", "validation", "test"}
    names = list(data)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not _texts(data[names[a]]) & _texts(data[names[b]])
    total = 0
    for name, split in data.items():
        assert split.column_names == ["anchor", "positive", "negative"]
        for row, origin in zip(split, provenance["splits"][name]):
            assert source_of[row["negative"]] != source_of[row["anchor"]] == origin["source"]
            assert origin["negative_source"] == source_of[row["negative"]]
        total += len(split)
    assert total == len(pairs)
    if by == "source":  # whole sources per split
        sources = [{o["source"] for o in provenance["splits"][n]} for n in names]
        assert not sources[0] & sources[1] and not sources[0] & sources[2] and not sources[1] & sources[2]


def test_split_by_source_follows_the_shares_and_is_seeded():
    pairs = _pairs(n_sources=20)
    parts = split_pairs(pairs, by="source", ratios=(0.8, 0.1, 0.1), seed=3)
    assert [len(parts[n]) for n in ("train", "validation", "test")] == [480, 60, 60]
    assert parts == split_pairs(pairs, by="source", ratios=(0.8, 0.1, 0.1), seed=3)
    other = split_pairs(pairs, by="source", ratios=(0.8, 0.1, 0.1), seed=4)
    assert {p.source for p in other["test"]} != {p.source for p in parts["test"]}


def test_a_zero_share_leaves_the_split_out():
    data, _ = make_triplets(_pairs(n_sources=4), split="source", ratios=(0.8, 0.2, 0.0))
    assert [len(data[n]) for n in data] == [60, 60]  # two sources each: shares are approximate
    assert set(data) == {"train", "validation"}


def test_length_matching_draws_negatives_of_similar_length():
    pairs = _pairs(n_sources=6, per_source=60)
    matched, _ = make_triplets(pairs, split="ratio", ratios=(1, 0, 0), length_match=True)
    unmatched, _ = make_triplets(pairs, split="ratio", ratios=(1, 0, 0), length_match=False)

    def gap(split):
        return statistics.mean(
            abs(len(a.split()) - len(n.split())) for a, n in zip(split["anchor"], split["negative"])
        )

    assert gap(matched["train"]) <= 1.0 < 5.0 < gap(unmatched["train"])


def test_a_split_with_one_source_is_a_clear_error():
    with pytest.raises(CardioSTError, match="5 source.*cannot fill the 3 splits.*`split='ratio'`"):
        make_triplets(_pairs(n_sources=5), split="source", ratios=(0.6, 0.2, 0.2))
    with pytest.raises(CardioSTError, match="`by='ratio'`"):  # each function names its own parameter
        split_pairs(_pairs(n_sources=5), by="source", ratios=(0.6, 0.2, 0.2))
    tiny = [Pair("a b c", "x", "one"), Pair("d e f", "y", "one"), Pair("g h i", "z", "two")]
    with pytest.raises(CardioSTError, match="split holds a single source"):
        make_triplets(tiny, split="ratio", ratios=(0.34, 0.66, 0))
    with pytest.raises(CardioSTError, match="sum to 1"):
        split_pairs(_pairs(), ratios=(0.5, 0.1, 0.1))
    with pytest.raises(CardioSTError, match="no pairs"):
        make_triplets([])


def test_mining_picks_the_hardest_other_source_sentence_below_the_margin(minilm):
    # Given a positive, a near-paraphrase from another book (a false negative) and a related sentence
    pairs = [
        Pair(
            "Aspirin reduces mortality after myocardial infarction.",
            "Aspirin lowers death after a heart attack.",
            "a",
        ),
        Pair(
            "Aspirin lowers mortality following myocardial infarction.", "After MI, aspirin cuts deaths.", "b"
        ),
        Pair(
            "Beta-blockers reduce mortality after myocardial infarction.",
            "Beta-blockers lower death after MI.",
            "b",
        ),
        Pair("The femur is the longest bone of the body.", "The thigh bone is the longest bone.", "c"),
        Pair("Warfarin needs INR monitoring.", "Patients on warfarin need INR checks.", "c"),
    ]
    # When negatives are mined with a margin that excludes the near-paraphrase
    data, provenance = make_triplets(pairs, split="ratio", ratios=(1, 0, 0), mine_with=minilm, margin=0.05)
    row = data["train"]["anchor"].index(pairs[0].anchor)
    scores = minilm.similarity(minilm.encode([pairs[0].anchor]), minilm.encode([p.anchor for p in pairs]))[0]
    positive = float(
        minilm.similarity_pairwise(minilm.encode([pairs[0].anchor]), minilm.encode([pairs[0].positive]))
    )
    # Then the negative is the most similar other-source sentence below positive - margin
    allowed = [i for i in range(1, 5) if pairs[i].source != "a" and float(scores[i]) < positive - 0.05]
    expected = max(allowed, key=lambda i: float(scores[i]))
    assert data["train"]["negative"][row] == pairs[expected].anchor
    assert provenance["splits"]["train"][row]["negative_kind"] == "mined"
    if float(scores[1]) >= positive - 0.05:
        assert data["train"]["negative"][row] != pairs[1].anchor


def test_saved_triplets_load_for_training_and_a_resave_drops_stale_splits(tmp_path):
    data, provenance = make_triplets(_pairs(), split="source", ratios=(0.6, 0.2, 0.2))
    save_triplets(data, tmp_path, provenance)
    (tmp_path / "paraphrases.jsonl").write_text("{}\n")
    assert load_from_disk(str(tmp_path))["test"][0] == data["test"][0]
    assert sorted(p.name for p in (tmp_path / "parquet").iterdir()) == [
        "test.parquet",
        "train.parquet",
        "validation.parquet",
    ]
    lines = (tmp_path / "provenance" / "train.jsonl").read_text().splitlines()
    assert len(lines) == len(data["train"]) and json.loads(lines[0])["source"].startswith("book")
    loaded = load_pairs(tmp_path)
    assert len(loaded["train"]) == len(data["train"]) and len(loaded["eval"]) == len(data["validation"])
    # When a second run writes train only
    smaller, _ = make_triplets(_pairs(n_sources=3), split="ratio", ratios=(1, 0, 0))
    save_triplets(smaller, tmp_path)
    assert not (tmp_path / "test").exists() and not (tmp_path / "provenance").exists()
    assert [p.name for p in (tmp_path / "parquet").iterdir()] == ["train.parquet"]
    assert (tmp_path / "paraphrases.jsonl").exists()
