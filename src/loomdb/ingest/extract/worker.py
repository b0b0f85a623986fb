"""The PDF worker: a fork server that parses each file in a fresh, limited child process.

The parent (``pool.py``) starts this module once per worker slot. It imports pypdf and
pdfplumber once (about 0.2 s), then for each request read from stdin forks a child that sets
its own limits (``RLIMIT_AS`` for memory, ``RLIMIT_CPU`` as a backstop to the wall clock, no core
files), parses, writes its answer to a pipe and exits. A fork costs milliseconds, so each file
gets a clean process without paying the imports again, and whatever a hostile file does to its
child (segfault, runaway allocation, endless loop) ends with that child.

Protocol, all on the worker's stdin and stdout: one JSON request per line in; for each, one
JSON header line out (``{"status": "done" | "timeout" | "signal" | "exit", ...}``, with
``size``), followed by ``size`` bytes of the child's JSON answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import resource
import select
import signal
import sys
import time
import warnings
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from .wire import PdfAnswer, PdfRequest, WorkerHeader

__all__ = ["serve"]

READ_CHUNK = 1 << 16
CHILD_FAILED = 70  # exit status of a child that could not even report its error
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def serve(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """Answer requests until stdin closes (the parent exited or shut the worker down)."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    _preload()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the worker ends
    for line in stdin:
        if not line.strip():
            continue
        header, payload = run_request(json.loads(line))
        header["size"] = len(payload)
        stdout.write(json.dumps(header).encode() + b"\n" + payload)
        stdout.flush()


def _preload() -> None:
    """Import the parsers once so every forked child starts with them loaded.

    Not PyMuPDF: its import starts threads (numpy, onnxruntime), and a process with threads
    must not fork; a child that needs it imports it (about 0.6 s), see router.py.
    """
    logging.disable(logging.CRITICAL)  # pypdf and pdfminer log every repaired object
    warnings.simplefilter("ignore")
    with contextlib.suppress(ImportError):  # the parent checked; a child reports it properly
        import pdfplumber  # noqa: F401
        import pypdf  # noqa: F401

        from . import parse  # noqa: F401


def run_request(request: PdfRequest) -> tuple[WorkerHeader, bytes]:
    """Fork a child for one request; wait for its answer or kill it at the deadline."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns from here
        os.close(read_end)
        _child(request, write_end)
    os.close(write_end)
    payload, timed_out = _read_until(read_end, time.monotonic() + float(request["timeout"]))
    os.close(read_end)
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"status": "timeout"}, b""
    if os.WIFSIGNALED(status):
        return {"status": "signal", "signal": os.WTERMSIG(status)}, b""
    code = os.WEXITSTATUS(status)
    if code != 0 or not payload:
        return {"status": "exit", "code": code}, b""
    return {"status": "done"}, payload


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written to ``fd`` until it closes, and whether the deadline came first."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"", True
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, READ_CHUNK)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def _child(request: PdfRequest, out: int) -> None:
    """Set the limits, parse, write the answer and exit; never return to the server loop."""
    status = CHILD_FAILED
    try:
        _detach_stdio()
        _die_with_server()
        _set_limits(float(request["timeout"]), int(request["max_memory"]))
        data = json.dumps(_answer(request), ensure_ascii=False).encode("utf-8", "replace")
        view = memoryview(data)
        while view:
            view = view[os.write(out, view):]
        status = 0
    finally:
        os._exit(status)


def _die_with_server() -> None:
    """Have the kernel kill this child if the server dies first (Linux; elsewhere the CPU
    limit bounds an orphan's life)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _detach_stdio() -> None:
    """Point the child's stdin/stdout/stderr at /dev/null: a parser that prints must not
    corrupt the protocol stream the child inherited."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _set_limits(timeout: float, max_memory: int) -> None:
    """Address space, CPU seconds (a backstop: the server kills at the wall-clock deadline),
    and no core dumps."""
    resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
    cpu = math.ceil(timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _answer(request: PdfRequest) -> PdfAnswer:
    """The parse result, or the error a parent should raise, as JSON-ready data."""
    from ...errors import LoomError
    from .parse import parse_pdf

    name = request["name"]
    try:
        return {"ok": parse_pdf(request)}
    except LoomError as exc:
        return _error(exc.code, exc.message)
    except RecursionError:
        return _error("extraction_failed", f"{name}: nested too deeply to parse")
    except Exception as exc:  # the boundary: any parser failure becomes a clear error
        if _out_of_memory(exc):
            return _error("limit_exceeded", (
                f"{name}: parsing needed more than max_memory={request['max_memory']:,} bytes"))
        return _error("extraction_failed",
                      f"{name}: not a readable PDF ({type(exc).__name__}: {exc})")


def _error(code: str, message: str) -> PdfAnswer:
    return {"error": {"code": code, "message": message}}


def _out_of_memory(exc: BaseException) -> bool:
    """Whether a MemoryError is the exception or in its chain (pdfminer wraps it, zlib
    raises it for an output buffer the address-space limit refuses)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, MemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


if __name__ == "__main__":
    serve()
