"""The on-disk compile cache: compiled programs keyed by a hash of source + compiler + flags.

A second process running the same program finds the artifact here and compiles nothing.
Writes are atomic (temp file + rename), so concurrent processes never see half a file.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable


def cache_dir() -> Path:
    """LAZYTENSOR_CACHE, or ~/.cache/lazytensor."""
    return Path(os.environ.get("LAZYTENSOR_CACHE", Path.home() / ".cache" / "lazytensor"))


def cache_key(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def cached_artifact(kind: str, key: str, suffix: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Path of the artifact for key, building it with build(tmp_path) if absent.

    Returns (path, was_cached)."""
    folder = cache_dir() / kind
    path = folder / f"{key}{suffix}"
    if path.exists():
        return path, True
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=suffix + ".tmp")
    os.close(fd)
    try:
        build(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path, False
