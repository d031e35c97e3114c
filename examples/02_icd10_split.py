"""The ICD-10-CM data and the project's fixed evaluation split.

Run: python examples/02_icd10_split.py
"""

from cardio_st.data.icd10 import load_codes

codes = load_codes("cardio", billable_only=True)
train = [c for c in codes if not c.held_out]
test = [c for c in codes if c.held_out]
print(f"circulatory billable codes: {len(codes)} -> train {len(train)}, held out {len(test)}")
print(f"categories: train {len({c.category for c in train})}, held out {len({c.category for c in test})}")

# Evaluation queries are human-written alternative terms of held-out codes.
for code in [c for c in test if c.alternative_terms][:5]:
    print(f"{code.code:<8} {code.description}")
    for term in code.alternative_terms:
        print(f"           also: {term}")
