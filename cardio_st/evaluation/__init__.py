"""Evaluation of cardio-st models.

- [retrieval][cardio_st.evaluation.retrieval]: held-out pair retrieval (CardioEmbed's protocol).
- [icd10][cardio_st.evaluation.icd10]: the ICD-10-CM rephrasing benchmark, with intervals; its metric
  arithmetic in [codes][cardio_st.evaluation.codes].
- [shorthand][cardio_st.evaluation.shorthand]: the clinical-shorthand benchmark (abbreviations, lay and
  terse phrases), by kind; the ranking it shares with icd10 in [ranking][cardio_st.evaluation.ranking].
- [graded][cardio_st.evaluation.graded]: nDCG/MAP/MRR@10 on graded (LLM-judged) labels.
- [mteb][cardio_st.evaluation.mteb]: mteb tasks by name and runs; the local tasks (ICD-10-CM, pairs,
  labelled corpora) in [mteb_tasks][cardio_st.evaluation.mteb_tasks].
- [report][cardio_st.evaluation.report]: ``cardio-st evaluate``: several models and tasks, one report;
  what it checks before any model loads (task names, their data, the ``[report]`` extra) in
  [checks][cardio_st.evaluation.checks].

Names are imported on first use, so importing this package stays cheap.
"""

from cardio_st.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    [
        "checks",
        "codes",
        "graded",
        "icd10",
        "mteb",
        "mteb_tasks",
        "ranking",
        "report",
        "retrieval",
        "shorthand",
    ],
    {
        "ICD10Evaluator": "icd10",
        "check_tasks": "checks",
        "PairRetrievalEvaluator": "retrieval",
        "evaluate_icd10": "icd10",
        "evaluate_labelled": "graded",
        "evaluate_shorthand": "shorthand",
        "evaluate_tasks": "report",
        "run_mteb": "mteb",
    },
)
