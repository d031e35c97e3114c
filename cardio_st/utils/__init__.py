"""The bottom layer: crash-safe files, the cache folder, folder fingerprints, Hub ids and the exact
top-k kernel. Imports nothing else of cardio-st but its errors; torch only in ``topk``.

- [files][cardio_st.utils.files]: atomic writes, new output folders, replacing a linked file.
- [cache][cardio_st.utils.cache]: where cardio-st caches (torch-free).
- [fingerprint][cardio_st.utils.fingerprint]: content hashes of model folders.
- [hub][cardio_st.utils.hub]: Hugging Face Hub id patterns, offline.
- [topk][cardio_st.utils.topk]: exact, tie-ordered top-k over embedding matrices.
"""
