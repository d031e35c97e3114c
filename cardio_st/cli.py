"""The ``cardio-st`` command line: parses arguments and calls the Python API, nothing more.
Leaves out any logic the API lacks; imports torch only inside commands, so ``--help`` stays instant.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cardio_st import __version__
from cardio_st.errors import CardioSTError

app = typer.Typer(
    name="cardio-st",
    help="Clinical text embeddings on top of sentence-transformers. Offline ICD-10-CM semantic search first.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user-facing errors and Ctrl-C into one line on stderr and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CardioSTError as error:
            raise _fail(str(error), error.exit_code) from None
        except KeyboardInterrupt:
            raise _fail(
                "interrupted; finished work is saved, rerun the same command to resume", 130
            ) from None

    return wrapper


class _NoteHandler(logging.Handler):
    """cardio-st's warnings as ``note: ...`` lines on whatever stderr is current when they happen."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"note: {record.getMessage()}", err=True)


def _quiet_libraries() -> None:
    """Keep library chatter (weight-loading bars, CPU kernel notices) off the user's terminal."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    package_logger = logging.getLogger("cardio_st")
    if not any(isinstance(handler, _NoteHandler) for handler in package_logger.handlers):
        package_logger.addHandler(_NoteHandler())
    package_logger.setLevel(logging.WARNING)
    package_logger.propagate = False
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    _quiet_datasets()


def _quiet_datasets() -> None:
    """No "Saving the dataset" bars: the commands print their own summary."""
    import datasets

    datasets.disable_progress_bars()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cardio-st {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Clinical text embeddings on top of sentence-transformers."""


