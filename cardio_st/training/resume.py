"""What a training run was started from -- its base models (path and content fingerprint), its data
(a fingerprint of the rows) and its settings -- recorded beside every checkpoint, so that a resume is
exact or refused. Leaves out the training loop (cardio_st.training.trainer) and the weights.

A resumed run rebuilds the model from the checkpoint: sentence-transformers reloads the checkpoint
folder, whose adapter names its base by the path recorded at the start
([recorded_base][cardio_st.modules.lora_transformer.recorded_base]), and copies its weights in. So
resuming is exact when the base, the data and the settings are the checkpoint's, and only then; any
difference is refused, naming it. ``new_schedule=True`` is the explicit way to change settings (a lower
learning rate after a NaN): the previous schedule's checkpoints move to ``schedule-K/``, and a new
schedule starts from the last one's weights with a fresh optimizer.

Importing this module imports neither torch nor sentence-transformers.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.errors import CardioSTError
from cardio_st.models.record import describe_model
from cardio_st.utils.files import atomic_write
from cardio_st.utils.fingerprint import data_fingerprint, files_fingerprint
from cardio_st.utils.hub import known_hub_id

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "RUN_FILE",
    "ResumePlan",
    "archive_schedule",
    "base_differences",
    "base_identity",
    "input_differences",
    "plan_resume",
    "plan_run",
    "read_run",
    "record_inputs",
    "run_manifest",
    "start_run",
    "write_run",
]

logger = logging.getLogger(__name__)

RUN_FILE = "cardio_st_run.json"
"""The record of what a run was started from, in the run folder and in each of its checkpoints."""
_VERSION = 1
# Settings that change how a run is carried out, not what it trains (GradCache gives the same loss).
_NOT_COMPARED = {"mini_batch_size"}


def _hub_snapshot(hub_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in ("modules.json", "config.json", "adapter_config.json"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return Path(found).parent
    return None


def base_identity(name_or_path: str) -> dict[str, Any]:
    """A base model's identity: as named, its folder (a local folder, or the Hub cache snapshot of a
    Hub id) and the content fingerprint of that folder
    ([files_fingerprint][cardio_st.utils.fingerprint.files_fingerprint]: each file is hashed once and
    remembered, so a 16 GB base costs one read, about a minute, the first time only)."""
    folder: Path | None = Path(name_or_path) if os.path.isdir(name_or_path) else None
    if folder is None and known_hub_id(name_or_path):
        folder = _hub_snapshot(name_or_path)
    return {
        "name": name_or_path,
        "path": str(folder.resolve()) if folder else None,
        "hub_id": known_hub_id(name_or_path),
        "fingerprint": files_fingerprint(folder) if folder else None,
    }


def _bases(model: SentenceTransformer) -> list[dict[str, Any]]:
    from sentence_transformers.base.modules import Transformer  # heavy: imported when a run starts

    bases = []
    for module in model.modules():
        if isinstance(module, Transformer):
            auto_model = module.auto_model
            name = getattr(auto_model.config, "_name_or_path", "") or ""
            for config in (getattr(auto_model, "peft_config", None) or {}).values():
                name = config.base_model_name_or_path or name
            bases.append(base_identity(name) if name else {"name": None, "fingerprint": None})
    return bases


def _model_settings(model: SentenceTransformer) -> dict[str, Any]:
    described = describe_model(model)
    return {
        "lora": described["lora"],
        "quantization": described["quantization"],
        "max_seq_length": model.max_seq_length,
        "prompts": dict(model.prompts or {}),
        "truncate_dim": model.truncate_dim,
    }


def _loss_settings(loss: Any) -> dict[str, Any]:
    """Each loss's parameters by the loss's name (a dict of losses by its keys)."""
    settings = {}
    items = loss.items() if isinstance(loss, dict) else [(type(loss).__name__, loss)]
    for key, item in items:
        config = item.get_config_dict() if hasattr(item, "get_config_dict") else {}
        config = {name: value for name, value in config.items() if name not in _NOT_COMPARED}
        settings[str(key)] = {"class": type(item).__name__, **json.loads(json.dumps(config, default=str))}
    return settings


def run_manifest(model: SentenceTransformer, data: Any, loss: Any, **settings: Any) -> dict[str, Any]:
    """The record of what a run starts from: ``model``'s bases, ``data``'s fingerprint and rows, the
    loss and its parameters, the model's training-relevant settings and ``settings`` (epochs, batch
    size, learning rate, schedule, seed, ...)."""
    return {
        "version": _VERSION,
        "bases": _bases(model),
        "data": {
            "fingerprint": data_fingerprint(data),
            "rows": {split: len(rows) for split, rows in data.items()},
        },
        "settings": {
            **json.loads(json.dumps(settings, default=str)),
            "model": json.loads(json.dumps(_model_settings(model), default=str)),
            "loss": _loss_settings(loss),
        },
    }


def read_run(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The [RUN_FILE][cardio_st.training.resume.RUN_FILE] of a run or checkpoint folder, or None."""
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf8"))
    except ValueError:
        logger.warning("%s is not valid JSON: the run's inputs cannot be checked", path)
        return None


