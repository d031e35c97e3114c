"""Where cardio-st caches what it computes (indexes, merged models, file hashes). Torch-free, so
resolving a model name stays cheap. Leaves out what is cached: each cache's owner names its files.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """Where cardio-st caches indexes: ``$CARDIO_ST_CACHE``, else ``$XDG_CACHE_HOME/cardio_st``,
    else ``~/.cache/cardio_st``."""
    if os.environ.get("CARDIO_ST_CACHE"):
        return Path(os.environ["CARDIO_ST_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cardio_st"

