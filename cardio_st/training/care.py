"""CARE recipes (arXiv 2604.10937): build an asymmetric retriever, Stage I (align the query encoder to
the frozen document encoder) and Stage II (fine-tune both), through cardio-st's ``train``. Leaves out
the modules and the loss themselves (cardio_st.modules.asymmetric_router, cardio_st.losses).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.errors import CardioSTError
from cardio_st.models.care import care_router
from cardio_st.training.trainer import TrainResult, train
from cardio_st.utils.files import atomic_write
from cardio_st.utils.integrity import MANIFEST, verify_manifest, write_manifest

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Router

__all__ = ["ALIGN_CACHE", "ALIGN_DEFAULTS", "FINETUNE_DEFAULTS", "align", "finetune", "fit_projection"]

logger = logging.getLogger(__name__)

#: Stage I settings: CARE's temperature 0.1; MSE and InfoNCE weighted alike. The learning rates here
#: and below are cardio-st's starting points for BERT-sized query encoders, not values from the paper.
ALIGN_DEFAULTS = {"temperature": 0.1, "infonce_weight": 1.0, "mse_weight": 1.0, "epochs": 1, "lr": 5e-5}
#: Stage II settings: CARE's temperature 0.02; the large document encoder moves 10x more slowly.
FINETUNE_DEFAULTS = {"temperature": 0.02, "epochs": 1, "query_lr": 2e-5, "document_lr": 2e-6}
#: What [align][cardio_st.training.care.align] caches in its output folder besides checkpoints (the
#: document encoder's embeddings); ``prepare_output_dir(..., overwrite=True, stale=ALIGN_CACHE)`` removes it.
ALIGN_CACHE = ("document-targets", "document-targets.json")


def _is_truncation(module: Any) -> bool:
    import torch
    from sentence_transformers.base.modules import Dense

    if not isinstance(module, Dense) or module.bias or module.out_features > module.in_features:
        return False
    identity = torch.eye(module.out_features, module.in_features, dtype=module.linear.weight.dtype)
    return isinstance(module.activation_function, torch.nn.Identity) and torch.equal(
        module.linear.weight.detach().cpu(), identity
    )


def _set_trainable(router: Router, *, query: bool, document: bool) -> None:
    for name, trainable in (("query", query), ("document", document)):
        for module in router.sub_modules[name]:
            # A truncation bridge is the identity's first rows: training would make it a projection.
            module.requires_grad_(trainable and not _is_truncation(module))


def _negative_columns(columns: list[str]) -> list[str]:
    return [name for name in columns if name.startswith("negative")]


def _check_columns(data: DatasetDict) -> None:
    if "train" not in data:
        raise CardioSTError(f"no 'train' split in the data (splits: {list(data)})")
    columns = data["train"].column_names
    if columns[:2] != ["anchor", "positive"] or set(columns[2:]) - set(_negative_columns(columns)):
        raise CardioSTError(
            f"CARE training needs columns anchor, positive and optional negative* columns, got {columns}"
        )


def _targets_key(router: Router, data: DatasetDict) -> str:
    """What the targets depend on: the training texts and the document route's weights (hashed as raw
    bytes through the buffer protocol, so an 8-bit or bfloat16 encoder is not copied)."""
    import torch

    digest = hashlib.sha256()
    for name in data["train"].column_names:
        for text in data["train"][name]:
            digest.update(text.encode() + b"\0")
    for name, tensor in sorted(router.sub_modules["document"].state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _document_targets(
    model: SentenceTransformer, router: Router, data: DatasetDict, output_dir: Path, batch_size: int
):
    """The frozen document route's embeddings of every training text, computed once per output folder
    (a resumed run reads them back) and recomputed only if the data or the document route changed."""
    # imports torch: this module stays cheap, as cardio_st.training.trainer does
    from cardio_st.losses.asym_info_nce_mse import add_document_targets

    folder, record = (output_dir / name for name in ALIGN_CACHE)
    key = _targets_key(router, data)
    cached = _cached_targets(folder, record, key)
    if cached is not None:
        logger.info("reusing the document targets in %s", folder)
        return cached
    train = add_document_targets(data["train"], model, batch_size=batch_size, show_progress=False)
    output_dir.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)  # no record: a crash from here on leaves no targets to trust
    if folder.exists():
        shutil.rmtree(folder)
    train.save_to_disk(str(folder))
    write_manifest(folder)
    atomic_write(record, lambda tmp: tmp.write_text(json.dumps({"key": key, "rows": len(train)})))
    return train


def _cached_targets(folder: Path, record: Path, key: str):
    """The cached targets if they are the ones for ``key`` and intact: every file matches the SHA-256
    recorded when it was saved (about 0.7 ms per MB, once per run) and every value is finite; else None,
    with a warning when they were damaged, and they are recomputed."""
    import numpy as np
    from datasets import load_from_disk

    try:
        recorded = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if not folder.is_dir() or not isinstance(recorded, dict) or recorded.get("key") != key:
        return None
    if not (folder / MANIFEST).is_file():
        logger.info(
            "the document targets in %s have no checksums (an older cardio-st); computing them again", folder
        )
        return None
    problem = verify_manifest(folder)
    if problem is None:
        try:
            targets = load_from_disk(str(folder))
            labels = targets.with_format("numpy")["label"]
            if len(targets) != recorded.get("rows"):
                problem = f"{len(targets)} rows where {recorded.get('rows')} were written"
            elif not np.isfinite(np.asarray(labels, dtype=np.float32)).all():
                problem = "NaN or infinite values"
        except Exception as error:  # datasets and pyarrow raise several types for a damaged folder
            problem = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    if problem is None:
        return targets
    logger.warning(
        "the cached document targets in %s are damaged (%s); computing them again", folder, problem
    )
    return None


#: Ridge of the projection fit, relative to the mean eigenvalue of the inputs' Gram matrix.
RIDGE = 1e-3


def _projection(router: Router):
    """The query route's projection bridge -- the bias-free linear ``Dense`` that asymmetric_router puts
    just before the route's ``Normalize`` -- as ``(position, module)``, else ``(None, None)``."""
    import torch
    from sentence_transformers.base.modules import Dense, Normalize

    modules = list(router.sub_modules["query"])
    position = len(modules) - 2
    if position < 1 or not isinstance(modules[-1], Normalize):
        return None, None
    bridge = modules[position]
    linear = isinstance(bridge, Dense) and isinstance(bridge.activation_function, torch.nn.Identity)
    return (position, bridge) if linear and not bridge.bias else (None, None)


