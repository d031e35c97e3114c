"""Majority votes of several judges' grades and how well the judges agree (exact agreement, Cohen's and
Fleiss' kappa). Leaves out where the grades come from (judges.py) and the files they go to (dataset.py).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from cardio_st.errors import CardioSTError

__all__ = ["Vote", "agreement", "cohen_kappa", "fleiss_kappa", "majority_vote"]

Pair = tuple[str, str]


@dataclass
class Vote:
    """The label of one (query, passage) pair.

    Attributes:
        label: The majority grade (0-3), or the expert's.
        votes: Each judge's grade (judges without a valid answer are absent).
        tie: No grade had more votes than every other; the label is then the median vote, rounded down.
        low_agreement: The judges' grades span two or more levels (e.g. 0 and 2).
        source: ``"vote"`` or ``"expert"``.
    """

    label: int
    votes: dict[str, int]
    tie: bool
    low_agreement: bool
    source: str = "vote"


def majority_vote(votes: Mapping[str, int]) -> Vote:
    """The majority grade of the judges' ``votes``.

    A tie (two grades with the most votes, or all different) goes to the median vote rounded down: the
    cautious reading of a split panel, and the same whatever order the judges come in.

    Example:
        >>> majority_vote({"a": 2, "b": 2, "c": 0})
        Vote(label=2, votes={'a': 2, 'b': 2, 'c': 0}, tie=False, low_agreement=True, source='vote')
        >>> majority_vote({"a": 0, "b": 1, "c": 3}).label
        1
    """
    if not votes:
        raise CardioSTError("no votes to count")
    counts = Counter(votes.values())
    top = max(counts.values())
    winners = [grade for grade, count in counts.items() if count == top]
    ordered = sorted(votes.values())
    label = winners[0] if len(winners) == 1 else ordered[(len(ordered) - 1) // 2]
    return Vote(label, dict(votes), len(winners) > 1, ordered[-1] - ordered[0] >= 2)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of ``counts[item][category]`` (how many raters put each item in each category; the
    same number of raters for every item). None when undefined (one item, or every rating in one
    category).

    Example (Fleiss 1971, as on Wikipedia: 10 subjects, 14 raters, 5 categories):
        >>> table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        ...          [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
        >>> round(fleiss_kappa(table), 3)
        0.21
    """
    rows = [list(row) for row in counts]
    if len(rows) < 1:
        return None
    raters = sum(rows[0])
    if raters < 2 or any(sum(row) != raters for row in rows):
        raise CardioSTError("Fleiss' kappa needs the same number (at least 2) of ratings for every item")
    items = len(rows)
    agreement = sum((sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in rows) / items
    shares = [sum(row[j] for row in rows) / (items * raters) for j in range(len(rows[0]))]
    chance = sum(p * p for p in shares)
    if math.isclose(chance, 1.0):
        return None
    return (agreement - chance) / (1 - chance)


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items; None when undefined (chance agreement 1)."""
    if len(a) != len(b):
        raise CardioSTError(f"{len(a)} labels against {len(b)}: give one label per item from each rater")
    if not a:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / len(a)
    count_a, count_b = Counter(a), Counter(b)
    chance = sum(count_a[c] * count_b[c] for c in set(a) | set(b)) / (len(a) * len(a))
    return None if math.isclose(chance, 1.0) else (observed - chance) / (1 - chance)


def agreement(grades: Mapping[str, Mapping[Pair, int]], scale: Sequence[int]) -> dict[str, Any]:
    """How well the judges agree: pairwise exact agreement and Cohen's kappa of every two judges, and
    Fleiss' kappa over the pairs every judge graded.

    Args:
        grades: ``grades[judge][(query id, doc id)]``: each judge's grade of each pair it answered.
        scale: Every possible grade, e.g. ``[0, 1, 2, 3]``.

    Returns:
        ``{"pairwise": [{"judges", "pairs", "agreement", "cohen_kappa"}, ...], "fleiss_kappa",
        "fleiss_pairs"}`` (a kappa is ``None`` where undefined).

    Example:
        >>> result = agreement({"a": {("q", "d"): 3}, "b": {("q", "d"): 3}}, [0, 1, 2, 3])
        >>> [pair["agreement"] for pair in result["pairwise"]], result.get("fleiss_pairs")
        ([1.0], 1)
    """
    pairwise = []
    for a, b in combinations(grades, 2):
        common = sorted(set(grades[a]) & set(grades[b]))
        x, y = [grades[a][p] for p in common], [grades[b][p] for p in common]
        pairwise.append(
            {
                "judges": [a, b],
                "pairs": len(common),
                "agreement": sum(i == j for i, j in zip(x, y)) / len(common) if common else None,
                "cohen_kappa": cohen_kappa(x, y),
            }
        )
    everyone = set.intersection(*(set(g) for g in grades.values())) if grades else set()
    table = [[sum(grades[j][pair] == grade for j in grades) for grade in scale] for pair in sorted(everyone)]
    fleiss = fleiss_kappa(table) if len(grades) >= 2 and table else None
    return {"pairwise": pairwise, "fleiss_kappa": fleiss, "fleiss_pairs": len(table)}
