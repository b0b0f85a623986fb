"""The public API is exactly what ``loomdb.__all__`` says; changing it is a decision."""

import loomdb

EXPECTED = {
    "BackendUnavailable", "Busy", "Citation", "Conflict", "CorruptStore", "Database",
    "DimensionMismatch", "Edge", "ExtractionFailed", "LimitExceeded", "NoTextLayer",
    "PasswordRequired", "ProviderError", "UnsupportedFormat", "Hit", "IndexSettings",
    "InvalidFilter", "InvalidInput",
    "InvalidVector", "LoomError", "MissingDependency", "ModelMismatch", "Node", "NotFound",
    "Path", "StoreLocked", "StoreSettings", "Subgraph", "VectorSpace", "__version__", "open",
    # queries
    "Query", "QueryArguments", "Plan", "QueryBuilder", "query_strategies", "ReasoningPath",
    "UserPolicy", "ResultCache", "NodeRef", "JSONObject", "JSONValue",
    # ingestion, enrichment, memory
    "ChunkSettings", "ExtractLimits", "IngestResult", "expand_sources", "DropFolder",
    "EnrichmentSettings", "WeaverStatus", "Job", "Remembered",
    # ML providers
    "MLProvider", "LocalProvider", "OpenAICompatibleProvider", "MiniLMEmbedder",
    # evaluation
    "read_golden", "EvalReport", "EvalStrategy", "EVAL_STRATEGIES", "DEFAULT_EVAL_STRATEGIES",
    # moving data
    "migrate", "validate_migration", "MigrationReport", "import_legacy", "export_legacy",
    "default_store_path",
}


def test_exported_names_are_locked() -> None:
    assert set(loomdb.__all__) == EXPECTED
    for name in loomdb.__all__:
        assert hasattr(loomdb, name), name


def test_every_error_has_a_stable_code_and_status() -> None:
    errors = [getattr(loomdb, n) for n in loomdb.__all__
              if isinstance(getattr(loomdb, n), type) and issubclass(getattr(loomdb, n),
                                                                     loomdb.LoomError)]
    codes = [e.code for e in errors]
    assert len(codes) == len(set(codes)) == 19
    assert all(400 <= e.status < 600 for e in errors)
    assert loomdb.NotFound("x").to_dict() == {"code": "not_found", "message": "x", "status": 404}