def fit_projection(model: SentenceTransformer, targets: Dataset, *, batch_size: int = 64) -> float | None:
    """Start a projection bridge at the least-squares map from the query encoder's embeddings to the
    document encoder's, instead of the zero-padded identity.

    The two encoders' spaces are unrelated before Stage I: padded with zeros, a MiniLM query embedding
    has a cosine near 0 with MPNet's embedding of the same text, and InfoNCE has to discover the map
    from there at a learning rate set for fine-tuning a transformer. The map minimising
    ``|X W^T - Y|^2 + r |W|^2`` over the training texts (``X`` the query encoder's embeddings before the
    bridge, ``Y`` the document encoder's unit vectors, both of anchors and positives; ``r`` a small
    ridge) is one linear solve, and Stage I then starts with the two spaces already roughly aligned.

    Args:
        model: A [care_model][cardio_st.models.care.care_model] with ``bridge="project"``.
        targets: The Stage I dataset with ``anchor``, ``positive`` and ``label`` (document embeddings)
            columns ([add_document_targets][cardio_st.losses.asym_info_nce_mse.add_document_targets]).
        batch_size: Encoding batch size.

    Returns:
        The mean cosine between the projected query embeddings and their targets after the fit, or None
        when the model has no projection bridge (nothing is changed then).
    """
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    router = care_router(model)
    position, bridge = _projection(router)
    if bridge is None:
        return None
    encoder = SentenceTransformer(
        modules=list(router.sub_modules["query"])[:position], device=str(model.device)
    )
    texts = list(targets["anchor"]) + list(targets["positive"])
    labels = np.asarray(targets.with_format("numpy")["label"], dtype=np.float32)
    wanted = np.concatenate([labels[:, 0], labels[:, 1]])
    wanted /= np.linalg.norm(wanted, axis=1, keepdims=True)
    prompt = (model.prompts or {}).get("query") or None
    inputs = encoder.encode(texts, batch_size=batch_size, prompt=prompt, convert_to_numpy=True)
    inputs64 = inputs.astype(np.float64)
    gram = inputs64.T @ inputs64
    # A sentence encoder's embeddings are often rank-deficient (MiniLM's mean-pooled ones have a null
    # direction): plain least squares then gives weights of 1e30. A ridge of 1e-3 of the mean eigenvalue
    # keeps them small and fits held-out texts as well (checked on 2,000 held-out ICD-10-CM texts).
    gram += RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram))
    solution = np.linalg.solve(gram, inputs64.T @ wanted.astype(np.float64))
    with torch.no_grad():
        bridge.linear.weight.copy_(torch.from_numpy(solution.T.astype(np.float32)))
    projected = inputs @ solution
    projected /= np.linalg.norm(projected, axis=1, keepdims=True)
    return float((projected * wanted).sum(axis=1).mean())


