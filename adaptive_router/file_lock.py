"""An exclusive advisory lock on a file across threads and processes (the traffic log, caches).

A sidecar lock file rather than the data file itself: the data file may be replaced (log
rotation, an atomic ``os.replace`` of a cache file) while others wait, and a lock on a replaced
file would protect nothing. On platforms without ``fcntl`` the lock is a no-op and callers keep
their in-process locks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - not on the supported platforms
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def exclusive_file_lock(path: str | Path) -> Iterator[None]:
    """Hold ``flock(LOCK_EX)`` on ``path`` (created if missing) for the ``with`` block."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