@app.command()
@_friendly
def search(
    queries: Annotated[
        list[str],
        typer.Argument(
            help="One or more clinical phrases; '-' reads one query per line from stdin.", show_default=False
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model folder, Hub id or embedded alias: 'default' (icd10-minilm, all-MiniLM-L6-v2 "
            "fine-tuned on ICD-10-CM) or 'minilm' (the base all-MiniLM-L6-v2). With --index: the model "
            "to take the query encoder from (default: the one the index records).",
            show_default="default",
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope",
            "-s",
            help="cardio (I00-I99), all (~75k codes), or a chapter number or range (see `chapters`).",
            show_default="cardio",
        ),
    ] = None,
    index: Annotated[
        str | None,
        typer.Option(
            "--index",
            "-i",
            help="Search this index (from `cardio-st index`) instead of ICD-10-CM: only the query encoder "
            "is loaded.",
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Codes to show per query.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size (index build and queries).")] = 32,
    rebuild: Annotated[
        bool, typer.Option(help="Re-embed the descriptions even if a cached index exists.")
    ] = False,
    hybrid: Annotated[
        bool,
        typer.Option(
            help="Fuse the embedding scores with TF-IDF character n-gram scores of the descriptions; "
            "scores are then fused scores (0 to 1, 1 = first on both), not cosines."
        ),
    ] = False,
) -> None:
    """Find the ICD-10-CM codes a clinical phrase means (nearest official descriptions).

    The first run for a model and scope embeds the descriptions of the scope's billable codes and
    caches them (resumable if interrupted); later runs only embed the query.

    With `--index INDEX` it searches an index built by `cardio-st index` instead, loading only the
    query encoder of the model the index records (for an asymmetric CARE model, the small one).

    A query longer than the model's maximum sequence length (256 word pieces for the default) is
    truncated to it; a note on stderr says so.
    """
    from cardio_st.data.icd10 import resolve_scope
    from cardio_st.icd10_search import validate_queries
    from cardio_st.models.default import resolve_model

    if queries == ["-"]:
        queries = [line.strip() for line in sys.stdin if line.strip()]
    queries = validate_queries(queries)
    if top_k < 1:
        raise CardioSTError(f"--top-k must be at least 1, got {top_k}")
    if batch_size < 1:
        raise CardioSTError(f"--batch-size must be at least 1, got {batch_size}")
    if index is not None:
        for name, given in (("--scope", scope is not None), ("--rebuild", rebuild)):
            if given:
                raise CardioSTError(f"{name} does not apply to --index (the index holds its own corpus)")
        if not Path(index).is_file():
            raise CardioSTError(
                f"no index at {index}: build it with cardio-st index CORPUS --model M --out {index}"
            )
        if model is not None:
            resolve_model(model)
        _quiet_libraries()
        from cardio_st.document_index import IndexSearch

        searcher = IndexSearch(index, model, batch_size=batch_size)
        labels = ("id", "text")
    else:
        scope = resolve_scope(scope or "cardio")
        _quiet_libraries()  # before resolve_model: the default's first use merges it, loading weights
        source = resolve_model(model)

        from cardio_st.icd10_search import ICD10Search

        searcher = ICD10Search(source.path or source.hub_id, scope, batch_size=batch_size)
        if rebuild:
            searcher.build(rebuild=True)
        labels = ("code", "description")
    results = searcher.search(queries, top_k=top_k, hybrid=hybrid)
    if as_json:
        for query, hits in zip(queries, results):
            for rank, hit in enumerate(hits, start=1):
                record = {
                    "query": query,
                    "rank": rank,
                    labels[0]: hit.id,
                    labels[1]: hit.text,
                    "score": hit.score,
                }
                typer.echo(json.dumps(record, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for query, hits in zip(queries, results):
        title = query if len(query) <= 80 else query[:77] + "..."
        table = Table(title=title, title_justify="left")
        table.add_column("#", justify="right")
        table.add_column(labels[0])
        table.add_column(labels[1])
        table.add_column("fused score" if hybrid else "score", justify="right")
        for rank, hit in enumerate(hits, start=1):
            table.add_row(str(rank), hit.id, hit.text, f"{hit.score:.3f}")
        console.print(table)


@app.command()
@_friendly
def export(
    model: Annotated[
        str,
        typer.Argument(
            help="'default' (the embedded icd10-minilm), another embedded alias, a model folder or a Hub id.",
            show_default=False,
        ),
    ],
    out_dir: Annotated[str, typer.Argument(help="A new (or empty) folder to write.", show_default=False)],
) -> None:
    """Write a model as a standalone sentence-transformers folder: plain
    ``SentenceTransformer(OUT_DIR)`` loads it, without cardio-st.

    ``cardio-st export default OUT_DIR`` writes the embedded default model with its adapter merged
    into all-MiniLM-L6-v2, and its model card with the evaluation results it shipped with.
    """
    from cardio_st.models.default import export_model

    _quiet_libraries()
    out = export_model(model, out_dir)
    typer.echo(f"wrote {model} to {out}")


@app.command()
@_friendly
def push(
    model_dir: Annotated[
        str,
        typer.Argument(
            help="A sentence-transformers model folder, e.g. runs/NAME/final.", show_default=False
        ),
    ],
    repo_id: Annotated[
        str,
        typer.Argument(help="The Hub repository: namespace/name (created if missing).", show_default=False),
    ],
    private: Annotated[bool, typer.Option(help="Create the repository private.")] = False,
    revision: Annotated[str | None, typer.Option(help="Branch to push to (created if missing).")] = None,
    create_pr: Annotated[bool, typer.Option(help="Open a pull request instead of committing.")] = False,
    adapter_only: Annotated[
        bool, typer.Option("--adapter-only", help="Upload the LoRA adapter alone (fails for full weights).")
    ] = False,
    merged: Annotated[
        bool, typer.Option("--merged", help="Merge the LoRA adapter into full weights before uploading.")
    ] = False,
    base_model_id: Annotated[
        list[str] | None,
        typer.Option(
            help="Hub id of the base model when the folder names a local one (repeat for a CARE model: "
            "query encoder, then document encoder)."
        ),
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option(help="Hub id of a training dataset, for the card (repeatable).")
    ] = None,
    license: Annotated[str | None, typer.Option(help="Licence for the card, e.g. apache-2.0.")] = None,
    language: Annotated[
        list[str] | None, typer.Option(help="Language code for the card (repeatable).")
    ] = None,
    samples: Annotated[
        bool,
        typer.Option(
            help="Keep the training-data rows sentence-transformers' card shows; --no-samples removes them "
            "(do that for data from patient notes)."
        ),
    ] = True,
    commit_message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
    dry_run: Annotated[
        str | None,
        typer.Option(help="Write the files that would be uploaded to this new folder; upload nothing."),
    ] = None,
) -> None:
    """Upload a model to the Hugging Face Hub with an honest model card.

    The card is sentence-transformers' own (recorded datasets, losses, evaluation results) plus what
    cardio-st knows: base model, LoRA and quantization, prompts, the loading snippet, intended use and
    clinical limitations. The token comes from `hf auth login` or HF_TOKEN; it is never printed.
    """
    from cardio_st.hub import check_repo_id

    check_repo_id(repo_id)
    if adapter_only and merged:
        raise CardioSTError("--adapter-only and --merged exclude each other: choose one")
    _quiet_libraries()
    from cardio_st.hub import push_to_hub

    result = push_to_hub(
        model_dir,
        repo_id,
        private=private,
        revision=revision,
        create_pr=create_pr,
        weights="adapter" if adapter_only else "merged" if merged else "as-saved",
        base_model_id=base_model_id[0]
        if base_model_id and len(base_model_id) == 1
        else base_model_id or None,
        datasets=dataset or (),
        license=license,
        language=language or None,
        samples=samples,
        commit_message=commit_message,
        dry_run=dry_run,
    )
    for name, reason in result.left_out.items():
        typer.echo(f"left out {name}: {reason}", err=True)
    if result.folder is not None:
        typer.echo(
            f"dry run: wrote the {len(result.files)} files a push to {repo_id} uploads to {result.folder}"
        )
    else:
        typer.echo(f"uploaded {len(result.files)} files to https://huggingface.co/{repo_id}")
        typer.echo(result.pr_url or result.commit_url or "")


@app.command()
@_friendly
def convert(
    source: Annotated[
        str,
        typer.Argument(
            help="A raw PEFT adapter (folder or Hub id) or a plain Hugging Face model folder.",
            show_default=False,
        ),
    ],
    out_dir: Annotated[str, typer.Argument(help="A new (or empty) folder to write.", show_default=False)],
    base: Annotated[
        str | None,
        typer.Option(help="The adapter's base model (folder or Hub id); default: the one it names."),
    ] = None,
    pooling: Annotated[
        str,
        typer.Option(
            help="auto (the base's own, else EOS for decoders and mean for encoders), eos, mean or cls."
        ),
    ] = "auto",
    query_prompt: Annotated[
        str | None,
        typer.Option(help="Prompt before queries, e.g. 'Instruct: TASK\\nQuery:' (\\n becomes a newline)."),
    ] = None,
    document_prompt: Annotated[str | None, typer.Option(help="Prompt before documents.")] = None,
    merge: Annotated[
        bool, typer.Option(help="Merge the adapter into full weights (loads without peft).")
    ] = False,
    base_model_id: Annotated[
        str | None, typer.Option(help="Hub id to record as the base when --base is a local folder.")
    ] = None,
    max_seq_length: Annotated[int | None, typer.Option(help="Tokens per text (default: the base's).")] = None,
) -> None:
    """Make a raw adapter or Hugging Face model a complete sentence-transformers folder.

    Sets the pooling, EOS handling, padding side, normalisation and prompts of the base (Qwen3-Embedding:
    last token, EOS appended, left padding, L2), so plain `SentenceTransformer(OUT_DIR)` gives the
    vectors the adapter was trained for, not mean-pooled ones.
    """
    if pooling not in ("auto", "eos", "mean", "cls"):
        raise CardioSTError(f"--pooling must be auto, eos, mean or cls, got {pooling!r}")
    if max_seq_length is not None and max_seq_length < 1:
        raise CardioSTError(f"--max-seq-length must be at least 1, got {max_seq_length}")
    _quiet_libraries()
    from cardio_st.conversion import convert as convert_model

    def unescape(prompt: str | None) -> str | None:
        return None if prompt is None else prompt.replace("\\n", "\n")

    out = convert_model(
        source,
        out_dir,
        base=base,
        pooling=pooling,  # type: ignore[arg-type]
        query_prompt=unescape(query_prompt),
        document_prompt=unescape(document_prompt),
        merge=merge,
        base_model_id=base_model_id,
        max_seq_length=max_seq_length,
    )
    typer.echo(f"wrote {out}: load it with SentenceTransformer({str(out)!r})")


@app.command("index")
@_friendly
def index_command(
    corpus: Annotated[
        str,
        typer.Argument(
            help="Documents: .jsonl (text, id), .csv/.tsv (header id,text), .txt (one a line), .parquet, "
            "a BEIR folder with corpus.jsonl, or icd10:SCOPE.",
            show_default=False,
        ),
    ],
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Model folder, Hub id or alias; for CARE, the trained router."),
    ],
    out: Annotated[str, typer.Option(help="The index file to write, e.g. corpus.safetensors.")],
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.")] = 32,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an index at OUT built from another corpus or model.")
    ] = False,
) -> None:
    """Embed a corpus with a model's document encoder into an index for `cardio-st search --index`.

    For an asymmetric (CARE) model only the document route embeds; the index records both encoders
    so that search can load the query encoder alone and refuse a model that does not match. Rerun
    the same command after an interruption to resume.
    """
    from cardio_st.models.default import resolve_model

    if batch_size < 1:
        raise CardioSTError(f"--batch-size must be at least 1, got {batch_size}")
    resolve_model(model)  # fail on a bad --model before importing torch
    _quiet_libraries()
    from cardio_st.document_index import index_documents

    built = index_documents(model, corpus, out, batch_size=batch_size, overwrite=overwrite)
    typer.echo(f"indexed {len(built):,} documents ({built.dim} dimensions) into {out}")


def _require_data(data: str) -> None:
    if not Path(data).exists():
        raise CardioSTError(
            f"--data {data} does not exist: pass a dataset folder or a .parquet/.jsonl/.csv file"
        )


def _training_output(out: str, overwrite: bool, stale: tuple[str, ...] = ()) -> Path:
    """OUT for a training command: refuses a finished run unless --overwrite, which removes its
    checkpoints, ``final`` and the ``stale`` names."""
    output = Path(out)
    if (output / "final").exists() and not overwrite:
        raise CardioSTError(
            f"{output / 'final'} already holds a trained model: pass --overwrite to train again"
        )
    if overwrite and output.is_dir() and _is_main_process():
        import shutil

        for path in [*output.glob("checkpoint-*"), output / "final", *(output / name for name in stale)]:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
    return output


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


@app.command()
@_friendly
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
        str | None, typer.Option(help="Hub id recorded as the adapter's base when --base is a local folder.")
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
) -> None:
    """Train an embedding model with temperature InfoNCE (CardioEmbed's recipe) through the
    standard SentenceTransformerTrainer.

    Defaults are the paper's: LoRA r=16/alpha=32/dropout 0.05 on the attention and MLP
    projections of an 8-bit base, temperature 0.05, batch 128, lr 2e-4, 10% warm-up, cosine
    decay, no-duplicates batches, 2 epochs. Rerunning the same command after an interruption
    resumes from the last checkpoint. Under `torchrun --nproc_per_node N -m cardio_st.cli train ...`
    negatives are gathered across the N processes.
    """
    _require_data(data)
    if quantize not in ("8bit", "4bit", "none"):
        raise CardioSTError(f"--quantize must be 8bit, 4bit or none, got {quantize!r}")
    for name, value in (("--batch-size", batch_size), ("--max-length", max_length), ("--lora-r", lora_r)):
        if value < 1:
            raise CardioSTError(f"{name} must be at least 1, got {value}")
    if not (temperature > 0 and lr > 0 and epochs > 0):
        raise CardioSTError("--temperature, --lr and --epochs must be positive")
    output = _training_output(out, overwrite)
    _quiet_libraries()
    import warnings

    from transformers import set_seed

    from cardio_st.models.cardioembed import cardioembed
    from cardio_st.training import load_pairs
    from cardio_st.training import train as run_training

    warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
    set_seed(seed)  # before the adapter is created: its initialisation is random
    pairs = load_pairs(data, seed=seed)
    model = cardioembed(
        base,
        base_model_id=base_model_id,
        lora=lora,
        quantization=None if quantize == "none" else quantize,
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        max_seq_length=max_length,
        output_dim=output_dim,
        **({"task": task} if task else {}),
    )
    result = run_training(
        model,
        pairs,
        output,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        temperature=temperature,
        symmetric=symmetric,
        mini_batch_size=mini_batch_size,
        seed=seed,
        max_steps=max_steps,
        save_steps=save_steps,
        resume=not overwrite,
        data_name=Path(data).name,
    )
    if not _is_main_process():
        return
    _print_training(result)


care_app = typer.Typer(
    help="CARE asymmetric retrievers: a small query encoder aligned to a large document encoder.",
    no_args_is_help=True,
)
app.add_typer(care_app, name="care")

_CARE_DATA_HELP = (
    "Pairs/triplets: a save_to_disk folder, or .parquet/.jsonl/.csv files (anchor, positive[, negative...])."
)


def _care_inputs(
    data: str, out: str, overwrite: bool, numbers: dict[str, float], stale: tuple[str, ...] = ()
):
    _require_data(data)
    for name, value in numbers.items():
        if not value > 0:
            raise CardioSTError(f"{name} must be positive, got {value}")
    return _training_output(out, overwrite, stale)


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
@_friendly
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
) -> None:
    """CARE Stage I: train the query encoder against the frozen document encoder (InfoNCE + MSE).

    The document encoder embeds every training text once (cached in OUT/document-targets); only the
    query encoder trains. Rerunning the same command after an interruption resumes.
    """
    if bridge not in ("truncate", "project"):
        raise CardioSTError(f"--bridge must be truncate or project, got {bridge!r}")
    output = _care_inputs(
        data,
        out,
        overwrite,
        {"--temperature": temperature, "--lr": lr, "--epochs": epochs, "--batch-size": batch_size},
        stale=("document-targets", "document-targets.json"),
    )
    _quiet_libraries()
    from transformers import set_seed

    from cardio_st.models.care import align, care_model
    from cardio_st.models.default import load_model
    from cardio_st.training import load_pairs

    set_seed(seed)
    model = care_model(load_model(query)[0], load_model(document)[0], bridge=bridge)
    result = align(
        model,
        load_pairs(data, seed=seed),
        output,
        temperature=temperature,
        mse_weight=mse_weight,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        fit_bridge=fit_bridge,
        seed=seed,
        save_steps=save_steps,
        max_steps=max_steps,
        resume=not overwrite,
        data_name=Path(data).name,
    )
    _print_training(result)


