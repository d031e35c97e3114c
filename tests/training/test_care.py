"""cardio_st.training.care: Stage I trains the query route only (the document route runs once, its
targets cached and reused on resume), Stage II trains both at their own learning rates, and both
stages resume from their checkpoints."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from datasets import Dataset, DatasetDict
from sentence_transformers import SentenceTransformer

from cardio_st.errors import CardioSTError
from cardio_st.models.care import care_model
from cardio_st.training.care import align, finetune

ROWS = {
    "anchor": ["heart attack", "high blood pressure", "irregular heartbeat", "heart failure"] * 4,
    "positive": [
        "Acute myocardial infarction",
        "Essential (primary) hypertension",
        "Atrial fibrillation",
        "Heart failure, unspecified",
    ]
    * 4,
    "negative": [
        "Essential (primary) hypertension",
        "Atrial fibrillation",
        "Heart failure, unspecified",
        "Acute myocardial infarction",
    ]
    * 4,
}
SETTINGS = {"batch_size": 4, "save_steps": 1, "show_progress": False, "logging_steps": 1}


def _state(model, route):
    return copy.deepcopy(model[0].sub_modules[route].state_dict())


def _changed(before, after):
    return any(not torch.equal(value, after[key]) for key, value in before.items())


@pytest.fixture
def care(tiny_qwen3, minilm):
    return care_model(tiny_qwen3, minilm, bridge="truncate", device="cpu")


def test_align_trains_the_query_route_only_and_resumes_without_embedding_again(care, tmp_path):
    data = DatasetDict({"train": Dataset.from_dict(ROWS)})
    document, query = _state(care, "document"), _state(care, "query")
    first = align(care, data, tmp_path, max_steps=2, **SETTINGS)
    assert first.steps == 2 and first.resumed_from is None
    assert not _changed(document, care[0].sub_modules["document"].state_dict())
    assert _changed(query, care[0].sub_modules["query"].state_dict())
    record = tmp_path / "document-targets.json"
    assert json.loads(record.read_text())["rows"] == 16
    stamp = record.stat().st_mtime_ns
    # Run again with more steps: not an exact resume (the schedule would change), so refused by name...
    with pytest.raises(CardioSTError, match=r"max_steps 2 then, 4 now.*`new_schedule=True`"):
        align(care, data, tmp_path, max_steps=4, **SETTINGS)
    # ...and done as a new schedule from the last checkpoint's weights, reusing the targets
    second = align(care, data, tmp_path, max_steps=4, new_schedule=True, **SETTINGS)
    assert second.steps == 4 and (tmp_path / "schedule-1" / "checkpoint-2").is_dir()
    assert record.stat().st_mtime_ns == stamp
    assert not _changed(document, care[0].sub_modules["document"].state_dict())
    reloaded = SentenceTransformer(second.final_dir, device="cpu")
    assert torch.allclose(
        torch.as_tensor(reloaded.encode_query(ROWS["anchor"][:2])),
        torch.as_tensor(care.encode_query(ROWS["anchor"][:2])),
        atol=1e-5,
    )


def test_finetune_moves_each_route_at_its_own_learning_rate_and_resumes(care, tmp_path):
    data = DatasetDict({"train": Dataset.from_dict(ROWS)})
    # With a document learning rate of 0 only the query route moves
    document, query = _state(care, "document"), _state(care, "query")
    finetune(care, data, tmp_path / "frozen", max_steps=2, document_lr=0.0, query_lr=1e-3, **SETTINGS)
    assert _changed(query, care[0].sub_modules["query"].state_dict())
    assert not _changed(document, care[0].sub_modules["document"].state_dict())
    # With both learning rates set both move, except the truncation bridge, which stays the identity
    document = _state(care, "document")
    first = finetune(care, data, tmp_path / "both", max_steps=2, document_lr=1e-4, **SETTINGS)
    after = care[0].sub_modules["document"].state_dict()
    assert _changed(document, after)
    bridge = [module for module in care[0].sub_modules["document"] if type(module).__name__ == "Dense"][0]
    assert torch.equal(bridge.linear.weight, torch.eye(64, 384))
    # more steps: a new schedule from the last checkpoint's weights (an exact resume would refuse them)
    both = tmp_path / "both"
    second = finetune(care, data, both, max_steps=3, document_lr=1e-4, new_schedule=True, **SETTINGS)
    assert first.steps == 2 and second.steps == 3 and (both / "schedule-1" / "checkpoint-2").is_dir()


def test_care_training_refuses_a_model_without_routes_and_other_columns(tiny_qwen3, care, tmp_path):
    data = DatasetDict({"train": Dataset.from_dict(ROWS)})
    with pytest.raises(CardioSTError, match="'query' and a 'document' route"):
        align(tiny_qwen3, data, tmp_path)
    wrong = DatasetDict({"train": Dataset.from_dict({"query": ROWS["anchor"], "passage": ROWS["positive"]})})
    with pytest.raises(CardioSTError, match="columns anchor, positive"):
        finetune(care, wrong, tmp_path)


def test_finetune_with_a_lora_document_route_saves_a_reloadable_final_model(
    tiny_qwen3, tiny_qwen3_hub_id, tmp_path
):
    from cardio_st.models import cardioembed

    document = cardioembed(tiny_qwen3_hub_id, quantization=None, device="cpu")
    model = care_model(tiny_qwen3, document, device="cpu")
    data = DatasetDict({"train": Dataset.from_dict(ROWS)})
    result = finetune(model, data, tmp_path, max_steps=1, document_lr=1e-3, **SETTINGS)
    reloaded = SentenceTransformer(result.final_dir, device="cpu")
    assert torch.allclose(
        torch.as_tensor(reloaded.encode_document(ROWS["positive"][:2])),
        torch.as_tensor(model.encode_document(ROWS["positive"][:2])),
        atol=1e-5,
    )


def test_fit_projection_starts_the_bridge_at_the_least_squares_map(tiny_qwen3, minilm):
    import numpy as np

    from cardio_st.losses.asym_info_nce_mse import add_document_targets
    from cardio_st.training.care import RIDGE, fit_projection

    # Given a 64-d query encoder projected to a 384-d document encoder, and the document targets
    model = care_model(tiny_qwen3, minilm, bridge="project", device="cpu")
    rows = Dataset.from_dict({"anchor": ROWS["anchor"][:4], "positive": ROWS["positive"][:4]})
    targets = add_document_targets(rows, model)
    texts = list(rows["anchor"]) + list(rows["positive"])
    wanted = np.concatenate([np.asarray(targets["label"])[:, 0], np.asarray(targets["label"])[:, 1]])
    before = (model.encode_query(texts) * wanted).sum(axis=1).mean()
    # When the bridge is fitted
    cosine = fit_projection(model, targets)
    # Then its weights are the least-squares solution, and 8 texts in 64 dimensions are met exactly
    inputs = SentenceTransformer(modules=list(model[0].sub_modules["query"])[:2], device="cpu").encode(texts)
    x = inputs.astype(np.float64)
    ridge = RIDGE * np.trace(x.T @ x) / x.shape[1]
    solution = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ wanted)
    bridge = model[0].sub_modules["query"][2]
    np.testing.assert_allclose(bridge.linear.weight.detach().numpy(), solution.T, atol=1e-5)
    after = (model.encode_query(texts) * wanted).sum(axis=1)
    assert cosine == pytest.approx(after.mean(), abs=1e-4) and after.min() > 0.99 > before
    assert np.abs(solution).max() < 1  # the ridge keeps the weights small
    # A model without a projection bridge is left as it is
    assert (
        fit_projection(care_model(copy.deepcopy(tiny_qwen3), copy.deepcopy(minilm), device="cpu"), targets)
        is None
    )
