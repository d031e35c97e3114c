"""The text-generation backends shared by every LLM job cardio-st runs (paraphrasing, judging).
Leaves out what the answers are for: prompts, filters and checkpoints belong to the jobs.

- [base][cardio_st.llm.base]: the [Generator][cardio_st.llm.base.Generator] protocol and
  [Unanswered][cardio_st.llm.base.Unanswered], a transient failure to be retried.
- [local][cardio_st.llm.local]: a local transformers causal LM.
- [openai][cardio_st.llm.openai]: an OpenAI-compatible ``/chat/completions`` server, with retries.
- [factory][cardio_st.llm.factory]: a backend from a spec such as ``hf:MODEL`` or ``openai:URL``.

The jobs are cardio_st.data.paraphrase and cardio_st.labelling.judges. Submodules are imported on
first use.
"""

from cardio_st.utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    ["base", "factory", "local", "openai"],
    {
        "Generator": "base",
        "HFGenerator": "local",
        "OpenAIGenerator": "openai",
        "Unanswered": "base",
        "make_generator": "factory",
    },
)
