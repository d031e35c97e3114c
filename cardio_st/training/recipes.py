"""Whole runs from names and folders, one call each: what ``cardio-st train``, ``care align``, ``care
finetune`` and ``prepare`` do. Leaves out the steps they chain (trainer, care, models, data).

They live here, above cardio_st.models and cardio_st.data, because each one loads models by name
(``load_model``, ``cardioembed``) for a data or training step that itself takes model objects; the data
layer sits below the models and never loads one. Importing this module imports neither torch nor
sentence-transformers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cardio_st.data.pairs import load_pairs
from cardio_st.data.paraphrase import make_paraphraser
from cardio_st.data.prepare import prepare_corpus
from cardio_st.errors import CardioSTError
from cardio_st.models.cardioembed import DEFAULT_TASK, cardioembed
from cardio_st.models.care import care_model
from cardio_st.models.loader import load_model
from cardio_st.training.care import ALIGN_CACHE, ALIGN_DEFAULTS, FINETUNE_DEFAULTS, align, finetune
from cardio_st.training.trainer import PAPER_DEFAULTS, TrainResult, check_data, prepare_output_dir, train

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from cardio_st.data.paraphrase import Paraphraser

__all__ = ["align_encoders", "finetune_model", "prepare_training_data", "train_cardioembed"]

_QUANTIZATIONS = ("8bit", "4bit", None)


def _at_least(minimum: float, **values: float) -> None:
    for name, value in values.items():
        if value < minimum:
            raise CardioSTError(f"`{name}={value!r}` is too small: pass at least {minimum}")


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise CardioSTError(f"`{name}={value!r}` must be positive")


def _model(model: str | os.PathLike | SentenceTransformer) -> SentenceTransformer:
    """``model`` itself, or the model a name, folder or Hub id loads."""
    return load_model(model)[0] if isinstance(model, (str, os.PathLike)) else model


def _set_seed(seed: int) -> None:
    from transformers import set_seed

    set_seed(seed)


def train_cardioembed(
    base: str,
    data: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    base_model_id: str | None = None,
    lora: bool = True,
    quantization: Literal["8bit", "4bit"] | None = "8bit",
    r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    max_seq_length: int = PAPER_DEFAULTS["max_length"],
    output_dim: int | None = None,
    task: str | None = DEFAULT_TASK,
    epochs: float = PAPER_DEFAULTS["epochs"],
    batch_size: int = PAPER_DEFAULTS["batch_size"],
    lr: float = PAPER_DEFAULTS["lr"],
    temperature: float = PAPER_DEFAULTS["temperature"],
    symmetric: bool = False,
    mini_batch_size: int | None = None,
    seed: int = 42,
    max_steps: int = -1,
    save_steps: int | None = None,
    overwrite: bool = False,
    new_schedule: bool = False,
) -> TrainResult:
    """Train a CardioEmbed model from a base and a dataset on disk: what ``cardio-st train`` does.

    Checks ``data`` and the numbers, applies the run-folder policy
    ([prepare_output_dir][cardio_st.training.trainer.prepare_output_dir]: a finished run is refused
    unless ``overwrite``, an interrupted one resumes), seeds everything before the adapter is created,
    reads the pairs ([load_pairs][cardio_st.data.pairs.load_pairs]), builds the model
    ([cardioembed][cardio_st.models.cardioembed.cardioembed]) and trains it
    ([train][cardio_st.training.trainer.train]).

    Args:
        base: Base model: Hub id or folder (Hugging Face or sentence-transformers).
        data: Pairs/triplets: a ``save_to_disk`` folder, or ``.parquet``/``.jsonl``/``.csv`` files.
        output_dir: Checkpoints, then the model in ``output_dir/final``.
        base_model_id: Hub id the base weights came from, recorded for publishing (optional).
        lora: Train a LoRA adapter (else all weights).
        quantization: Base weights: ``"8bit"`` (CardioEmbed), ``"4bit"`` or None.
        r: LoRA rank.
        lora_alpha: LoRA alpha.
        lora_dropout: LoRA dropout.
        max_seq_length: Tokens per text; longer texts are truncated.
        output_dim: Matryoshka output dimension of the saved model.
        task: Query instruction for decoder bases (Qwen3 format).
        epochs: Training epochs.
        batch_size: Pairs per batch per process (in-batch negatives).
        lr: Peak learning rate (10% warm-up, then cosine decay).
        temperature: InfoNCE temperature.
        symmetric: Add the document-to-query InfoNCE term.
        mini_batch_size: Gradient caching: embed this many texts at once.
        seed: Seed for the adapter's initialisation, data order and dropout.
        max_steps: Stop after this many steps (-1: run all epochs).
        save_steps: Checkpoint every N steps (default: 10 per run).
        overwrite: Start over instead of resuming from ``output_dir``'s checkpoints.
        new_schedule: Go on from the last checkpoint's weights with a fresh optimizer and schedule (e.g. a
            lower ``lr`` after a NaN loss); without it a resume with other data or settings is refused.

    Example:
        ```python
        from cardio_st.training.recipes import train_cardioembed

        result = train_cardioembed("Qwen/Qwen3-Embedding-0.6B", "data/triplets", "runs/a", epochs=1)
        print(result.final_dir)  # runs/a/final
        ```

    Raises:
        CardioSTError: for missing data, a bad number, an unknown quantization or a finished run in
            ``output_dir``.
    """
    check_data(data)
    if quantization not in _QUANTIZATIONS:
        raise CardioSTError(f"`quantization={quantization!r}` is unknown: use '8bit', '4bit' or None")
    _at_least(1, batch_size=batch_size, max_seq_length=max_seq_length, r=r)
    _positive(temperature=temperature, lr=lr, epochs=epochs)
    output = prepare_output_dir(output_dir, overwrite=overwrite)
    _set_seed(seed)  # before the adapter is created: its initialisation is random
    pairs = load_pairs(data, seed=seed)
    model = cardioembed(
        base,
        base_model_id=base_model_id,
        lora=lora,
        quantization=quantization,
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        max_seq_length=max_seq_length,
        output_dim=output_dim,
        task=task,
    )
    return train(
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
        new_schedule=new_schedule,
        data_name=Path(data).name,
    )


def align_encoders(
    query: str | os.PathLike | SentenceTransformer,
    document: str | os.PathLike | SentenceTransformer,
    data: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    bridge: Literal["truncate", "project"] = "truncate",
    temperature: float = ALIGN_DEFAULTS["temperature"],
    mse_weight: float = ALIGN_DEFAULTS["mse_weight"],
    fit_bridge: bool = True,
    epochs: float = ALIGN_DEFAULTS["epochs"],
    batch_size: int = 64,
    lr: float = ALIGN_DEFAULTS["lr"],
    seed: int = 42,
    save_steps: int | None = None,
    max_steps: int = -1,
    overwrite: bool = False,
    new_schedule: bool = False,
) -> TrainResult:
    """CARE Stage I from two encoders and a dataset on disk: what ``cardio-st care align`` does.

    Checks the arguments, applies the run-folder policy (with ``overwrite`` the cached document
    targets go too), seeds, builds the router ([care_model][cardio_st.models.care.care_model]) and
    aligns it ([align][cardio_st.training.care.align]).

    Args:
        query: Small query encoder: a model, or an embedded name, Hub id or folder.
        document: Large document encoder (frozen here), likewise.
        data: Pairs/triplets: a ``save_to_disk`` folder, or ``.parquet``/``.jsonl``/``.csv`` files.
        output_dir: Document targets, checkpoints, then the model in ``output_dir/final``.
        bridge: ``"truncate"`` (Matryoshka document encoders) or ``"project"``.
        temperature: InfoNCE temperature.
        mse_weight: Weight of the MSE term (InfoNCE weighs 1).
        fit_bridge: Start a projection bridge at its least-squares fit to the document embeddings.
        epochs: Training epochs.
        batch_size: Pairs per batch (in-batch negatives).
        lr: Learning rate of the query encoder.
        seed: Seed for data order and dropout.
        save_steps: Checkpoint every N steps (default: 10 per run).
        max_steps: Stop after this many steps (-1: run all epochs).
        overwrite: Start over instead of resuming from ``output_dir``.
        new_schedule: Go on from the last checkpoint's weights with a fresh optimizer and schedule.

    Example:
        ```python
        from cardio_st.training.recipes import align_encoders

        result = align_encoders("minilm", "BAAI/bge-large-en-v1.5", "data/pairs.parquet", "runs/stage1")
        ```

    Raises:
        CardioSTError: for an unknown bridge, missing data, a number that is not positive or a
            finished run in ``output_dir``.
    """
    if bridge not in ("truncate", "project"):
        raise CardioSTError(f"`bridge={bridge!r}` is unknown: use 'truncate' or 'project'")
    check_data(data)
    _positive(temperature=temperature, lr=lr, epochs=epochs, batch_size=batch_size)
    output = prepare_output_dir(output_dir, overwrite=overwrite, stale=ALIGN_CACHE, owner="care align")
    _set_seed(seed)
    model = care_model(_model(query), _model(document), bridge=bridge)
    return align(
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
        new_schedule=new_schedule,
        data_name=Path(data).name,
    )


def finetune_model(
    model: str | os.PathLike | SentenceTransformer,
    data: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    temperature: float = FINETUNE_DEFAULTS["temperature"],
    epochs: float = FINETUNE_DEFAULTS["epochs"],
    batch_size: int = 64,
    query_lr: float = FINETUNE_DEFAULTS["query_lr"],
    document_lr: float = FINETUNE_DEFAULTS["document_lr"],
    seed: int = 42,
    save_steps: int | None = None,
    max_steps: int = -1,
    overwrite: bool = False,
    new_schedule: bool = False,
) -> TrainResult:
    """CARE Stage II from a CARE model and a dataset on disk: what ``cardio-st care finetune`` does.

    Checks the arguments, applies the run-folder policy, seeds, loads ``model`` if it is a name or
    folder and fine-tunes both routes ([finetune][cardio_st.training.care.finetune]).

    Args:
        model: A CARE model, or its folder (e.g. the ``final`` of
            [align_encoders][cardio_st.training.recipes.align_encoders]).
        data: Pairs/triplets: a ``save_to_disk`` folder, or ``.parquet``/``.jsonl``/``.csv`` files.
        output_dir: Checkpoints, then the model in ``output_dir/final``.
        temperature: InfoNCE temperature.
        epochs: Training epochs.
        batch_size: Rows per batch (in-batch negatives).
        query_lr: Learning rate of the query encoder.
        document_lr: Learning rate of the document encoder (0: frozen).
        seed: Seed for data order and dropout.
        save_steps: Checkpoint every N steps (default: 10 per run).
        max_steps: Stop after this many steps (-1: run all epochs).
        overwrite: Start over instead of resuming from ``output_dir``.
        new_schedule: Go on from the last checkpoint's weights with a fresh optimizer and schedule.

    Example:
        ```python
        from cardio_st.training.recipes import finetune_model

        result = finetune_model("runs/stage1/final", "data/pairs.parquet", "runs/stage2")
        ```

    Raises:
        CardioSTError: for missing data, a learning rate below 0, another number that is not positive
            or a finished run in ``output_dir``.
    """
    if document_lr < 0:
        raise CardioSTError(f"`document_lr={document_lr!r}` must be at least 0 (0 freezes the encoder)")
    check_data(data)
    _positive(temperature=temperature, query_lr=query_lr, epochs=epochs, batch_size=batch_size)
    output = prepare_output_dir(output_dir, overwrite=overwrite, owner="care finetune")
    _set_seed(seed)
    return finetune(
        _model(model),
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
        new_schedule=new_schedule,
        data_name=Path(data).name,
    )


def prepare_training_data(
    corpus: str | os.PathLike,
    out: str | os.PathLike,
    *,
    paraphraser: str | Paraphraser | None = "none",
    model: str | None = None,
    api_key: str | None = None,
    concurrency: int = 8,
    batch_size: int = 8,
    mine_with: str | os.PathLike | SentenceTransformer | None = None,
    similarity_model: str | os.PathLike | SentenceTransformer | None = None,
    min_similarity: float | None = None,
    **options: Any,
) -> dict[str, Any]:
    """[prepare_corpus][cardio_st.data.prepare.prepare_corpus] with its models given by name: what
    ``cardio-st prepare`` does.

    Builds the paraphraser from its spec ([make_paraphraser][cardio_st.data.paraphrase.make_paraphraser]:
    ``"hf:MODEL"``, ``"openai:URL"`` with ``model``, or ``"none"`` for existing pairs) and loads the
    hard-negative miner and the similarity model by name ([load_model][cardio_st.models.loader.load_model]),
    then prepares the corpus. Objects are passed through unchanged.

    Args:
        corpus: Folder of .txt/.md/.pdf texts, or (with ``paraphraser="none"``) pairs files.
        out: Output folder: triplets, paraphrase checkpoint, ``summary.json``.
        paraphraser: A spec, a [Paraphraser][cardio_st.data.paraphrase.Paraphraser], or None/``"none"``.
        model: Model name on an ``openai:`` server.
        api_key: API key for an ``openai:`` server (default: ``$OPENAI_API_KEY``).
        concurrency: Parallel requests to an ``openai:`` server.
        batch_size: Sentences per ``generate()`` call of an ``hf:`` model.
        mine_with: Mine hard negatives with this embedding model (a model, folder or Hub id).
        similarity_model: Embedding model for ``min_similarity`` (default: the embedded MiniLM).
        min_similarity: Reject paraphrases whose cosine to the sentence is below this.
        **options: Passed to [prepare_corpus][cardio_st.data.prepare.prepare_corpus] (``min_words``,
            ``split``, ``ratios``, ``seed``, ...).

    Example:
        ```python
        from cardio_st.training.recipes import prepare_training_data

        summary = prepare_training_data("notes/", "data/triplets", paraphraser="hf:Qwen/Qwen3-0.6B")
        ```

    Returns:
        The summary also written to ``out/summary.json``.
    """
    if isinstance(paraphraser, str):
        if paraphraser.startswith("openai:"):
            backend: dict[str, Any] = {"api_key": api_key, "concurrency": concurrency}
        elif paraphraser.startswith("hf:"):
            backend = {"batch_size": batch_size}
        else:
            backend = {}
        paraphraser = make_paraphraser(paraphraser, model=model, **backend)
    similarity = None
    if min_similarity is not None:
        similarity = _model(similarity_model or "minilm")
    return prepare_corpus(
        corpus,
        out,
        paraphraser=paraphraser,
        mine_with=_model(mine_with) if mine_with else None,
        similarity_model=similarity,
        min_similarity=min_similarity,
        **options,
    )
