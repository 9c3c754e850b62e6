"""One owner per embedded state file: an exclusive advisory lock on ``<state file>.lock``.

The lock is ``flock``-based, so the kernel drops it when the owner closes it or dies:
a crash never leaves a stale lock behind. Other processes (a second ``--workers``
process, ``model-manager stats`` or ``warm-start`` while a proxy runs) may read the
state file but must not write it, or the last writer would silently win.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class StateLock:
    """The lock of one state file; ``acquire`` once, ``release`` when done."""

    __slots__ = ("_fd", "path")

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(state_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Whether this process owns the state file now: False when another process holds
        the lock. When the lock file cannot be created (e.g. a read-only directory) there
        is nothing to coordinate on, and the answer is True (saving will report its error)."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the state file up (closing the descriptor drops the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
