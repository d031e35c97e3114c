"""Training through the standard SentenceTransformerTrainer.

- [trainer][cardio_st.training.trainer]: ``train`` (CardioEmbed's defaults, checkpoints, resume, the
  run-folder policy, NaN stop, negatives gathered across processes).
- [care][cardio_st.training.care]: CARE's Stage I (``align``) and Stage II (``finetune``).
- [recipes][cardio_st.training.recipes]: whole runs from names and folders, one call per command
  (``train_cardioembed``, ``align_encoders``, ``finetune_model``, ``prepare_training_data``).
"""

from cardio_st.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    ["care", "recipes", "trainer"],
    {
        "ALIGN_CACHE": "care",
        "PAPER_DEFAULTS": "trainer",
        "NonFiniteLossError": "trainer",
        "TrainResult": "trainer",
        "align": "care",
        "align_encoders": "recipes",
        "check_data": "trainer",
        "finetune": "care",
        "finetune_model": "recipes",
        "fit_projection": "care",
        "is_main_process": "trainer",
        "prepare_output_dir": "trainer",
        "prepare_training_data": "recipes",
        "retrieval_evaluator": "trainer",
        "train": "trainer",
        "train_cardioembed": "recipes",
    },
)
