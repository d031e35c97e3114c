"""cardio_st.hub.push and `cardio-st push`, with the Hub API mocked the way sentence-transformers' tests mock
it (HfApi.create_repo, create_branch and upload_folder): files, card metadata, dry runs, the token."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest
from huggingface_hub import CommitInfo, HfApi, ModelCard, RepoUrl
from typer.testing import CliRunner

from cardio_st.cli import app
from cardio_st.errors import CardioSTError
from cardio_st.hub.push import push_to_hub

runner = CliRunner()
SECRET = "hf_SecretTokenThatMustNeverBeWritten0123"


class HubMock:
    """Records every Hub call; ``upload_folder`` keeps a copy of what it was sent."""

    def __init__(self, monkeypatch, folder: Path) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.received: list[Path] = []
        self.tokens: list[str | None] = []
        self.fail_upload: Exception | None = None
        self.folder = folder
        mock = self

        def create_repo(self, repo_id, **kwargs):
            mock._seen(self, "create_repo", repo_id=repo_id, **kwargs)
            return RepoUrl(f"https://huggingface.co/{repo_id}")

        def create_branch(self, repo_id, **kwargs):
            mock._seen(self, "create_branch", repo_id=repo_id, **kwargs)

        def upload_folder(self, **kwargs):
            mock._seen(self, "upload_folder", **kwargs)
            if mock.fail_upload is not None:
                raise mock.fail_upload
            copy = mock.folder / f"upload-{len(mock.received)}"
            shutil.copytree(kwargs["folder_path"], copy)
            mock.received.append(copy)
            repo = kwargs["repo_id"]
            return CommitInfo(
                commit_url=f"https://huggingface.co/{repo}/commit/{'a' * 40}",
                commit_message=kwargs.get("commit_message") or "",
                commit_description=kwargs.get("commit_description") or "",
                oid="a" * 40,
                pr_url=f"https://huggingface.co/{repo}/discussions/1" if kwargs.get("create_pr") else None,
            )

        for name, function in (
            ("create_repo", create_repo),
            ("create_branch", create_branch),
            ("upload_folder", upload_folder),
        ):
            monkeypatch.setattr(HfApi, name, function)

    def _seen(self, api, name, **kwargs):
        from huggingface_hub import get_token

        self.calls.append((name, kwargs))
        self.tokens.append(api.token or get_token())

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def hub(monkeypatch, tmp_path):
    return HubMock(monkeypatch, tmp_path / "hub")


def _tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _card(folder: Path) -> tuple[dict, str]:
    card = ModelCard.load(folder / "README.md")
    return card.data.to_dict(), card.text


# --------------------------------------------------------------------------- pushes


def test_push_full_model_uploads_the_model_and_a_card_with_its_recorded_results(full_model_folder, hub):
    folder, metrics = full_model_folder
    before = _tree(folder)
    result = push_to_hub(
        folder,
        "my-lab/tiny-full",
        private=True,
        base_model_id="cardio-st-tests/tiny-qwen3",
        datasets=["my-lab/icd10-pairs"],
        license="apache-2.0",
        language="en",
    )
    assert hub.names() == ["create_repo", "upload_folder"]
    assert hub.calls[0][1]["private"] is True
    uploaded = hub.received[0]
    assert {"model.safetensors", "modules.json", "README.md", "tokenizer.json"} <= set(_tree(uploaded))
    assert not any(
        name.startswith((".git", "checkpoint-")) or name == "training_args.bin" for name in _tree(uploaded)
    )
    assert result.left_out == {
        ".git/config": "hidden file",
        "checkpoint-3/optimizer.pt": "training checkpoint",
        "training_args.bin": "trainer state, not part of the model",
    }
    meta, text = _card(uploaded)
    assert meta["base_model"] == "cardio-st-tests/tiny-qwen3"
    assert meta["datasets"] == ["my-lab/icd10-pairs"] and meta["license"] == "apache-2.0"
    assert {"sentence-transformers", "cardio-st", "medical"} <= set(meta["tags"])
    index = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert index["exact@1"] == metrics["icd10-cardio_exact@1"]  # the evaluator's number, not a typed one
    assert (
        'model = SentenceTransformer("my-lab/tiny-full")' in text
        and "trust_remote_code" not in text.split("## Usage")[1].split("```python")[1].split("```")[0]
    )
    assert "Not a diagnostic tool" in text and "2401.01943" in text  # ICD-10-CM results cite their benchmark
    assert _tree(folder) == before  # the user's folder is untouched
    assert result.commit_url.endswith("a" * 40)


def test_push_adapter_records_its_base_by_hub_id(adapter_folder, hub, tiny_qwen3_hub_id):
    folder, trained = adapter_folder
    push_to_hub(folder, "my-lab/tiny-adapter", weights="adapter")
    uploaded = hub.received[0]
    assert "adapter_model.safetensors" in _tree(uploaded) and "model.safetensors" not in _tree(uploaded)
    assert (
        json.loads((uploaded / "adapter_config.json").read_text())["base_model_name_or_path"]
        == tiny_qwen3_hub_id
    )
    meta, text = _card(uploaded)
    assert meta["base_model"] == tiny_qwen3_hub_id and meta["base_model_relation"] == "adapter"
    assert {"lora", "peft"} <= set(meta["tags"])
    index = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert index["accuracy@1"] == trained.metrics["held-out_accuracy@1"]  # the final model's, as trained
    assert "pip install -U sentence-transformers peft" in text
    assert "| LoRA | r=16, alpha=32, dropout=0.05, on `down_proj`" in text
    assert "`toy-pairs`: 32 train, 8 eval rows" in text
    assert "encode_query` adds `Instruct: Given a clinical cardiology question" in text


def test_adapter_over_a_local_base_needs_a_hub_id(tiny_qwen3_path, hub, tmp_path):
    from peft import LoraConfig
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_qwen3_path), device="cpu")
    model.add_adapter(LoraConfig(r=2, target_modules=["q_proj"]))
    model.save(str(tmp_path / "model"))
    with pytest.raises(CardioSTError, match="pass `base_model_id='org/name'`"):
        push_to_hub(tmp_path / "model", "my-lab/local-base")
    with pytest.raises(CardioSTError, match="pass `base_model_id='org/name'`"):
        push_to_hub(tmp_path / "model", "my-lab/local-base", dry_run=tmp_path / "dry")
    assert hub.calls == [] and not any((tmp_path / "dry").iterdir())  # nothing half-staged is left
    assert not list(tmp_path.glob(".cardio-st-push-*"))
    push_to_hub(tmp_path / "model", "my-lab/local-base", base_model_id="my-lab/tiny-base")
    config = json.loads((hub.received[0] / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "my-lab/tiny-base"
    assert json.loads((tmp_path / "model" / "adapter_config.json").read_text())[
        "base_model_name_or_path"
    ] == str(tiny_qwen3_path)  # the local folder keeps its own


def test_push_merged_uploads_full_weights_with_the_same_embeddings(adapter_folder, hub):
    from sentence_transformers import SentenceTransformer

    folder, _ = adapter_folder
    push_to_hub(folder, "my-lab/tiny-merged", weights="merged")
    uploaded = hub.received[0]
    assert "model.safetensors" in _tree(uploaded) and "adapter_config.json" not in _tree(uploaded)
    texts = ["atrial fibrillation", "chest pain"]
    original = SentenceTransformer(str(folder), device="cpu").encode(texts)
    merged = SentenceTransformer(str(uploaded), device="cpu").encode(texts)
    assert abs(original - merged).max() < 1e-5
    meta, text = _card(uploaded)
    assert meta["base_model_relation"] == "finetune" and "LoRA adapter merged in" in text


def test_push_care_router(care_folder, hub):
    bases = ["cardio-st-tests/tiny-qwen3", "sentence-transformers/all-MiniLM-L6-v2"]
    push_to_hub(care_folder, "my-lab/tiny-care", base_model_id=bases, revision="v1", create_pr=True)
    assert hub.names() == ["create_repo", "create_branch", "upload_folder"]
    assert hub.calls[1][1]["branch"] == "v1"
    assert hub.calls[2][1]["revision"] == "v1" and hub.calls[2][1]["create_pr"] is True
    uploaded = hub.received[0]
    assert any(name.endswith("router_config.json") for name in _tree(uploaded))
    meta, text = _card(uploaded)
    assert meta["base_model"] == bases and "asymmetric-retrieval" in meta["tags"]
    assert "model.encode_query(queries)" in text and "model.encode_document(documents)" in text
    assert "2604.10937" in text  # CARE is cited


def test_dry_run_writes_exactly_what_the_upload_receives(adapter_folder, hub, tmp_path):
    folder, _ = adapter_folder
    dry = push_to_hub(folder, "my-lab/tiny-adapter", dry_run=tmp_path / "dry")
    assert hub.calls == []  # no Hub call, no token needed
    assert dry.folder == tmp_path / "dry" and sorted(dry.files) == sorted(_tree(tmp_path / "dry"))
    push_to_hub(folder, "my-lab/tiny-adapter")
    assert _tree(hub.received[0]) == _tree(tmp_path / "dry")
    with pytest.raises(CardioSTError, match="not an empty folder"):
        push_to_hub(folder, "my-lab/tiny-adapter", dry_run=tmp_path / "dry")


def test_the_card_is_stable_when_pushed_again(adapter_folder, tmp_path):
    folder, _ = adapter_folder
    push_to_hub(folder, "my-lab/again", dry_run=tmp_path / "once")
    push_to_hub(tmp_path / "once", "my-lab/again", dry_run=tmp_path / "twice")
    assert (tmp_path / "once" / "README.md").read_text() == (tmp_path / "twice" / "README.md").read_text()


# --------------------------------------------------------------------------- the token


def test_the_token_never_appears_in_a_file_or_a_log_line(
    full_model_folder, hub, monkeypatch, tmp_path, caplog, capsys
):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    folder, _ = full_model_folder
    result = runner.invoke(app, ["push", str(folder), "my-lab/tiny-full", "--license", "apache-2.0"])
    assert result.exit_code == 0, result.output
    push_to_hub(folder, "my-lab/tiny-full", token=SECRET, dry_run=tmp_path / "dry")
    hub.fail_upload = ConnectionError(f"connection reset while sending Authorization: Bearer {SECRET}")
    with pytest.raises(CardioSTError) as failed:
        push_to_hub(folder, "my-lab/tiny-full", token=SECRET)
    assert hub.tokens and set(hub.tokens) == {SECRET}  # the token was really in play
    assert SECRET not in str(failed.value) and "hf_***" in str(failed.value)
    written = [*hub.received, tmp_path / "dry"]  # the failed push's staging is gone (see below)
    for root in written:
        for path in root.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path
    captured = capsys.readouterr()
    assert SECRET not in result.output + captured.out + captured.err + caplog.text


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("repo_id", "message"),
    [("my lab/model", "invalid repo id"), ("my-lab/model!", "invalid repo id"), ("model", "no namespace")],
)
def test_bad_repo_ids_are_refused_before_anything_runs(repo_id, message, full_model_folder, hub):
    result = runner.invoke(app, ["push", str(full_model_folder[0]), repo_id])
    assert result.exit_code == 2 and message in result.output and hub.calls == []


def test_folders_that_are_not_models(tmp_path, raw_adapter, hub):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CardioSTError, match="not a model folder"):
        push_to_hub(tmp_path / "empty", "my-lab/x")
    with pytest.raises(CardioSTError, match="cardio-st convert"):
        push_to_hub(raw_adapter, "my-lab/x")
    result = runner.invoke(app, ["push", str(tmp_path / "empty"), "my-lab/x", "--adapter-only", "--merged"])
    assert result.exit_code == 2 and "exclude each other" in result.output


def test_full_weights_refuse_adapter_flags(full_model_folder, hub):
    with pytest.raises(CardioSTError, match="an adapter-only upload does not apply"):
        push_to_hub(full_model_folder[0], "my-lab/x", weights="adapter")
    with pytest.raises(CardioSTError, match="merging the adapter does not apply"):
        push_to_hub(full_model_folder[0], "my-lab/x", weights="merged")


def _entries(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_a_failed_upload_says_what_was_and_was_not_uploaded_and_leaves_nothing_behind(
    full_model_folder, hub, tmp_path, monkeypatch
):
    folder, _ = full_model_folder
    # Given the model's folder and its parent as they are, and a staging area the test can watch
    monkeypatch.setenv("CARDIO_ST_CACHE", str(tmp_path / "cache"))
    before, beside = _entries(folder), _entries(folder.parent)
    hub.fail_upload = ConnectionError("connection reset by peer")
    # When the upload fails
    with pytest.raises(CardioSTError) as failed:
        push_to_hub(folder, "my-lab/tiny-full")
    message = str(failed.value)
    assert hub.names() == ["create_repo", "upload_folder"]
    assert "the repository exists, but none of the" in message and "was committed" in message
    assert "ConnectionError: connection reset by peer" in message and "Run the same push again" in message
    # Then no staging folder is left in the model's folder, beside it, or anywhere else
    assert _entries(folder) == before and _entries(folder.parent) == beside
    assert list((tmp_path / "cache" / "push").iterdir()) == []
    staged_at = Path(hub.calls[-1][1]["folder_path"])
    assert not staged_at.is_relative_to(folder.parent) and not staged_at.exists()
    # and the retry the message suggests uploads the same files as a dry run
    hub.fail_upload = None
    push_to_hub(folder, "my-lab/tiny-full", dry_run=tmp_path / "dry")
    push_to_hub(folder, "my-lab/tiny-full")
    assert _tree(hub.received[0]) == _tree(tmp_path / "dry")
    assert list((tmp_path / "cache" / "push").iterdir()) == []


@pytest.fixture
def own_model_folder(full_model_folder, tmp_path):
    """A copy of the full model that a test may add files to."""
    return Path(shutil.copytree(full_model_folder[0], tmp_path / "model"))


def test_only_model_files_are_uploaded_and_the_rest_is_reported(own_model_folder, hub):
    # Given a model folder that also holds the user's notes and secrets
    (own_model_folder / "notes.txt").write_text("ask the ethics board")
    (own_model_folder / "secrets.env").write_text("DB_PASSWORD=hunter2")
    (own_model_folder / "1_Pooling" / "scratch.csv").write_text("a,b")
    # When it is pushed
    result = push_to_hub(own_model_folder, "my-lab/tiny-full")
    # Then only the model's files go up, and each file left behind is named with its reason
    uploaded = set(_tree(hub.received[0]))
    assert not {"notes.txt", "secrets.env", "1_Pooling/scratch.csv"} & uploaded
    assert {"model.safetensors", "modules.json", "1_Pooling/config.json", "tokenizer.json"} <= uploaded
    reason = "not a model, tokenizer or card file (push uploads only those)"
    assert {
        name: result.left_out[name] for name in ("notes.txt", "secrets.env", "1_Pooling/scratch.csv")
    } == {
        "notes.txt": reason,
        "secrets.env": reason,
        "1_Pooling/scratch.csv": reason,
    }


def test_a_link_out_of_the_model_folder_is_refused(own_model_folder, hub, tmp_path):
    # Given a link, named like a model file, to a file outside the model folder
    (tmp_path / "private.txt").write_text("patient list")
    (own_model_folder / "vocab.txt").symlink_to(tmp_path / "private.txt")
    # When it is pushed, Then it is refused in one line naming the link, and nothing is uploaded
    with pytest.raises(
        CardioSTError, match=r"vocab.txt is a link to .*private.txt, outside the model folder"
    ):
        push_to_hub(own_model_folder, "my-lab/tiny-full")
    assert "upload_folder" not in hub.names()
    result = runner.invoke(app, ["push", str(own_model_folder), "my-lab/tiny-full"])
    assert (
        result.exit_code == 2
        and result.output.count("\n") == 1
        and "outside the model folder" in result.output
    )


def test_a_link_inside_the_model_folder_uploads_its_target(own_model_folder, hub):
    (own_model_folder / "model.safetensors").rename(own_model_folder / "weights.safetensors")
    (own_model_folder / "model.safetensors").symlink_to("weights.safetensors")
    push_to_hub(own_model_folder, "my-lab/tiny-full")
    uploaded = hub.received[0]
    assert (uploaded / "model.safetensors").read_bytes() == (
        own_model_folder / "weights.safetensors"
    ).read_bytes()


def test_a_refused_token_names_the_login(full_model_folder, hub, monkeypatch):
    from unittest.mock import Mock

    from huggingface_hub.errors import HfHubHTTPError

    def refuse(self, repo_id, **kwargs):
        raise HfHubHTTPError("401 Client Error: Unauthorized", response=Mock(status_code=401, headers={}))

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    result = runner.invoke(app, ["push", str(full_model_folder[0]), "my-lab/tiny-full"])
    assert result.exit_code == 1
    assert "hf auth login" in result.output and "nothing was uploaded" in result.output


def test_training_rows_in_the_card_are_flagged_and_can_be_left_out(adapter_folder, tmp_path):
    folder, _ = adapter_folder
    kept = runner.invoke(app, ["push", str(folder), "my-lab/rows", "--dry-run", str(tmp_path / "kept")])
    assert kept.exit_code == 0, kept.output
    assert "check they hold no patient data" in kept.output
    card = (tmp_path / "kept" / "README.md").read_text()
    assert "* Samples:" in card and "widget:" in card
    result = runner.invoke(
        app, ["push", str(folder), "my-lab/rows", "--no-samples", "--dry-run", str(tmp_path / "clean")]
    )
    assert result.exit_code == 0, result.output
    clean = (tmp_path / "clean" / "README.md").read_text()
    assert "* Samples:" not in clean and "widget:" not in clean and "case 3" not in clean
    assert "* Size: 32 training samples" in clean  # the rest of the training record stays
