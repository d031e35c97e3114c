"""Publishing to the Hugging Face Hub: stage exactly the files to upload (cardio_st.hub.stage), then
upload them in one commit. Leaves out the card's wording (cardio_st.models.card) and converting raw
adapters (cardio_st.models.conversion).

Every Hub call goes through [hub_request][cardio_st.hub.push.hub_request], so tests replace one function or
mock ``HfApi`` as sentence-transformers' own tests do. The token comes from the standard Hugging Face
login or ``HF_TOKEN`` (or the ``token`` argument) and is only ever handed to ``HfApi``: it is never
printed, logged or written, and error messages are scrubbed of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st import __version__
from cardio_st.errors import CardioSTError
from cardio_st.hub.stage import Weights, stage_upload
from cardio_st.models.record import describe_model, read_record, write_record
from cardio_st.modules.asymmetric_router import routed_with_adapter, save_asymmetric
from cardio_st.utils.cache import cache_dir
from cardio_st.utils.files import new_folder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# stage_upload is imported from cardio_st.hub.stage, where it is documented; it stays importable from here.
__all__ = ["PushResult", "check_repo_id", "hub_request", "push_to_hub"]

logger = logging.getLogger(__name__)


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a valid ``namespace/name`` Hub id, else an error naming the fix.

    A namespace is required (the Hub would otherwise pick the token's user): the card's loading
    snippet and ``model-index`` must name the repository exactly, also in a dry run without a
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
    """What [push_to_hub][cardio_st.hub.push.push_to_hub] did.

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


@contextlib.contextmanager
def _as_folder(model: SentenceTransformer | str | os.PathLike) -> Iterator[Path]:
    if isinstance(model, (str, os.PathLike)):
        yield Path(model).expanduser()
        return
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
    """A new temporary folder outside the user's folders, removed after the push succeeds or fails.

    Weights are hard-linked into it when it is on the model's file system (no copy of 16 GB), so the
    first of the cardio-st cache (``cache_dir()/push``) and the system's temp folder that shares the
    model's file system is used; when neither does, the cache, and the files are copied. Never the
    model's folder or its parent: a failed or killed push must not leave anything among the user's files.
    """
    device = folder.resolve().stat().st_dev
    candidates = [cache_dir() / "push", Path(tempfile.gettempdir())]
    for parent in candidates:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            if parent.stat().st_dev == device:
                return Path(tempfile.mkdtemp(prefix="cardio-st-push-", dir=parent))
        except OSError:
            continue
    try:
        return Path(tempfile.mkdtemp(prefix="cardio-st-push-", dir=candidates[0]))
    except OSError:
        return Path(tempfile.mkdtemp(prefix="cardio-st-push-"))


def _reason(error: BaseException) -> str:
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(error, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set: unset it to upload, or write the files to a folder with `dry_run=...`"
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

    The files are staged first (see [stage_upload][cardio_st.hub.stage.stage_upload]), then uploaded in one
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
        A [PushResult][cardio_st.hub.push.PushResult].

    Raises:
        CardioSTError: for an invalid repo id, a folder that is not a sentence-transformers model, an
            adapter whose base has no Hub id, or a Hub failure -- saying what was and was not uploaded.
    """
    repo_id = check_repo_id(repo_id)
    out = new_folder(dry_run, "choose a new folder for `dry_run=...`") if dry_run is not None else None
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
    same = [f"`{name}=True`" for name, on in (("private", private), ("create_pr", create_pr)) if on]
    same += [f"`revision={revision!r}`"] if revision else []
    retry = f" Run the same push again{' (with ' + ', '.join(same) + ')' if same else ''} to retry."
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
    finally:  # success, failure or Ctrl-C: the staged copy goes
        shutil.rmtree(staging, ignore_errors=True)
    return PushResult(
        repo_id,
        files,
        left_out,
        commit_url=getattr(info, "commit_url", None),
        pr_url=getattr(info, "pr_url", None),
    )
