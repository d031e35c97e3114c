"""CARE's Stage I loss (arXiv 2604.10937): align a small query encoder to a frozen large document
encoder with InfoNCE against the document encoder's passage embeddings plus an MSE pull towards the
document encoder's embeddings of the same texts. Leaves out the router that pairs the two encoders
and Stage II, which fine-tunes both jointly with InfoNCE alone.

The document encoder is frozen in Stage I, so its embeddings of every training text are constants:
[add_document_targets][cardio_st.losses.asym_info_nce_mse.add_document_targets] computes them once,
before training, and stores them in the dataset's ``label`` column. The loss then never runs the
document encoder: a Stage I step costs what a step of the small encoder alone costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cardio_st.citations import CARE
from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

__all__ = ["AsymInfoNCEMSELoss", "add_document_targets", "bridge_targets"]

_CITATION = f"\n{CARE}\n"


def bridge_targets(targets: Tensor, dim: int) -> Tensor:
    """Document-encoder embeddings brought to the query encoder's ``dim``: the first ``dim``
    components (Matryoshka truncation, CARE's bridge), L2-normalised.

    Args:
        targets: ``(..., D)`` document-encoder embeddings, ``D >= dim``.
        dim: The query encoder's output dimension.

    Raises:
        CardioSTError: when ``dim`` exceeds ``D``.
    """
    if dim > targets.shape[-1]:
        raise CardioSTError(
            f"the query encoder outputs {dim} dimensions but the document embeddings have "
            f"{targets.shape[-1]}: a query encoder cannot be wider than the document encoder it is "
            "aligned to; project the query side to the document dimension instead"
        )
    return F.normalize(targets[..., :dim].float(), dim=-1)


class AsymInfoNCEMSELoss(nn.Module):
    """CARE Stage I: InfoNCE of the query encoder's queries against the frozen document encoder's
    passages (in-batch and hard negatives), plus MSE from the query encoder's embeddings of the query
    and of the passage to the document encoder's embeddings of the same texts.

    For a batch of B (query, passage, m hard negatives) rows: ``q_i`` the query encoder's embedding
    of query i, ``r_i`` its embedding of passage i, and the frozen document encoder's embeddings
    ``t_i`` (of query i), ``P_i`` (of passage i) and ``N_ik`` (of negative k of row i), all bridged to
    the query dimension ([bridge_targets][cardio_st.losses.asym_info_nce_mse.bridge_targets]) and
    L2-normalised; ``c(x, y)`` the cosine, T the temperature:

        infonce = mean_i -log( exp(c(q_i, P_i) / T)
                               / (sum_j exp(c(q_i, P_j) / T) + sum_j sum_k exp(c(q_i, N_jk) / T)) )
        mse     = mean_i |q_i - t_i|^2 + mean_i |r_i - P_i|^2      (q_i, r_i L2-normalised)

    The MSE is the squared Euclidean distance per text, averaged over texts: for unit vectors it is
    ``2 - 2 c``, on the InfoNCE term's scale. Averaging over components as ``nn.MSELoss`` does would
    divide it by the dimension (768 for MPNet) and leave it no weight next to InfoNCE.

    Only the query encoder runs: the document encoder's embeddings come precomputed in the ``label``
    column ([add_document_targets][cardio_st.losses.asym_info_nce_mse.add_document_targets]), so it cannot
    change and is never recomputed. The loss returns both weighted terms as a dict;
    ``SentenceTransformerTrainer`` sums them for the gradient and logs each (``infonce``, ``mse``).

    Args:
        model: The SentenceTransformer being trained; the text columns go through it as they are
            (with an asymmetric router, map them to its query route).
        temperature: Softmax temperature (CARE's Stage I: 0.1).
        infonce_weight: Weight of the InfoNCE term.
        mse_weight: Weight of the MSE term (0 for InfoNCE alone).

    Inputs:
        | Columns | Labels |
        |---|---|
        | (query, passage) | (2 + m, D) document embeddings: query, passage, m negatives |
        | (query) | the same; the passage half of the MSE is left out |

    Example:
        ```python
        from cardio_st.losses import AsymInfoNCEMSELoss, add_document_targets

        train = add_document_targets(train, document_model)   # (anchor, positive[, negative]) -> + label
        train = train.select_columns(["anchor", "positive", "label"])
        loss = AsymInfoNCEMSELoss(query_model, temperature=0.1)
        ```
    """

    def __init__(
        self,
        model: SentenceTransformer,
        temperature: float = 0.1,
        infonce_weight: float = 1.0,
        mse_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise CardioSTError(f"temperature must be positive, got {temperature}")
        if not (infonce_weight >= 0 and mse_weight >= 0) or infonce_weight + mse_weight == 0:
            raise CardioSTError(
                f"weights must be non-negative and not both 0, got infonce_weight={infonce_weight}, "
                f"mse_weight={mse_weight}"
            )
        self.model = model
        self.temperature = temperature
        self.infonce_weight = infonce_weight
        self.mse_weight = mse_weight

    def forward(
        self, sentence_features: Sequence[dict[str, Tensor]], labels: Tensor | None
    ) -> dict[str, Tensor]:
        if labels is None:
            raise CardioSTError(
                "AsymInfoNCEMSELoss needs the document embeddings in a 'label' column: "
                "build it with add_document_targets(dataset, document_model)"
            )
        if not 1 <= len(sentence_features) <= 2:
            raise CardioSTError(
                f"AsymInfoNCEMSELoss takes the query column and optionally the passage column, got "
                f"{len(sentence_features)} text columns: negatives belong in the label column"
            )
        embeddings = [self.model(features)["sentence_embedding"] for features in sentence_features]
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: Sequence[Tensor], labels: Tensor) -> dict[str, Tensor]:
        """Both weighted terms from the query encoder's embeddings: ``[queries]`` or ``[queries,
        passages]``, each ``(B, d)``, and ``labels`` of shape ``(B, 2 + m, D)`` with ``D >= d``.

        Raises:
            CardioSTError: for labels whose shape does not fit the embeddings.
        """
        queries = embeddings[0]
        if labels.ndim != 3 or labels.shape[1] < 2 or labels.shape[0] != queries.shape[0]:
            raise CardioSTError(
                f"document targets have shape {tuple(labels.shape)} for {queries.shape[0]} queries: "
                "expected (batch, 2 + negatives, dimension), the query's then the passage's then each "
                "negative's document embedding (add_document_targets builds them)"
            )
        batch, dim = queries.shape
        targets = bridge_targets(labels.to(queries.device), dim)
        queries = F.normalize(queries.float(), dim=-1)
        # Candidates: every row's passage, then every row's first negative, and so on; row i's is i.
        candidates = targets[:, 1:].transpose(0, 1).reshape(-1, dim)
        scores = queries @ candidates.T * self.scale
        infonce = F.cross_entropy(scores, torch.arange(batch, device=scores.device))
        mse = (queries - targets[:, 0]).pow(2).sum(-1).mean()
        if len(embeddings) > 1:
            passages = F.normalize(embeddings[1].float(), dim=-1)
            mse = mse + (passages - targets[:, 1]).pow(2).sum(-1).mean()
        return {"infonce": self.infonce_weight * infonce, "mse": self.mse_weight * mse}

    @property
    def scale(self) -> float:
        """``1 / temperature``, as sentence-transformers' losses state it."""
        return 1.0 / self.temperature

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "infonce_weight": self.infonce_weight,
            "mse_weight": self.mse_weight,
        }

    @property
    def citation(self) -> str:
        return _CITATION


