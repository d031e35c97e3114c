"""Reload a saved model with plain sentence-transformers in a fresh Python process.

The child process imports nothing from cardio_st (checked), passes no trust_remote_code, and
inherits the offline Hub cache, exactly as a user without cardio-st would load the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, sys
import numpy as np
from sentence_transformers import SentenceTransformer
path, jobs, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
model = SentenceTransformer(path, device="cpu")
results = {f"job{i}": getattr(model, method)(texts) for i, (method, texts) in enumerate(jobs)}
leaked = sorted(name for name in sys.modules if name.startswith("cardio_st"))
assert not leaked, f"cardio_st was imported: {leaked}"
types = [entry["type"] for entry in json.load(open(f"{path}/modules.json"))]
np.savez(out, types=np.array(types), **results)
"""


def encode_in_fresh_process(
    path: str | Path, jobs: list[tuple[str, list[str]]]
) -> tuple[list[np.ndarray], list[str]]:
    """Embeddings of each ``(method, texts)`` job (``method``: encode / encode_query / encode_document),
    and the module types recorded in ``modules.json``."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.npz"
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), json.dumps(jobs), str(out)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": ""},
            cwd=folder,
            timeout=300,
        )
        if result.returncode != 0:
            raise AssertionError(f"fresh-process reload failed:\n{result.stderr[-3000:]}")
        data = np.load(out)
        return [data[f"job{i}"] for i in range(len(jobs))], [str(t) for t in data["types"]]
