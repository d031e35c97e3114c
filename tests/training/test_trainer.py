"""cardio_st.training.trainer and `cardio-st train`: data checks, training, NaN stop, resume, 2 processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from datasets import Dataset, DatasetDict
from safetensors.torch import load_file

from cardio_st.data.pairs import load_pairs
from cardio_st.errors import CardioSTError
from cardio_st.training.trainer import train

WORDS = "heart valve artery vein atrial ventricular pressure rhythm chest pain failure infarction".split()


def _pairs(n, seed=0, negatives=True):
    rnd = random.Random(seed)
    anchors = [" ".join(rnd.sample(WORDS, 4)) + f" case {i}" for i in range(n)]
    columns = {"anchor": anchors, "positive": [a.upper() for a in anchors]}
    if negatives:
        columns["negative"] = anchors[1:] + anchors[:1]
    return columns


def _save_dataset(folder, n_train=64, n_eval=16):
    data = DatasetDict(
        {"train": Dataset.from_dict(_pairs(n_train)), "validation": Dataset.from_dict(_pairs(n_eval, seed=1))}
    )
    data.save_to_disk(str(folder))
    return folder


# ---------------------------------------------------------------- data


def test_load_pairs_from_save_to_disk_uses_the_validation_split(tmp_path):
    data = load_pairs(_save_dataset(tmp_path / "ds"))
    assert (len(data["train"]), len(data["eval"])) == (64, 16)
    assert data["train"].column_names == ["anchor", "positive", "negative"]


@pytest.mark.parametrize("suffix", ["parquet", "jsonl", "csv"])
def test_load_pairs_from_files_ignores_metadata_columns(tmp_path, suffix):
    table = Dataset.from_dict({**_pairs(40), "source": ["book-a"] * 40, "position": list(range(40))})
    writer = {"parquet": table.to_parquet, "jsonl": table.to_json, "csv": table.to_csv}[suffix]
    writer(str(tmp_path / f"train.{suffix}"))
    data = load_pairs(tmp_path / f"train.{suffix}", eval_fraction=0.25)
    assert data["train"].column_names == ["anchor", "positive", "negative"]
    assert (len(data["train"]), len(data["eval"])) == (30, 10)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"anchor": ["a", "b"], "score": [1.0, 0.5]}, r"need \(anchor, positive"),
        ({"anchor": ["a", "b"], "positive": ["x", " "]}, r"row 1: column 'positive' is empty"),
    ],
)
def test_unusable_data_is_named(tmp_path, columns, message):
    Dataset.from_dict(columns).to_parquet(str(tmp_path / "train.parquet"))
    with pytest.raises(CardioSTError, match=message):
        load_pairs(tmp_path / "train.parquet")


def test_missing_or_unknown_data_is_named(tmp_path):
    with pytest.raises(CardioSTError, match="does not exist"):
        load_pairs(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CardioSTError, match="expected a dataset saved with save_to_disk"):
        load_pairs(tmp_path)


# ---------------------------------------------------------------- training


def _tiny_model(hub_id):
    from transformers import set_seed

    from cardio_st.models import cardioembed

    set_seed(42)
    return cardioembed(hub_id, quantization=None, device="cpu")


def test_train_saves_the_final_adapter_and_held_out_metrics(tiny_qwen3_hub_id, tmp_path):
    model = _tiny_model(tiny_qwen3_hub_id)
    base = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    data = load_pairs(_save_dataset(tmp_path / "ds"))
    result = train(model, data, tmp_path / "out", epochs=1, batch_size=8, show_progress=False)
    assert result.steps == 8 and result.resumed_from is None
    assert (tmp_path / "out" / "final" / "adapter_model.safetensors").exists()
    assert "held-out_accuracy@1" in result.metrics and "held-out_mrr@10" in result.metrics
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["steps"] == 8
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if not p.requires_grad)
    card = (tmp_path / "out" / "final" / "README.md").read_text()
    assert "InfoNCELoss" in card and '"temperature": 0.05' in card


def test_nan_loss_stops_before_the_bad_update(tiny_qwen3_hub_id, tmp_path):
    from transformers import TrainerCallback

    # Given a forward pass that overflows to NaN from training step 3 on (as fp16 can)
    model = _tiny_model(tiny_qwen3_hub_id)
    pooling = model[1]
    original_forward = pooling.forward
    overflow = {"on": False}

    def forward(features, **kwargs):
        out = original_forward(features, **kwargs)
        if overflow["on"] and model.training:
            out["sentence_embedding"] = out["sentence_embedding"] * float("nan")
        return out

    pooling.forward = forward

    class OverflowAfterStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            overflow["on"] = state.global_step >= 2

    data = load_pairs(_save_dataset(tmp_path / "ds"))
    # When training reaches step 3, Then it stops naming the step and the last good checkpoint
    with pytest.raises(
        CardioSTError, match=r"the loss became nan at step 3.*Last checkpoint: .*checkpoint-2"
    ):
        train(
            model,
            data,
            tmp_path / "out",
            epochs=1,
            batch_size=8,
            save_steps=1,
            show_progress=False,
            callbacks=[OverflowAfterStep2()],
        )
    saved = load_file(str(tmp_path / "out" / "checkpoint-2" / "adapter_model.safetensors"))
    assert all(torch.isfinite(t).all() for t in saved.values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad step was never applied
    assert not (tmp_path / "out" / "checkpoint-3").exists()


def _train_cli(data, out, *extra, base="cardio-st-tests/tiny-qwen3"):
    return _train_cli_base(data, out, *extra, base=base)


def _train_cli_base(data, out, *extra, base="cardio-st-tests/tiny-qwen3"):
    return [
        sys.executable,
        "-m",
        "cardio_st.cli",
        "train",
        "--base",
        base,
        "--data",
        str(data),
        "--out",
        str(out),
        "--quantize",
        "none",
        "--batch-size",
        "8",
        "--epochs",
        "3",
        "--save-steps",
        "3",
        *extra,
    ]


@pytest.mark.slow
@pytest.mark.parametrize("local", [False, True], ids=["hub-id", "local-folder-offline"])
def test_killed_run_resumes_to_the_same_weights(tiny_qwen3_hub_id, tiny_qwen3_path, tmp_path, local):
    data = _save_dataset(tmp_path / "ds", n_train=96)
    if local:  # a local base outside the Hub cache, with a Hub id for publishing only (issue 18, 1)
        import shutil

        shutil.copytree(tiny_qwen3_path.parent / "hf", tmp_path / "base")
        base = [str(tmp_path / "base"), "--base-model-id", "someone/other-weights"]
    else:
        base = [tiny_qwen3_hub_id]

    def _train_cli(data, out):
        return _train_cli_base(data, out, *base[1:], base=base[0])

    # Given an uninterrupted run
    straight = subprocess.run(
        _train_cli(data, tmp_path / "straight"), capture_output=True, text=True, timeout=600
    )
    assert straight.returncode == 0, straight.stderr[-2000:]
    # And a run killed (SIGKILL) once its first checkpoint is on disk
    process = subprocess.Popen(
        _train_cli(data, tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while (
        time.time() < deadline and not (tmp_path / "killed" / "checkpoint-3" / "trainer_state.json").exists()
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "final").exists()
    # When the same command runs again
    resumed = subprocess.run(
        _train_cli(data, tmp_path / "killed"), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr
    # Then both end with the same adapter weights
    a = load_file(str(tmp_path / "straight" / "final" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "final" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # And a third run refuses to overwrite the finished model
    again = subprocess.run(_train_cli(data, tmp_path / "killed"), capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "pass --overwrite" in again.stderr


@pytest.mark.slow
def test_two_cpu_processes_train_with_gathered_negatives(tiny_qwen3_hub_id, tmp_path):
    data = _save_dataset(tmp_path / "ds")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "cardio_st.cli",
        *_train_cli(data, tmp_path / "out", "--max-steps", "3")[3:],
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    card = (tmp_path / "out" / "final" / "README.md").read_text()
    assert '"gather_across_devices": true' in card
    state = json.loads((tmp_path / "out" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