def add_document_targets(
    dataset: Dataset,
    document_model: SentenceTransformer,
    *,
    query_column: str | None = None,
    passage_columns: Sequence[str] | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
) -> Dataset:
    """Embed each row's texts once with the frozen document encoder and store them as ``label``.

    Every distinct text is embedded once (``encode_document``, float32, as the model outputs it), so
    Stage I never runs the document encoder again. ``label`` of a row is the list
    ``[query, passage, negative_1, ...]`` of embeddings, the layout
    [AsymInfoNCEMSELoss][cardio_st.losses.asym_info_nce_mse.AsymInfoNCEMSELoss] expects; the negative
    columns stay in the dataset (drop them before training: the loss reads negatives from ``label``).

    Args:
        dataset: Rows of (query, passage[, negatives...]) text columns.
        document_model: The frozen document encoder (or an asymmetric model: ``encode_document``
            uses its document route).
        query_column: The query column (default: the first column).
        passage_columns: The passage column then any negative columns (default: every other text
            column, in order).
        batch_size: Encoding batch size.
        show_progress: Progress bar while encoding.

    Raises:
        CardioSTError: for a dataset that already has a ``label`` column, unknown columns, or
            fewer than one passage column.
    """
    import numpy as np
    from datasets import Array2D, Dataset, Features, concatenate_datasets

    if "label" in dataset.column_names:
        raise CardioSTError(
            "the dataset already has a 'label' column: remove it before adding document targets"
        )
    query_column = query_column or dataset.column_names[0]
    if passage_columns is None:
        passage_columns = [name for name in dataset.column_names if name != query_column]
    columns = [query_column, *passage_columns]
    unknown = [name for name in columns if name not in dataset.column_names]
    if unknown:
        raise CardioSTError(f"no column {unknown} in the dataset (columns: {dataset.column_names})")
    if len(columns) < 2:
        raise CardioSTError("add_document_targets needs a query column and at least one passage column")
    texts = sorted({text for name in columns for text in dataset[name]})
    embeddings = document_model.encode_document(
        texts, batch_size=batch_size, show_progress_bar=show_progress, convert_to_numpy=True
    ).astype(np.float32)
    row_of = {text: row for row, text in enumerate(texts)}
    labels = np.stack([embeddings[[row_of[text] for text in dataset[name]]] for name in columns], axis=1)
    targets = Dataset.from_dict(
        {"label": labels}, features=Features({"label": Array2D(shape=labels.shape[1:], dtype="float32")})
    )
    return concatenate_datasets([dataset, targets], axis=1)