@care_app.command("finetune")
@_friendly
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
) -> None:
    """CARE Stage II: fine-tune both encoders with InfoNCE, each at its own learning rate.

    Anchors go through the query encoder, positives and negative* columns through the document
    encoder. Rerunning the same command after an interruption resumes.
    """
    if document_lr < 0:
        raise CardioSTError(f"--document-lr must be at least 0, got {document_lr}")
    output = _care_inputs(
        data,
        out,
        overwrite,
        {
            "--temperature": temperature,
            "--query-lr": query_lr,
            "--epochs": epochs,
            "--batch-size": batch_size,
        },
    )
    _quiet_libraries()
    from transformers import set_seed

    from cardio_st.models.care import finetune
    from cardio_st.models.default import load_model
    from cardio_st.training import load_pairs

    set_seed(seed)
    result = finetune(
        load_model(model)[0],
        load_pairs(data, seed=seed),
        output,
        temperature=temperature,
        epochs=epochs,
        query_lr=query_lr,
        document_lr=document_lr,
        batch_size=batch_size,
        seed=seed,
        save_steps=save_steps,
        max_steps=max_steps,
        resume=not overwrite,
        data_name=Path(data).name,
    )
    _print_training(result)


def _print_summary(title: str, summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("step")
    table.add_column("count", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)


def _parse_ratios(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise CardioSTError(f"--ratios {text!r}: give three numbers, e.g. 0.85,0.1,0.05") from None


@app.command()
@_friendly
def prepare(
    corpus: Annotated[
        str,
        typer.Argument(
            help="Folder of .txt/.md/.pdf texts, one source per file (with --paraphraser none: "
            "pairs as .jsonl/.csv/.parquet with anchor, positive[, source]).",
            show_default=False,
        ),
    ],
    out: Annotated[str, typer.Option(help="Output folder: triplets, paraphrase checkpoint, summary.json.")],
    paraphraser: Annotated[
        str,
        typer.Option(help="hf:MODEL (local transformers LM), openai:URL (with --model), or none."),
    ] = "none",
    model: Annotated[
        str | None, typer.Option(help="Model name on the openai: server (e.g. what vLLM serves).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="API key for openai: (default: $OPENAI_API_KEY).", show_default=False)
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Parallel requests to an openai: server.")] = 8,
    batch_size: Annotated[int, typer.Option(help="Sentences per generate() call of an hf: model.")] = 8,
    min_words: Annotated[int, typer.Option(help="Drop sentences shorter than this.")] = 3,
    max_words: Annotated[int, typer.Option(help="Drop sentences longer than this.")] = 500,
    skip_unreadable: Annotated[
        bool, typer.Option(help="Skip binary or non-UTF-8 files (with a note) instead of stopping.")
    ] = False,
    split: Annotated[
        str, typer.Option(help="Split by 'source' (whole files) or by 'ratio' (random).")
    ] = "source",
    ratios: Annotated[str, typer.Option(help="Train,validation,test shares (the paper's by default).")] = (
        "0.85,0.1,0.05"
    ),
    length_match: Annotated[
        bool, typer.Option(help="Draw negatives among other-source sentences of similar length.")
    ] = True,
    mine_with: Annotated[
        str | None, typer.Option(help="Mine hard negatives with this embedding model (folder or Hub id).")
    ] = None,
    min_similarity: Annotated[
        float | None,
        typer.Option(
            help="Reject paraphrases whose cosine to the sentence is below this (needs --similarity-model)."
        ),
    ] = None,
    similarity_model: Annotated[
        str | None, typer.Option(help="Embedding model for --min-similarity (default: the embedded MiniLM).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split and the negatives.")] = 0,
) -> None:
    """Turn your clinical texts into CardioEmbed training triplets.

    Reads and cleans the texts into sentences, asks an LLM for one meaning-preserving paraphrase of
    each (the positive), and pairs each sentence with a sentence of another source (the negative).
    Every paraphrase is appended to OUT/paraphrases.jsonl as it arrives: rerun the same command after
    a crash or Ctrl-C and it resumes without regenerating finished sentences. Then
    `cardio-st train --data OUT ...`.
    """
    if split not in ("source", "ratio"):
        raise CardioSTError(f"--split must be 'source' or 'ratio', got {split!r}")
    parsed_ratios = _parse_ratios(ratios)
    _quiet_libraries()
    from cardio_st.data.paraphrase import make_paraphraser
    from cardio_st.data.prepare import prepare_corpus
    from cardio_st.models.default import load_model

    options: dict[str, Any] = {}
    if paraphraser.startswith("openai:"):
        options = {"api_key": api_key, "concurrency": concurrency}
    elif paraphraser.startswith("hf:"):
        options = {"batch_size": batch_size}
    generator = make_paraphraser(paraphraser, model=model, **options)
    similarity = None
    if min_similarity is not None:
        similarity = load_model(similarity_model or "minilm")[0]
    miner = load_model(mine_with)[0] if mine_with else None
    summary = prepare_corpus(
        corpus,
        out,
        paraphraser=generator,
        min_words=min_words,
        max_words=max_words,
        skip_unreadable=skip_unreadable,
        split=split,  # type: ignore[arg-type]
        ratios=parsed_ratios,
        seed=seed,
        length_match=length_match,
        mine_with=miner,
        similarity_model=similarity,
        min_similarity=min_similarity,
    )
    _print_summary(f"triplets written to {out} (cardio-st train --data {out})", summary)


@app.command("prepare-icd10")
@_friendly
def prepare_icd10(
    out: Annotated[str, typer.Option(help="Output folder: pairs (train, validation), eval/, summary.json.")],
    scope: Annotated[str, typer.Option(help="'all', 'cardio', or a chapter number or range.")] = "all",
    negatives: Annotated[
        bool, typer.Option(help="Add a negative column: a sibling code's description, same category.")
    ] = True,
    validation_fraction: Annotated[
        float, typer.Option(help="Share of train-side categories held back for validation.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for validation categories and negatives.")] = 0,
) -> None:
    """Build ICD-10-CM training pairs (alternative term -> official description) from the train side of
    the fixed split, and the evaluation set from its held-out side. Offline, from the installed
    ICD-10-CM release. Then `cardio-st train --data OUT ...`.
    """
    _quiet_datasets()
    from cardio_st.data.prepare import prepare_icd10 as run

    summary = run(out, scope=scope, negatives=negatives, validation_fraction=validation_fraction, seed=seed)
    _print_summary(f"ICD-10-CM pairs written to {out} (cardio-st train --data {out})", summary)


_LEXICAL = {"tfidf": "TfidfCharRetriever", "bm25": "BM25Retriever"}


def _judges(specs: list[str], models: list[str], **options: Any) -> list[Any]:
    """Pair each openai: judge with its --model, in order (one --model serves them all)."""
    from cardio_st.data.judges import make_judge

    remote = [spec for spec in specs if spec.lower().startswith("openai:")]
    if models and len(models) not in (1, len(remote)):
        raise CardioSTError(
            f"{len(remote)} openai: judges but {len(models)} --model values: give one --model per openai: "
            "judge, in the same order (or one for all)"
        )
    names = iter(models if len(models) != 1 else models * len(remote))
    return [
        make_judge(spec, model=next(names, None) if spec in remote else None, **options) for spec in specs
    ]


@app.command()
@_friendly
def label(
    corpus: Annotated[
        str, typer.Option(help="Passages: .jsonl (id, text), .csv/.tsv, .txt, .parquet or a BEIR folder.")
    ],
    queries: Annotated[str, typer.Option(help="Queries, in the same formats (id, text).")],
    judge: Annotated[
        list[str],
        typer.Option(
            help="openai:URL (an OpenAI-compatible server) or hf:MODEL; repeat for each judge (3 advised)."
        ),
    ],
    out: Annotated[str, typer.Option(help="Output folder (a rerun resumes it).")],
    model: Annotated[
        list[str] | None, typer.Option(help="Model name on each openai: judge's server, in --judge order.")
    ] = None,
    retriever: Annotated[
        list[str] | None,
        typer.Option(
            help="Retrievers whose top-k are pooled: bm25, tfidf, or a model. Default: bm25 and minilm."
        ),
    ] = None,
    k: Annotated[int, typer.Option(help="Passages each retriever contributes per query.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Passages per judge request.")] = 5,
    max_attempts: Annotated[
        int, typer.Option(help="Answers asked for per pair before it counts as unparsed.")
    ] = 3,
    review_sample: Annotated[
        int, typer.Option(help="Random pairs in the expert review file (flagged pairs come on top).")
    ] = 200,
    api_key: Annotated[
        str | None, typer.Option(help="Bearer token for the servers (default: OPENAI_API_KEY).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight per judge.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per request before a retry.")] = 120.0,
    retry_unparsed: Annotated[
        bool, typer.Option(help="Ask again about pairs a judge answered malformed --max-attempts times.")
    ] = False,
) -> None:
    """Label your corpus for retrieval evaluation with several LLM judges (CMedTEB's method).

    Candidates are pooled from the retrievers' top-k, every judge grades every candidate 0-3 in
    batches (strict JSON, retried when malformed, checkpointed as answers arrive), and each pair gets
    the majority grade. Writes labels, agreement statistics (pairwise, Fleiss' kappa), a review file for
    experts (import it with `cardio-st label-review`) and a dataset for
    `cardio-st evaluate --task labels:OUT`.
    """
    for name, value in (("--k", k), ("--batch-size", batch_size), ("--max-attempts", max_attempts)):
        if value < 1:
            raise CardioSTError(f"{name} must be at least 1, got {value}")
    if review_sample < 0:
        raise CardioSTError(f"--review-sample must be 0 or more, got {review_sample}")
    judges = _judges(judge, model or [], api_key=api_key, concurrency=concurrency, timeout=timeout)
    _quiet_libraries()
    from cardio_st.data.labelling import DEFAULT_RETRIEVERS, label_corpus

    summary = label_corpus(
        corpus,
        queries,
        judges,
        out,
        retrievers=retriever or DEFAULT_RETRIEVERS,
        k=k,
        batch_size=batch_size,
        max_attempts=max_attempts,
        review_size=review_sample,
        retry_unparsed=retry_unparsed,
    )
    _print_labels(summary)
    silent = [name for name, report in summary.judges.items() if report["graded"] == 0]
    if silent:
        last = summary.judges[silent[0]]["unparsed_example"]
        raise CardioSTError(
            f"judge {silent[0]} gave no usable answer (last: {last}); "
            "the labels come from the other judges. Fix it, then rerun with --retry-unparsed (pairs already "
            "graded are not asked again), or rerun without that --judge",
            exit_code=1,
        )


def _print_labels(summary: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"{summary.pairs:,} pairs: {summary.queries:,} queries x candidates", title_justify="left"
    )
    for column in ("judge", "graded", "unparsed", "asked now", "vague queries"):
        table.add_column(column, justify="left" if column == "judge" else "right")
    for name, report in summary.judges.items():
        table.add_row(
            name,
            f"{report['graded']:,}",
            f"{report['unparsed']:,}",
            f"{report['asked_now']:,}",
            f"{report['low_quality_queries']:,}",
        )
    console.print(table)
    grades = ", ".join(f"{grade}: {count:,}" for grade, count in summary.grades.items())
    console.print(
        f"labels: {summary.labelled:,} ({grades}); unlabelled {summary.unlabelled:,}; ties "
        f"{summary.ties:,}; low agreement {summary.low_agreement:,}"
    )
    for pair in summary.agreement["pairwise"]:
        kappa = pair["cohen_kappa"]
        console.print(
            f"agreement {pair['judges'][0]} / {pair['judges'][1]}: "
            + (f"{pair['agreement']:.3f}" if pair["agreement"] is not None else "-")
            + f" over {pair['pairs']:,} pairs (Cohen's kappa {'-' if kappa is None else f'{kappa:.3f}'})"
        )
    fleiss = summary.agreement["fleiss_kappa"]
    if fleiss is not None:
        console.print(f"Fleiss' kappa: {fleiss:.3f} over {summary.agreement['fleiss_pairs']:,} pairs")
    console.print(f"dataset: {summary.dataset} ({summary.scored_queries:,} queries with a relevant passage)")
    if summary.review:
        console.print(
            f"expert review file: {summary.review} (fill expert_grade, then cardio-st label-review)"
        )


@app.command("label-review")
@_friendly
def label_review(
    out: Annotated[str, typer.Argument(help="The folder cardio-st label wrote.", show_default=False)],
    reviewed: Annotated[
        str, typer.Argument(help="The review CSV with the expert_grade column filled in.", show_default=False)
    ],
) -> None:
    """Import experts' grades: they override the votes, and the votes are measured against them."""
    from cardio_st.data.labelling import import_review

    result = import_review(out, reviewed)
    agreement = result["agreement"]
    kappa = result["cohen_kappa"]
    typer.echo(
        f"{result['reviewed']} expert grades in force ({result['changed']} differ from the vote); on "
        f"{result['random_rows']} randomly sampled pairs the votes agreed with the experts "
        + ("-" if agreement is None else f"{agreement:.1%}")
        + f" of the time (Cohen's kappa {'-' if kappa is None else f'{kappa:.3f}'})"
    )


def _load_for_evaluation(name: str) -> tuple[str, Any]:
    if name in _LEXICAL:
        from cardio_st.evaluation import lexical

        return name, getattr(lexical, _LEXICAL[name])()
    from cardio_st.models.default import load_model

    return name, load_model(name)[0]


@app.command()
@_friendly
def evaluate(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Model folder, Hub id, embedded alias ('default', 'minilm'), tfidf or bm25."
        ),
    ] = "default",
    task: Annotated[
        list[str] | None,
        typer.Option(
            help="icd10 (circulatory chapter, held out), icd10-all, triplets:DIR (held-out pairs), "
            "labels:DIR (a corpus labelled by `cardio-st label`: nDCG@10, MAP@10, MRR@10), mteb:NAME. "
            "Repeat for several.",
        ),
    ] = None,
    compare: Annotated[
        list[str] | None, typer.Option(help="More models (or tfidf, bm25) to evaluate side by side.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    report: Annotated[
        str | None, typer.Option(help="Write results.json, report.md and report.png into this folder.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.")] = 64,
) -> None:
    """Evaluate models on the ICD-10-CM rephrasing benchmark (arXiv 2401.01943), held-out pairs
    (CardioEmbed's protocol) or mteb tasks, side by side, with 95% bootstrap intervals where the task
    has them.
    """
    from cardio_st.models.default import resolve_model

    names = [model, *(compare or [])]
    for name in names:  # fail on a bad model name before loading anything
        if name not in _LEXICAL:
            resolve_model(name)
    _quiet_libraries()
    from cardio_st.evaluation.report import evaluate_tasks, write_report

    models = [_load_for_evaluation(name) for name in names]
    results = evaluate_tasks(models, task or ["icd10"], batch_size=batch_size)
    if report:
        paths = write_report(results, report)
        typer.echo(f"report written: {', '.join(str(p) for p in paths.values())}", err=True)
    if as_json:
        from dataclasses import asdict

        typer.echo(json.dumps([asdict(r) for r in results], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    for task_name in dict.fromkeys(r.task for r in results):
        rows = [r for r in results if r.task == task_name]
        metrics = list(rows[0].metrics)[:6]
        table = Table(title=task_name, title_justify="left")
        table.add_column("model")
        for metric in metrics:
            table.add_column(metric, justify="right")
        table.add_column("query ms", justify="right")
        for r in rows:
            cells = []
            for metric in metrics:
                cell = f"{r.metrics[metric]:.3f}"
                if metric == r.primary and metric in r.intervals:
                    cell += " [{:.3f}, {:.3f}]".format(*r.intervals[metric])
                cells.append(cell)
            table.add_row(r.model, *cells, f"{r.query_ms:.1f}" if r.query_ms is not None else "-")
        Console().print(table)


@app.command()
@_friendly
def chapters() -> None:
    """List the ICD-10-CM chapters: the values `search --scope` accepts."""
    from rich.console import Console
    from rich.table import Table

    from cardio_st.data.icd10 import CIRCULATORY_CHAPTER
    from cardio_st.data.icd10 import chapters as list_chapters

    table = Table(title="ICD-10-CM chapters (--scope NUMBER or RANGE; 'cardio' = 9, 'all' = every chapter)")
    table.add_column("number", justify="right")
    table.add_column("range")
    table.add_column("title")
    for chapter in list_chapters():
        marker = " (cardio)" if chapter.number == CIRCULATORY_CHAPTER else ""
        table.add_row(chapter.number, chapter.code_range, chapter.title + marker)
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cardio-st`` script."""
    app(args=argv, prog_name="cardio-st")


if __name__ == "__main__":
    main()
