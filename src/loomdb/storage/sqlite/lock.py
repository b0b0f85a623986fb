"""The store's writer lock: one process may open a store for writing at a time."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from ...errors import StoreLocked

__all__ = ["WriterLock"]


class WriterLock:
    """An exclusive ``flock`` on ``<store>/LOCK`` holding who owns it, released on close.

    The kernel drops the lock when the holder dies, so a crashed writer never blocks the next.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreLocked(f"cannot open lock file {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StoreLocked(
                f"store {path.parent} is open for writing by {holder}; close it there first, "
                "or open the store read-only to read it meanwhile"
            ) from None
        self._fd: int | None = fd
        _write_holder(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "program": " ".join(sys.argv)[:200],
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on {info['host']} ({info['program']!r}, since {info['since']})"
    except (ValueError, KeyError, OSError):
        return "another process"
