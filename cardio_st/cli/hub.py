"""``cardio-st push`` and ``convert``: publish a model to the Hugging Face Hub, or make a raw adapter a
sentence-transformers folder. Leaves out the card and the conversion themselves (cardio_st.hub, models).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cardio_st.cli.base import friendly, quiet_libraries
from cardio_st.errors import CardioSTError

__all__ = ["convert", "push"]


@friendly
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
    from cardio_st.hub.push import check_repo_id

    check_repo_id(repo_id)
    if adapter_only and merged:
        raise CardioSTError("--adapter-only and --merged exclude each other: choose one")
    quiet_libraries()
    from cardio_st.hub.push import push_to_hub

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


@friendly
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
    quiet_libraries()
    from cardio_st.models.conversion import convert as convert_model

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
