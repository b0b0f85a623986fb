"""The PostgreSQL schema as numbered migrations, each applied in one transaction under an
advisory lock (two processes opening a new database at once migrate it once).

As on SQLite, triggers write the change log, so no code path can forget it; here they are
statement-level triggers over transition tables, one log insert per statement however many
rows it touched. Row-level security policies hold every tenant-owned table to the tenant
set for the transaction (see ``connection.py``).
"""

from __future__ import annotations

from typing import Any

import psycopg

from ...errors import CorruptStore

__all__ = ["MIGRATIONS", "TENANT_TABLES", "migrate", "schema_version"]

TENANT_TABLES = ("nodes", "edges", "vectors", "changes", "index_stamps", "jobs")

_TABLES = """
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);

-- props is json, not jsonb: jsonb would reorder keys and respell numbers (1e300 reads back
-- as a 301-digit integer), and a store gives back exactly what was written.
CREATE TABLE nodes (
    nid           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant        text NOT NULL,
    id            text NOT NULL,
    kind          text NOT NULL,
    text          text,
    props         json NOT NULL DEFAULT '{}',
    source        text,
    category      text,
    confidence    double precision,
    strength      double precision,
    access_count  bigint NOT NULL DEFAULT 0,
    created       double precision NOT NULL,
    updated       double precision NOT NULL,
    last_accessed double precision,
    -- a tsvector holds at most 1 MB: the first 250,000 characters always fit
    tsv           tsvector GENERATED ALWAYS AS
                  (to_tsvector('simple', left(coalesce(text, ''), 250000))) STORED,
    UNIQUE (tenant, id)
);
CREATE INDEX nodes_by_kind ON nodes (tenant, kind);
CREATE INDEX nodes_fts ON nodes USING gin (tsv);

CREATE TABLE edges (
    eid        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant     text NOT NULL,
    src        bigint NOT NULL REFERENCES nodes (nid) ON DELETE CASCADE,
    dst        bigint NOT NULL REFERENCES nodes (nid) ON DELETE CASCADE,
    type       text NOT NULL,
    weight     double precision NOT NULL DEFAULT 1.0,
    confidence double precision,
    props      json NOT NULL DEFAULT '{}',
    created    double precision NOT NULL,
    last_used  double precision,
    UNIQUE (src, type, dst)
);
CREATE INDEX edges_by_dst ON edges (dst, type);
CREATE INDEX edges_by_tenant ON edges (tenant, eid);

CREATE TABLE spaces (
    name         text PRIMARY KEY,
    dim          integer NOT NULL,
    model        text NOT NULL,
    metric       text NOT NULL,
    quantization text NOT NULL,
    storage      text NOT NULL
);

-- An identity never goes back, so a label is never reused. vec is float32 (float16 spaces
-- hold values float16 represents exactly); raw keeps the exact bytes of float64 spaces.
-- Each space gets its own partial ANN index (see vectors.py): one table, many dimensions.
CREATE TABLE vectors (
    vid    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    space  text NOT NULL REFERENCES spaces (name),
    nid    bigint NOT NULL REFERENCES nodes (nid) ON DELETE CASCADE,
    tenant text NOT NULL,
    vec    vector NOT NULL,
    raw    bytea,
    UNIQUE (nid, space)
);
CREATE INDEX vectors_by_space ON vectors (space, tenant, vid);

CREATE TABLE changes (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity text NOT NULL,            -- node | edge | vector
    op     text NOT NULL,            -- add | upd | del
    tenant text NOT NULL,
    space  text,
    ref    bigint NOT NULL           -- nid, eid or vid
);
CREATE INDEX changes_by_vector ON changes (tenant, space, seq) WHERE entity = 'vector';

CREATE TABLE index_stamps (
    space  text NOT NULL,
    tenant text NOT NULL,
    seq    bigint NOT NULL,
    PRIMARY KEY (space, tenant)
);

CREATE TABLE jobs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant      text NOT NULL,
    task        text NOT NULL,
    node_id     text NOT NULL,
    payload     json NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'queued',   -- queued | running | failed
    attempts    integer NOT NULL DEFAULT 0,
    run_after   double precision NOT NULL DEFAULT 0,
    lease_until double precision,
    error       text,
    created     double precision NOT NULL,
    updated     double precision NOT NULL
);
CREATE UNIQUE INDEX jobs_pending ON jobs (tenant, task, node_id) WHERE status = 'queued';
CREATE INDEX jobs_claimable ON jobs (status, run_after);
CREATE INDEX jobs_by_node ON jobs (tenant, node_id);

CREATE TABLE job_totals (
    task      text PRIMARY KEY,
    done      bigint NOT NULL DEFAULT 0,
    last_done double precision
);
"""


def _log_function(table: str, entity: str, key: str, space: str) -> str:
    """A statement-level trigger function appending one change per touched row."""
    return f"""
CREATE FUNCTION loomdb_log_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO changes (entity, op, tenant, space, ref)
        SELECT '{entity}', 'del', tenant, {space}, {key} FROM old_rows ORDER BY {key};
    ELSE
        INSERT INTO changes (entity, op, tenant, space, ref)
        SELECT '{entity}', CASE TG_OP WHEN 'INSERT' THEN 'add' ELSE 'upd' END, tenant, {space},
               {key} FROM new_rows ORDER BY {key};
    END IF;
    RETURN NULL;
END $$;
"""


def _log_triggers(table: str, ops: tuple[str, ...]) -> str:
    transition = {"INSERT": "NEW TABLE AS new_rows", "UPDATE": "NEW TABLE AS new_rows",
                  "DELETE": "OLD TABLE AS old_rows"}
    return "".join(
        f"CREATE TRIGGER {table}_log_{op.lower()} AFTER {op} ON {table} "
        f"REFERENCING {transition[op]} FOR EACH STATEMENT EXECUTE FUNCTION loomdb_log_{table}();\n"
        for op in ops
    )


def _policies() -> str:
    """Row-level security: a row is visible and writable only in its tenant's scope, or in
    the all-tenants scope of the backend's cross-tenant operations. FORCE makes it hold for
    the tables' owner too (superusers and BYPASSRLS roles still bypass it)."""
    scope = ("tenant = current_setting('loomdb.tenant', true) "
             "OR current_setting('loomdb.all_tenants', true) = 'on'")
    return "".join(
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n"
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n"
        f"CREATE POLICY tenant_scope ON {table} USING ({scope});\n"
        for table in TENANT_TABLES
    )


_V1 = "".join([
    _TABLES,
    _log_function("nodes", "node", "nid", "NULL"),
    _log_function("edges", "edge", "eid", "NULL"),
    _log_function("vectors", "vector", "vid", "space"),
    _log_triggers("nodes", ("INSERT", "UPDATE", "DELETE")),
    _log_triggers("edges", ("INSERT", "UPDATE", "DELETE")),
    _log_triggers("vectors", ("INSERT", "DELETE")),
    _policies(),
])

MIGRATIONS: tuple[str, ...] = (_V1,)
LOCK_KEY = 0x6C6F6F6D  # "loom": the advisory lock migrations take


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version in force (0 for a database loomdb never touched)."""
    if conn.execute("SELECT to_regclass('meta')").fetchone() == (None,):
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Bring the schema to the newest version on an autocommit connection; returns it."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        version = schema_version(conn)
        if version > len(MIGRATIONS):
            raise CorruptStore(f"database schema v{version} is newer than this loomdb "
                               f"(v{len(MIGRATIONS)}); upgrade loomdb")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.execute(script.encode())
            conn.execute("INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (str(number),))
    return len(MIGRATIONS)
