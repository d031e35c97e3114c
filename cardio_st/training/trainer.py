"""Contrastive training through the standard SentenceTransformerTrainer with CardioEmbed's defaults:
the run-folder policy (resume or start over), a held-out retrieval evaluator, checkpoints, a stop on a
NaN or infinite loss, and negatives gathered across processes. Leaves out model building (cardio_st.models).

Importing this module imports neither torch nor sentence-transformers, so that the CLI checks a run folder
before it loads anything.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.errors import CardioSTError
from cardio_st.models.card import write_model_card
from cardio_st.models.record import training_record, write_record
from cardio_st.modules.asymmetric_router import routed_with_adapter, save_asymmetric
from cardio_st.training.resume import RUN_FILE, plan_run, record_inputs, start_run
from cardio_st.utils.files import claim_folder

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from sentence_transformers import SentenceTransformer

__all__ = [
    "PAPER_DEFAULTS",
    "NonFiniteLossError",
    "TrainResult",
    "check_data",
    "is_main_process",
    "prepare_output_dir",
    "retrieval_evaluator",
    "train",
]

logger = logging.getLogger(__name__)

#: CardioEmbed's training hyperparameters (arXiv 2511.10930).
PAPER_DEFAULTS = {
    "epochs": 2,
    "batch_size": 128,
    "lr": 2e-4,
    "warmup_ratio": 0.1,
    "scheduler": "cosine",
    "temperature": 0.05,
    "max_length": 128,
}


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; raised before that step updates any weight."""


def retrieval_evaluator(dataset: Dataset, name: str = "held-out", batch_size: int = 32):
    """CardioEmbed's protocol: each anchor retrieves its positive among all positives of ``dataset``.

    A [PairRetrievalEvaluator][cardio_st.evaluation.retrieval.PairRetrievalEvaluator] (queries
    through ``encode_query``, passages through ``encode_document``) reporting accuracy@1/5/10,
    MRR@10 and nDCG@10 as ``<name>_accuracy@1`` and so on.
    """
    # imports torch: this module stays cheap (see its header)
    from cardio_st.evaluation.retrieval import PairRetrievalEvaluator

    return PairRetrievalEvaluator.from_dataset(dataset, name=name, batch_size=batch_size)


