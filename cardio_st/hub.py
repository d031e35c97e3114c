"""Publishing to the Hugging Face Hub: stage exactly the files to upload (the model card enriched,
an adapter's base named by Hub id), then upload them in one commit. Leaves out the card's wording
(cardio_st.model_card) and converting raw adapters (cardio_st.conversion).

Every Hub call goes through [hub_request][cardio_st.hub.hub_request], so tests replace one function or
mock ``HfApi`` as sentence-transformers' own tests do. The token comes from the standard Hugging Face
login or ``HF_TOKEN`` (or the ``token`` argument) and is only ever handed to ``HfApi``: it is never
printed, logged or written, and error messages are scrubbed of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["PushResult", "check_repo_id", "hub_request", "push_to_hub", "stage_upload"]

logger = logging.getLogger(__name__)

Weights = Literal["as-saved", "adapter", "merged"]
_ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"}
_TRAINER_STATE = {"training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json"}


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a valid ``namespace/name`` Hub id, else an error naming the fix.

    A namespace is required (the Hub would otherwise pick the token's user): the card's loading
    snippet and ``model-index`` must name the repository exactly, also in a ``--dry-run`` without a
    token.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise CardioSTError(
            f"invalid repo id {repo_id!r}: {str(error).split(':')[0]}; write it as namespace/name with "
            "letters, digits, '-', '_' and '.', e.g. my-lab/cardioembed-minilm"
        ) from None
    if "/" not in repo_id:
        raise CardioSTError(
            f"repo id {repo_id!r} has no namespace: write it as your-user-or-org/{repo_id}, so the model "
            "card can name the repository exactly"
        )
    return repo_id


def hub_request(operation: str, /, *, token: str | None = None, **kwargs: Any) -> Any:
    """Call ``HfApi(token=token).<operation>(**kwargs)``: the one place cardio-st talks to the Hub."""
    from huggingface_hub import HfApi

    return getattr(HfApi(token=token), operation)(**kwargs)


@dataclass
class PushResult:
    """What [push_to_hub][cardio_st.hub.push_to_hub] did.

    Attributes:
        repo_id: The repository.
        files: Paths (relative, ``/``-separated) uploaded, or written by a dry run.
        left_out: Files of the model folder not uploaded, with the reason.
        folder: The dry run's output folder (None after an upload).
        commit_url: The commit's URL (None for a dry run).
        pr_url: The pull request's URL with ``create_pr``.
    """

    repo_id: str
    files: list[str]
    left_out: dict[str, str] = field(default_factory=dict)
    folder: Path | None = None
    commit_url: str | None = None
    pr_url: str | None = None


def _left_out(relative: Path) -> str | None:
    parts = relative.parts
    if any(part.startswith(".") for part in parts):
        return "hidden file"
    if any(re.fullmatch(r"checkpoint-\d+", part) for part in parts[:-1]):
        return "training checkpoint"
    if "__pycache__" in parts or relative.suffix == ".pyc":
        return "Python cache"
    if relative.name in _TRAINER_STATE or relative.name.startswith("rng_state"):
        return "trainer state, not part of the model"
    if ".partial" in relative.name or relative.name.endswith(".tmp"):
        return "unfinished write"
    return None


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows (no extra space for 16 GB of weights), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _check_model_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise CardioSTError(f"{folder} is not a folder: pass the folder a model was saved to")
    if (folder / "modules.json").is_file():
        return
    if (folder / "adapter_config.json").is_file():
        raise CardioSTError(
            f"{folder} is a raw PEFT adapter, not a sentence-transformers model: make it one with "
            f"`cardio-st convert {folder} OUT_DIR` (it sets the pooling, EOS and prompts of its base), "
            "then push OUT_DIR"
        )
    if (folder / "config.json").is_file():
        raise CardioSTError(
            f"{folder} is a plain Hugging Face model, not a sentence-transformers model: make it one with "
            f"`cardio-st convert {folder} OUT_DIR`, then push OUT_DIR"
        )
    raise CardioSTError(
        f"{folder} is not a model folder: it has no modules.json; pass a folder saved by "
        "sentence-transformers or cardio-st (e.g. runs/NAME/final)"
    )


def _base_for_adapter(folder: Path, config: dict[str, Any], base_model_id: str | list[str] | None) -> str:
    from cardio_st.modules.lora_transformer import base_model_hub_id

    given = base_model_id if isinstance(base_model_id, str) or base_model_id is None else base_model_id[0]
    recorded = config.get("base_model_name_or_path") or ""
    try:
        return base_model_hub_id(recorded, given)
    except CardioSTError:
        if given:
            raise CardioSTError(f"--base-model-id {given!r} is not a Hub id: write it as org/name") from None
        raise CardioSTError(
            f"{folder} is an adapter-only model whose base is {recorded or 'not recorded'}: on the Hub it "
            "must name its base by Hub id so that others can load it; pass --base-model-id ORG/NAME "
            "(base_model_id=), the Hub model the base weights came from"
        ) from None


def stage_upload(
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    repo_id: str | None = None,
    *,
    weights: Weights = "as-saved",
    base_model_id: str | list[str] | None = None,
    **card_options: Any,
) -> tuple[list[str], dict[str, str]]:
    """Write into ``out_dir`` exactly the files a push of ``folder`` uploads; returns them and the files
    left out with their reasons.

    Weights and other files are hard-linked where possible; the model card (``README.md``) and, for an
    adapter, ``adapter_config.json`` (its base named by Hub id) are written anew, so ``folder`` is never
    changed. ``weights="merged"`` folds the adapter into full weights first; ``"adapter"`` insists the
    folder is adapter-only. ``card_options`` (``datasets``, ``license``, ``language``, ``samples``) go to
    [card_facts][cardio_st.model_card.card_facts].
    """
    from cardio_st.model_card import (
        card_facts,
        enrich_card,
        generate_card,
        is_adapter_folder,
        replace_file,
        shows_samples,
        transformer_folders,
    )

    folder, out = Path(folder), Path(out_dir)
    _check_model_folder(folder)
    adapters = [sub for sub in transformer_folders(folder) if is_adapter_folder(sub)]
    if weights not in ("as-saved", "adapter", "merged"):
        raise CardioSTError(f"unknown weights {weights!r}: use 'as-saved', 'adapter' or 'merged'")
    if weights != "as-saved" and not adapters:
        flag = "--adapter-only" if weights == "adapter" else "--merged"
        raise CardioSTError(
            f"{folder} holds full weights, no LoRA adapter: {flag} does not apply; push it without that flag"
        )
    out.mkdir(parents=True, exist_ok=True)
    left_out: dict[str, str] = {}
    if weights == "merged":
        _save_merged(folder, out)
    for source in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = source.relative_to(folder)
        reason = _left_out(relative)
        if reason:
            left_out[relative.as_posix()] = reason
        elif weights == "merged" and ((out / relative).exists() or relative.name in _ADAPTER_FILES):
            continue  # written by the merged save, or the adapter it replaces
        else:
            _link_or_copy(source, out / relative)
    for sub in transformer_folders(out):
        if is_adapter_folder(sub):
            config = json.loads((sub / "adapter_config.json").read_text(encoding="utf8"))
            config["base_model_name_or_path"] = _base_for_adapter(folder, config, base_model_id)
            replace_file(sub / "adapter_config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    facts = card_facts(out, repo_id=repo_id, base_model_id=base_model_id, **card_options)
    if (out / "README.md").is_file():
        card = enrich_card((out / "README.md").read_text(encoding="utf8"), facts)
    else:  # no card to build on: sentence-transformers writes one from the loaded model
        from cardio_st.models.default import load_model

        card = generate_card(load_model(out, device="cpu")[0], facts)
    replace_file(out / "README.md", card)
    if shows_samples(card):
        logger.warning(
            "the model card shows example rows of the training and evaluation data, as sentence-transformers "
            "writes them: check they hold no patient data, or leave them out with --no-samples "
            "(samples=False)"
        )
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    return files, left_out


def _save_merged(folder: Path, out: Path) -> None:
    from cardio_st.models.default import load_model
    from cardio_st.modules.lora_transformer import merge_lora

    model, _ = load_model(folder, device="cpu")
    merge_lora(model)
    model.save(str(out))  # keeps the folder's README (the model was loaded, not trained)


@contextlib.contextmanager
def _as_folder(model: SentenceTransformer | str | os.PathLike) -> Iterator[Path]:
    if isinstance(model, (str, os.PathLike)):
        yield Path(model).expanduser()
        return
    from cardio_st.model_card import write_record
    from cardio_st.modules.asymmetric_router import routed_with_adapter, save_asymmetric

    with tempfile.TemporaryDirectory(prefix="cardio-st-model-") as folder:
        if routed_with_adapter(model):
            save_asymmetric(model, folder)  # a Router reloads only with its routes' adapters merged
        else:
            model.save(folder)
        write_record(folder, _record_of(model))
        yield Path(folder)


def _record_of(model: SentenceTransformer) -> dict[str, Any]:
    """The record of a model in memory: the record of the cardio-st folder it was loaded from (found
    through its Transformer's ``name_or_path``), updated with what the model itself shows."""
    from sentence_transformers.base.modules import Transformer

    from cardio_st.model_card import describe_model, read_record

    record: dict[str, Any] = {}
    for module in model.modules():
        source = (
            getattr(getattr(module, "auto_model", None), "name_or_path", "")
            if isinstance(module, Transformer)
            else ""
        )
        if source and Path(source).is_dir() and (found := read_record(source)):
            record = found
            break
    record.update({key: value for key, value in describe_model(model).items() if value})
    return record


def _staging_folder(folder: Path) -> Path:
    """Beside the model (same file system: hard links, no copies), else in the system's temp folder."""
    try:
        return Path(tempfile.mkdtemp(prefix=".cardio-st-push-", dir=folder.resolve().parent))
    except OSError:
        return Path(tempfile.mkdtemp(prefix="cardio-st-push-"))


def _reason(error: BaseException) -> str:
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(error, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set: unset it to upload, or use --dry-run"
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403):
        return (
            f"the Hub refused the credentials (HTTP {status}): log in with `hf auth login` or set HF_TOKEN "
            "to a token with write access to the namespace"
        )
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "hf_***") if secret else text


