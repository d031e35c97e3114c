"""cardio_st.losses.AsymInfoNCEMSELoss (CARE Stage I): known answers on fixed tensors, the
truncation bridge, document targets computed once, and training through SentenceTransformerTrainer
with both terms logged and the document model untouched."""

from __future__ import annotations

import math

import pytest
import torch
from datasets import Dataset

from cardio_st.errors import CardioSTError
from cardio_st.losses import AsymInfoNCEMSELoss, add_document_targets, bridge_targets


def asym_infonce_mse(queries, passages, targets, temperature=0.1):
    loss = AsymInfoNCEMSELoss(None, temperature=temperature)
    terms = loss.compute_loss_from_embeddings([queries] if passages is None else [queries, passages], targets)
    return terms["infonce"], terms["mse"]


def _ce(logits_row, target):
    return -(logits_row[target] - math.log(sum(math.exp(v) for v in logits_row)))


def test_known_answer_on_fixed_tensors():
    # Given 2-d query-encoder embeddings and 3-d document embeddings whose first two components,
    # renormalised, are the unit vectors below (the third component is cut by the bridge)
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised: (1, 0), (0, 1)
    passages_by_query_encoder = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    targets = torch.tensor(
        [
            # query 1's, passage 1's, negative 1's document embeddings
            [[0.6, 0.8, 5.0], [2.0, 0.0, 1.0], [0.0, 3.0, 1.0]],
            [[0.0, 1.0, 0.0], [0.6, 0.8, -4.0], [1.0, 0.0, 2.0]],
        ]
    )
    # When
    infonce, mse = asym_infonce_mse(queries, passages_by_query_encoder, targets, temperature=0.5)
    # Then InfoNCE: candidates P1=(1,0), P2=(.6,.8), N1=(0,1), N2=(1,0), logits = cosine / 0.5
    expected_infonce = (_ce([2.0, 1.2, 0.0, 2.0], 0) + _ce([0.0, 1.6, 2.0, 0.0], 1)) / 2
    assert infonce.item() == pytest.approx(expected_infonce, abs=1e-6)
    # and MSE: squared distances per text, averaged over the batch, query half plus passage half
    query_half = (((1 - 0.6) ** 2 + 0.8**2) + 0.0) / 2  # q1 vs (.6,.8); q2 vs (0,1)
    passage_half = (((0.6 - 1) ** 2 + 0.8**2) + ((0 - 0.6) ** 2 + (1 - 0.8) ** 2)) / 2
    assert mse.item() == pytest.approx(query_half + passage_half, abs=1e-6)
    # Without the passage column only the query half is left
    _, query_only = asym_infonce_mse(queries, None, targets, temperature=0.5)
    assert query_only.item() == pytest.approx(query_half, abs=1e-6)


def test_bridge_truncates_and_renormalises_and_refuses_a_wider_query_encoder():
    targets = torch.tensor([[3.0, 4.0, 12.0]])
    assert torch.allclose(bridge_targets(targets, 2), torch.tensor([[0.6, 0.8]]))
    assert torch.allclose(bridge_targets(targets, 3), targets / 13)
    with pytest.raises(CardioSTError, match="4 dimensions but the document embeddings have 3"):
        bridge_targets(targets, 4)


def test_bad_shapes_and_settings_are_named():
    with pytest.raises(CardioSTError, match="expected \\(batch, 2 \\+ negatives, dimension\\)"):
        asym_infonce_mse(torch.ones(2, 2), None, torch.ones(2, 4))
    with pytest.raises(CardioSTError, match="temperature must be positive"):
        AsymInfoNCEMSELoss(None, temperature=0)
    with pytest.raises(CardioSTError, match="not both 0"):
        AsymInfoNCEMSELoss(None, infonce_weight=0, mse_weight=0)
    loss = AsymInfoNCEMSELoss(None)
    with pytest.raises(CardioSTError, match="'label' column"):
        loss([{}], None)
    with pytest.raises(CardioSTError, match="negatives belong in the label column"):
        loss([{}, {}, {}], torch.ones(1, 3, 2))


