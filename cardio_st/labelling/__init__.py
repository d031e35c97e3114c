"""Relevance labels for your own corpus by several LLM judges (CMedTEB's method).
Leaves out the LLM client (cardio_st.llm) and scoring models on the labels (cardio_st.evaluation.graded).

- [prompt][cardio_st.labelling.prompt]: the 0-3 grading scale, the judge's prompt, strict parsing.
- [judges][cardio_st.labelling.judges]: the judges and resumable judging.
- [votes][cardio_st.labelling.votes]: majority votes and agreement (exact, Cohen's and Fleiss' kappa).
- [dataset][cardio_st.labelling.dataset]: labels.jsonl, the BEIR dataset and the expert review.
- [pipeline][cardio_st.labelling.pipeline]: candidate pooling and the whole run (label_corpus).
"""

from cardio_st.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    ["dataset", "judges", "pipeline", "prompt", "votes"],
    {
        "export_review": "dataset",
        "import_review": "dataset",
        "judge_pairs": "judges",
        "label_corpus": "pipeline",
        "load_labelled": "dataset",
        "majority_vote": "votes",
        "make_judge": "judges",
        "pool_candidates": "pipeline",
    },
)
