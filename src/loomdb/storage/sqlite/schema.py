"""The SQLite schema as numbered migrations, applied in order inside one transaction each.

The change log (``changes``) is written by triggers, so no code path can forget it: every
insert, update and delete of a node, edge or vector gets the next ``seq``.
"""

from __future__ import annotations

import sqlite3

from ...errors import CorruptStore

__all__ = ["MIGRATIONS", "TEXT_TOTALS_VERSION", "migrate"]

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE nodes (
    nid           INTEGER PRIMARY KEY,
    tenant        TEXT NOT NULL,
    id            TEXT NOT NULL,
    kind          TEXT NOT NULL,
    text          TEXT,
    props         TEXT NOT NULL DEFAULT '{}',
    source        TEXT,
    category      TEXT,
    confidence    REAL,
    strength      REAL,
    access_count  INTEGER NOT NULL DEFAULT 0,
    created       REAL NOT NULL,
    updated       REAL NOT NULL,
    last_accessed REAL,
    UNIQUE (tenant, id)
);
CREATE INDEX nodes_by_kind ON nodes (tenant, kind);

CREATE TABLE edges (
    eid        INTEGER PRIMARY KEY,
    tenant     TEXT NOT NULL,
    src        INTEGER NOT NULL REFERENCES nodes (nid) ON DELETE CASCADE,
    dst        INTEGER NOT NULL REFERENCES nodes (nid) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    weight     REAL NOT NULL DEFAULT 1.0,
    confidence REAL,
    props      TEXT NOT NULL DEFAULT '{}',
    created    REAL NOT NULL,
    last_used  REAL,
    UNIQUE (src, type, dst)
);
CREATE INDEX edges_by_dst ON edges (dst, type);

CREATE TABLE spaces (
    name         TEXT PRIMARY KEY,
    dim          INTEGER NOT NULL,
    model        TEXT NOT NULL,
    metric       TEXT NOT NULL,
    quantization TEXT NOT NULL,
    storage      TEXT NOT NULL
);

-- AUTOINCREMENT: a label is never reused, so a stale index entry can never alias a new vector.
CREATE TABLE vectors (
    vid    INTEGER PRIMARY KEY AUTOINCREMENT,
    space  TEXT NOT NULL REFERENCES spaces (name),
    nid    INTEGER NOT NULL REFERENCES nodes (nid) ON DELETE CASCADE,
    tenant TEXT NOT NULL,
    vec    BLOB NOT NULL,
    UNIQUE (nid, space)
);
-- covering: label scans and filter joins never read the vector blobs
CREATE INDEX vectors_by_space ON vectors (space, tenant, nid);

CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL,            -- node | edge | vector
    op     TEXT NOT NULL,            -- add | upd | del
    tenant TEXT NOT NULL,
    space  TEXT,
    ref    INTEGER NOT NULL          -- nid, eid or vid
);

CREATE TABLE index_stamps (
    space  TEXT NOT NULL,
    tenant TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (space, tenant)
);

CREATE TRIGGER nodes_log_add AFTER INSERT ON nodes BEGIN
    INSERT INTO changes (entity, op, tenant, ref) VALUES ('node', 'add', new.tenant, new.nid);
END;
CREATE TRIGGER nodes_log_upd AFTER UPDATE ON nodes BEGIN
    INSERT INTO changes (entity, op, tenant, ref) VALUES ('node', 'upd', new.tenant, new.nid);
END;
CREATE TRIGGER nodes_log_del AFTER DELETE ON nodes BEGIN
    INSERT INTO changes (entity, op, tenant, ref) VALUES ('node', 'del', old.tenant, old.nid);
END;
CREATE TRIGGER edges_log_add AFTER INSERT ON edges BEGIN
    INSERT INTO changes (entity, op, tenant, ref) VALUES ('edge', 'add', new.tenant, new.eid);
END;
CREATE TRIGGER edges_log_upd AFTER UPDATE ON edges BEGIN
    INSERT INTO changes (entity, op, tenant, ref) VALUES ('edge', 'upd', new.tenant, new.eid);
END;
CREATE TRIGGER edges_log_del AFTER DELETE ON edges BEGIN
    INSERT INTO changes (entity, op, tenant, ref) VALUES ('edge', 'del', old.tenant, old.eid);
END;
CREATE TRIGGER vectors_log_add AFTER INSERT ON vectors BEGIN
    INSERT INTO changes (entity, op, tenant, space, ref)
    VALUES ('vector', 'add', new.tenant, new.space, new.vid);
END;
CREATE TRIGGER vectors_log_del AFTER DELETE ON vectors BEGIN
    INSERT INTO changes (entity, op, tenant, space, ref)
    VALUES ('vector', 'del', old.tenant, old.space, old.vid);
END;

CREATE VIRTUAL TABLE nodes_fts USING fts5 (
    text, content = 'nodes', content_rowid = 'nid', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER nodes_fts_add AFTER INSERT ON nodes WHEN new.text IS NOT NULL BEGIN
    INSERT INTO nodes_fts (rowid, text) VALUES (new.nid, new.text);
END;
CREATE TRIGGER nodes_fts_del AFTER DELETE ON nodes WHEN old.text IS NOT NULL BEGIN
    INSERT INTO nodes_fts (nodes_fts, rowid, text) VALUES ('delete', old.nid, old.text);
END;
CREATE TRIGGER nodes_fts_upd AFTER UPDATE OF text ON nodes BEGIN
    INSERT INTO nodes_fts (nodes_fts, rowid, text)
        SELECT 'delete', old.nid, old.text WHERE old.text IS NOT NULL;
    INSERT INTO nodes_fts (rowid, text) SELECT new.nid, new.text WHERE new.text IS NOT NULL;
END;
"""

# The weaver's durable queue. At most one *queued* job per (tenant, task, node): re-enqueueing
# replaces it, while a running job keeps its row so the new one runs after it.
_V2 = """
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT NOT NULL,
    task        TEXT NOT NULL,
    node_id     TEXT NOT NULL,
    payload     TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL DEFAULT 'queued',   -- queued | running | failed
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_after   REAL NOT NULL DEFAULT 0,
    lease_until REAL,
    error       TEXT,
    created     REAL NOT NULL,
    updated     REAL NOT NULL
);
CREATE UNIQUE INDEX jobs_pending ON jobs (tenant, task, node_id) WHERE status = 'queued';
CREATE INDEX jobs_claimable ON jobs (status, run_after);
CREATE INDEX jobs_by_node ON jobs (tenant, node_id);