def test_document_targets_are_each_texts_document_embedding(minilm):
    data = Dataset.from_dict(
        {
            "anchor": ["heart attack", "high blood pressure"],
            "positive": ["Acute myocardial infarction", "Essential (primary) hypertension"],
            "negative": ["Essential (primary) hypertension", "Acute myocardial infarction"],
        }
    )
    with_targets = add_document_targets(data, minilm, batch_size=4)
    labels = with_targets.with_format("torch")[:]["label"]
    assert labels.shape == (2, 3, 384)
    expected = minilm.encode_document([*data["anchor"], *data["positive"]], convert_to_tensor=True)
    assert torch.allclose(labels[:, 0], expected[:2], atol=1e-5)
    assert torch.allclose(labels[:, 1], expected[2:], atol=1e-5)
    assert torch.equal(labels[0, 2], labels[1, 1])  # the same text, embedded once
    with pytest.raises(CardioSTError, match="already has a 'label' column"):
        add_document_targets(with_targets, minilm)
    with pytest.raises(CardioSTError, match="no column"):
        add_document_targets(data, minilm, passage_columns=["passage"])


def test_forward_equals_the_formula_on_the_models_embeddings(minilm):
    texts = ["heart attack", "Acute myocardial infarction"]
    features = [minilm.preprocess([text]) for text in texts]
    targets = torch.randn(1, 3, 384, generator=torch.Generator().manual_seed(0))
    loss = AsymInfoNCEMSELoss(minilm, temperature=0.1, infonce_weight=0.5, mse_weight=2.0)
    with torch.no_grad():
        terms = loss(features, targets)
        embeddings = [minilm(f)["sentence_embedding"] for f in features]
        infonce, mse = asym_infonce_mse(embeddings[0], embeddings[1], targets, temperature=0.1)
    assert terms["infonce"].item() == pytest.approx(0.5 * infonce.item(), rel=1e-6)
    assert terms["mse"].item() == pytest.approx(2.0 * mse.item(), rel=1e-6)
    assert loss.get_config_dict() == {"temperature": 0.1, "infonce_weight": 0.5, "mse_weight": 2.0}
    assert "2604.10937" in loss.citation


def test_stage_one_training_moves_the_query_encoder_towards_the_frozen_targets(tiny_qwen3, minilm, tmp_path):
    # Given a tiny random query encoder and MiniLM's (wider) document embeddings as frozen targets
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    pairs = {
        "anchor": ["heart attack", "high blood pressure", "irregular heartbeat", "heart failure"] * 4,
        "positive": [
            "Acute myocardial infarction",
            "Essential (primary) hypertension",
            "Atrial fibrillation",
            "Heart failure, unspecified",
        ]
        * 4,
    }
    train = add_document_targets(Dataset.from_dict(pairs), minilm)
    document_state = {k: v.clone() for k, v in minilm.state_dict().items()}
    dim = tiny_qwen3.get_embedding_dimension()
    assert dim < 384
    loss = AsymInfoNCEMSELoss(tiny_qwen3, temperature=0.1)
    labels = train.with_format("torch")[:]["label"]

    def mse_now():
        with torch.no_grad():
            q = tiny_qwen3.encode(pairs["anchor"], convert_to_tensor=True)
            r = tiny_qwen3.encode(pairs["positive"], convert_to_tensor=True)
            return asym_infonce_mse(q, r, labels, temperature=0.1)[1].item()

    before = mse_now()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=3,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        seed=0,
    )
    trainer = SentenceTransformerTrainer(model=tiny_qwen3, args=args, train_dataset=train, loss=loss)
    trainer.train()
    # Then both terms were logged, the query encoder moved towards the targets, MiniLM did not change
    logged = [entry for entry in trainer.state.log_history if "infonce" in entry]
    assert logged and all("mse" in entry for entry in logged)
    assert mse_now() < before
    assert all(torch.equal(v, document_state[k]) for k, v in minilm.state_dict().items())
