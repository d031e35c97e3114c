"""Evaluate on the ICD-10-CM rephrasing benchmark (arXiv 2401.01943): held-out alternative terms
searched against every billable circulatory code, with 95% bootstrap intervals by code.

Runs offline in about a minute: two lexical baselines, the embedded all-MiniLM-L6-v2 and cardio-st's
default icd10-minilm (that MiniLM fine-tuned on train-side ICD-10-CM terms), then paired comparisons.
Pass any SentenceTransformer (or a folder / Hub id) to evaluate_icd10 to score your own.
"""

from cardio_st.evaluation.icd10 import evaluate_icd10, paired_bootstrap
from cardio_st.models.default import load_model
from cardio_st.retrieval.lexical import BM25Retriever, TfidfCharRetriever

minilm, _ = load_model("minilm", device="cpu")
default, _ = load_model("default", device="cpu")
results = [
    evaluate_icd10(BM25Retriever(), "cardio"),
    evaluate_icd10(TfidfCharRetriever(ngram_range=(3, 5)), "cardio"),
    evaluate_icd10(minilm, "cardio", name="all-MiniLM-L6-v2"),
    evaluate_icd10(default, "cardio", name="icd10-minilm"),
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

print()
for a, b in ((results[1], results[2]), (results[2], results[3])):
    gain = paired_bootstrap(a, b, "exact@1")
    print(
        f"{b.name} minus {a.name}, exact@1: {gain['difference']:+.3f} "
        f"(95% interval {gain['low']:+.3f} to {gain['high']:+.3f}; an interval containing 0 is no evidence)"
    )