def align(
    model: SentenceTransformer,
    data: DatasetDict,
    output_dir: str | os.PathLike,
    *,
    temperature: float = ALIGN_DEFAULTS["temperature"],
    infonce_weight: float = ALIGN_DEFAULTS["infonce_weight"],
    mse_weight: float = ALIGN_DEFAULTS["mse_weight"],
    epochs: float = ALIGN_DEFAULTS["epochs"],
    lr: float = ALIGN_DEFAULTS["lr"],
    batch_size: int = 64,
    fit_bridge: bool = True,
    **train_kwargs: Any,
) -> TrainResult:
    """CARE Stage I: train the query route against the frozen document route.

    The document route is frozen and runs once, before training: its embeddings of every anchor,
    positive and negative go into a ``label`` column, cached in ``output_dir/document-targets`` so a
    resumed run does not embed again. Then [AsymInfoNCEMSELoss][cardio_st.losses.AsymInfoNCEMSELoss]
    trains the query route on (anchor, positive) with the anchors and positives routed to the query
    encoder. An ``eval`` split gets its targets too (for the evaluation loss) and is scored by
    retrieval: the query route's anchors against the document route's positives.

    Args:
        model: A [care_model][cardio_st.models.care.care_model].
        data: ``train`` (and optional ``eval``) splits with ``anchor``, ``positive`` and optional
            ``negative*`` columns.
        output_dir: Checkpoints, the targets and ``final``.
        temperature: Softmax temperature of the InfoNCE term (CARE's Stage I: 0.1).
        infonce_weight: Weight of the InfoNCE term.
        mse_weight: Weight of the MSE term.
        epochs: Passes over the training pairs.
        lr: Learning rate of the query route.
        batch_size: Rows per batch (in-batch negatives).
        fit_bridge: Start a projection bridge at its least-squares fit to the targets
            ([fit_projection][cardio_st.training.care.fit_projection]) rather than the padded identity.
        **train_kwargs: Passed to [train][cardio_st.training.trainer.train] (``max_steps``, ``save_steps``,
            ``resume``, ``seed``, ...).

    Raises:
        CardioSTError: for a model that is not a query/document router, or other columns.
    """
    from datasets import DatasetDict

    # imports torch: this module stays cheap, as cardio_st.training.trainer does
    from cardio_st.losses.asym_info_nce_mse import AsymInfoNCEMSELoss, add_document_targets

    _check_columns(data)
    router = care_router(model)
    _set_trainable(router, query=True, document=False)
    output_dir = Path(output_dir)
    targets = _document_targets(model, router, data, output_dir, batch_size)
    columns = ["anchor", "positive", "label"]
    stage = DatasetDict({"train": targets.select_columns(columns)})
    resuming = train_kwargs.get("resume", True) and any(output_dir.glob("checkpoint-*"))
    if fit_bridge and not resuming:  # a resumed run takes the bridge from its checkpoint
        cosine = fit_projection(model, stage["train"], batch_size=batch_size)
        if cosine is not None:
            logger.info("projection bridge fitted by least squares: mean cosine to the targets %.3f", cosine)
    if "eval" in data:  # small: embedded on every run, for the trainer's evaluation loss
        stage["eval"] = add_document_targets(data["eval"], model, batch_size=batch_size).select_columns(
            columns
        )
    loss = AsymInfoNCEMSELoss(model, temperature, infonce_weight=infonce_weight, mse_weight=mse_weight)
    return train(
        model,
        stage,
        output_dir,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        loss=loss,
        router_mapping={"anchor": "query", "positive": "query"},
        **train_kwargs,
    )


