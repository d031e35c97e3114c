"""The bottom layer: crash-safe files, the cache folder, folder fingerprints, Hub ids and the exact
top-k kernel. Imports nothing else of cardio-st but its errors; torch only in ``topk``.

- [files][cardio_st.utils.files]: atomic writes, output folders a command claims, replacing a linked file.
- [cache][cardio_st.utils.cache]: where cardio-st caches (torch-free).
- [fingerprint][cardio_st.utils.fingerprint]: content hashes of model folders and of training data.
- [integrity][cardio_st.utils.integrity]: content checksums of what cardio-st writes, verified on read.
- [hub][cardio_st.utils.hub]: Hugging Face Hub id patterns and what an adapter records as its base, offline.
- [topk][cardio_st.utils.topk]: exact, tie-ordered top-k over embedding matrices.
"""
