"""Opening a source file: regular files only, their size checked before a byte is read.

A device (``/dev/zero``, ``/dev/urandom``), a FIFO or a socket has no end, or blocks until a
writer comes, whatever its name says; reading one "to hash it first" never returns. So a path
is ``stat``-ed (following symlinks: a link to a device is a device) and refused unless it is a
regular file within ``max_bytes``; then it is opened without blocking and checked again on the
open descriptor, in case it was swapped in between, and read in bounded blocks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from ...errors import InvalidInput, LimitExceeded, NotFound, UnsupportedFormat
from .base import ExtractLimits

__all__ = ["check_chars", "check_size", "file_hash", "open_source", "stat_source"]

BLOCK = 1 << 20
_KINDS = ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
          (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"))


def stat_source(name: str, limits: ExtractLimits) -> os.stat_result:
    """The file's status, once it is known to be a regular file within ``max_bytes``.

    Raises:
        NotFound: no such file.
        InvalidInput: a directory, or the path cannot be looked at.
        UnsupportedFormat: a device, FIFO or socket (code ``unsupported_format``).
        LimitExceeded: larger than ``limits.max_bytes``.
    """
    try:
        status = os.stat(name)
    except FileNotFoundError as exc:
        raise NotFound(f"{name}: no such file") from exc
    except OSError as exc:
        raise InvalidInput(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    _check_status(name, status, limits)
    return status


@contextlib.contextmanager
def open_source(name: str, limits: ExtractLimits) -> Iterator[BinaryIO]:
    """The file open for reading, checked by ``stat_source`` before and after opening.

    ``O_NONBLOCK`` keeps the open itself from waiting on a FIFO that appeared after the
    ``stat``; the checks on the open descriptor then refuse it.
    """
    stat_source(name, limits)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError as exc:
        raise NotFound(f"{name}: no such file") from exc
    except PermissionError as exc:
        raise InvalidInput(f"{name}: permission denied") from exc
    except OSError as exc:
        raise InvalidInput(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    with os.fdopen(fd, "rb") as handle:
        _check_status(name, os.fstat(fd), limits)
        yield handle


def file_hash(name: str, limits: ExtractLimits) -> str:
    """SHA-256 of the file's bytes, read in blocks; ``LimitExceeded`` if it grows past
    ``max_bytes`` while being read."""
    digest, size = hashlib.sha256(), 0
    with open_source(name, limits) as handle:
        try:
            while block := handle.read(BLOCK):
                size += len(block)
                check_size(name, size, limits)
                digest.update(block)
        except OSError as exc:
            raise InvalidInput(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def check_size(name: str, size: int, limits: ExtractLimits) -> None:
    if size > limits.max_bytes:
        raise LimitExceeded(f"{name}: {size:,} bytes exceeds max_bytes={limits.max_bytes:,}")


def check_chars(name: str, chars: int, limits: ExtractLimits) -> None:
    if chars > limits.max_chars:
        raise LimitExceeded(
            f"{name}: {chars:,} characters of text exceeds max_chars={limits.max_chars:,}")


def _check_status(name: str, status: os.stat_result, limits: ExtractLimits) -> None:
    mode = status.st_mode
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"{name}: is a directory; extract reads one file at a time")
    if not stat.S_ISREG(mode):
        kind = next((label for test, label in _KINDS if test(mode)), "special file")
        raise UnsupportedFormat(
            f"{name}: is a {kind}, not a regular file; loomdb reads regular files only")
    check_size(name, status.st_size, limits)
