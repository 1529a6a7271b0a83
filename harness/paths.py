"""Where things live on disk: the cache (warm starts, converted models, offline samples)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$RLVR_CACHE_DIR`, else `~/.cache/rlvr-bench`."""
    root = os.environ.get("RLVR_CACHE_DIR") or Path.home() / ".cache" / "rlvr-bench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