def _size(folder: Path, files: list[str]) -> str:
    total = sum((folder / name).stat().st_size for name in files)
    for unit in ("B", "KB", "MB", "GB"):
        if total < 1024 or unit == "GB":
            return f"{total:.0f} {unit}" if unit == "B" else f"{total:.1f} {unit}"
        total /= 1024
    return ""


def push_to_hub(
    model: SentenceTransformer | str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    weights: Weights = "as-saved",
    base_model_id: str | list[str] | None = None,
    datasets: list[str] | tuple[str, ...] = (),
    license: str | None = None,
    language: str | list[str] | None = None,
    samples: bool = True,
    commit_message: str | None = None,
    dry_run: str | os.PathLike | None = None,
    token: str | None = None,
) -> PushResult:
    """Upload a sentence-transformers model (a folder, or a model in memory) with an enriched card.

    The files are staged first (see [stage_upload][cardio_st.hub.stage_upload]), then uploaded in one
    commit: the repository never holds half a model. ``dry_run=OUT_DIR`` writes the staged files to
    ``OUT_DIR`` and calls nothing on the Hub (no token needed).

    Args:
        model: A model folder (``runs/x/final``) or an in-memory ``SentenceTransformer``.
        repo_id: ``namespace/name``; created if missing.
        private: Create the repository private.
        revision: Branch to push to (created if missing).
        create_pr: Open a pull request instead of committing to the branch.
        weights: ``"as-saved"``; ``"adapter"`` (insist on an adapter-only upload); ``"merged"`` (fold
            the adapter into full weights: loads without ``peft``).
        base_model_id: Hub id of the base model when the folder does not record one as such (an adapter
            over a local folder); for a CARE model, the query encoder's then the document encoder's.
        datasets: Hub ids of the training datasets, for the card's metadata.
        license: Licence identifier for the card, e.g. ``"apache-2.0"`` (match the base model's).
        language: Language code(s) for the card, e.g. ``"en"``.
        samples: Keep the training-data rows that sentence-transformers' card shows; False removes
            them (do that for data from patient notes).
        commit_message: Defaults to ``"Upload <model> with cardio-st"``.
        dry_run: Write the files to this new folder instead of uploading.
        token: A Hugging Face token; default: the standard login or ``HF_TOKEN``.

    Returns:
        A [PushResult][cardio_st.hub.PushResult].

    Raises:
        CardioSTError: for an invalid repo id, a folder that is not a sentence-transformers model, an
            adapter whose base has no Hub id, or a Hub failure -- saying what was and was not uploaded.
    """
    from cardio_st import __version__
    from cardio_st.data.checkpoint import new_folder

    repo_id = check_repo_id(repo_id)
    out = new_folder(dry_run, "choose a new --dry-run folder") if dry_run is not None else None
    with _as_folder(model) as folder:
        staging = out or _staging_folder(folder)
        try:
            files, left_out = stage_upload(
                folder,
                staging,
                repo_id,
                weights=weights,
                base_model_id=base_model_id,
                datasets=datasets,
                license=license,
                language=language,
                samples=samples,
            )
        except BaseException:  # leave nothing half-staged (a dry-run folder was empty: it is again)
            leftovers = [staging] if out is None else list(staging.iterdir()) if staging.is_dir() else []
            for path in leftovers:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise
    if out is not None:
        return PushResult(repo_id, files, left_out, folder=out)

    from huggingface_hub import get_token

    secret = token or get_token()
    kind = "LoRA adapter" if (staging / "adapter_config.json").is_file() else "sentence-transformers model"
    message = commit_message or f"Upload {kind} with cardio-st {__version__}"
    retry = (
        f" The staged files are kept in {staging}: `cardio-st push {staging} {repo_id}` (with the same "
        "--private/--revision/--create-pr) retries without staging again"
    )
    step = "create"
    try:
        hub_request("create_repo", token=token, repo_id=repo_id, private=private, exist_ok=True)
        if revision:
            step = "branch"
            hub_request("create_branch", token=token, repo_id=repo_id, branch=revision, exist_ok=True)
        step = "upload"
        logger.info("uploading %d files (%s) to %s", len(files), _size(staging, files), repo_id)
        info = hub_request(
            "upload_folder",
            token=token,
            repo_id=repo_id,
            folder_path=str(staging),
            commit_message=message,
            commit_description=f"{len(files)} files staged by cardio-st {__version__}.",
            revision=revision,
            create_pr=create_pr,
        )
    except Exception as error:  # network, authorisation, offline mode, server errors
        reason = _reason(error)
        if step == "create":
            text = f"could not create or reach {repo_id} on the Hub ({reason}); nothing was uploaded."
        elif step == "branch":
            text = f"{repo_id} exists, but not branch {revision!r} ({reason}); nothing was uploaded."
        else:
            text = (
                f"uploading to {repo_id} failed ({reason}): the repository exists, but none of the "
                f"{len(files)} files ({_size(staging, files)}) was committed -- the Hub takes them in one "
                "commit or not at all, so the repository holds what it held before."
            )
        raise CardioSTError(_scrub(text + retry, secret), exit_code=1) from None
    shutil.rmtree(staging, ignore_errors=True)
    return PushResult(
        repo_id,
        files,
        left_out,
        commit_url=getattr(info, "commit_url", None),
        pr_url=getattr(info, "pr_url", None),
    )
