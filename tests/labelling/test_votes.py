"""cardio_st.labelling.votes: majority votes, ties, and the kappas against hand computations."""

from __future__ import annotations

import pytest
from fake_judges import GRADES

from cardio_st.errors import CardioSTError
from cardio_st.labelling.votes import agreement, cohen_kappa, fleiss_kappa, majority_vote


def test_vote_and_kappa_functions():
    assert majority_vote({"a": 3, "b": 3, "c": 0}).label == 3
    assert majority_vote({"a": 1, "b": 3}).label == 1  # two judges split: the lower middle vote
    with pytest.raises(CardioSTError):
        majority_vote({})
    assert fleiss_kappa([[3, 0], [0, 3]]) == 1.0 and fleiss_kappa([[3, 0], [3, 0]]) is None
    assert cohen_kappa([0, 1, 1, 0], [0, 1, 0, 0]) == pytest.approx((3 / 4 - 1 / 2) / (1 - 1 / 2))
    assert GRADES[("q2", "d6")] == (0, 2, 1)


def test_agreement_of_three_judges_by_hand():
    grades = {
        "a": {("q", "d1"): 3, ("q", "d2"): 0, ("q", "d3"): 1},
        "b": {("q", "d1"): 3, ("q", "d2"): 1, ("q", "d3"): 1},
        "c": {("q", "d1"): 3, ("q", "d2"): 0},  # c never answered about d3
    }
    result = agreement(grades, [0, 1, 2, 3])
    exact = {tuple(p["judges"]): (p["pairs"], p["agreement"]) for p in result["pairwise"]}
    assert exact == {("a", "b"): (3, 2 / 3), ("a", "c"): (2, 1.0), ("b", "c"): (2, 1 / 2)}
    # Fleiss over d1 and d2 only (every judge graded them): P-bar = (1 + 1/3) / 2, shares 2/6, 1/6, 0, 3/6
    chance = (2 / 6) ** 2 + (1 / 6) ** 2 + (3 / 6) ** 2
    assert result["fleiss_pairs"] == 2
    assert result["fleiss_kappa"] == pytest.approx(((1 + 1 / 3) / 2 - chance) / (1 - chance))
    assert agreement({"a": grades["a"]}, [0, 1, 2, 3])["fleiss_kappa"] is None
