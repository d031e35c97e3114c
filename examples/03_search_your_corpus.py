"""Exact semantic search over your own texts: a resumable, cached index and deterministic top-k.

Run: python examples/03_search_your_corpus.py
"""

import tempfile
from pathlib import Path

from cardio_st import EmbeddingIndex, build_index, load_model, model_fingerprint

passages = [
    "Beta-blockers reduce mortality in heart failure with reduced ejection fraction.",
    "Anticoagulation is recommended for atrial fibrillation with a CHA2DS2-VASc score of 2 or more.",
    "Primary PCI is preferred over fibrinolysis when it can be done within 120 minutes.",
    "Statins lower LDL cholesterol and cardiovascular events.",
    "ACE inhibitors slow the progression of diabetic nephropathy.",
]
model, folder = load_model("minilm")
path = Path(tempfile.mkdtemp()) / "guidelines.safetensors"
index = build_index(
    model,
    passages,
    [f"p{i}" for i in range(len(passages))],
    path,
    key=model_fingerprint(folder),
    chunk_size=2,
)
index = EmbeddingIndex.load(path)  # what a later process does
queries = ["blood thinner for afib", "best reperfusion for STEMI"]
for query, hits in zip(queries, index.search(model.encode_query(queries), top_k=2)):
    print(query)
    for hit in hits:
        print(f"  {hit.id} {hit.score:.3f} {hit.text}")
