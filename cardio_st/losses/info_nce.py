"""InfoNCE with a temperature, in-batch negatives and any number of hard-negative columns, as
CardioEmbed trains; a gradient-cached twin for large batches. Leaves out the arithmetic, which
sentence-transformers' MultipleNegativesRankingLoss already does (scale = 1 / temperature).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MultipleNegativesRankingLoss,
)
from sentence_transformers.util import cos_sim, similarity_fct_name
from torch import Tensor

from cardio_st.citations import CARDIOEMBED, INFONCE

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["CachedInfoNCELoss", "InfoNCELoss"]

_CITATION = f"\n{CARDIOEMBED}\n{INFONCE}\n"


def _settings(temperature: float, symmetric: bool) -> dict[str, Any]:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return {
        "scale": 1.0 / temperature,
        "directions": ("query_to_doc", "doc_to_query") if symmetric else ("query_to_doc",),
        "partition_mode": "per_direction" if symmetric else "joint",
    }


class InfoNCELoss(MultipleNegativesRankingLoss):
    """InfoNCE at a temperature: each anchor must pick its positive among all positives and
    negatives of the batch.

    For anchors a_i, positives p_i and hard negatives n_i1..n_im (batch size B), s the cosine
    similarity and T the temperature:

        loss_i = -log( exp(s(a_i, p_i) / T)
                       / ( sum_j exp(s(a_i, p_j) / T) + sum_j sum_k exp(s(a_i, n_jk) / T) ) )

    and the loss is the mean of loss_i. With ``symmetric=True`` it is the mean of that term and
    the document-to-query term -log( exp(s(p_i, a_i) / T) / sum_j exp(s(p_i, a_j) / T) ).

    This is sentence-transformers' ``MultipleNegativesRankingLoss`` at ``scale = 1 / temperature``,
    parameterised the way the CardioEmbed paper states it (temperature 0.05, one hard negative).

    Args:
        model: The SentenceTransformer being trained.
        temperature: Softmax temperature T (0.05 in CardioEmbed, i.e. scale 20).
        symmetric: Add the document-to-query term (averaged with the query-to-document one).
        similarity_fct: Similarity of two embedding matrices; cosine by default.
        gather_across_devices: Under multi-process training, use every process's positives and
            negatives as negatives for every anchor (larger effective batch).

    Inputs:
        | Columns | Labels |
        |---|---|
        | (anchor, positive) | none |
        | (anchor, positive, negative) | none |
        | (anchor, positive, negative_1, ..., negative_m) | none |

    Use ``BatchSamplers.NO_DUPLICATES`` so that no in-batch negative is a copy of the positive.

    Examples:
        ```python
        from cardio_st.losses import InfoNCELoss

        loss = InfoNCELoss(model, temperature=0.05)  # pass to SentenceTransformerTrainer(loss=...)
        ```
    """

    def __init__(
        self,
        model: SentenceTransformer,
        temperature: float = 0.05,
        symmetric: bool = False,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
    ) -> None:
        super().__init__(
            model,
            similarity_fct=similarity_fct,
            gather_across_devices=gather_across_devices,
            **_settings(temperature, symmetric),
        )
        self.symmetric = symmetric

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "symmetric": self.symmetric,
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "gather_across_devices": self.gather_across_devices,
        }

    @property
    def citation(self) -> str:
        return _CITATION


class CachedInfoNCELoss(CachedMultipleNegativesRankingLoss):
    """[InfoNCELoss][cardio_st.losses.InfoNCELoss] with GradCache: the same loss value and gradients,
    for batches far larger than memory allows, computed in mini-batches of ``mini_batch_size``.

    Args:
        model: The SentenceTransformer being trained.
        temperature: Softmax temperature (0.05 in CardioEmbed).
        symmetric: Add the document-to-query term.
        mini_batch_size: Texts embedded at once; bounds memory, not the number of negatives.
        similarity_fct: Similarity of two embedding matrices; cosine by default.
        gather_across_devices: Use every process's candidates as negatives.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        temperature: float = 0.05,
        symmetric: bool = False,
        mini_batch_size: int = 32,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
    ) -> None:
        super().__init__(
            model,
            similarity_fct=similarity_fct,
            mini_batch_size=mini_batch_size,
            gather_across_devices=gather_across_devices,
            **_settings(temperature, symmetric),
        )
        self.symmetric = symmetric

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "symmetric": self.symmetric,
            "mini_batch_size": self.mini_batch_size,
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "gather_across_devices": self.gather_across_devices,
        }

    @property
    def citation(self) -> str:
        return _CITATION
