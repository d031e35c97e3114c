"""BibTeX of the methods cardio-st implements, written once: losses return them as their ``citation``,
the mteb task and model cards quote them. Leaves out sentence-transformers' own citation (it adds it).
"""

from __future__ import annotations

__all__ = ["CARDIOEMBED", "CARE", "ICD10_SEMANTIC_SEARCH", "INFONCE"]

#: CardioEmbed (arXiv 2511.10930): LoRA-specialised Qwen3-Embedding for cardiology.
CARDIOEMBED = """@misc{cardioembed2025,
      title={CardioEmbed: Domain-Specialized Text Embeddings for Clinical Cardiology},
      author={Richard J. Young and Alice M. Matthews},
      year={2025},
      eprint={2511.10930},
      archivePrefix={arXiv},
      url={https://arxiv.org/abs/2511.10930},
}"""

#: InfoNCE (arXiv 1807.03748).
INFONCE = """@misc{oord2019representationlearningcontrastivepredictive,
      title={Representation Learning with Contrastive Predictive Coding},
      author={Aaron van den Oord and Yazhe Li and Oriol Vinyals},
      year={2019},
      eprint={1807.03748},
      archivePrefix={arXiv},
      url={https://arxiv.org/abs/1807.03748},
}"""

#: Clinical semantic search of ICD-10-CM codes (arXiv 2401.01943).
ICD10_SEMANTIC_SEARCH = """@misc{excoffier2024generalist,
      title={Generalist embedding models are better at short-context clinical semantic search than
             specialized embedding models},
      author={Jean-Baptiste Excoffier and Tom Roehr and Alexei Figueroa and Jens-Michalis Papaioannou
              and Keno Bressem and Matthieu Ortala},
      year={2024},
      eprint={2401.01943},
      archivePrefix={arXiv},
      url={https://arxiv.org/abs/2401.01943},
}"""

#: CARE (arXiv 2604.10937): asymmetric retrieval with a small query encoder.
CARE = """@misc{jiang2026care,
      title={Benchmarking and Enabling Efficient Chinese Medical Retrieval via Asymmetric Encoders},
      author={Angqing Jiang and Jianlyu Chen and Zhe Fang and Yongcan Wang and Xinpeng Li
              and Keyu Ding and Defu Lian},
      year={2026},
      eprint={2604.10937},
      archivePrefix={arXiv},
      url={https://arxiv.org/abs/2604.10937},
}"""
