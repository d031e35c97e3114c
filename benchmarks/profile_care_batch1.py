"""Where a batch-1 query's time goes: ``encode_query`` end to end, its preprocessing (tokenisation) and
the model's forward alone, for the aligned query encoder and MPNet (docs/benchmarks.md, CARE).

Run:  python benchmarks/profile_care_batch1.py CARE_DIR MPNET_DIR   (CARE_DIR: Stage I OUT/final)
"""

import statistics
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

from cardio_st.data.icd10 import icd10_eval_set
from cardio_st.models.routes import load_route

queries = list(icd10_eval_set("cardio")["queries"]["query"])
models = {
    "aligned query": load_route(sys.argv[1], "query", device="cpu"),
    "mpnet": SentenceTransformer(sys.argv[2], device="cpu"),
}
for m in models.values():
    m.encode_query(queries[:8])
out = {}
for _r in range(3):
    for name, m in models.items():
        tok = fwd = enc = 0.0
        for q in queries:
            t = time.perf_counter()
            m.encode_query([q], batch_size=1)
            enc += time.perf_counter() - t
            t = time.perf_counter()
            f = m.preprocess([q])
            tok += time.perf_counter() - t
            t = time.perf_counter()
            with torch.inference_mode():
                m(f)
            fwd += time.perf_counter() - t
        out.setdefault(name, []).append(
            (enc / len(queries) * 1000, tok / len(queries) * 1000, fwd / len(queries) * 1000)
        )
for name, v in out.items():
    encode, preprocess, forward = (statistics.median(x[i] for x in v) for i in range(3))
    print(f"{name}: encode {encode:.2f} ms, preprocess {preprocess:.2f} ms, forward {forward:.2f} ms")
