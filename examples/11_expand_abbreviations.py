"""Abbreviations in ICD-10-CM search: what a query is searched as, your own lexicon, and what a coder checks.

Run: python examples/11_expand_abbreviations.py

`cardio-st search` and `ICD10Search` expand abbreviations before embedding a query ("afib" -> "atrial
fibrillation"), reading an ambiguous one (PE, MS, AS) as the search scope reads it. This script shows
the expansion alone, a ward's own lexicon overriding an entry, and a search whose answers carry each
code's billable flag, category and the term it was matched under.
"""

import json
import tempfile
from pathlib import Path

from cardio_st.retrieval.icd10 import ICD10Search, icd10_expander

# 1. What a query is searched as: in the circulatory chapter PE is pulmonary embolism, MS mitral stenosis
expander = icd10_expander("cardio")
for query in ["afib w/ RVR", "saddle PE", "h/o MS", "acute on chronic HFrEF", "NSTEMI"]:
    expansion = expander.expand(query)
    print(f"{query!r:28} -> {expansion.text!r:60} {expansion.describe()}")

# 2. Your own lexicon adds or overrides entries (JSON, or TSV: ABBREVIATION<tab>READING|READING)
with tempfile.TemporaryDirectory() as folder:
    lexicon = Path(folder) / "ward.json"
    lexicon.write_text(
        json.dumps({"PE": "pericardial effusion", "TAVR": "transcatheter aortic valve replacement"})
    )
    mine = icd10_expander("cardio", lexicon)
    print("with ward.json:", mine.expand("PE").text, "|", mine.expand("s/p TAVR").text)

    # 3. Search with the embedded default model: each answer says what was expanded and what a coder checks
    searcher = ICD10Search(lexicon=lexicon, show_progress=False)
    for answer in searcher.lookup(["afib", "CHF", "PE"], top_k=3, explain=True):
        print(f"\n{answer.query}  (searched as: {answer.expansion.text})")
        for hit in answer.hits:
            billable = "billable" if hit.billable else "not billable"
            category = f"{hit.category} {hit.category_title[:30]}"
            print(f"  {hit.code:8} {hit.description[:50]:50} {billable}, {category}")
            print(f"           matched: {hit.matched}")
