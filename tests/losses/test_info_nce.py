"""cardio_st.losses.InfoNCELoss: equal to MultipleNegativesRankingLoss at scale 1/T, known answers,
hard negatives, the symmetric term, gradient caching, Matryoshka, and negatives gathered across
processes."""

from __future__ import annotations

import math

import pytest
import torch
from distributed_workers import gathered_loss_worker
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MatryoshkaLoss,
    MultipleNegativesRankingLoss,
)

from cardio_st.losses import CachedInfoNCELoss, InfoNCELoss

A = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
P = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
N = torch.tensor([[0.0, 1.0], [1.0, 0.0]])


def _ce(logits_row, target):
    return -(logits_row[target] - math.log(sum(math.exp(v) for v in logits_row)))


def test_known_answer_in_batch_negatives():
    # Given unit vectors with cosine similarities s(a1,p1)=1, s(a1,p2)=.6, s(a2,p1)=0, s(a2,p2)=.8 and T=0.5
    loss = InfoNCELoss(model=None, temperature=0.5)
    # When
    value = loss.compute_loss_from_embeddings([A, P], labels=None).item()
    # Then it is the mean cross-entropy of the scaled similarities
    expected = (_ce([2.0, 1.2], 0) + _ce([0.0, 1.6], 1)) / 2
    assert value == pytest.approx(expected, abs=1e-6)


def test_hard_negatives_join_the_denominator():
    loss = InfoNCELoss(model=None, temperature=0.5)
    value = loss.compute_loss_from_embeddings([A, P, N], labels=None).item()
    # s(a1, n1)=0, s(a1, n2)=1; s(a2, n1)=1, s(a2, n2)=0 -> two more logits per anchor
    expected = (_ce([2.0, 1.2, 0.0, 2.0], 0) + _ce([0.0, 1.6, 2.0, 0.0], 1)) / 2
    assert value == pytest.approx(expected, abs=1e-6)
    assert value > loss.compute_loss_from_embeddings([A, P], labels=None).item()


def test_symmetric_term_averages_both_directions():
    loss = InfoNCELoss(model=None, temperature=0.5, symmetric=True)
    value = loss.compute_loss_from_embeddings([A, P], labels=None).item()
    query_to_doc = (_ce([2.0, 1.2], 0) + _ce([0.0, 1.6], 1)) / 2
    doc_to_query = (_ce([2.0, 0.0], 0) + _ce([1.2, 1.6], 1)) / 2  # each positive picks its anchor
    assert value == pytest.approx((query_to_doc + doc_to_query) / 2, abs=1e-6)


@pytest.mark.parametrize("temperature", [0.01, 0.05, 0.1, 1.0])
@pytest.mark.parametrize("columns", [2, 3, 4])
def test_equals_multiple_negatives_ranking_loss_at_scale_one_over_t(temperature, columns):
    generator = torch.Generator().manual_seed(columns)
    embeddings = [torch.randn(8, 16, generator=generator) for _ in range(columns)]
    ours = InfoNCELoss(model=None, temperature=temperature).compute_loss_from_embeddings(embeddings, None)
    reference = MultipleNegativesRankingLoss(model=None, scale=1 / temperature).compute_loss_from_embeddings(
        embeddings, None
    )
    assert torch.allclose(ours, reference, rtol=1e-6, atol=1e-6)


def _features(model, texts):
    return dict(model.preprocess(texts))


def test_full_forward_equals_reference_and_cached_variant(tiny_qwen3):
    anchors = ["atrial fibrillation", "angina", "heart failure", "stroke"]
    positives = ["irregular rhythm", "chest pain", "fluid overload", "brain infarct"]
    features = [_features(tiny_qwen3, anchors), _features(tiny_qwen3, positives)]
    ours = InfoNCELoss(tiny_qwen3, temperature=0.05)(features, None)
    reference = MultipleNegativesRankingLoss(tiny_qwen3, scale=20.0)(features, None)
    cached = CachedInfoNCELoss(tiny_qwen3, temperature=0.05, mini_batch_size=2)(features, None)
    assert torch.allclose(ours, reference, atol=1e-6)
    assert torch.allclose(cached, ours, atol=1e-5)
    # MatryoshkaLoss recognises gradient-caching losses by this type.
    assert isinstance(CachedInfoNCELoss(tiny_qwen3), CachedMultipleNegativesRankingLoss)


def test_works_inside_matryoshka_loss(tiny_qwen3):
    anchors, positives = ["a b", "c d", "e f"], ["a", "c", "e"]
    features = [_features(tiny_qwen3, anchors), _features(tiny_qwen3, positives)]
    loss = MatryoshkaLoss(tiny_qwen3, InfoNCELoss(tiny_qwen3), matryoshka_dims=[64, 16])
    value = loss(features, None)
    with torch.no_grad():
        full = [tiny_qwen3(dict(f))["sentence_embedding"] for f in features]
    expected = sum(
        InfoNCELoss(None).compute_loss_from_embeddings([e[:, :dim] for e in full], None) for dim in (64, 16)
    )
    assert value.item() == pytest.approx(expected.item(), abs=1e-5)
    value.backward()
    cached = MatryoshkaLoss(
        tiny_qwen3, CachedInfoNCELoss(tiny_qwen3, mini_batch_size=2), matryoshka_dims=[64, 16]
    )
    assert cached(features, None).item() == pytest.approx(expected.item(), abs=1e-4)


def test_config_and_citation_for_the_model_card(tiny_qwen3):
    loss = CachedInfoNCELoss(tiny_qwen3, temperature=0.02, symmetric=True, mini_batch_size=8)
    assert loss.get_config_dict() == {
        "temperature": 0.02,
        "symmetric": True,
        "mini_batch_size": 8,
        "similarity_fct": "cos_sim",
        "gather_across_devices": False,
    }
    assert "2511.10930" in InfoNCELoss(model=None).citation
    with pytest.raises(ValueError, match="temperature must be positive"):
        InfoNCELoss(model=None, temperature=0)


def test_gathered_negatives_across_two_processes(tmp_path):
    # Given a batch of 8 split over 2 gloo processes, 4 rows each
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(gathered_loss_worker, args=(2, port, str(tmp_path)), nprocs=2, start_method="spawn")
    results = sorted(torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2))
    # Then each process's loss is its rows' share of the full-batch loss over all 8 + 8 candidates
    generator = torch.Generator().manual_seed(0)
    anchors, positives, negatives = (torch.randn(8, 16, generator=generator) for _ in range(3))
    scores = (
        torch.nn.functional.normalize(anchors, dim=-1)
        @ torch.nn.functional.normalize(torch.cat([positives, negatives]), dim=-1).T
    )
    per_row = torch.nn.functional.cross_entropy(scores * 20, torch.arange(8), reduction="none")
    for rank, value in results:
        assert value == pytest.approx(per_row[rank * 4 : rank * 4 + 4].mean().item(), abs=1e-5)
    # (a local-only loss would see 4 + 4 candidates and differ)
    local = InfoNCELoss(model=None).compute_loss_from_embeddings(
        [anchors[:4], positives[:4], negatives[:4]], None
    )
    assert abs(local.item() - results[0][1]) > 1e-3
