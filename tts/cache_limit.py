"""The prompt cache's size cap (``tts.cache_max_mb``): least recently used files go first.

A hit refreshes the file's mtime (:func:`touch`), so mtime order is use order; after each new file the cache is
measured and the oldest files are removed until it fits (:func:`evict`). Files used in the last ``min_age_s``
stay even over the cap: another process may be about to play one it was just given. Misses are rare (each costs
a synthesis of seconds), so a scan per miss is cheap next to them."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

MIN_AGE_S = 600.0


def touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def evict(cache_dir: Path, max_bytes: int, keep: Path | None = None, min_age_s: float = MIN_AGE_S) -> int:
    """Remove the least recently used ``??/*.wav`` until the cache holds at most ``max_bytes``; how many went."""
    files: list[tuple[float, int, Path]] = []
    total = 0
    for path in cache_dir.glob("??/*.wav"):
        try:
            st = path.stat()
        except OSError:
            continue
        total += st.st_size
        files.append((st.st_mtime, st.st_size, path))
    if total <= max_bytes:
        return 0
    removed = 0
    now = time.time()
    for mtime, size, path in sorted(files, key=lambda f: f[0]):
        if total <= max_bytes or now - mtime < min_age_s:
            break
        if keep is not None and path == keep:
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
        total -= size
    return removed
