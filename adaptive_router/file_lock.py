"""An exclusive lock on a file across threads and processes (the traffic log, built caches).

Built on the `filelock <https://py-filelock.readthedocs.io>`_ library rather than raw ``fcntl``:
``fcntl`` does not exist on Windows (the lock built on it silently excluded nothing there), while
``filelock`` takes the platform's native lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows).

Why :func:`filelock.lock_descriptor` on a descriptor we open, and not a ``FileLock`` object: the
traffic log takes this lock once per request, possibly on the proxy's event loop. Measured here,
``with FileLock(path)`` costs 130-250 µs per acquisition (path handling, lock-file truncation, its
fork tracking), ``lock_descriptor`` ~2 µs, the same as a raw ``flock`` — and it is the very lock
``FileLock`` takes, so both contend with each other. A fresh descriptor per acquisition (closed on
release) also means no lock state crosses a ``fork`` into a proxy worker: a lock held through an
inherited descriptor would be shared with the child and exclude nothing. Where the platform has no
native lock (``ENOSYS``), ``filelock.FileLock`` is used instead: it falls back to an existence lock.

A sidecar lock file rather than the data file itself: the data file may be replaced (log
rotation, an atomic ``os.replace`` of a cache file) while others wait, and a lock on a replaced
file would protect nothing. The lock file is never deleted (that would split waiters across two
inodes). Waiting polls every :data:`POLL_INTERVAL_S`: the traffic log holds the lock for one
append (tens of microseconds), so a short interval costs little and keeps waits short.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout, lock_descriptor, unlock_descriptor

#: How often a waiting process tries the lock again, in seconds.
POLL_INTERVAL_S = 0.001


def _lock_fd(fd: int, path: str, timeout_s: float, poll_interval_s: float) -> None:
    if timeout_s < 0:
        lock_descriptor(fd, poll_interval=poll_interval_s)
        return
    deadline = time.monotonic() + timeout_s
    while not lock_descriptor(fd, blocking=False):
        if time.monotonic() >= deadline:
            raise Timeout(path)
        time.sleep(poll_interval_s)


@contextlib.contextmanager
def exclusive_file_lock(path: str | Path, timeout_s: float = -1,
                        poll_interval_s: float = POLL_INTERVAL_S) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    ``timeout_s`` < 0 waits for as long as it takes; otherwise ``filelock.Timeout`` is raised after
    that many seconds. Not re-entrant: a nested block on the same path waits for the outer one,
    even in the same thread (each block locks through a descriptor of its own).
    """
    name = str(path)
    fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            _lock_fd(fd, name, timeout_s, poll_interval_s)
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise
            os.close(fd)
            fd = -1
            with FileLock(name, timeout=timeout_s, thread_local=False, poll_interval=poll_interval_s):
                yield
            return
        try:
            yield
        finally:
            unlock_descriptor(fd)
    finally:
        if fd >= 0:
            os.close(fd)


__all__ = ["POLL_INTERVAL_S", "exclusive_file_lock"]