@dataclass
class TrainResult:
    """What a [train][cardio_st.training.trainer.train] run produced.

    Attributes:
        final_dir: The trained model (a sentence-transformers folder).
        steps: Optimisation steps done in total.
        resumed_from: The checkpoint the run resumed from, if any.
        seconds: Wall time of this run.
        metrics: Held-out metrics of the final model (empty without an eval split).
    """

    final_dir: str
    steps: int
    resumed_from: str | None
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this is the main process (rank 0) of a ``torchrun`` / ``accelerate launch`` run, or the
    only process: the one that removes old runs and prints results."""
    return os.environ.get("RANK", "0") == "0"


def check_data(path: str | os.PathLike) -> Path:
    """``path`` as a Path, once it exists: check it before anything slow happens (or is deleted).

    Args:
        path: Training data: a ``save_to_disk`` folder or a ``.parquet``/``.jsonl``/``.csv`` file
            ([load_pairs][cardio_st.data.pairs.load_pairs] reads it).

    Raises:
        CardioSTError: when nothing is at ``path``.
    """
    if not Path(path).exists():
        raise CardioSTError(
            f"`data={str(path)!r}` does not exist: pass a dataset folder or a .parquet/.jsonl/.csv file"
        )
    return Path(path)


def _is_run_folder(folder: Path) -> bool:
    """Whether an unmarked folder holds a training run of an earlier cardio-st version."""
    names = ("final", RUN_FILE, "train_summary.json", "document-targets", "document-targets.json")
    return any(folder.glob("checkpoint-*")) or any((folder / name).exists() for name in names)


def prepare_output_dir(
    output_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    stale: tuple[str, ...] = (),
    owner: str = "train",
) -> Path:
    """The run-folder policy of [train][cardio_st.training.trainer.train]: what a finished or an
    interrupted run in ``output_dir`` means before training starts there.

    - A non-empty folder that is not a training run's (a user's files, another command's output):
      refused unless ``overwrite``, which writes beside its files and deletes none of them
      ([claim_folder][cardio_st.utils.files.claim_folder]).
    - ``output_dir/final`` exists (a finished run): refused unless ``overwrite``.
    - ``checkpoint-*`` folders exist (an interrupted run): kept, so ``train(..., resume=True)`` resumes
      from the last one.
    - ``overwrite``: the main process removes ``checkpoint-*``, ``final``, earlier schedules
      (``schedule-*``), the run's record of its inputs (``cardio_st_run.json``) and the ``stale`` names
      (what a recipe caches there, e.g. ``cardio_st.training.care.ALIGN_CACHE``); then train with
      ``resume=False``.

    Args:
        output_dir: The run's folder (it need not exist).
        overwrite: Start over: remove the previous run's checkpoints, model and ``stale`` files.
        stale: Other names in ``output_dir`` that belong to the previous run.
        owner: The command the folder belongs to (``"train"``, ``"care align"``, ...), as marked in it.

    Returns:
        ``output_dir`` as a Path (created by the main process).

    Raises:
        CardioSTError: when ``output_dir`` holds a finished run or files that are not a run's, and
            ``overwrite`` is False.
    """
    output = Path(output_dir)
    if is_main_process():
        claim_folder(output, owner=owner, overwrite=overwrite, recognise=_is_run_folder)
    if (output / "final").exists() and not overwrite:
        raise CardioSTError(
            f"{output / 'final'} already holds a trained model: pass `overwrite=True` to train again"
        )
    if overwrite and output.is_dir() and is_main_process():
        previous = [
            *output.glob("checkpoint-*"),
            *output.glob("schedule-*"),
            output / "final",
            output / RUN_FILE,
        ]
        for path in [*previous, *(output / name for name in stale)]:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
    return output


def train(
    model: SentenceTransformer,
    data: DatasetDict,
    output_dir: str | os.PathLike,
    *,
    epochs: float = PAPER_DEFAULTS["epochs"],
    batch_size: int = PAPER_DEFAULTS["batch_size"],
    lr: float = PAPER_DEFAULTS["lr"],
    warmup_ratio: float = PAPER_DEFAULTS["warmup_ratio"],
    scheduler: str = PAPER_DEFAULTS["scheduler"],
    temperature: float = PAPER_DEFAULTS["temperature"],
    symmetric: bool = False,
    mini_batch_size: int | None = None,
    matryoshka_dims: list[int] | None = None,
    seed: int = 42,
    max_steps: int = -1,
    save_steps: int | None = None,
    save_total_limit: int | None = 3,
    logging_steps: int = 10,
    resume: bool = True,
    show_progress: bool = True,
    callbacks: list[Any] | None = None,
    loss: Any = None,
    router_mapping: dict[str, str] | None = None,
    learning_rate_mapping: dict[str, float] | None = None,
    data_name: str | None = None,
    new_schedule: bool = False,
) -> TrainResult:
    """Train ``model`` with temperature InfoNCE through ``SentenceTransformerTrainer``.

    Defaults are CardioEmbed's: 2 epochs, batch 128, learning rate 2e-4 with 10% linear warm-up
    then cosine decay, temperature 0.05, in-batch plus hard negatives, and the no-duplicates
    batch sampler (no in-batch negative is a copy of a positive). Checkpoints go to
    ``output_dir/checkpoint-N`` every ``save_steps`` steps (default: 10 per run); the final model
    to ``output_dir/final``. A run started again on the same ``output_dir`` resumes from the last
    checkpoint (``resume=False`` starts over;
    [prepare_output_dir][cardio_st.training.trainer.prepare_output_dir] refuses a finished run and, with
    ``overwrite=True``, removes the previous run's files first).

    Under ``torchrun`` / ``accelerate launch`` the same call trains with one process per device
    and gathers every process's positives and negatives into each loss (``gloo`` on CPUs).

    ``loss`` replaces the InfoNCE loss (then ``temperature``, ``symmetric``, ``mini_batch_size`` and
    ``matryoshka_dims`` are not used); ``router_mapping`` maps text columns to the routes of a
    Router model (e.g. ``{"anchor": "query", "positive": "document"}``) and
    ``learning_rate_mapping`` gives parameters whose names match a regular expression their own
    learning rate, as in ``SentenceTransformerTrainingArguments``. ``data_name`` names the data in the model's
    record and card (e.g. the prepared folder's name).

    **Resume is exact or refused.** The run records what it starts from -- the base models (path and
    content fingerprint), a fingerprint of the data's rows and every setting that changes what is
    trained -- in ``output_dir/cardio_st_run.json`` and in each checkpoint
    ([cardio_st.training.resume][cardio_st.training.resume.plan_resume]). A resume with a different
    base is refused; with different data or settings it is refused unless ``new_schedule=True``, which
    moves the checkpoints to ``output_dir/schedule-K/`` and starts a new schedule (fresh optimizer,
    warm-up and decay) from the last checkpoint's weights: the way to go on with a lower learning rate
    after a NaN loss. A model whose Router routes carry
    LoRA adapters is saved with
    [save_asymmetric][cardio_st.modules.asymmetric_router.save_asymmetric] (adapters merged), so
    ``final`` reloads with plain sentence-transformers.

    Besides the model, ``final`` holds ``cardio_st.json`` (base model, LoRA and quantization settings,
    data sizes, losses, run settings) and a model card enriched with them
    ([cardio_st.models.card][cardio_st.models.card.enrich_card]), whose evaluation results are the final
    model's.

    Raises:
        CardioSTError: when the loss becomes NaN or infinite (naming the step, the last checkpoint and
            the rerun that recovers; the step's update is not applied), when a resume would not be
            exact (naming what differs), or when the data is unusable.
    """
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss
    from transformers.trainer_utils import get_last_checkpoint

    # imports torch: this module stays cheap (see its header)
    from cardio_st.losses import CachedInfoNCELoss, InfoNCELoss

    output_dir = Path(output_dir)
    distributed = _world_size() > 1
    if loss is None:
        if mini_batch_size:
            loss = CachedInfoNCELoss(
                model,
                temperature,
                symmetric,
                mini_batch_size=mini_batch_size,
                gather_across_devices=distributed,
            )
        else:
            loss = InfoNCELoss(model, temperature, symmetric, gather_across_devices=distributed)
        if matryoshka_dims:
            loss = MatryoshkaLoss(model, loss, matryoshka_dims)

    run = {"epochs": epochs, "batch_size": batch_size * _world_size(), "lr": lr, "warmup_ratio": warmup_ratio}
    run.update(scheduler=scheduler, seed=seed, max_steps=max_steps)
    run.update(router_mapping=router_mapping or {}, learning_rate_mapping=learning_rate_mapping or {})
    per_epoch = math.ceil(len(data["train"]) / (batch_size * _world_size()))
    total = max_steps if max_steps > 0 else math.ceil(per_epoch * epochs)
    save_steps = save_steps or max(1, total // 10)
    evaluator = retrieval_evaluator(data["eval"], batch_size=min(batch_size, 64)) if "eval" in data else None
    cuda = torch.cuda.is_available()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=min(batch_size, 64),
        learning_rate=lr,
        warmup_steps=warmup_ratio,
        lr_scheduler_type=scheduler,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=seed,
        data_seed=seed,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        eval_strategy="steps" if evaluator is not None else "no",
        eval_steps=save_steps,
        logging_steps=logging_steps,
        logging_nan_inf_filter=False,
        report_to=[],
        disable_tqdm=not show_progress,
        use_cpu=not cuda,
        ddp_backend=None if cuda else ("gloo" if distributed else None),
        ddp_find_unused_parameters=False,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        dataloader_drop_last=distributed,
        router_mapping=router_mapping or {},
        learning_rate_mapping=learning_rate_mapping or {},
    )
    plan = plan_run(model, data, loss, output_dir, resume=resume, new_schedule=new_schedule, settings=run)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data.get("eval"),
        loss=loss,
        evaluator=evaluator,
        callbacks=[record_inputs(output_dir, plan.manifest), *(callbacks or [])],
    )

    def stop_on_non_finite(module, inputs, output):
        values = list(output.values()) if isinstance(output, dict) else [output]
        if not all(torch.isfinite(value).all() for value in values if isinstance(value, torch.Tensor)):
            step = trainer.state.global_step
            where = f"at step {step + 1}" if model.training else f"while evaluating after step {step}"
            raise NonFiniteLossError(f"the loss became {float(sum(values).detach())} {where}")

    loss.register_forward_hook(stop_on_non_finite)

    start_run(model, output_dir, plan, main_process=is_main_process())
    last = plan.checkpoint
    if last:
        logger.warning("resuming from %s (pass `resume=False` to start over)", last)
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=last)
    except NonFiniteLossError as error:
        previous = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
        if previous:
            recover = (
                f"To go on from {previous} with a fresh optimizer and schedule at a lower learning rate, "
                f"rerun with `lr={lr / 4:g}` `new_schedule=True`"
            )
        else:
            recover = f"Rerun with a lower learning rate, e.g. `lr={lr / 4:g}`"
        raise CardioSTError(
            f"training stopped: {error}; nothing from that step was applied. Last checkpoint: "
            f"{previous or 'none yet'}. {recover}; also check the data for empty or garbled rows, or "
            "train in fp32",
            exit_code=1,
        ) from None
    seconds = time.perf_counter() - started
    final_dir = output_dir / "final"
    if routed_with_adapter(model):
        if trainer.is_world_process_zero():
            save_asymmetric(model, final_dir)
    else:
        trainer.save_model(str(final_dir))
    metrics: dict[str, float] = {}
    if evaluator is not None:
        metrics = {key: float(value) for key, value in evaluator(model).items()}
    result = TrainResult(str(final_dir), trainer.state.global_step, last, round(seconds, 2), metrics)
    if trainer.is_world_process_zero():
        done = {"steps": result.steps, "epochs": epochs, "batch_size": batch_size * _world_size(), "lr": lr}
        done.update(warmup_ratio=warmup_ratio, scheduler=scheduler, seed=seed, seconds=result.seconds)
        if plan.manifest.get("continued_from"):
            done["continued_from"] = plan.manifest["continued_from"]
        try:
            write_record(final_dir, training_record(model, data, loss, data_name=data_name, **done))
            write_model_card(model, final_dir)  # the trainer's card, now with the final metrics, enriched
        except (
            Exception
        ) as error:  # the trained model matters more than its card: keep sentence-transformers'
            logger.warning("could not write the record and enriched card of %s: %s", final_dir, error)
        (output_dir / "train_summary.json").write_text(json.dumps(asdict(result), indent=2))
    return result