def write_run(folder: str | os.PathLike, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` as ``folder``'s [RUN_FILE][cardio_st.training.resume.RUN_FILE], atomically."""
    path = Path(folder) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf8"))


def _flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def base_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """How the bases of two manifests differ, in words (empty: the same)."""
    before, after = old.get("bases") or [], new.get("bases") or []
    if len(before) != len(after):
        return [f"{len(before)} base model(s) then, {len(after)} now"]
    found = []
    for was, now in zip(before, after):
        then_name, now_name = was.get("path") or was.get("name"), now.get("path") or now.get("name")
        if was.get("fingerprint") and now.get("fingerprint"):
            if was["fingerprint"] != now["fingerprint"]:
                changed = "(its content fingerprint changed)"
                found.append(f"base {now_name} has other weights than {then_name} had {changed}")
        elif then_name != now_name:
            found.append(f"base {then_name} then, {now_name} now")
    return found


def input_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """How the data and settings of two manifests differ, in words (empty: the same)."""
    found = []
    if old.get("data", {}).get("fingerprint") != new.get("data", {}).get("fingerprint"):
        found.append(
            f"the data (rows {old.get('data', {}).get('rows')} then, {new.get('data', {}).get('rows')} now)"
        )
    before, after = _flatten(old.get("settings", {})), _flatten(new.get("settings", {}))
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            found.append(f"{key} {before.get(key)!r} then, {after.get(key)!r} now")
    return found


class ResumePlan:
    """What [plan_resume][cardio_st.training.resume.plan_resume] decided.

    Attributes:
        checkpoint: Resume the trainer from this checkpoint (optimizer, schedule, data order), or None.
        start_weights: Else, start a schedule from this checkpoint's weights, or None (from the base).
        new_schedule: Whether the run folder's checkpoints are the previous schedule's, to be moved
            aside ([archive_schedule][cardio_st.training.resume.archive_schedule]) once the weights are read.
        manifest: The manifest to record for this run.
    """

    def __init__(
        self,
        checkpoint: str | None,
        start_weights: Path | None,
        manifest: dict[str, Any],
        new_schedule: bool = False,
    ) -> None:
        self.checkpoint = checkpoint
        self.start_weights = start_weights
        self.manifest = manifest
        self.new_schedule = new_schedule


def archive_schedule(output_dir: Path, plan: ResumePlan) -> None:
    """Move the previous schedule's ``checkpoint-*`` folders to ``output_dir/schedule-K/`` (the next free
    K) and record in ``plan.manifest`` where the new schedule's weights came from (main process only)."""
    taken = [
        int(m.group(1))
        for p in output_dir.glob("schedule-*")
        if (m := re.fullmatch(r"schedule-(\d+)", p.name))
    ]
    archive = output_dir / f"schedule-{max(taken, default=0) + 1}"
    archive.mkdir()
    for checkpoint in sorted(output_dir.glob("checkpoint-*")):
        checkpoint.rename(archive / checkpoint.name)
    assert plan.start_weights is not None
    plan.manifest["continued_from"] = f"{archive.name}/{plan.start_weights.name}"
    logger.warning(
        "new schedule from the weights of %s (kept as %s)",
        plan.start_weights,
        archive / plan.start_weights.name,
    )


def plan_resume(
    output_dir: Path, last: str | None, manifest: dict[str, Any], *, new_schedule: bool = False
) -> ResumePlan:
    """Decide how a run in ``output_dir`` starts, given its last checkpoint and this call's manifest.

    - No checkpoint: start from the base -- or, when the run's recorded manifest says a schedule was
      started from a checkpoint's weights, from those weights again.
    - A checkpoint whose manifest matches: resume it exactly (optimizer, schedule, data order).
    - A checkpoint whose base differs: refused, always.
    - A checkpoint whose data or settings differ: refused unless ``new_schedule``; then a new schedule
      starts from the last checkpoint's weights (with ``new_schedule`` the same holds when nothing differs:
      a fresh optimizer and schedule).
    - A checkpoint written before cardio-st recorded manifests: resumed, with a warning that its
      inputs cannot be checked.

    Raises:
        CardioSTError: naming each difference and the options.
    """
    recorded = (read_run(last) if last else None) or read_run(output_dir)
    where = last or output_dir
    if recorded is not None:
        bases = base_differences(recorded, manifest)
        if bases:
            raise CardioSTError(
                f"cannot resume {where}: {'; '.join(bases)}. Pass the base it was trained from, or start "
                "over with `overwrite=True` (or a new output folder)"
            )
    if last is None:
        continued = (recorded or {}).get("continued_from")
        if not continued or not (output_dir / continued).is_dir():
            return ResumePlan(None, None, manifest)
        manifest = {**manifest, "continued_from": continued}
        differences = input_differences(recorded, manifest)
        if differences and not new_schedule:
            raise CardioSTError(
                f"{output_dir} is a schedule started from {continued} with other settings than now: "
                f"{'; '.join(differences)}. Rerun with those settings, pass `new_schedule=True` to use "
                "these, or `overwrite=True` to start over"
            )
        return ResumePlan(None, output_dir / continued, manifest)
    if recorded is None:
        logger.warning(
            "%s was written before cardio-st recorded a run's inputs: resuming without checking that the "
            "base, data and settings are the same",
            last,
        )
        return ResumePlan(last, None, manifest)
    if new_schedule:
        return ResumePlan(None, Path(last), manifest, new_schedule=True)
    manifest = {**manifest, "continued_from": recorded.get("continued_from")}
    differences = input_differences(recorded, manifest)
    if differences:
        raise CardioSTError(
            f"cannot resume {last} exactly: {'; '.join(differences)}. Rerun with the checkpoint's settings "
            "to resume it, pass `new_schedule=True` to continue from its weights with these settings (a "
            "fresh optimizer and schedule), or `overwrite=True` to start over"
        )
    return ResumePlan(last, None, manifest)


def plan_run(
    model: SentenceTransformer,
    data: Any,
    loss: Any,
    output_dir: Path,
    *,
    resume: bool,
    new_schedule: bool,
    settings: dict[str, Any],
) -> ResumePlan:
    """[plan_resume][cardio_st.training.resume.plan_resume] for a run about to train ``model`` on ``data``
    with ``loss`` and ``settings`` in ``output_dir`` (``resume=False``: from the base, nothing checked)."""
    from transformers.trainer_utils import get_last_checkpoint  # transformers is heavy: imported when used

    manifest = run_manifest(model, data, loss, **settings)
    if not resume:
        return ResumePlan(None, None, manifest)
    last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    return plan_resume(output_dir, last, manifest, new_schedule=new_schedule)


def record_inputs(output_dir: Path, manifest: dict[str, Any]) -> Any:
    """A trainer callback that writes ``manifest`` into every checkpoint as it is saved (before any other
    callback runs, so a checkpoint is never left without it by another callback's failure)."""
    from transformers import TrainerCallback  # transformers is heavy: imported when used

    class RecordInputs(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                write_run(output_dir / f"checkpoint-{state.global_step}", manifest)

    return RecordInputs()


def start_run(model: SentenceTransformer, output_dir: Path, plan: ResumePlan, *, main_process: bool) -> None:
    """Set up what ``plan`` says before training starts: load a new schedule's starting weights (every
    process), then move the previous schedule aside and record the run's inputs (main process)."""
    import torch  # heavy: imported when a run starts
    from sentence_transformers import SentenceTransformer

    if plan.start_weights is not None:
        logger.warning("starting from the weights of %s", plan.start_weights)
        model.load_state_dict(SentenceTransformer(str(plan.start_weights), device="cpu").state_dict())
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if plan.new_schedule:
        if distributed:
            torch.distributed.barrier()  # every process has read the weights before they move
        if main_process:
            archive_schedule(output_dir, plan)
    if main_process:
        write_run(output_dir, plan.manifest)
    if distributed:
        torch.distributed.barrier()
