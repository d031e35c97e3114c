"""cardio_st.models.routes: one route of a saved Router loads on its own, reads only its own files,
and embeds exactly as the full model does."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from cardio_st.errors import CardioSTError
from cardio_st.models.care import care_model
from cardio_st.models.routes import load_route, read_layout

TEXTS = ["heart attack with ST elevation", "Atrial fibrillation", "high blood pressure"]


@pytest.mark.parametrize("bridge", ["truncate", "project"])
def test_each_route_alone_embeds_as_the_full_model(tiny_qwen3, minilm, tmp_path, bridge):
    # Given a saved CARE model (a truncation bridge sits on the document route, a projection on the query)
    query, document = (tiny_qwen3, minilm) if bridge == "truncate" else (minilm, tiny_qwen3)
    care_model(query, document, bridge=bridge, device="cpu").save(str(tmp_path))
    full = SentenceTransformer(str(tmp_path), device="cpu")
    # When each route is loaded on its own
    query_encoder = load_route(tmp_path, "query", device="cpu")
    document_encoder = load_route(tmp_path, "document", device="cpu")
    # Then each embeds exactly as the full model's encode_query / encode_document
    np.testing.assert_array_equal(query_encoder.encode_query(TEXTS), full.encode_query(TEXTS))
    np.testing.assert_array_equal(document_encoder.encode_document(TEXTS), full.encode_document(TEXTS))
    assert query_encoder.get_embedding_dimension() == document_encoder.get_embedding_dimension()


def test_a_route_loads_with_the_other_routes_files_gone(tiny_qwen3, minilm, tmp_path):
    care_model(tiny_qwen3, minilm, device="cpu").save(str(tmp_path))
    expected = SentenceTransformer(str(tmp_path), device="cpu").encode_query(TEXTS)
    layout = read_layout(tmp_path)
    for part in layout.route_parts("document"):
        shutil.rmtree(tmp_path / part)
    assert not read_layout(tmp_path).route_on_disk("document") and layout.route_on_disk("query")
    np.testing.assert_array_equal(load_route(tmp_path, "query", device="cpu").encode_query(TEXTS), expected)


def test_prompts_are_kept(tiny_qwen3, minilm, tmp_path):
    model = care_model(tiny_qwen3, minilm, device="cpu")
    model.prompts = {"query": "query: ", "document": "passage: "}
    model.save(str(tmp_path))
    full = SentenceTransformer(str(tmp_path), device="cpu")
    alone = load_route(tmp_path, "query", device="cpu")
    assert alone.prompts["query"] == "query: "
    np.testing.assert_array_equal(alone.encode_query(TEXTS), full.encode_query(TEXTS))


def test_a_model_without_routes_is_the_route_itself(minilm_path):
    layout = read_layout(minilm_path)
    assert layout.router is None and layout.routes == [] and layout.route_parts("query") is None
    model = load_route(minilm_path, "query", device="cpu")
    reference = SentenceTransformer(str(minilm_path), device="cpu")
    np.testing.assert_array_equal(model.encode_query(TEXTS), reference.encode_query(TEXTS))


def test_bad_folders_and_routes_are_named(tiny_qwen3, minilm, tmp_path):
    with pytest.raises(CardioSTError, match="has no modules.json"):
        read_layout(tmp_path)
    care_model(copy.deepcopy(tiny_qwen3), minilm, device="cpu").save(str(tmp_path / "care"))
    with pytest.raises(CardioSTError, match=r"no route 'passage' \(its routes: query, document\)"):
        load_route(tmp_path / "care", "passage")
    config_path = tmp_path / "care" / "router_config.json"
    config = json.loads(config_path.read_text())
    first = config["structure"]["query"][0]
    config["types"][first] = "my_package.CustomTransformer"
    config_path.write_text(json.dumps(config))
    with pytest.raises(CardioSTError, match="not a sentence-transformers module.*trust_remote_code"):
        load_route(tmp_path / "care", "query")
