"""Parent side of the PDF worker: a few fork servers, started on first use, shared by threads.

Each ``ForkServer`` is a ``worker.py`` process talking JSON over its stdin/stdout; a request
occupies one server until its answer comes back, so a ``WorkerPool`` keeps up to ``size`` of
them for callers on several threads. A server that stops answering (or dies) is killed and
replaced; the file being parsed gets a clear error and the caller's process carries on.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ...errors import ExtractionFailed
from .wire import PdfRequest, WorkerHeader

__all__ = ["ForkServer", "WorkerLost", "WorkerPool", "default_pool"]

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the loomdb package folder
# The worker imports loomdb.ingest.extract without loomdb/__init__.py, which would load
# numpy and faiss (0.2 s and ~400 MB of address space counted against RLIMIT_AS), none of
# which a PDF parser needs: a bare package module stands in for it.
BOOTSTRAP = (
    "import sys, types\n"
    "package = types.ModuleType('loomdb')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['loomdb'] = package\n"
    "from loomdb.ingest.extract.worker import serve\n"
    "serve()\n"
)
ANSWER_GRACE = 15.0  # seconds beyond the parse timeout for the server's own start and IO


class WorkerLost(ExtractionFailed):
    """The fork server itself stopped answering; it has been killed and will be replaced."""


class ForkServer:
    """One ``worker.py`` process; not thread-safe (the pool hands it to one caller at a time)."""

    def __init__(self) -> None:
        # read back only to explain a death; closed with the server (_close_pipes)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP, str(PACKAGE_ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle
        )
        self._buffer = b""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def request(self, request: PdfRequest, timeout: float) -> tuple[WorkerHeader, bytes]:
        """Send one request; return the header and the child's answer bytes.

        Raises:
            WorkerLost: the server died or gave no answer within ``timeout`` seconds.
        """
        assert self.process.stdin is not None
        deadline = time.monotonic() + timeout
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            header: WorkerHeader = json.loads(self._read_line(deadline))  # worker.py wrote it
            return header, self._read_exact(int(header["size"]), deadline)
        except (OSError, ValueError, KeyError) as exc:
            self.kill()
            raise WorkerLost(
                f"{request['name']}: the PDF worker process failed ({exc}){self._last_words()}"
            ) from exc
        except BaseException:  # KeyboardInterrupt mid-answer: the stream is out of step
            self.kill()
            raise

    def kill(self) -> None:
        """End the server now (its children die with it, see worker.py)."""
        if self.alive:
            self.process.kill()
        self.process.wait()
        self._close_pipes()

    def close(self) -> None:
        """Ask the server to exit by closing its stdin; kill it if it lingers."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_pipes()

    def _last_words(self) -> str:
        """The last line the server wrote to stderr (a traceback's verdict), if any."""
        self._stderr.seek(0)
        lines = self._stderr.read()[-4096:].decode("utf-8", "replace").strip().splitlines()
        return f": {lines[-1]}" if lines else ""

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout, self._stderr):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _fill(self, deadline: float) -> None:
        """Read whatever the server has written, waiting no later than ``deadline``."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise OSError("no answer before the deadline")
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            raise OSError(f"the worker exited (status {self.process.poll()})")
        self._buffer += chunk

    def _read_line(self, deadline: float) -> bytes:
        while b"\n" not in self._buffer:
            self._fill(deadline)
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _read_exact(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._fill(deadline)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


class WorkerPool:
    """Up to ``size`` fork servers, each used by one request at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[ForkServer] = []

    def request(self, request: PdfRequest, timeout: float) -> tuple[WorkerHeader, bytes]:
        """Run one request on an idle server (starting one if needed); see ``ForkServer``."""
        with self._slots:
            server = self._take()
            header, payload = server.request(request, timeout + ANSWER_GRACE)
            with self._lock:
                self._idle.append(server)
            return header, payload

    def close(self) -> None:
        """Stop every idle server (busy ones finish their request first)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for server in idle:
            server.close()

    def _take(self) -> ForkServer:
        with self._lock:
            while self._idle:
                server = self._idle.pop()
                if server.alive:
                    return server
                server.kill()
        return ForkServer()


_default: WorkerPool | None = None
_default_pid = 0
_default_lock = threading.Lock()


def default_pool() -> WorkerPool:
    """The process-wide pool, created on first use and closed at interpreter exit.

    A process forked from one that used the pool gets its own: sharing the parent's pipes
    would interleave two conversations with one server.
    """
    global _default, _default_pid
    with _default_lock:
        if _default is None or _default_pid != os.getpid():
            _default = WorkerPool(size=max(1, min(4, os.cpu_count() or 1)))
            _default_pid = os.getpid()
            atexit.register(_default.close)
        return _default