def finetune(
    model: SentenceTransformer,
    data: DatasetDict,
    output_dir: str | os.PathLike,
    *,
    temperature: float = FINETUNE_DEFAULTS["temperature"],
    epochs: float = FINETUNE_DEFAULTS["epochs"],
    query_lr: float = FINETUNE_DEFAULTS["query_lr"],
    document_lr: float = FINETUNE_DEFAULTS["document_lr"],
    batch_size: int = 64,
    **train_kwargs: Any,
) -> TrainResult:
    """CARE Stage II: fine-tune both routes jointly with InfoNCE, each at its own learning rate.

    Anchors go through the query route; positives and each ``negative*`` column (the hard-negative
    group of the row) through the document route. [InfoNCELoss][cardio_st.losses.InfoNCELoss] at
    ``temperature`` scores each anchor against every positive and negative of the batch. A
    truncation bridge stays frozen (it is the identity's first rows), a projection trains with the
    query route. A model with a LoRA document route saves ``final`` merged
    ([save_asymmetric][cardio_st.modules.asymmetric_router.save_asymmetric]).

    Args:
        model: A [care_model][cardio_st.models.care.care_model], usually after
            [align][cardio_st.training.care.align].
        data: ``train`` (and optional ``eval``) splits with ``anchor``, ``positive`` and optional
            ``negative*`` columns.
        output_dir: Checkpoints and ``final``.
        temperature: InfoNCE temperature (CARE's Stage II: 0.02).
        epochs: Passes over the training pairs.
        query_lr: Learning rate of the query route.
        document_lr: Learning rate of the document route (0 leaves it unchanged).
        batch_size: Rows per batch (in-batch negatives).
        **train_kwargs: Passed to [train][cardio_st.training.trainer.train].

    Raises:
        CardioSTError: for a model that is not a query/document router, or other columns.
    """
    # imports torch: this module stays cheap, as cardio_st.training.trainer does
    from cardio_st.losses.info_nce import InfoNCELoss

    _check_columns(data)
    _set_trainable(care_router(model), query=True, document=True)
    mapping = {"anchor": "query", "positive": "document"}
    mapping.update({name: "document" for name in _negative_columns(data["train"].column_names)})
    return train(
        model,
        data,
        output_dir,
        epochs=epochs,
        lr=query_lr,
        batch_size=batch_size,
        loss=InfoNCELoss(model, temperature),
        router_mapping=mapping,
        learning_rate_mapping={r"sub_modules\.query\.": query_lr, r"sub_modules\.document\.": document_lr},
        **train_kwargs,
    )
