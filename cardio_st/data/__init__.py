"""Data: ICD-10-CM codes and the fixed evaluation split (cardio_st.data.icd10)."""
