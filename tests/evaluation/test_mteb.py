"""mteb integration: the local ICD-10-CM and pairs tasks run offline and agree with cardio-st's own metrics,
named tasks fail offline with an error naming the fix, unknown names and a missing mteb are explained."""

from __future__ import annotations

import math
import os
import sys
import tempfile

import pytest
import torch

# mteb makes its result-cache folder when imported: keep it out of the user's home.
os.environ.setdefault("MTEB_CACHE", tempfile.mkdtemp(prefix="cardio-st-mteb-cache-"))
mteb = pytest.importorskip("mteb")

from datasets import Dataset, DatasetDict  # noqa: E402

from cardio_st.data.icd10 import data_release, icd10_eval_set  # noqa: E402
from cardio_st.errors import CardioSTError  # noqa: E402
from cardio_st.evaluation import mteb as cardio_mteb  # noqa: E402
from cardio_st.evaluation import mteb_tasks  # noqa: E402
from cardio_st.evaluation.icd10 import evaluate_icd10  # noqa: E402
from cardio_st.evaluation.mteb import get_tasks, icd10_task, run_mteb, triplets_task  # noqa: E402
from cardio_st.evaluation.retrieval import PairRetrievalEvaluator  # noqa: E402

RANKING_METRICS = ("ndcg_at_", "map_at_", "recall_at_", "precision_at_", "mrr_at_", "hit_rate_at_")


@pytest.fixture
def pairs_folder(tmp_path):
    """A saved pairs dataset like `cardio-st prepare` writes; its test split shares a positive and repeats
    an anchor with two positives."""
    test = {
        "anchor": ["heart attack", "high blood pressure", "raised blood pressure", "heart attack", "a-fib"],
        "positive": [
            "Acute myocardial infarction",
            "Essential (primary) hypertension",
            "Essential (primary) hypertension",
            "Old myocardial infarction",
            "Atrial fibrillation",
        ],
        "negative": ["Angina", "Hypotension", "Hypotension", "Angina", "Atrial flutter"],
    }
    train = {column: values[:2] for column, values in test.items()}
    data = DatasetDict({"train": Dataset.from_dict(train), "test": Dataset.from_dict(test)})
    data.save_to_disk(str(tmp_path / "pairs"))
    return tmp_path / "pairs"


def test_icd10_task_is_local_and_runs_with_a_tiny_model(tiny_qwen3):
    # Given the cardio ICD-10-CM task
    task = icd10_task("cardio")
    evaluation = icd10_eval_set("cardio")
    # Then its metadata is mteb's retrieval kind, tied to the installed release
    assert task.metadata.name == "CardioST-ICD10CM-Circulatory"
    assert task.metadata.main_score == "ndcg_at_10"
    assert task.metadata.dataset["revision"] == data_release()
    # When it is run through mteb offline (conftest sets HF_HUB_OFFLINE=1); short inputs keep it fast
    tiny_qwen3.max_seq_length = 16
    scores = run_mteb(tiny_qwen3, [task], batch_size=128)
    # Then every ranking score is a fraction and the main score comes first
    metrics = scores["CardioST-ICD10CM-Circulatory"]
    assert next(iter(metrics)) == "ndcg_at_10"
    ranking = {metric: value for metric, value in metrics.items() if metric.startswith(RANKING_METRICS)}
    assert {"ndcg_at_10", "mrr_at_10", "recall_at_10"} <= set(ranking)
    assert all(0.0 <= value <= 1.0 for value in ranking.values()), ranking
    # And the data is the evaluation set: queries q0.., codes as document ids, one relevant code each
    task.load_data()
    split = task.dataset["default"]["test"]
    assert len(split["queries"]) == len(evaluation["queries"]) and split["queries"]["id"][0] == "q0"
    assert split["corpus"]["id"] == evaluation["corpus"]["code"]
    assert split["relevant_docs"]["q0"] == {evaluation["queries"]["code"][0]: 1}


