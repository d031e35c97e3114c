"""Evaluation of cardio-st models: held-out pair retrieval (CardioEmbed's protocol), the ICD-10-CM
benchmark and lexical baselines. Leaves out eager imports: import the submodule you need, e.g.
``from cardio_st.evaluation.retrieval import PairRetrievalEvaluator``, so importing this package stays cheap.
"""
