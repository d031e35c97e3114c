"""Find the ICD-10-CM codes a clinical phrase means, with the embedded default model.

Run: python examples/01_search_icd10.py
The first run embeds the 1,427 billable circulatory codes (a few seconds) and caches them.
"""

from cardio_st import ICD10Search

searcher = ICD10Search(scope="cardio")  # the embedded icd10-minilm; any SentenceTransformer works
queries = [
    "heart attack with ST elevation of the anterior wall",
    "afib",
    "high blood pressure with kidney disease",
]
for query, hits in zip(queries, searcher.search(queries, top_k=5)):
    print(query)
    for rank, hit in enumerate(hits, start=1):
        print(f"  {rank}. {hit.id:<8} {hit.score:.3f}  {hit.text}")
print(f"index: {searcher.index_path} ({len(searcher.index)} codes, {searcher.index.dim}-d)")
