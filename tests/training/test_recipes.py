"""cardio_st.training.recipes: each one call is what its command does (the same final model as
`cardio-st train` / `care align` / `care finetune`), and bad arguments are named as parameters."""

from __future__ import annotations

import pytest
from datasets import Dataset
from safetensors.torch import load_file
from typer.testing import CliRunner

from cardio_st.cli import app
from cardio_st.errors import CardioSTError
from cardio_st.training.recipes import align_encoders, finetune_model, train_cardioembed

runner = CliRunner()

TERMS = ["heart attack", "high blood pressure", "irregular heartbeat", "heart failure", "angina"]
NAMES = [
    "Acute myocardial infarction",
    "Essential (primary) hypertension",
    "Atrial fibrillation",
    "Heart failure, unspecified",
    "Angina pectoris, unspecified",
]


@pytest.fixture
def pairs(tmp_path):
    rows = {"anchor": TERMS * 8, "positive": NAMES * 8, "negative": (NAMES[1:] + NAMES[:1]) * 8}
    Dataset.from_dict(rows).to_parquet(str(tmp_path / "pairs.parquet"))
    return tmp_path / "pairs.parquet"


def test_train_cardioembed_gives_the_model_cardio_st_train_gives(tiny_qwen3_hub_id, pairs, tmp_path):
    # Given the same base, data and settings
    settings = {"batch_size": 4, "max_steps": 2, "seed": 7}
    # When one run goes through the library call and one through the command
    result = train_cardioembed(tiny_qwen3_hub_id, pairs, tmp_path / "lib", quantization=None, **settings)
    command = runner.invoke(
        app,
        ["train", "--base", tiny_qwen3_hub_id, "--data", str(pairs), "--out", str(tmp_path / "cli")]
        + ["--quantize", "none", "--batch-size", "4", "--max-steps", "2", "--seed", "7"],
    )
    # Then both trained the same adapter
    assert command.exit_code == 0, command.output
    assert result.steps == 2 and result.final_dir == str(tmp_path / "lib" / "final")
    ours = load_file(str(tmp_path / "lib" / "final" / "adapter_model.safetensors"))
    theirs = load_file(str(tmp_path / "cli" / "final" / "adapter_model.safetensors"))
    assert ours.keys() == theirs.keys() and all(ours[k].equal(theirs[k]) for k in ours)
    # And a second call refuses the finished run, naming the keyword
    with pytest.raises(CardioSTError, match=r"pass `overwrite=True`"):
        train_cardioembed(tiny_qwen3_hub_id, pairs, tmp_path / "lib", quantization=None, **settings)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"data": "/no/such/data"}, "`data='/no/such/data'` does not exist"),
        ({"quantization": "2bit"}, "`quantization='2bit'` is unknown"),
        ({"batch_size": 0}, "`batch_size=0` is too small"),
        ({"max_seq_length": 0}, "`max_seq_length=0` is too small"),
        ({"r": 0}, "`r=0` is too small"),
        ({"temperature": 0.0}, "`temperature=0.0` must be positive"),
        ({"lr": -1.0}, "`lr=-1.0` must be positive"),
    ],
)
def test_train_cardioembed_names_a_bad_argument_before_loading_anything(pairs, tmp_path, bad, message):
    arguments = {"base": "org/never-loaded", "data": pairs, "output_dir": tmp_path / "o", **bad}
    with pytest.raises(CardioSTError, match=message) as error:
        train_cardioembed(**arguments)
    assert error.value.exit_code == 2 and "--" not in str(error.value)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d, o: align_encoders("minilm", "minilm", d, o, bridge="pad"), "`bridge='pad'` is unknown"),
        (lambda d, o: align_encoders("minilm", "minilm", d, o, lr=0), "`lr=0` must be positive"),
        (lambda d, o: align_encoders("m", "m", "nowhere", o), "`data='nowhere'` does not exist"),
        (lambda d, o: finetune_model("m", d, o, document_lr=-1), "`document_lr=-1` must be at least 0"),
        (lambda d, o: finetune_model("m", d, o, query_lr=0), "`query_lr=0` must be positive"),
        (lambda d, o: finetune_model("m", "nowhere", o), "`data='nowhere'` does not exist"),
    ],
)
def test_care_recipes_name_a_bad_argument(pairs, tmp_path, call, message):
    with pytest.raises(CardioSTError, match=message) as error:
        call(pairs, tmp_path / "o")
    assert "--" not in str(error.value)


def test_align_then_finetune_from_folders_give_the_models_the_commands_give(
    tiny_qwen3_path, minilm_path, pairs, tmp_path
):
    common = ["--data", str(pairs), "--batch-size", "4", "--max-steps", "2"]
    aligned = align_encoders(tiny_qwen3_path, minilm_path, pairs, tmp_path / "s1", batch_size=4, max_steps=2)
    command = runner.invoke(
        app,
        ["care", "align", "--query", str(tiny_qwen3_path), "--document", str(minilm_path)]
        + ["--out", str(tmp_path / "c1"), *common],
    )
    assert command.exit_code == 0, command.output
    weights = "final/query_0_Transformer/model.safetensors"  # the route Stage I trains
    ours, theirs = (load_file(str(tmp_path / run / weights)) for run in ("s1", "c1"))
    assert aligned.steps == 2 and ours.keys() == theirs.keys() and all(ours[k].equal(theirs[k]) for k in ours)
    tuned = finetune_model(aligned.final_dir, pairs, tmp_path / "s2", batch_size=4, max_steps=2)
    assert tuned.steps == 2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tuned.final_dir, device="cpu")
    assert model.encode_query(["heart attack"]).shape == (1, 64)
