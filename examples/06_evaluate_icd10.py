"""Evaluate on the ICD-10-CM rephrasing benchmark (arXiv 2401.01943): held-out alternative terms
searched against every billable circulatory code, with 95% bootstrap intervals by code.

Runs offline in about a minute: two lexical baselines and the embedded all-MiniLM-L6-v2, then a paired
comparison. Pass any SentenceTransformer (or a folder / Hub id) to evaluate_icd10 to score your own.
"""

from cardio_st.evaluation.icd10 import evaluate_icd10, paired_bootstrap
from cardio_st.evaluation.lexical import BM25Retriever, TfidfCharRetriever
from cardio_st.models.default import load_model

minilm, _ = load_model("minilm", device="cpu")
results = [
    evaluate_icd10(BM25Retriever(), "cardio"),
    evaluate_icd10(TfidfCharRetriever(ngram_range=(3, 5)), "cardio"),
    evaluate_icd10(minilm, "cardio", name="all-MiniLM-L6-v2"),
]

print(f"{len(results[0].codes)} held-out queries over the circulatory chapter's billable codes\n")
print(f"{'retriever':<20} {'exact@1':>22} {'category@1':>22} {'mrr@10':>8} {'CER':>6}")
for r in results:
    m, ci = r.metrics, r.intervals
    print(
        f"{r.name:<20} {m['exact@1']:.3f} [{ci['exact@1'][0]:.3f}, {ci['exact@1'][1]:.3f}]"
        f" {m['category@1']:.3f} [{ci['category@1'][0]:.3f}, {ci['category@1'][1]:.3f}]"
        f" {m['mrr@10']:>8.3f} {m['cer']:>6.3f}"
    )

gain = paired_bootstrap(results[1], results[2], "exact@1")
print(
    f"\nMiniLM minus TF-IDF, exact@1: {gain['difference']:+.3f} "
    f"(95% interval {gain['low']:+.3f} to {gain['high']:+.3f}; an interval containing 0 is no evidence)"
)
