"""Resume is exact or refused (issue 18, items 1 and 3): a LoRA run on a local base resumes offline to the
weights of an uninterrupted run, a changed base, data or setting is refused by name, and after a NaN loss
the advised rerun (a lower learning rate as a new schedule) recovers."""

from __future__ import annotations

import json
import random
import shutil

import pytest
import torch
from datasets import Dataset, DatasetDict
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from transformers import TrainerCallback

from cardio_st.errors import CardioSTError, as_flags
from cardio_st.training.resume import RUN_FILE
from cardio_st.training.trainer import train

WORDS = "heart valve artery vein atrial ventricular pressure rhythm chest pain failure infarction".split()
TEXTS = ["atrial fibrillation with rapid ventricular response", "acute anterior wall infarction"]


def _data(n=48, seed=0):
    rnd = random.Random(seed)
    anchors = [" ".join(rnd.sample(WORDS, 4)) + f" case {i}" for i in range(n)]
    rows = {"anchor": anchors, "positive": [a.upper() for a in anchors]}
    return DatasetDict({"train": Dataset.from_dict(rows)})


@pytest.fixture(scope="module")
def local_base(tmp_path_factory, tiny_qwen3_path):
    """A local base folder outside the Hub cache whose weights differ from the Hub model
    ``cardio-st-tests/tiny-qwen3`` (as a fine-tuned copy of a Hub model does)."""
    from transformers import AutoModel, AutoTokenizer

    source = tiny_qwen3_path.parent / "hf"
    folder = tmp_path_factory.mktemp("bases") / "local-qwen3"
    model = AutoModel.from_pretrained(str(source))
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(folder))
    return folder


def _model(base, **kwargs):
    from transformers import set_seed

    from cardio_st.models import cardioembed

    set_seed(42)
    return cardioembed(str(base), quantization=None, device="cpu", max_seq_length=32, **kwargs)


class Interrupt(Exception):
    pass


class StopAfterSave(TrainerCallback):
    """Stands for a kill right after a checkpoint is complete."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Interrupt


class StopAtStep(TrainerCallback):
    """Stands for a kill before any checkpoint."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            raise Interrupt


def _train(model, out, data=None, **kwargs):
    options = {"epochs": 2, "batch_size": 8, "save_steps": 3, "show_progress": False, "lr": 2e-4}
    return train(model, data or _data(), out, **{**options, **kwargs})


def _interrupted(base, out, **model_kwargs):
    with pytest.raises(Interrupt):
        _train(_model(base, **model_kwargs), out, callbacks=[StopAfterSave(3)])
    assert (out / "checkpoint-3").is_dir() and not (out / "final").exists()