CREATE TABLE job_totals (
    task      TEXT PRIMARY KEY,
    done      INTEGER NOT NULL DEFAULT 0,
    last_done REAL
);
"""

# Document frequencies of the full-text terms, read to leave the commonest out of queries
# (storage/sqlite/fts.py). A view of the FTS index: it holds no data of its own.
_V3 = """
CREATE VIRTUAL TABLE nodes_fts_vocab USING fts5vocab (nodes_fts, 'row');
"""



def _token_count(blob: str) -> str:
    """SQL for the first varint of an FTS5 ``docsize`` blob (a text's length in tokens), read
    byte by byte through ``hex()``: SQLite has no byte accessor. Up to 2^28 tokens."""
    digits = "'0123456789ABCDEF'"

    def byte(i: int) -> str:
        return (f"((instr({digits}, substr(hex({blob}), {2 * i + 1}, 1)) - 1) * 16 + "
                f"instr({digits}, substr(hex({blob}), {2 * i + 2}, 1)) - 1)")

    value, cases = byte(0), [f"WHEN {byte(0)} < 128 THEN {byte(0)}"]
    for i in range(1, 4):
        value = f"({value} - 128) * 128 + {byte(i)}"
        cases.append(f"WHEN {byte(i)} < 128 THEN {value}" if i < 3 else f"ELSE {value}")
    return f"(CASE {' '.join(cases)} END)"


# Full-text statistics per tenant (storage/sqlite/text.py): BM25 is computed for each tenant
# over its own documents, so one tenant's texts never change another's scores or hits. The
# totals (documents, tokens) are kept by the FTS triggers, the lengths read from FTS5's own
# docsize records; ``nodes_fts_instance`` lists (term, document, offset) for term frequencies.
_LENGTH = _token_count("sz")
_V4 = f"""
CREATE TABLE text_totals (
    tenant    TEXT PRIMARY KEY,
    documents INTEGER NOT NULL,
    tokens    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO text_totals (tenant, documents, tokens)
    SELECT n.tenant, count(*), coalesce(sum({_LENGTH}), 0)
    FROM nodes_fts_docsize d JOIN nodes n ON n.nid = d.id GROUP BY n.tenant;

CREATE VIRTUAL TABLE nodes_fts_instance USING fts5vocab (nodes_fts, 'instance');

DROP TRIGGER nodes_fts_add;
DROP TRIGGER nodes_fts_del;
DROP TRIGGER nodes_fts_upd;
CREATE TRIGGER nodes_fts_add AFTER INSERT ON nodes WHEN new.text IS NOT NULL BEGIN
    INSERT INTO nodes_fts (rowid, text) VALUES (new.nid, new.text);
    INSERT INTO text_totals (tenant, documents, tokens)
        SELECT new.tenant, 1, {_LENGTH} FROM nodes_fts_docsize WHERE id = new.nid
        ON CONFLICT (tenant) DO UPDATE SET documents = documents + 1,
                                           tokens = tokens + excluded.tokens;
END;
CREATE TRIGGER nodes_fts_del AFTER DELETE ON nodes WHEN old.text IS NOT NULL BEGIN
    UPDATE text_totals SET documents = documents - 1, tokens = tokens -
        (SELECT {_LENGTH} FROM nodes_fts_docsize WHERE id = old.nid) WHERE tenant = old.tenant;
    INSERT INTO nodes_fts (nodes_fts, rowid, text) VALUES ('delete', old.nid, old.text);
END;
CREATE TRIGGER nodes_fts_upd AFTER UPDATE OF text ON nodes BEGIN
    UPDATE text_totals SET documents = documents - 1, tokens = tokens -
        (SELECT {_LENGTH} FROM nodes_fts_docsize WHERE id = old.nid)
        WHERE tenant = old.tenant AND old.text IS NOT NULL;
    INSERT INTO nodes_fts (nodes_fts, rowid, text)
        SELECT 'delete', old.nid, old.text WHERE old.text IS NOT NULL;
    INSERT INTO nodes_fts (rowid, text) SELECT new.nid, new.text WHERE new.text IS NOT NULL;
    INSERT INTO text_totals (tenant, documents, tokens)
        SELECT new.tenant, 1, {_LENGTH} FROM nodes_fts_docsize
        WHERE id = new.nid AND new.text IS NOT NULL
        ON CONFLICT (tenant) DO UPDATE SET documents = documents + 1,
                                           tokens = tokens + excluded.tokens;
END;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)
TEXT_TOTALS_VERSION = 4  # the first schema with per-tenant text statistics


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the newest version; returns the version now in force."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise CorruptStore(f"store schema v{version} is newer than this loomdb "
                           f"(v{len(MIGRATIONS)}); upgrade loomdb")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # a half-applied migration never sticks
            raise
    return len(MIGRATIONS)