def _encode_once(encode):
    """``encode`` memoised per text: mteb and evaluate_icd10 then rank the very same embeddings, and the
    corpus is embedded once instead of twice."""
    cache = {}

    def encode_cached(sentences, prompt=None, **kwargs):
        assert not prompt  # MiniLM has no prompts: the cache ignores them
        missing = [text for text in dict.fromkeys(sentences) if text not in cache]
        if missing:
            cache.update(zip(missing, encode(missing, batch_size=64, convert_to_tensor=True).cpu()))
        embeddings = torch.stack([cache[text] for text in sentences])
        return embeddings if kwargs.get("convert_to_tensor") else embeddings.numpy()

    return encode_cached


@pytest.mark.slow
def test_icd10_task_agrees_with_evaluate_icd10(minilm):
    # Given mteb's scores and evaluate_icd10's on the same queries and embeddings of all-MiniLM-L6-v2
    minilm.encode_query = _encode_once(minilm.encode_query)
    minilm.encode_document = _encode_once(minilm.encode_document)
    metrics = run_mteb(minilm, [icd10_task("cardio")])["CardioST-ICD10CM-Circulatory"]
    result = evaluate_icd10(minilm, "cardio", bootstrap=0)
    ranks = [
        top.index(code) + 1 if code in top else math.inf for code, top in zip(result.codes, result.retrieved)
    ]
    ndcg = sum(1 / math.log2(rank + 1) for rank in ranks) / len(ranks)
    # Then they agree: mteb's MRR is unrounded, its recall and nDCG are rounded to 5 decimals
    assert metrics["mrr_at_10"] == pytest.approx(result.metrics["mrr@10"], abs=1e-9)
    assert metrics["recall_at_1"] == pytest.approx(result.metrics["exact@1"], abs=1e-5)
    assert metrics["recall_at_5"] == pytest.approx(result.metrics["recall@5"], abs=1e-5)
    assert metrics["recall_at_10"] == pytest.approx(result.metrics["recall@10"], abs=1e-5)
    assert metrics["ndcg_at_10"] == pytest.approx(ndcg, abs=1e-5)


def test_triplets_task_runs_and_matches_the_pair_evaluator(pairs_folder, tiny_qwen3, tmp_path):
    # Given a saved pairs dataset as a task
    task = triplets_task(pairs_folder)
    assert task.metadata.name == "CardioST-Pairs-pairs-test"
    # Then each anchor is a query, identical positives one document, negatives ignored
    task.load_data()
    split = task.dataset["default"]["test"]
    assert split["queries"]["text"][3] == "heart attack"
    assert split["corpus"]["text"] == [
        "Acute myocardial infarction",
        "Essential (primary) hypertension",
        "Old myocardial infarction",
        "Atrial fibrillation",
    ]
    assert split["relevant_docs"] == {
        "q0": {"d0": 1},
        "q1": {"d1": 1},
        "q2": {"d1": 1},
        "q3": {"d2": 1},
        "q4": {"d3": 1},
    }
    task.unload_data()
    # When it runs through mteb, saving mteb's result files
    scores = run_mteb(tiny_qwen3, [task], output_folder=tmp_path / "results")["CardioST-Pairs-pairs-test"]
    # Then it scores as CardioEmbed's evaluator does on the same pairs
    test = DatasetDict.load_from_disk(str(pairs_folder))["test"]
    expected = PairRetrievalEvaluator(test["anchor"], test["positive"], name="p", write_csv=False)(tiny_qwen3)
    assert scores["mrr_at_10"] == pytest.approx(expected["p_mrr@10"], abs=1e-9)
    assert scores["recall_at_1"] == pytest.approx(expected["p_accuracy@1"], abs=1e-5)
    assert list((tmp_path / "results").rglob("CardioST-Pairs-pairs-test.json"))


def test_triplets_task_rejects_a_missing_split(pairs_folder):
    with pytest.raises(CardioSTError, match="none named 'validation'"):
        triplets_task(pairs_folder, split="validation")


