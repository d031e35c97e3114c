"""cardio_st.modules.asymmetric_router: each route embeds with its own encoder, both bridges, frozen
routes, a plain save -> fresh-process reload with equal embeddings, and Stage I training through
SentenceTransformerTrainer that leaves the frozen document route untouched."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from datasets import Dataset
from fresh_process import encode_in_fresh_process
from sentence_transformers import SentenceTransformer

from cardio_st.errors import CardioSTError
from cardio_st.losses import AsymInfoNCEMSELoss, add_document_targets
from cardio_st.modules import asymmetric_router, route_dimensions

QUERIES = ["heart attack", "high blood pressure"]
DOCUMENTS = ["Acute myocardial infarction", "Essential (primary) hypertension"]


def _unit(x):
    x = torch.as_tensor(x, dtype=torch.float32)
    return torch.nn.functional.normalize(x, dim=-1)


def test_truncate_bridge_cuts_the_document_embedding_to_the_query_width(tiny_qwen3, minilm, tmp_path):
    # Given a 64-wide query encoder and the 384-wide MiniLM as document encoder
    expected_queries = _unit(tiny_qwen3.encode(QUERIES))
    expected_documents = _unit(minilm.encode(DOCUMENTS)[:, :64])
    router = asymmetric_router(tiny_qwen3, minilm, bridge="truncate")
    model = SentenceTransformer(modules=[router], device="cpu")
    # Then queries go through the small encoder only, documents through MiniLM cut to 64 components
    assert route_dimensions(router) == {"query": 64, "document": 64}
    assert torch.allclose(_unit(model.encode_query(QUERIES)), expected_queries, atol=1e-5)
    assert torch.allclose(_unit(model.encode_document(DOCUMENTS)), expected_documents, atol=1e-5)
    # And a plain sentence-transformers process reloads the same model
    model.save(str(tmp_path))
    (queries, documents), types = encode_in_fresh_process(
        tmp_path, [("encode_query", QUERIES), ("encode_document", DOCUMENTS)]
    )
    assert all(t.startswith("sentence_transformers.") for t in types)
    np.testing.assert_allclose(queries, model.encode_query(QUERIES), atol=1e-5)
    np.testing.assert_allclose(documents, model.encode_document(DOCUMENTS), atol=1e-5)


def test_project_bridge_starts_as_the_padded_query_embedding_and_reloads(tiny_qwen3, minilm, tmp_path):
    expected = _unit(tiny_qwen3.encode(QUERIES))
    router = asymmetric_router(tiny_qwen3, minilm, bridge="project")
    model = SentenceTransformer(modules=[router], device="cpu")
    assert route_dimensions(router) == {"query": 384, "document": 384}
    queries = torch.as_tensor(model.encode_query(QUERIES))
    assert torch.allclose(queries[:, :64], expected, atol=1e-5) and torch.all(queries[:, 64:] == 0)
    assert torch.allclose(
        torch.as_tensor(model.encode_document(DOCUMENTS)), _unit(minilm.encode(DOCUMENTS)), atol=1e-5
    )
    model.save(str(tmp_path))
    (reloaded,), _ = encode_in_fresh_process(tmp_path, [("encode_query", QUERIES)])
    np.testing.assert_allclose(reloaded, queries.numpy(), atol=1e-5)


def test_freezing_a_route_and_bad_input(tiny_qwen3, minilm):
    router = asymmetric_router(tiny_qwen3, minilm, freeze=["document"])
    query, document = router.sub_modules["query"], router.sub_modules["document"]
    assert all(p.requires_grad for m in query for p in m.parameters())
    assert not any(p.requires_grad for m in document for p in m.parameters())
    with pytest.raises(CardioSTError, match="wider than the document encoder"):
        asymmetric_router(minilm, tiny_qwen3, bridge="truncate")
    with pytest.raises(CardioSTError, match="unknown bridge"):
        asymmetric_router(tiny_qwen3, minilm, bridge="pad")
    with pytest.raises(CardioSTError, match="unknown route"):
        asymmetric_router(tiny_qwen3, minilm, freeze=["queries"])
    with pytest.raises(CardioSTError, match="share modules"):
        asymmetric_router(minilm, minilm)
    assert route_dimensions(asymmetric_router(minilm, copy.deepcopy(minilm))) == {
        "query": 384,
        "document": 384,
    }


def test_stage_one_through_the_router_trains_only_the_query_route(tiny_qwen3, minilm, tmp_path):
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    # Given a router with a frozen document route, and its document embeddings as Stage I targets
    router = asymmetric_router(tiny_qwen3, minilm, freeze=["document"])
    model = SentenceTransformer(modules=[router], device="cpu")
    train = add_document_targets(Dataset.from_dict({"anchor": QUERIES * 8, "positive": DOCUMENTS * 8}), model)
    assert train.with_format("torch")[:]["label"].shape == (16, 2, 64)
    document_before = copy.deepcopy(router.sub_modules["document"].state_dict())
    query_before = copy.deepcopy(router.sub_modules["query"].state_dict())
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=4,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        router_mapping={"anchor": "query", "positive": "query"},
        seed=0,
    )
    loss = AsymInfoNCEMSELoss(model, temperature=0.1)
    SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss).train()
    # Then the query route moved and the document route did not
    after = router.sub_modules["document"].state_dict()
    assert all(torch.equal(value, after[key]) for key, value in document_before.items())
    moved = router.sub_modules["query"].state_dict()
    assert any(not torch.equal(value, moved[key]) for key, value in query_before.items())


def test_a_lora_document_route_saves_merged_and_reloads_with_plain_sentence_transformers(
    tiny_qwen3_hub_id, tiny_qwen3, tmp_path
):
    from cardio_st.models import cardioembed
    from cardio_st.modules import save_asymmetric

    # Given a LoRA-adapted document route whose adapter changes the embeddings
    document = cardioembed(tiny_qwen3_hub_id, quantization=None, device="cpu")
    model = SentenceTransformer(modules=[asymmetric_router(tiny_qwen3, document)], device="cpu")
    torch.manual_seed(0)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0, 0.1)
    adapted = model.encode_document(DOCUMENTS)
    # When it is saved (a plain model.save writes the route adapter-only, which sentence-transformers
    # 6.2 cannot reload inside a Router)
    save_asymmetric(model, tmp_path / "merged")
    (documents, queries), _ = encode_in_fresh_process(
        tmp_path / "merged", [("encode_document", DOCUMENTS), ("encode_query", QUERIES)]
    )
    # Then the reloaded model embeds as the adapted one, and the model kept its adapter
    np.testing.assert_allclose(documents, adapted, atol=1e-5)
    np.testing.assert_allclose(queries, model.encode_query(QUERIES), atol=1e-5)
    assert any("lora_B" in name for name, _ in model.named_parameters())
    assert not (tmp_path / "merged" / "document_0_Transformer" / "adapter_config.json").exists()
