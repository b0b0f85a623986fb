"""The weaver: durable, resumable, retried enrichment, activity levels and status.

Real store, real local models. One test wraps the real provider to make it fail on purpose
(``FlakyProvider``): failure injection, not a stand-in for the models.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import loomdb
from loomdb.ml.bridge import Entity, Health, Matrix, MLProvider
from loomdb.weaver.worker import MAX_ATTEMPTS
from tests.enrich_fixtures import local_provider

pytestmark = pytest.mark.ml
REPO = Path(__file__).resolve().parents[2]


class FlakyProvider(MLProvider):
    """The real local provider, except that embedding a text containing "POISON" fails."""

    def __init__(self, inner: MLProvider) -> None:
        self.inner, self.calls = inner, 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        self.calls += 1
        if any("POISON" in t for t in texts):
            raise RuntimeError("the model choked on this text")
        return self.inner.embed(texts)

    def extract_entities(self, text: str) -> list[Entity]:
        return self.inner.extract_entities(text)

    def summarize(self, texts: Sequence[str], max_words: int = 80) -> str:
        return self.inner.summarize(texts, max_words)

    def health_check(self) -> Health:
        return self.inner.health_check()


def test_a_bad_node_fails_alone_with_backoff_and_its_error_is_visible(tmp_path: Path) -> None:
    with loomdb.open(tmp_path / "s", ml=FlakyProvider(local_provider()), weaver=False) as db:
        chat = db.create_chat("c")
        good = db.add_message(chat.id, "a", "Alice met Bob in Paris")
        bad = db.add_message(chat.id, "b", "POISON pill")
        db.weaver.run_once()
        assert db.get_vector(good.id).shape == (384,)  # its batch-mate failed; it did not
        [job] = db.jobs(bad.id)
        assert job.status == "queued" and job.attempts == 1 and "choked" in (job.error or "")
        assert job.run_after > job.updated  # backed off, not retried at once
        for attempt in range(2, MAX_ATTEMPTS + 1):
            db.weaver.run_once(now=time.time() + 10_000 * attempt)
        [job] = db.jobs(bad.id)
        assert job.status == "failed" and job.attempts == MAX_ATTEMPTS
        status = db.weaver_status()
        assert status.failed == 1 and "failed for good" in (status.last_event or "")
        db.update_node(bad.id, text="fixed now")
        db.enrich([bad.id])  # enqueueing again supersedes the failure
        assert db.wait_for_enrichment(60) and db.jobs(bad.id) == []
        assert db.get_vector(bad.id).shape == (384,)


def test_jobs_left_by_a_killed_process_are_resumed(tmp_path: Path) -> None:
    store = tmp_path / "s"
    script = textwrap.dedent(f"""
        import os, signal, loomdb
        db = loomdb.open({str(store)!r}, weaver=False, ml=None)
        chat = db.create_chat("c", id="chat")
        topics = ["the rain in Spain", "a cat on a mat", "GPU prices", "Norman castles",
                  "sourdough baking"]
        for i, topic in enumerate(topics):
            db.add_message("chat", "a", f"Let us talk about {{topic}}", id=f"m{{i}}")
        db.backend.claim_jobs(["embed"], 2, 300.0, __import__("time").time())  # then dies
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert done.returncode == -signal.SIGKILL
    with loomdb.open(store, ml=local_provider(), weaver=False) as db:
        status = db.weaver_status()  # the dead worker's 2 leases were released at open
        assert (status.queued, status.running_jobs) == (6, 0)  # 5 embeds + the summary
        assert db.wait_for_enrichment(120)  # at once, not after the 300 s lease
        assert all(db.get_vector(f"m{i}").shape == (384,) for i in range(5))


def embedded(db: loomdb.Database, node_id: str) -> bool:
    try:
        return bool(db.get_vectors([node_id]))
    except loomdb.NotFound:  # the space is made by the first embedding
        return False


def test_the_background_worker_resumes_at_open(tmp_path: Path) -> None:
    with loomdb.open(tmp_path / "s", ml=None, weaver=False) as db:
        chat = db.create_chat("c")
        message = db.add_message(chat.id, "a", "Alice met Bob in Paris")
    with loomdb.open(tmp_path / "s", ml=local_provider()) as db:
        assert db.weaver_status().running
        deadline = time.monotonic() + 120
        while not embedded(db, message.id) and time.monotonic() < deadline:
            time.sleep(0.1)  # claimed jobs count as running, not queued: wait for the result
        assert db.get_vector(message.id).shape == (384,)


