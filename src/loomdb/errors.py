"""The loomdb exception tree.

Every error a user can see is a ``LoomError``. Each class carries a stable ``code`` (for
clients and logs) and an HTTP ``status`` (so the server and its clients agree)::

    LoomError                       loom_error          500
    ├── InvalidInput                invalid_input       400
    │   ├── InvalidFilter           invalid_filter      400
    │   ├── DimensionMismatch       dimension_mismatch  400
    │   ├── ModelMismatch           model_mismatch      400
    │   ├── InvalidVector           invalid_vector      400
    │   └── ExtractionFailed        extraction_failed   422
    │       ├── UnsupportedFormat   unsupported_format  415
    │       ├── NoTextLayer         no_text_layer       422
    │       ├── PasswordRequired    password_required   422
    │       └── LimitExceeded       limit_exceeded      413
    ├── NotFound                    not_found           404
    ├── Conflict                    conflict            409
    ├── StoreLocked                 store_locked        423
    ├── Busy                        busy                503
    ├── BackendUnavailable          backend_unavailable 503
    ├── ProviderError               provider_error      502
    ├── MissingDependency           missing_dependency  500
    └── CorruptStore                corrupt_store       500

Driver errors (sqlite3, faiss, ...) are translated at the boundary with ``raise ... from exc``
and never reach users untranslated.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "Busy",
    "Conflict",
    "CorruptStore",
    "DimensionMismatch",
    "ExtractionFailed",
    "InvalidFilter",
    "InvalidInput",
    "InvalidVector",
    "LimitExceeded",
    "LoomError",
    "MissingDependency",
    "ModelMismatch",
    "NoTextLayer",
    "NotFound",
    "PasswordRequired",
    "ProviderError",
    "StoreLocked",
    "UnsupportedFormat",
]


class LoomError(Exception):
    """Root of every error loomdb raises on purpose."""

    code = "loom_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str | int]:
        """The error as the server sends it: ``{"code", "message", "status"}``."""
        return {"code": self.code, "message": self.message, "status": self.status}


class InvalidInput(LoomError):
    """The caller passed something loomdb cannot accept (bad id, bad limit, bad type...)."""

    code = "invalid_input"
    status = 400


class InvalidFilter(InvalidInput):
    """A metadata filter is malformed or names a key outside the allowlist."""

    code = "invalid_filter"


class DimensionMismatch(InvalidInput):
    """A vector's dimension (or model) differs from its vector space's."""

    code = "dimension_mismatch"


class ModelMismatch(InvalidInput):
    """A vector was made by another model than its vector space's."""

    code = "model_mismatch"


class InvalidVector(InvalidInput):
    """A vector holds NaN or infinity, or cannot be read as numbers."""

    code = "invalid_vector"


class ExtractionFailed(InvalidInput):
    """A file could not be read as a document: malformed, truncated or hostile."""

    code = "extraction_failed"
    status = 422


class UnsupportedFormat(ExtractionFailed):
    """The file is not a format loomdb can extract (PDF, text, Markdown, HTML)."""

    code = "unsupported_format"
    status = 415


class NoTextLayer(ExtractionFailed):
    """A PDF holds only images of text (a scan) and no OCR is available."""

    code = "no_text_layer"


class PasswordRequired(ExtractionFailed):
    """A PDF is encrypted and no password, or a wrong one, was given."""

    code = "password_required"


class LimitExceeded(ExtractionFailed):
    """Input exceeded a configured limit: file size, pages, parse time or memory."""

    code = "limit_exceeded"
    status = 413


class NotFound(LoomError):
    """A node, edge, vector space or path does not exist (in this tenant)."""

    code = "not_found"
    status = 404


class Conflict(LoomError):
    """The write collides with existing data, e.g. adding an id that exists."""

    code = "conflict"
    status = 409


class StoreLocked(LoomError):
    """Another process holds the store open for writing."""

    code = "store_locked"
    status = 423


class Busy(LoomError):
    """The store stayed locked past the timeout; retrying later may succeed."""

    code = "busy"
    status = 503


class BackendUnavailable(LoomError):
    """The storage backend cannot be reached or has failed."""

    code = "backend_unavailable"
    status = 503


class ProviderError(LoomError):
    """A remote ML provider answered with an error or with something loomdb cannot use."""

    code = "provider_error"
    status = 502


class MissingDependency(LoomError):
    """An optional extra is not installed; the message names the pip command."""

    code = "missing_dependency"
    status = 500


class CorruptStore(LoomError):
    """On-disk data failed an integrity check."""

    code = "corrupt_store"
    status = 500