def test_named_task_offline_raises_an_error_naming_the_fix(tiny_qwen3, tmp_path, monkeypatch):
    # Given no cached copy of the data and the Hub offline
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)
    # When a named task runs
    with pytest.raises(CardioSTError) as raised:
        run_mteb(tiny_qwen3, ["BIOSSES"])
    # Then the error names the task, why its data cannot be had, and what to do
    message = str(raised.value)
    assert raised.value.exit_code == 1
    assert "'BIOSSES'" in message and "Hugging Face Hub" in message and "offline" in message
    assert "download the data beforehand" in message and "\n" not in message


class ConnectError(Exception):
    """Named as httpx's failure to connect."""


def _failing_load(error: Exception):
    def load_data(*args, **kwargs):
        raise error

    return load_data


def test_an_unreachable_hub_is_recognised_through_the_cause_chain(tiny_qwen3, monkeypatch):
    # Given a named task whose download fails deep down with a connection error, the Hub not in offline mode
    task = mteb.get_task("BIOSSES")
    cause = ConnectError("[Errno 111] Connection refused")
    error = ValueError("could not load the dataset")
    error.__cause__ = cause
    monkeypatch.setattr(task, "load_data", _failing_load(error))
    monkeypatch.setattr(cardio_mteb, "_hub_offline", lambda: False)
    # Then the error says the Hub cannot be reached and keeps the original as its cause
    with pytest.raises(
        CardioSTError, match="'BIOSSES'.*the Hub cannot be reached: connect to the internet"
    ) as raised:
        run_mteb(tiny_qwen3, [task])
    assert raised.value.__cause__ is error


def test_other_data_failures_propagate_unchanged(tiny_qwen3, monkeypatch):
    task = mteb.get_task("BIOSSES")
    monkeypatch.setattr(task, "load_data", _failing_load(RuntimeError("corrupt cache file")))
    with pytest.raises(RuntimeError, match="corrupt cache file"):
        run_mteb(tiny_qwen3, [task])


def test_get_tasks_resolves_tasks_benchmarks_and_local_names():
    tasks = get_tasks(["BIOSSES", "MTEB(Medical, v1)", "SciFact", "cardiost-icd10cm-all"])
    names = [task.metadata.name for task in tasks]
    assert names[0] == "BIOSSES" and names[-1] == "CardioST-ICD10CM-All"
    assert len(names) == 1 + 12 + 1  # SciFact is in the benchmark: listed once
    assert not any(task.data_loaded for task in tasks)


def test_local_task_names_and_the_re_exported_task_builders():
    assert mteb_tasks.icd10_task_name("cardio") == "CardioST-ICD10CM-Circulatory"
    assert mteb_tasks.icd10_task_name("all") == "CardioST-ICD10CM-All"
    assert mteb_tasks.icd10_task_name("J00-J99") == "CardioST-ICD10CM-Chapter10"
    for name in ("icd10_task", "triplets_task", "labelled_task", "icd10_task_name", "ICD10_TASK_PREFIX"):
        assert getattr(cardio_mteb, name) is getattr(mteb_tasks, name)


def test_unknown_task_name_lists_close_matches():
    with pytest.raises(
        CardioSTError, match="unknown mteb task or benchmark 'BIOSES': did you mean 'BIOSSES'"
    ):
        get_tasks(["BIOSES"])


@pytest.mark.parametrize(
    "call",
    [lambda: icd10_task("cardio"), lambda: get_tasks(["BIOSSES"]), lambda: run_mteb(None, ["BIOSSES"])],
    ids=["icd10_task", "get_tasks", "run_mteb"],
)
def test_missing_mteb_says_how_to_install_it(call, monkeypatch):
    monkeypatch.setitem(sys.modules, "mteb", None)  # `import mteb` now raises ImportError
    with pytest.raises(CardioSTError, match=r'pip install "cardio-st\[mteb\]"') as raised:
        call()
    assert raised.value.exit_code == 1
