"""Losses shaped like sentence-transformers' own: pass them to ``SentenceTransformerTrainer``."""

from cardio_st.losses.info_nce import CachedInfoNCELoss, InfoNCELoss

__all__ = ["CachedInfoNCELoss", "InfoNCELoss"]
