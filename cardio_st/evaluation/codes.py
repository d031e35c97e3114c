"""Per-query metrics of retrieved ICD-10-CM codes (exact, category, recall, MRR, character error rate)
and their code-level bootstrap. Leaves out searching and the benchmarks' queries (ranking, icd10, shorthand).

Every function here depends on codes and strings alone, so a ranking made anywhere can be scored. A query
has one true code (a string) or several accepted codes (a list or tuple: any of them counts as right).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cardio_st.data.icd10 import category_of
from cardio_st.errors import CardioSTError

__all__ = [
    "METRICS",
    "bootstrap_means",
    "character_error_rate",
    "code_resamples",
    "per_query",
    "percentile_interval",
    "summarise",
]

#: Metrics of every result, in report order.
METRICS = ("exact@1", "category@1", "recall@5", "recall@10", "mrr@10", "cer")


def character_error_rate(hypothesis: str, reference: str) -> float:
    """Levenshtein distance (insertions, deletions, substitutions, each costing 1) between two strings,
    divided by the length of ``reference``: 0 for identical strings, 1 for an empty hypothesis, and
    possibly above 1 for a hypothesis much longer than the reference.

    Case-sensitive and on the raw strings. An empty reference gives 0 against an empty hypothesis and
    1 otherwise (a convention: the ratio is undefined).

    Examples:
        >>> character_error_rate("sitting", "kitten")  # k->s, e->i, +g
        0.5
        >>> round(character_error_rate("kitten", "sitting"), 4)
        0.4286
    """
    if hypothesis == reference:
        return 0.0
    if not reference:
        return 1.0
    # A shared prefix and suffix cost nothing: sibling descriptions differ in a few words.
    start = 0
    while start < min(len(hypothesis), len(reference)) and hypothesis[start] == reference[start]:
        start += 1
    end = 0
    while end < min(len(hypothesis), len(reference)) - start and hypothesis[-1 - end] == reference[-1 - end]:
        end += 1
    a = hypothesis[start : len(hypothesis) - end]
    b = reference[start : len(reference) - end]
    # Classic dynamic programme, one row at a time: previous[j] = distance(a[:i-1], b[:j]).
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1] / len(reference)


def _accepted(code: str | Sequence[str]) -> tuple[str, ...]:
    return (code,) if isinstance(code, str) else tuple(code)


def per_query(
    codes: Sequence[str | Sequence[str]], retrieved: list[list[str]], cer_values: list[float], metric: str
) -> np.ndarray:
    """Per-query values of ``metric`` (one of ``METRICS``) for the true ``codes`` (a code, or a list of
    accepted codes, per query) and the ``retrieved`` codes of each query, best first; ``cer`` is read
    from ``cer_values``. With several accepted codes, a query is right at 1 when the top code is any of
    them, shares a category with any of them for ``category@1``, and its rank is that of the best-ranked
    one."""
    if metric == "cer":
        return np.asarray(cer_values, dtype=np.float64)
    pairs = [(_accepted(code), top) for code, top in zip(codes, retrieved)]
    if metric == "exact@1":
        values = [bool(top) and top[0] in accepted for accepted, top in pairs]
    elif metric == "category@1":
        values = [
            bool(top) and category_of(top[0]) in {category_of(code) for code in accepted}
            for accepted, top in pairs
        ]
    elif metric in ("recall@5", "recall@10"):
        k = int(metric.split("@")[1])
        values = [any(code in top[:k] for code in accepted) for accepted, top in pairs]
    elif metric == "mrr@10":
        values = [_reciprocal_rank(accepted, top[:10]) for accepted, top in pairs]
    else:
        raise CardioSTError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    return np.asarray(values, dtype=np.float64)


def _reciprocal_rank(accepted: tuple[str, ...], top: list[str]) -> float:
    ranks = [top.index(code) + 1 for code in accepted if code in top]
    return 1.0 / min(ranks) if ranks else 0.0


def summarise(
    codes: Sequence[str | Sequence[str]],
    retrieved: list[list[str]],
    cer_values: list[float],
    *,
    bootstrap: int,
    seed: int,
    groups: Sequence[str] | None = None,
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Every metric of ``METRICS`` (mean over the queries) and its bootstrap 95% interval.

    Args:
        codes: The true code, or the accepted codes, of each query.
        retrieved: The retrieved codes of each query, best first.
        cer_values: The character error rate of each query's top hit.
        bootstrap: Resamples for the intervals (0: no intervals).
        seed: Seed of the resampling.
        groups: The resampling unit of each query (all queries of a drawn unit go together); default
            the query's code (its first accepted code).

    Returns:
        ``(metrics, intervals)``; both empty of values (0 and no intervals) for no queries.
    """
    by_query = {metric: per_query(codes, retrieved, cer_values, metric) for metric in METRICS}
    metrics = {metric: float(values.mean()) if values.size else 0.0 for metric, values in by_query.items()}
    intervals: dict[str, tuple[float, float]] = {}
    if bootstrap and len(codes):
        units = groups if groups is not None else [_accepted(code)[0] for code in codes]
        group_of, draws = code_resamples(units, bootstrap, seed)
        intervals = {
            metric: percentile_interval(bootstrap_means(values, group_of, draws))
            for metric, values in by_query.items()
        }
    return metrics, intervals


def code_resamples(codes: Sequence[str], resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Which code of ``codes`` each query belongs to (``groups``), and ``(resamples, n_codes)`` draws of
    codes with replacement; both depend on nothing but the codes, ``resamples`` and ``seed``."""
    unique, groups = np.unique(np.asarray(codes), return_inverse=True)
    draws = np.random.default_rng(seed).integers(0, len(unique), size=(resamples, len(unique)))
    return groups, draws


def bootstrap_means(values: np.ndarray, groups: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Mean over the queries of the drawn codes, for each resample (a code drawn twice counts twice)."""
    n_groups = int(groups.max()) + 1 if groups.size else 0
    sums = np.bincount(groups, weights=values, minlength=n_groups)
    counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
    return sums[draws].sum(axis=1) / counts[draws].sum(axis=1)


def percentile_interval(means: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap ``means``."""
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
