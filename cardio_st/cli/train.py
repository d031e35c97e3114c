"""``cardio-st train`` and ``care align`` / ``care finetune``: parse the training options, call the
recipe and print the result. Leaves out every training decision (cardio_st.training.recipes).
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import typer

from cardio_st.cli.base import friendly, quiet_libraries
from cardio_st.errors import CardioSTError

__all__ = ["care_align", "care_app", "care_finetune", "train"]

_DATA_FLAGS = {"path": "--data"}
_NEW_SCHEDULE_HELP = (
    "Go on from OUT's last checkpoint with a fresh optimizer and schedule (e.g. a lower --lr after a NaN "
    "loss); without it, a rerun with other data or settings is refused."
)


@friendly(flags={**_DATA_FLAGS, "max_seq_length": "--max-length"})
def train(
    base: Annotated[
        str, typer.Option(help="Base model: Hub id or folder (Hugging Face or sentence-transformers).")
    ],
    data: Annotated[
        str,
        typer.Option(
            help="Pairs/triplets: a save_to_disk folder, or .parquet/.jsonl/.csv files "
            "(anchor, positive[, negative...])."
        ),
    ],
    out: Annotated[str, typer.Option(help="Output folder: checkpoints, then the model in OUT/final.")],
    base_model_id: Annotated[
        str | None,
        typer.Option(
            help="Hub id the base weights came from, recorded for push (optional: a local --base trains, "
            "resumes and reloads without it)."
        ),
    ] = None,
    lora: Annotated[
        bool, typer.Option("--lora/--full", help="Train a LoRA adapter (default) or all weights.")
    ] = True,
    lora_r: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = 32,
    lora_dropout: Annotated[float, typer.Option(help="LoRA dropout.")] = 0.05,
    quantize: Annotated[str, typer.Option(help="Base weights: 8bit (CardioEmbed), 4bit or none.")] = "8bit",
    temperature: Annotated[float, typer.Option(help="InfoNCE temperature.")] = 0.05,
    symmetric: Annotated[bool, typer.Option(help="Add the document-to-query InfoNCE term.")] = False,
    epochs: Annotated[float, typer.Option(help="Training epochs.")] = 2,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch per process (in-batch negatives).")] = 128,
    mini_batch_size: Annotated[
        int | None,
        typer.Option(help="Gradient caching: embed this many texts at once (large batches, small memory)."),
    ] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate (10% warm-up, then cosine decay).")] = 2e-4,
    max_length: Annotated[int, typer.Option(help="Tokens per text; longer texts are truncated.")] = 128,
    output_dim: Annotated[
        int | None, typer.Option(help="Matryoshka output dimension of the saved model.")
    ] = None,
    task: Annotated[str, typer.Option(help="Query instruction for decoder bases (Qwen3 format).")] = "",
    seed: Annotated[
        int, typer.Option(help="Seed for the adapter's initialisation, data order and dropout.")
    ] = 42,
    save_steps: Annotated[
        int | None, typer.Option(help="Checkpoint every N steps (default: 10 per run).")
    ] = None,
    max_steps: Annotated[int, typer.Option(help="Stop after N steps (-1: run all epochs).")] = -1,
    overwrite: Annotated[
        bool, typer.Option(help="Start over instead of resuming from OUT's checkpoints.")
    ] = False,
    new_schedule: Annotated[bool, typer.Option(help=_NEW_SCHEDULE_HELP)] = False,
) -> None:
    """Train an embedding model with temperature InfoNCE (CardioEmbed's recipe) through the
    standard SentenceTransformerTrainer.

    Defaults are the paper's: LoRA r=16/alpha=32/dropout 0.05 on the attention and MLP
    projections of an 8-bit base, temperature 0.05, batch 128, lr 2e-4, 10% warm-up, cosine
    decay, no-duplicates batches, 2 epochs. Rerunning the same command after an interruption
    resumes exactly from the last checkpoint; a rerun with another base, data or settings is refused
    (--new-schedule goes on from the checkpoint's weights with the new settings). Under
    `torchrun --nproc_per_node N -m cardio_st.cli train ...` negatives are gathered across the N
    processes.
    """
    if quantize not in ("8bit", "4bit", "none"):
        raise CardioSTError(f"--quantize must be 8bit, 4bit or none, got {quantize!r}")
    for name, value in (("--batch-size", batch_size), ("--max-length", max_length), ("--lora-r", lora_r)):
        if value < 1:
            raise CardioSTError(f"{name} must be at least 1, got {value}")
    if not (temperature > 0 and lr > 0 and epochs > 0):
        raise CardioSTError("--temperature, --lr and --epochs must be positive")
    from cardio_st.training.trainer import check_data

    check_data(data)  # a missing --data fails before the seconds of imports
    quiet_libraries()
    warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
    from cardio_st.training.recipes import train_cardioembed
    from cardio_st.training.trainer import is_main_process

    result = train_cardioembed(
        base,
        data,
        out,
        base_model_id=base_model_id,
        lora=lora,
        quantization=None if quantize == "none" else quantize,  # type: ignore[arg-type]
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        max_seq_length=max_length,
        output_dim=output_dim,
        **({"task": task} if task else {}),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        temperature=temperature,
        symmetric=symmetric,
        mini_batch_size=mini_batch_size,
        seed=seed,
        max_steps=max_steps,
        save_steps=save_steps,
        overwrite=overwrite,
        new_schedule=new_schedule,
    )
    if not is_main_process():
        return
    _print_training(result)


care_app = typer.Typer(
    help="CARE asymmetric retrievers: a small query encoder aligned to a large document encoder.",
    no_args_is_help=True,
)
_CARE_DATA_HELP = (
    "Pairs/triplets: a save_to_disk folder, or .parquet/.jsonl/.csv files (anchor, positive[, negative...])."
)


def _positive(numbers: dict[str, float]) -> None:
    for name, value in numbers.items():
        if not value > 0:
            raise CardioSTError(f"{name} must be positive, got {value}")


def _print_training(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trained: {result.final_dir}", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("steps", str(result.steps))
    table.add_row("resumed from", result.resumed_from or "-")
    table.add_row("wall time (s)", f"{result.seconds:.1f}")
    for key, value in sorted(result.metrics.items()):
        if key.endswith(("accuracy@1", "accuracy@5", "accuracy@10", "mrr@10", "ndcg@10")):
            table.add_row(key, f"{value:.4f}")
    Console().print(table)


@care_app.command("align")
@friendly(flags=_DATA_FLAGS)
def care_align(
    query: Annotated[str, typer.Option(help="Small query encoder: embedded name, Hub id or folder.")],
    document: Annotated[
        str, typer.Option(help="Large document encoder (frozen here): name, Hub id or folder.")
    ],
    data: Annotated[str, typer.Option(help=_CARE_DATA_HELP)],
    out: Annotated[
        str, typer.Option(help="Output folder: targets, checkpoints, then the model in OUT/final.")
    ],
    bridge: Annotated[
        str, typer.Option(help="truncate (Matryoshka document encoders) or project.")
    ] = "truncate",
    temperature: Annotated[float, typer.Option(help="InfoNCE temperature.")] = 0.1,
    mse_weight: Annotated[float, typer.Option(help="Weight of the MSE term (InfoNCE weighs 1).")] = 1.0,
    fit_bridge: Annotated[
        bool,
        typer.Option(help="Start a projection bridge at its least-squares fit to the document embeddings."),
    ] = True,
    epochs: Annotated[float, typer.Option(help="Training epochs.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch (in-batch negatives).")] = 64,
    lr: Annotated[float, typer.Option(help="Learning rate of the query encoder.")] = 5e-5,
    seed: Annotated[int, typer.Option(help="Seed for data order and dropout.")] = 42,
    save_steps: Annotated[
        int | None, typer.Option(help="Checkpoint every N steps (default: 10 per run).")
    ] = None,
    max_steps: Annotated[int, typer.Option(help="Stop after N steps (-1: run all epochs).")] = -1,
    overwrite: Annotated[bool, typer.Option(help="Start over instead of resuming from OUT.")] = False,
    new_schedule: Annotated[bool, typer.Option(help=_NEW_SCHEDULE_HELP)] = False,
) -> None:
    """CARE Stage I: train the query encoder against the frozen document encoder (InfoNCE + MSE).

    The document encoder embeds every training text once (cached in OUT/document-targets); only the
    query encoder trains. Rerunning the same command after an interruption resumes.
    """
    if bridge not in ("truncate", "project"):
        raise CardioSTError(f"--bridge must be truncate or project, got {bridge!r}")
    _positive({"--temperature": temperature, "--lr": lr, "--epochs": epochs, "--batch-size": batch_size})
    from cardio_st.training.trainer import check_data

    check_data(data)  # a missing --data fails before the seconds of imports
    quiet_libraries()
    from cardio_st.training.recipes import align_encoders

    result = align_encoders(
        query,
        document,
        data,
        out,
        bridge=bridge,  # type: ignore[arg-type]
        temperature=temperature,
        mse_weight=mse_weight,
        fit_bridge=fit_bridge,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        save_steps=save_steps,
        max_steps=max_steps,
        overwrite=overwrite,
        new_schedule=new_schedule,
    )
    _print_training(result)


@care_app.command("finetune")
@friendly(flags={**_DATA_FLAGS, "name_or_path": "--model", "lr": "--query-lr"})
def care_finetune(
    model: Annotated[str, typer.Option(help="A CARE model folder, e.g. the OUT/final of care align.")],
    data: Annotated[str, typer.Option(help=_CARE_DATA_HELP)],
    out: Annotated[str, typer.Option(help="Output folder: checkpoints, then the model in OUT/final.")],
    temperature: Annotated[float, typer.Option(help="InfoNCE temperature.")] = 0.02,
    epochs: Annotated[float, typer.Option(help="Training epochs.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Rows per batch (in-batch negatives).")] = 64,
    query_lr: Annotated[float, typer.Option(help="Learning rate of the query encoder.")] = 2e-5,
    document_lr: Annotated[
        float, typer.Option(help="Learning rate of the document encoder (0: frozen).")
    ] = 2e-6,
    seed: Annotated[int, typer.Option(help="Seed for data order and dropout.")] = 42,
    save_steps: Annotated[
        int | None, typer.Option(help="Checkpoint every N steps (default: 10 per run).")
    ] = None,
    max_steps: Annotated[int, typer.Option(help="Stop after N steps (-1: run all epochs).")] = -1,
    overwrite: Annotated[bool, typer.Option(help="Start over instead of resuming from OUT.")] = False,
    new_schedule: Annotated[bool, typer.Option(help=_NEW_SCHEDULE_HELP)] = False,
) -> None:
    """CARE Stage II: fine-tune both encoders with InfoNCE, each at its own learning rate.

    Anchors go through the query encoder, positives and negative* columns through the document
    encoder. Rerunning the same command after an interruption resumes.
    """
    if document_lr < 0:
        raise CardioSTError(f"--document-lr must be at least 0, got {document_lr}")
    _positive(
        {"--temperature": temperature, "--query-lr": query_lr, "--epochs": epochs, "--batch-size": batch_size}
    )
    from cardio_st.training.trainer import check_data

    check_data(data)  # a missing --data fails before the seconds of imports
    quiet_libraries()
    from cardio_st.training.recipes import finetune_model

    result = finetune_model(
        model,
        data,
        out,
        temperature=temperature,
        epochs=epochs,
        batch_size=batch_size,
        query_lr=query_lr,
        document_lr=document_lr,
        seed=seed,
        save_steps=save_steps,
        max_steps=max_steps,
        overwrite=overwrite,
        new_schedule=new_schedule,
    )
    _print_training(result)