def test_activity_levels_defer_everything_but_embeddings(enriched_db: loomdb.Database) -> None:
    db = enriched_db
    db.set_activity_level("high")
    chat = db.create_chat("c")
    message = db.add_message(chat.id, "a", "Alice met Bob in Paris")
    assert db.wait_for_enrichment(60)
    assert db.get_vector(message.id).shape == (384,)
    assert db.entities_mentioned_in(message.id) == []  # deferred
    waiting = {j.task for j in db.jobs(status="queued")}
    assert waiting == {"entities", "summarize"}
    db.set_activity_level("sleep")
    assert db.wait_for_enrichment(60)
    assert {e.text for e in db.entities_mentioned_in(message.id)} == {"Alice", "Bob", "Paris"}
    assert db.jobs() == [] and db.weaver_status().by_task["consolidate"]["done"] == 1
    with pytest.raises(loomdb.InvalidInput):
        db.set_activity_level("frantic")  # type: ignore[arg-type]


def test_status_reports_queue_done_latency_and_last_event(enriched_db: loomdb.Database) -> None:
    db = enriched_db
    chat = db.create_chat("c")
    for i in range(3):
        db.add_message(chat.id, "a", f"Note {i}: the meeting with Carol moved to Berlin")
    before = db.weaver_status()
    assert before.queue_size == 4 and before.done == 0 and not before.running
    db.wait_for_enrichment(60)
    after = db.weaver_status()
    assert after.queue_size == 0 and after.done >= 4 and after.failed == 0
    assert after.latency["embed"]["p50"] > 0 and after.last_event


def test_tenants_are_enriched_apart(enriched_db: loomdb.Database) -> None:
    other = enriched_db.tenant("other")
    chat = other.create_chat("c")
    message = other.add_message(chat.id, "a", "Alice met Bob in Paris")
    enriched_db.wait_for_enrichment(60)
    assert [e.text for e in other.entities_mentioned_in(message.id)]
    assert enriched_db.count(kind="entity") == 0 and other.count(kind="entity") == 3


def test_writers_and_the_background_worker_run_side_by_side(tmp_path: Path) -> None:
    import threading

    topics = ["rain in Spain", "cats on mats", "GPU prices", "Norman castles", "sourdough",
              "tide tables", "chess openings", "bee keeping"]
    with loomdb.open(tmp_path / "s", ml=local_provider()) as db:
        chats = [db.create_chat(f"room {i}") for i in range(2)]
        errors: list[BaseException] = []

        def write(chat: str, offset: int) -> None:
            try:
                for i, topic in enumerate(topics):
                    db.add_message(chat, "u", f"Thread {offset}: a note about {topic}",
                                   id=f"{chat}-{i}")
            except BaseException as exc:
                errors.append(exc)

        writers = [threading.Thread(target=write, args=(c.id, n)) for n, c in enumerate(chats)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        assert errors == [] and db.weaver_status().running
        assert db.wait_for_enrichment(120)
        ids = [f"{c.id}-{i}" for c in chats for i in range(len(topics))]
        embedded = db.get_vectors(ids)
        repeats = [i for i in ids if "duplicate_of" in db.get_node(i).props]
        assert len(embedded) + len(repeats) == len(ids) and db.check() == []


def _crash_holding_leases(store: Path, requeue: bool) -> None:
    """A child process that claims the store's jobs and dies without finishing them."""
    code = (
        "import loomdb, os, time\n"
        f"db = loomdb.open({str(store)!r}, ml=None, weaver=False)\n"
        "db.add_node('n1', kind='chunk', text='radium')\n"
        "db.add_node('n2', kind='chunk', text='polonium')\n"
        "db.enrich(['n1', 'n2'])\n"
        "assert len(db.backend.claim_jobs(None, 10, 300.0, time.time())) == 2\n"
        + ("db.enrich(['n2'])\n" if requeue else "")  # queued again while running
        + "os._exit(9)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 9, result.stderr


@pytest.mark.parametrize("requeue", [False, True])
def test_a_crashed_writers_leases_are_released_when_the_store_reopens(
        tmp_path: Path, requeue: bool) -> None:
    """The writer lock proves the process that held the leases is gone: its jobs are queued
    again at once instead of waiting out the 300 s lease."""
    _crash_holding_leases(tmp_path / "s", requeue)
    with loomdb.open(tmp_path / "s", ml=None, weaver=False) as db:
        assert db.jobs(status="running") == []
        queued = sorted((j.node_id, j.attempts) for j in db.jobs(status="queued"))
        assert queued == [("n1", 1), ("n2", 0 if requeue else 1)]
        assert len(db.backend.claim_jobs(None, 10, 300.0, time.time())) == 2  # runnable now
