"""loomdb.interchange.migrate: verified copies between SQLite, PostgreSQL and legacy JSON.

Every direction with data of every kind; resuming after SIGKILL (between batches and inside
one); dry runs; failures that leave the destination as it was; validation that catches a
tampered destination; specs that cannot work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import loomdb
from loomdb.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from loomdb.interchange import export_legacy, import_legacy
from loomdb.interchange.migrate import MigrationReport, migrate, validate_migration
from loomdb.interchange.migrate.checkpoint import read_checkpoint
from loomdb.storage.base import JobSpec
from tests import pg_server

DIM = 8
SPACES = (  # name, dim, metric, quantization, storage: every quantization, every dtype
    ("text", DIM, "cosine", "f32", "float32"),
    ("half", DIM, "ip", "f16", "float16"),
    ("exact", DIM, "l2", "i8", "float64"),
    ("bits", 16, "cosine", "b1", "float32"),
)
WORDS = ("river", "stone", "café", "naïve", "forest", "lamp", "orbit", "velvet", "harbor")
ROOT = Path(__file__).resolve().parents[2]


def open_db(where: str | Path) -> loomdb.Database:
    return loomdb.open(where, ml=None, weaver=False, cache=None)


def node(i: int, tenant: str) -> dict[str, object]:
    """A node with every column set, unicode in ids, text and props, nested props."""
    rng = np.random.default_rng(i)
    words = " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), 6))
    return {"id": f"nœud-{tenant}-{i}" if i % 3 else f"日本-{i}",
            "kind": ("chunk", "entity")[i % 2],
            "text": None if i % 7 == 6 else f"{words} number{i}",
            "props": {"i": i, "ü": "ß✓", "nested": {"list": [1, 2.5, {"deep": None}], "t": True},
                      "big": 1e300, "neg": -0.125},
            "source": f"src{i % 4}", "category": "cat" if i % 2 else None,
            "confidence": 0.5 + i / 100, "strength": float(i), "access_count": i * 3,
            "created": 1_700_000_000.25 + i, "last_accessed": 1_700_000_500.5 + i}


def fill(db: loomdb.Database, n: int = 24, tenants: tuple[str, ...] = ("default", "t2"),
         spaces: tuple[tuple[str, int, str, str, str], ...] = SPACES) -> None:
    """Nodes, edges (with props) and vectors in every space, in every tenant; jobs."""
    for name, dim, metric, quantization, storage in spaces:
        db.create_space(name, dim, model="m", metric=metric,  # type: ignore[arg-type]
                        quantization=quantization, storage=storage)  # type: ignore[arg-type]
    rng = np.random.default_rng(7)
    for tenant in tenants:
        t = db.tenant(tenant)
        nodes = [node(i, tenant) for i in range(n)]
        t.add_nodes(nodes)
        ids = [str(x["id"]) for x in nodes]
        t.add_edges([{"src": ids[i], "dst": ids[(i * 5 + 1) % n],
                      "type": ("next", "mentions")[i % 2],
                      "weight": float(i % 5), "confidence": 0.25, "props": {"why": ["é", i]},
                      "created": 1_700_000_000.0 + i, "last_used": 1_700_000_100.0 + i}
                     for i in range(n)])
        for name, dim, *_ in spaces:
            with_vectors = ids[: n - 2]  # two nodes without
            t.set_vectors(with_vectors, rng.normal(size=(len(with_vectors), dim)), space=name)
    db.backend.enqueue_jobs("default", [JobSpec("embed", "日本-0", {"why": "test"})])
    db.backend.enqueue_jobs("t2", [JobSpec("entities", "日本-3")], run_after=5.0)


def legacy_friendly(db: loomdb.Database, n: int = 20) -> None:
    """What a legacy directory can hold: one tenant, one space, one edge per pair."""
    fill(db, n, tenants=("default",), spaces=(("text", DIM, "cosine", "f32", "float64"),))


def assert_same_store(src: str | Path, dst: str | Path) -> None:
    """Every node, edge and vector of ``dst`` equals ``src``'s, read through the facade."""
    with open_db(src) as a, open_db(dst) as b:
        assert a.spaces() == b.spaces()
        for tenant in a.backend.tenants():
            x, y = a.tenant(tenant), b.tenant(tenant)
            assert x.list_nodes(limit=1000) == y.list_nodes(limit=1000)
            assert x.get_edges() == y.get_edges()
            ids = [n.id for n in x.list_nodes(limit=1000)]
            for space in a.spaces():
                mine = x.get_vectors(ids, space=space.name)
                theirs = y.get_vectors(ids, space=space.name)
                assert mine.keys() == theirs.keys()
                for key, vector in mine.items():
                    assert theirs[key].dtype == vector.dtype
                    assert np.array_equal(theirs[key], vector)


