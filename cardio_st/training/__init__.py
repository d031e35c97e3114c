"""Training through the standard SentenceTransformerTrainer.

- [trainer][cardio_st.training.trainer]: ``train`` (CardioEmbed's defaults, checkpoints, resume, the
  run-folder policy, NaN stop, negatives gathered across processes).
- [care][cardio_st.training.care]: CARE's Stage I (``align``) and Stage II (``finetune``).
"""

from cardio_st.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    ["care", "trainer"],
    {
        "ALIGN_CACHE": "care",
        "PAPER_DEFAULTS": "trainer",
        "NonFiniteLossError": "trainer",
        "TrainResult": "trainer",
        "align": "care",
        "check_data": "trainer",
        "finetune": "care",
        "fit_projection": "care",
        "is_main_process": "trainer",
        "prepare_output_dir": "trainer",
        "retrieval_evaluator": "trainer",
        "train": "trainer",
    },
)
