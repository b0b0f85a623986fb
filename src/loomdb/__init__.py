"""loomdb: an embedded hybrid graph + vector database for RAG and agent memory.

    >>> import loomdb
    >>> with loomdb.open(":memory:") as db:
    ...     _ = db.add_node("paris", kind="entity", text="Paris is the capital of France")
    ...     db.get_node("paris").kind
    'entity'
"""

from .config import IndexSettings, StoreSettings
from .database import Database, open  # noqa: A004 - loomdb.open, like sqlite3.connect
from .errors import (
    BackendUnavailable,
    Busy,
    Conflict,
    CorruptStore,
    DimensionMismatch,
    ExtractionFailed,
    InvalidFilter,
    InvalidInput,
    InvalidVector,
    LimitExceeded,
    LoomError,
    MissingDependency,
    ModelMismatch,
    NoTextLayer,
    NotFound,
    PasswordRequired,
    ProviderError,
    StoreLocked,
    UnsupportedFormat,
)
from .graph import Subgraph
from .model import Citation, Edge, Hit, Node, Path, VectorSpace

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "Busy",
    "Citation",
    "Conflict",
    "CorruptStore",
    "Database",
    "DimensionMismatch",
    "Edge",
    "ExtractionFailed",
    "Hit",
    "IndexSettings",
    "InvalidFilter",
    "InvalidInput",
    "InvalidVector",
    "LimitExceeded",
    "LoomError",
    "MissingDependency",
    "ModelMismatch",
    "NoTextLayer",
    "Node",
    "NotFound",
    "PasswordRequired",
    "Path",
    "ProviderError",
    "StoreLocked",
    "StoreSettings",
    "Subgraph",
    "UnsupportedFormat",
    "VectorSpace",
    "__version__",
    "open",
]