def checks(report: MigrationReport) -> dict[str, bool]:
    return {check.name: check.ok for check in report.checks}


@pytest.fixture
def sqlite_source(tmp_path: Path) -> Path:
    path = tmp_path / "source"
    with open_db(path) as db:
        fill(db)
    return path


# -- every direction --------------------------------------------------------------------------


def test_sqlite_to_postgres_copies_everything(sqlite_source: Path, postgres_url: str,
                                              tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    report = migrate(sqlite_source, postgres_url, batch=7, report=report_path)
    assert report.ok, report.to_dict()
    assert set(checks(report)) == {"spaces", "counts", "nodes", "edges", "vectors",
                                   "vector_search", "text_search", "neighbors", "jobs"}
    assert report.copied == {"nodes": 48, "edges": 48, "vectors": 4 * 2 * 22}
    assert report.jobs_queued == 2 and not report.rolled_back
    saved = json.loads(report_path.read_text())
    assert saved["ok"] and saved["source_counts"]["totals"]["nodes"] == 48
    assert saved["checks"][-1]["name"] == "jobs"
    text = next(c for c in saved["checks"] if c["name"] == "text_search")
    assert text["compare"] == "match sets (Jaccard)" and text["mean_overlap"] >= 0.9
    assert_same_store(sqlite_source, postgres_url)
    with open_db(postgres_url) as db:
        jobs = {(j.tenant, j.task, j.node_id, j.run_after) for j in db.backend.list_jobs(None)}
        assert jobs == {("default", "embed", "日本-0", 0.0), ("t2", "entities", "日本-3", 5.0)}
        assert read_checkpoint(db.backend).phase == "done"  # type: ignore[union-attr]


def test_postgres_to_sqlite_builds_the_indexes(postgres_url: str, tmp_path: Path) -> None:
    with open_db(postgres_url) as db:
        fill(db)
    target = tmp_path / "copy"
    stages: set[str] = set()
    report = migrate(postgres_url, target, batch=10,
                     progress=lambda stage, done, total: stages.add(stage))
    assert report.ok, report.to_dict()
    assert stages == {"copy", "validate", "index"}
    assert_same_store(postgres_url, target)
    assert (target / "index" / "text" / "t2").is_dir()
    with open_db(target) as db:
        query = db.get_vector("日本-0", space="text")
        assert db.vector_search(query, k=1, space="text")[0].id == "日本-0"


def test_sqlite_to_sqlite_into_an_existing_empty_store(sqlite_source: Path,
                                                       tmp_path: Path) -> None:
    target = tmp_path / "empty"
    open_db(target).close()
    report = migrate(sqlite_source, f"sqlite:{target}")
    assert report.ok and checks(report)["text_search"]
    assert_same_store(sqlite_source, target)


def test_json_to_sqlite_and_postgres(tmp_path: Path, postgres_url: str) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    concepts = {"a": {"id": "a", "content": "first river"},  # no created: stamped by mtime
                "b": {"id": "b", "content": "second stone", "created": "2024-01-02T03:04:05",
                      "strength": 1, "extra": {"kept": [1, 2]}},
                "c": {"id": "c", "content": "third"}}
    associations = {"a:b": {"source_id": "a", "target_id": "b", "assoc_type": 2, "weight": 0.5},
                    "b:c": {"source_id": "b", "target_id": "c", "assoc_type": "causal"}}
    embeddings = {"provider": "toy", "embeddings": {"a": [1, 0.5, 0], "b": [0.25, 1.0, 2]}}
    for name, document in (("concepts", concepts), ("associations", associations),
                           ("embeddings", embeddings)):
        (legacy / f"{name}.json").write_text(json.dumps(document, indent=2))
    files = {p.name: p.read_bytes() for p in legacy.iterdir()}
    for dst in (tmp_path / "from-json", postgres_url):
        report = migrate(legacy, dst)
        assert report.ok, report.to_dict()
        assert report.copied == {"nodes": 3, "edges": 2, "vectors": 2}
        with open_db(dst) as db:
            assert db.space("text").storage == "float64" and db.space("text").model == "toy"
            assert db.get_node("a").created == (legacy / "concepts.json").stat().st_mtime
            assert db.get_node("b").props["_legacy"]["raw"]["extra"] == {"kept": [1, 2]}
            assert db.get_vector("b").tolist() == [0.25, 1.0, 2.0]
    assert {p.name: p.read_bytes() for p in legacy.iterdir()} == files  # only read
    with open_db(postgres_url) as db:
        export_legacy(db, tmp_path / "again")
    for name in ("concepts", "associations", "embeddings"):
        assert (tmp_path / "again" / f"{name}.json").read_text() == \
            (legacy / f"{name}.json").read_text()


def test_sqlite_to_json_and_back(tmp_path: Path) -> None:
    source = tmp_path / "source"
    with open_db(source) as db:
        legacy_friendly(db)
    report = migrate(source, f"json:{tmp_path / 'out'}")
    assert report.ok, report.to_dict()
    assert report.copied == {"nodes": 20, "edges": 20, "vectors": 18}
    assert "jobs" not in checks(report)  # a legacy directory holds no jobs
    with open_db(tmp_path / "back") as db:
        import_legacy(db, tmp_path / "out")
        with open_db(source) as original:
            assert db.get_edges() == original.get_edges()
            mine = {n.id: n for n in original.list_nodes(limit=100)}
            for copied in db.list_nodes(limit=100):
                assert copied.props == mine[copied.id].props and copied.kind == mine[copied.id].kind
                assert copied.created == mine[copied.id].created
    again = validate_migration(source, tmp_path / "out")  # detected as legacy: concepts.json
    assert again.ok and again.mode == "validate"


def test_json_destination_refuses_what_the_format_cannot_hold(sqlite_source: Path,
                                                              tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="one tenant"):
        migrate(sqlite_source, f"json:{tmp_path / 'out'}")
    assert not (tmp_path / "out").exists()
    pairs = tmp_path / "pairs"
    with open_db(pairs) as db:
        db.add_nodes([{"id": "a"}, {"id": "b"}])
        db.add_edges([{"src": "a", "dst": "b", "type": "x"}, {"src": "a", "dst": "b", "type": "y"}])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="share their source and target"):
        migrate(pairs, f"json:{tmp_path / 'empty'}")
    assert list((tmp_path / "empty").iterdir()) == []  # emptied again, still there


