"""loomdb: an embedded hybrid graph + vector database for RAG and agent memory.

    >>> import loomdb
    >>> with loomdb.open(":memory:") as db:
    ...     _ = db.add_node("paris", kind="entity", text="Paris is the capital of France")
    ...     db.get_node("paris").kind
    'entity'
"""

from .cache import ResultCache
from .config import EnrichmentSettings, IndexSettings, StoreSettings, default_store_path
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
from .eval import DEFAULT_STRATEGIES as DEFAULT_EVAL_STRATEGIES
from .eval import STRATEGIES as EVAL_STRATEGIES
from .eval import EvalReport, EvalStrategy, read_golden
from .graph import Subgraph
from .ingest.chunking import ChunkSettings
from .ingest.extract import ExtractLimits
from .ingest.pipeline import IngestResult, expand_sources
from .ingest.watcher import DropFolder
from .interchange import export_legacy, import_legacy
from .interchange.migrate import MigrationReport, migrate, validate_migration
from .memory.memories import Remembered
from .memory.reasoning import ReasoningPath
from .ml import LocalProvider, MiniLMEmbedder, OpenAICompatibleProvider
from .ml.bridge import MLProvider
from .model import Citation, Edge, Hit, JSONObject, JSONValue, Node, NodeRef, Path, VectorSpace
from .query.builder import QueryArguments, QueryBuilder
from .query.personalize import UserPolicy
from .query.plan import Plan, Query
from .query.strategies import strategy_names as query_strategies
from .storage.base import Job
from .weaver.worker import WeaverStatus

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_EVAL_STRATEGIES",
    "EVAL_STRATEGIES",
    "BackendUnavailable",
    "Busy",
    "ChunkSettings",
    "Citation",
    "Conflict",
    "CorruptStore",
    "Database",
    "DimensionMismatch",
    "DropFolder",
    "Edge",
    "EnrichmentSettings",
    "EvalReport",
    "EvalStrategy",
    "ExtractLimits",
    "ExtractionFailed",
    "Hit",
    "IndexSettings",
    "IngestResult",
    "InvalidFilter",
    "InvalidInput",
    "InvalidVector",
    "JSONObject",
    "JSONValue",
    "Job",
    "LimitExceeded",
    "LocalProvider",
    "LoomError",
    "MLProvider",
    "MigrationReport",
    "MiniLMEmbedder",
    "MissingDependency",
    "ModelMismatch",
    "NoTextLayer",
    "Node",
    "NodeRef",
    "NotFound",
    "OpenAICompatibleProvider",
    "PasswordRequired",
    "Path",
    "Plan",
    "ProviderError",
    "Query",
    "QueryArguments",
    "QueryBuilder",
    "ReasoningPath",
    "Remembered",
    "ResultCache",
    "StoreLocked",
    "StoreSettings",
    "Subgraph",
    "UnsupportedFormat",
    "UserPolicy",
    "VectorSpace",
    "WeaverStatus",
    "__version__",
    "default_store_path",
    "expand_sources",
    "export_legacy",
    "import_legacy",
    "migrate",
    "open",
    "query_strategies",
    "read_golden",
    "validate_migration",
]
