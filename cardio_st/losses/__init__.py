"""Losses shaped like sentence-transformers' own: pass them to ``SentenceTransformerTrainer``."""

from cardio_st.losses.asym_info_nce_mse import AsymInfoNCEMSELoss, add_document_targets, bridge_targets
from cardio_st.losses.info_nce import CachedInfoNCELoss, InfoNCELoss

__all__ = ["AsymInfoNCEMSELoss", "CachedInfoNCELoss", "InfoNCELoss", "add_document_targets", "bridge_targets"]
