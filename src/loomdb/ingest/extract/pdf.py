"""PDF extraction from the caller's side: check, send to a limited worker, translate the answer.

Nothing here parses PDF bytes. The file goes to a fork-server child (``worker.py``) with a
wall-clock timeout, an address-space limit and a page limit; what comes back is either the
pages or a loomdb error code, and a child that died (segfault, killed at the deadline, out of
memory) becomes a ``LimitExceeded`` or ``ExtractionFailed`` naming the file.
"""

from __future__ import annotations

import importlib.util
import json
import signal

from ...errors import (
    ExtractionFailed,
    LimitExceeded,
    LoomError,
    MissingDependency,
    NoTextLayer,
    PasswordRequired,
    UnsupportedFormat,
)
from .base import ExtractedDocument, ExtractLimits, build_document
from .pool import WorkerPool, default_pool
from .wire import PdfAnswer, PdfRequest, WorkerHeader

__all__ = ["extract_pdf", "require_pdf_parser"]

ERRORS: dict[str, type[LoomError]] = {
    cls.code: cls
    for cls in (ExtractionFailed, LimitExceeded, MissingDependency, NoTextLayer,
                PasswordRequired, UnsupportedFormat)
}
EXTRAS = {"pypdf": "pdf", "pdfplumber": "pdf", "pymupdf": "pdf-fast"}


def require_pdf_parser(parser: str, name: str) -> None:
    """Fail before starting a worker when a needed extra is not installed.

    pypdf and pdfplumber are both needed whatever the parser: pypdf opens and counts pages,
    pdfplumber profiles them for the router.
    """
    needed = ["pypdf", "pdfplumber"] + (["pymupdf"] if parser == "pymupdf" else [])
    for module in needed:
        if importlib.util.find_spec(module) is None:
            raise MissingDependency(
                f"{name}: reading PDFs needs {module}; pip install \"loomdb[{EXTRAS[module]}]\"")


def extract_pdf(path: str, name: str, *, password: str | None, parser: str,
                limits: ExtractLimits, pool: WorkerPool | None = None) -> ExtractedDocument:
    """Extract a PDF file in a worker process; ``name`` is what messages and ``source`` show."""
    require_pdf_parser(parser, name)
    request: PdfRequest = {"path": path, "name": name, "password": password, "parser": parser,
                           "max_pages": limits.max_pages, "timeout": limits.timeout,
                           "max_memory": limits.max_memory}
    header, payload = (pool or default_pool()).request(request, limits.timeout)
    answer = _answer(header, payload, name, limits)
    if "error" in answer:
        error = answer["error"]
        raise ERRORS.get(error["code"], ExtractionFailed)(error["message"])
    result = answer["ok"]
    return build_document(name, "application/pdf", result["pages"], parser=result["parser"],
                          title=result["title"], metadata=result["metadata"],
                          warnings=result["warnings"])


def _answer(header: WorkerHeader, payload: bytes, name: str,
            limits: ExtractLimits) -> PdfAnswer:
    """The child's answer, or the error its way of dying means."""
    status = header.get("status")
    if status == "done":
        answer: PdfAnswer = json.loads(payload)  # the child's parse_pdf answer
        return answer
    if status == "timeout":
        raise LimitExceeded(f"{name}: parsing took longer than timeout={limits.timeout:g} s")
    if status == "signal":
        number = int(header.get("signal", 0))
        if number == signal.SIGXCPU:
            raise LimitExceeded(f"{name}: parsing used more CPU time than timeout allows")
        raise ExtractionFailed(
            f"{name}: the PDF parser crashed ({_signal_name(number)}); the file is probably "
            "malformed or hostile")
    raise ExtractionFailed(
        f"{name}: the PDF parser exited without an answer (status {header.get('code')}); it "
        f"may have run out of memory (max_memory={limits.max_memory:,} bytes)")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