# -- resuming ---------------------------------------------------------------------------------

CHILD = """
import os, signal, sys
from loomdb.interchange.migrate import migrate
src, dst, where, when, batch = sys.argv[1:6]
calls = 0

def kill_on(n):
    global calls
    calls += 1
    if calls == n:
        os.kill(os.getpid(), signal.SIGKILL)

if where == "inside":  # in the middle of a batch's transaction: the edges are written
    import loomdb.storage.postgres.backend
    from loomdb.storage.base import Backend
    for cls in Backend.__subclasses__():
        original = cls.put_edges
        def put_edges(self, *args, _original=original):
            _original(self, *args)
            kill_on(int(when))
        cls.put_edges = put_edges
progress = (lambda stage, done, total: kill_on(int(when)) if stage == "copy" else None)
migrate(src, dst, batch=int(batch), progress=progress if where == "between" else None)
"""


def killed_migration(src: str | Path, dst: str | Path, where: str, when: int,
                     batch: int) -> None:
    """Run a migration in a child process that SIGKILLs itself at the given point."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", CHILD, str(src), str(dst), where, str(when),
                           str(batch)], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr


def assert_checkpoint_matches_rows(dst: str | Path) -> int:
    """The checkpoint of a killed migration counts exactly the rows that are there."""
    with open_db(dst) as db:
        checkpoint = read_checkpoint(db.backend)
        assert checkpoint is not None and checkpoint.phase == "copying"
        stats = [db.backend.stats(t) for t in db.backend.tenants()]
        there = {kind: sum(sum(s[kind].values()) for s in stats)
                 for kind in ("nodes", "edges", "vectors")}
        assert there == checkpoint.copied
        return sum(there.values())


@pytest.mark.parametrize("where, when", [("between", 6), ("inside", 2)])
def test_resume_after_sigkill_to_postgres(sqlite_source: Path, postgres_url: str, where: str,
                                          when: int) -> None:
    killed_migration(sqlite_source, postgres_url, where, when, batch=5)
    copied = assert_checkpoint_matches_rows(postgres_url)
    assert 0 < copied < 48 + 48 + 176
    report = migrate(sqlite_source, postgres_url, batch=5)
    assert report.ok and report.resumed, report.to_dict()
    assert report.copied == {"nodes": 48, "edges": 48, "vectors": 176}
    assert_same_store(sqlite_source, postgres_url)


def test_resume_after_sigkill_to_sqlite(postgres_url: str, tmp_path: Path) -> None:
    with open_db(postgres_url) as db:
        fill(db)
    target = tmp_path / "copy"
    killed_migration(postgres_url, target, "between", 9, batch=4)
    assert_checkpoint_matches_rows(target)  # the dead writer's lock went with it
    report = migrate(postgres_url, target, batch=4)
    assert report.ok and report.resumed
    assert_same_store(postgres_url, target)


def test_changed_source_is_not_resumed_but_can_start_over(sqlite_source: Path,
                                                          tmp_path: Path) -> None:
    target = tmp_path / "copy"
    killed_migration(sqlite_source, target, "between", 3, batch=5)
    with open_db(sqlite_source) as db:
        db.add_node("late", text="added after the kill")
    with pytest.raises(Conflict, match="source changed"):
        migrate(sqlite_source, target)
    assert_checkpoint_matches_rows(target)  # refusing changed nothing
    report = migrate(sqlite_source, target, resume=False)
    assert report.ok and not report.resumed
    assert_same_store(sqlite_source, target)


def test_a_finished_migration_is_not_run_again(sqlite_source: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    assert migrate(sqlite_source, target).ok
    with pytest.raises(Conflict, match="already holds a completed migration"):
        migrate(sqlite_source, target)
    with pytest.raises(Conflict, match="already holds a completed migration"):
        migrate(sqlite_source, target, resume=False)  # never wipes a finished copy
    assert validate_migration(sqlite_source, target).ok


# -- dry run ----------------------------------------------------------------------------------


def test_dry_run_writes_nothing(sqlite_source: Path, postgres_url: str, tmp_path: Path) -> None:
    target = tmp_path / "never"
    report = migrate(sqlite_source, target, dry_run=True)
    assert report.ok and report.mode == "dry-run" and report.destination_state == "new store"
    assert report.survey["totals"] == {"nodes": 48, "edges": 48, "vectors": 176}
    assert report.survey["tenants"]["t2"]["nodes"] == {"entity": 12, "chunk": 12}
    assert report.survey["jobs"] == {"queued": 2, "running": 0, "failed": 0}
    assert not target.exists() and report.copied == {}
    with open_db(postgres_url) as db:
        before = db.seq
    assert migrate(sqlite_source, postgres_url, dry_run=True).destination_state == "empty store"
    with open_db(postgres_url) as db:
        assert db.seq == before and db.backend.get_meta("migration") is None
        assert db.backend.tenants() == [] and db.spaces() == []
    killed_migration(sqlite_source, postgres_url, "between", 4, batch=5)
    state = migrate(sqlite_source, postgres_url, dry_run=True).destination_state
    assert state is not None and state.startswith("resumable: ")


# -- failures leave the destination as it was -------------------------------------------------


def test_row_postgres_rejects_rolls_the_database_back(sqlite_source: Path, postgres_url: str,
                                                      tmp_path: Path) -> None:
    with open_db(sqlite_source) as db:
        db.tenant("t2").add_node("nul", text="SQLite keeps \x00, PostgreSQL cannot")
    report_path = tmp_path / "report.json"
    with pytest.raises(InvalidInput, match="NUL"):
        migrate(sqlite_source, postgres_url, batch=5, report=report_path)
    saved = json.loads(report_path.read_text())
    assert saved["rolled_back"] and saved["error"]["code"] == "invalid_input" and not saved["ok"]
    with open_db(postgres_url) as db:  # as it was: an empty store
        assert db.backend.tenants() == [] and db.spaces() == []
        assert db.backend.get_meta("migration") is None and db.backend.job_counts()["queued"] == 0
    with open_db(sqlite_source) as db:
        db.tenant("t2").delete_node("nul")
    assert migrate(sqlite_source, postgres_url).ok  # and usable again


def fail_on(call: int):  # type: ignore[no-untyped-def]
    calls = []

    def progress(stage: str, done: int, total: int) -> None:
        calls.append(stage)
        if len(calls) == call:
            raise RuntimeError("forced failure")

    return progress


@pytest.mark.parametrize("existing", ["none", "empty dir", "empty store"])
def test_failure_midway_restores_a_sqlite_destination(sqlite_source: Path, tmp_path: Path,
                                                      existing: str) -> None:
    target = tmp_path / "copy"
    if existing == "empty dir":
        target.mkdir()
    elif existing == "empty store":
        open_db(target).close()
    before = sorted(p.name for p in target.iterdir()) if target.exists() else None
    with pytest.raises(RuntimeError, match="forced"):
        migrate(sqlite_source, target, batch=5, progress=fail_on(8))
    if existing == "none":
        assert not target.exists()
    else:
        assert sorted(p.name for p in target.iterdir()) == before
    if existing == "empty store":
        with open_db(target) as db:
            assert db.backend.tenants() == [] and db.spaces() == []
            assert db.backend.get_meta("migration") is None


def test_failure_after_a_resume_still_removes_the_created_directory(sqlite_source: Path,
                                                                    tmp_path: Path) -> None:
    target = tmp_path / "copy"
    killed_migration(sqlite_source, target, "between", 3, batch=5)
    with pytest.raises(RuntimeError, match="forced"):
        migrate(sqlite_source, target, batch=5, progress=fail_on(5))
    assert not target.exists()


def test_failed_validation_rolls_back(sqlite_source: Path, postgres_url: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from loomdb.interchange.migrate import validation

    monkeypatch.setattr(validation, "MIN_TEXT_OVERLAP", 1.01)  # no overlap can pass now
    report = migrate(sqlite_source, postgres_url)
    assert not report.ok and report.rolled_back
    assert [c.name for c in report.failed_checks] == ["text_search"]
    with open_db(postgres_url) as db:
        assert db.backend.tenants() == [] and db.spaces() == []


# -- validation catches what differs ----------------------------------------------------------


def test_validation_catches_a_tampered_destination(sqlite_source: Path, postgres_url: str,
                                                   tmp_path: Path) -> None:
    assert migrate(sqlite_source, postgres_url).ok
    with open_db(postgres_url) as db:
        t2 = db.tenant("t2")
        victim = t2.list_nodes(limit=5)[3]
        t2.backend.put_nodes("t2", [loomdb.Node(**{**victim.__dict__,
                                                    "props": {**victim.props, "i": -1}})],
                             "replace")
        t2.set_vector("日本-0", np.ones(DIM), space="exact")
        edge = t2.get_edges(limit=1)[0]
        t2.delete_edge(edge.src, edge.dst, edge.type)
    report = validate_migration(sqlite_source, postgres_url, report=tmp_path / "again.json")
    failed = {c.name: c for c in report.failed_checks}
    assert {"nodes", "edges", "vectors", "counts"} <= set(failed)
    assert any(f"{victim.id!r}: checksums differ: props" in e for e in failed["nodes"].examples)
    assert any("'日本-0'" in e and "cosine" in e for e in failed["vectors"].examples)
    assert any("is missing from the destination" in e for e in failed["edges"].examples)
    assert not json.loads((tmp_path / "again.json").read_text())["ok"]
    with open_db(postgres_url) as db:  # validation alone never rolls anything back
        assert db.tenant("t2").has_node(victim.id)


# -- specs that cannot work -------------------------------------------------------------------


def test_bad_specs_give_clear_errors(sqlite_source: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no source store"):
        migrate(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(NotFound, match=r"holds no concepts\.json"):
        migrate(f"json:{sqlite_source}", tmp_path / "out")
    port = pg_server._free_port()
    with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port}"):
        migrate(sqlite_source, f"postgresql://loomdb@127.0.0.1:{port}/nothing")
    with pytest.raises(InvalidInput, match="same store"):
        migrate(sqlite_source, f"sqlite:{sqlite_source}/../source")
    with pytest.raises(InvalidInput, match="batch"):
        migrate(sqlite_source, tmp_path / "out", batch=0)
    (tmp_path / "clutter").mkdir()
    (tmp_path / "clutter" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="holds other files"):
        migrate(sqlite_source, tmp_path / "clutter")
    other = tmp_path / "other"
    with open_db(other) as db:
        db.add_node("someone-elses")
    with pytest.raises(Conflict, match="is not empty"):
        migrate(sqlite_source, other)
    with open_db(other) as db:
        assert [n.id for n in db.list_nodes()] == ["someone-elses"]
    assert not (tmp_path / "out").exists()