def test_a_lora_run_on_a_local_base_resumes_offline_to_the_uninterrupted_weights(
    local_base, tiny_qwen3_hub_id, tmp_path
):
    # Given a local base whose --base-model-id names a Hub model with other weights (offline: conftest)
    hub_id = tiny_qwen3_hub_id
    straight = _model(local_base, base_model_id=hub_id)
    _train(straight, tmp_path / "straight")
    # When another run is killed after its first checkpoint and started again
    _interrupted(local_base, tmp_path / "killed", base_model_id=hub_id)
    result = _train(_model(local_base, base_model_id=hub_id), tmp_path / "killed")
    # Then it resumed, on the local base, to the uninterrupted run's weights bit for bit
    assert result.resumed_from.endswith("checkpoint-3")
    a = load_file(str(tmp_path / "straight" / "final" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "final" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # And the saved model names its local base, reloads offline with plain sentence-transformers and
    # embeds as the model that was trained
    config = json.loads((tmp_path / "killed" / "final" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(local_base.resolve())
    reloaded = SentenceTransformer(str(tmp_path / "killed" / "final"), device="cpu")
    assert torch.allclose(
        reloaded.encode(TEXTS, convert_to_tensor=True),
        straight.encode(TEXTS, convert_to_tensor=True),
        atol=1e-5,
    )
    # And the Hub id given for publishing is in the record, for push
    record = json.loads((tmp_path / "killed" / "final" / "cardio_st.json").read_text())
    assert record["base_models"] == [hub_id]


def test_a_local_base_needs_no_hub_id_to_train_save_and_stage_a_push(local_base, tmp_path):
    from cardio_st.hub.stage import stage_upload

    _train(_model(local_base), tmp_path / "run", max_steps=2)
    final = tmp_path / "run" / "final"
    assert SentenceTransformer(str(final), device="cpu").encode(TEXTS).shape[0] == 2
    # push asks for the Hub id, and takes it when given
    with pytest.raises(CardioSTError, match=r"pass `base_model_id='org/name'`"):
        stage_upload(final, tmp_path / "stage")
    stage_upload(final, tmp_path / "stage2", base_model_id="org/local-qwen3")
    staged = json.loads((tmp_path / "stage2" / "adapter_config.json").read_text())
    assert staged["base_model_name_or_path"] == "org/local-qwen3"


def test_every_checkpoint_records_the_base_data_and_settings(local_base, tmp_path):
    _interrupted(local_base, tmp_path / "run")
    recorded = json.loads((tmp_path / "run" / "checkpoint-3" / RUN_FILE).read_text())
    assert recorded["bases"][0]["path"] == str(local_base.resolve())
    assert len(recorded["bases"][0]["fingerprint"]) == 64
    assert recorded["data"]["rows"] == {"train": 48}
    assert (
        recorded["settings"]["lr"] == 2e-4
        and recorded["settings"]["loss"]["InfoNCELoss"]["temperature"] == 0.05
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"lr": 1e-4}, r"lr 0\.0002 then, 0\.0001 now"),
        ({"data": _data(seed=1)}, r"the data \(rows \{'train': 48\} then"),
        ({"temperature": 0.1}, r"loss\.InfoNCELoss\.temperature 0\.05 then, 0\.1 now"),
    ],
)
def test_a_resume_with_other_data_or_settings_is_refused_by_name(local_base, tmp_path, change, named):
    _interrupted(local_base, tmp_path / "run")
    with pytest.raises(CardioSTError, match=named) as error:
        _train(_model(local_base), tmp_path / "run", **change)
    assert "`new_schedule=True`" in str(error.value) and "`overwrite=True`" in str(error.value)
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-3"]


def test_a_resume_on_a_changed_base_is_refused_even_as_a_new_schedule(local_base, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(local_base, base)
    _interrupted(base, tmp_path / "run")
    # Given the base folder's weights replaced in place
    state = load_file(str(base / "model.safetensors"))
    from safetensors.torch import save_file

    save_file(
        {k: v + 0.01 for k, v in state.items()}, str(base / "model.safetensors"), metadata={"format": "pt"}
    )
    for new_schedule in (False, True):
        with pytest.raises(CardioSTError, match=r"has other weights than .* had"):
            _train(_model(base), tmp_path / "run", new_schedule=new_schedule)


def test_after_a_nan_loss_the_advised_rerun_recovers(local_base, tmp_path):
    # Given a model whose loss overflows to NaN whenever the learning rate is above 1e-3 after step 3
    def diverging_model():
        model = _model(local_base)
        pooling, original = model[1], model[1].forward
        state = {"on": False}

        def forward(features, **kwargs):
            out = original(features, **kwargs)
            if state["on"] and model.training:
                out["sentence_embedding"] = out["sentence_embedding"] * float("nan")
            return out

        pooling.forward = forward

        class Diverge(TrainerCallback):
            def on_step_end(self, args, state_, control, optimizer=None, **kwargs):
                state["on"] = state_.global_step >= 3 and optimizer.param_groups[0]["lr"] > 1e-3

        return model, Diverge()

    model, diverge = diverging_model()
    with pytest.raises(CardioSTError) as error:
        _train(model, tmp_path / "run", lr=4e-3, callbacks=[diverge])
    message = str(error.value)
    assert "the loss became nan at step 4" in message and "checkpoint-3" in message
    assert "`lr=0.001` `new_schedule=True`" in message
    assert "--lr 0.001 --new-schedule" in as_flags(message)
    # When the user lowers the learning rate alone, the resume is refused, not resumed on the old schedule
    model, diverge = diverging_model()
    with pytest.raises(CardioSTError, match=r"lr 0\.004 then, 0\.001 now"):
        _train(model, tmp_path / "run", lr=1e-3, callbacks=[diverge])
    # When it reruns as advised, Then it trains to the end from checkpoint-3's weights
    model, diverge = diverging_model()
    result = _train(model, tmp_path / "run", lr=1e-3, new_schedule=True, callbacks=[diverge])
    assert result.steps == 12 and (tmp_path / "run" / "final").is_dir()
    assert (tmp_path / "run" / "schedule-1" / "checkpoint-3").is_dir()
    record = json.loads((tmp_path / "run" / "final" / "cardio_st.json").read_text())
    assert record["training"]["continued_from"] == "schedule-1/checkpoint-3"


def test_a_new_schedule_killed_before_its_first_checkpoint_starts_again_from_the_same_weights(
    local_base, tmp_path
):
    _interrupted(local_base, tmp_path / "run")
    # Given a new schedule killed before it saved anything
    with pytest.raises(Interrupt):
        _train(_model(local_base), tmp_path / "run", lr=1e-4, new_schedule=True, callbacks=[StopAtStep()])
    assert not list((tmp_path / "run").glob("checkpoint-*"))
    # When it runs again with the same settings, Then it starts from checkpoint-3's weights again,
    # and ends where an uninterrupted new schedule ends
    again = _train(_model(local_base), tmp_path / "run", lr=1e-4)
    record = json.loads((tmp_path / "run" / "final" / "cardio_st.json").read_text())
    assert record["training"]["continued_from"] == "schedule-1/checkpoint-3"
    _interrupted(local_base, tmp_path / "other")
    _train(_model(local_base), tmp_path / "other", lr=1e-4, new_schedule=True)
    a = load_file(str(tmp_path / "run" / "final" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "other" / "final" / "adapter_model.safetensors"))
    assert again.steps == 12 and all(torch.equal(a[k], b[k]) for k in a)
