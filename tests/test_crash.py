"""Crash safety: SIGKILL a writer at random moments; every acknowledged batch must survive.

After each kill the store is reopened and checked: every acknowledged batch present and
whole, no partial batch, ``PRAGMA integrity_check`` ok, index ids equal to table ids.
``make test`` runs 20 kills; ``make crash-soak`` runs hundreds (LOOMDB_CRASH_KILLS).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import loomdb

from .crash_child import BATCH, batch_ids

CHILD = Path(__file__).with_name("crash_child.py")


def run_and_kill(store: Path, first: int, rng: random.Random) -> list[int]:
    """Start the child, let it write for a random while, SIGKILL it; return its acks."""
    errors = store.parent / "child-stderr.txt"
    acked: list[int] = []
    with errors.open("w") as stderr, subprocess.Popen(
        [sys.executable, str(CHILD), str(store), str(first)],
        stdout=subprocess.PIPE, stderr=stderr, text=True,
    ) as child:

        def read() -> None:
            assert child.stdout is not None
            for line in child.stdout:
                acked.append(int(line.split()[1]))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not acked and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until it writes, so the kill lands mid-work
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        reader.join(timeout=10)
    assert acked, f"child never acknowledged a batch: {errors.read_text()}"
    assert child.returncode == -signal.SIGKILL, errors.read_text()
    return list(acked)


def verify(store: Path, acked: set[int], attempted: int) -> int:
    """Check the reopened store; return the next batch number to write."""
    with loomdb.open(store) as db:
        assert db.backend.check_integrity() == []
        present = {int(n.props["b"]) for n in _all_nodes(db)}
        assert acked <= present, f"acknowledged batches lost: {sorted(acked - present)}"
        for number in present:
            ids = batch_ids(number)
            survivors = db.get_nodes(ids)
            expected = set(ids) - set(batch_ids(number)[:2]) if number + 3 in present else set(
                ids)
            assert set(survivors) == expected, f"batch {number} is partial"
            assert len(db.get_edges(src=ids[-2])) == (ids[-2] in survivors)
        assert db.check() == [], "index ids differ from table ids"
        return max(present | {attempted}) + 1


def _all_nodes(db: loomdb.Database) -> list[loomdb.Node]:
    """Every node, page by page: a long soak holds more than one page (100,000) can."""
    nodes: list[loomdb.Node] = []
    while page := db.list_nodes(limit=100_000, offset=len(nodes)):
        nodes += page
    return nodes


def crash_cycles(tmp_path: Path, kills: int, seed: int) -> None:
    store, rng = tmp_path / "store", random.Random(seed)
    acked: set[int] = set()
    first = 0
    for _ in range(kills):
        new = run_and_kill(store, first, rng)
        acked |= set(new)
        first = verify(store, acked, max(new))


def test_sigkill_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    crash_cycles(tmp_path, kills=20, seed=1)


@pytest.mark.slow
def test_crash_soak(tmp_path: Path) -> None:
    crash_cycles(tmp_path, kills=int(os.environ.get("LOOMDB_CRASH_KILLS", "300")), seed=2)


def test_batch_size_is_what_the_checks_assume() -> None:
    assert BATCH > 2
