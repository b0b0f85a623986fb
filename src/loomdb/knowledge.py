"""The Database methods that build knowledge: ingestion, chats, memories, and control of
the weaver that enriches them. Mixed into ``Database``; every method here is a thin call into
``loomdb.ingest``, ``loomdb.memory`` or ``loomdb.weaver``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any, cast

from .errors import InvalidInput, NotFound
from .ingest import pipeline
from .ingest.chunking import ChunkSettings
from .ingest.extract import ExtractLimits
from .memory import chats
from .memory.memories import Remembered, remember
from .model import Node
from .storage.base import Job, JobSpec
from .validation import check_id, check_limit
from .weaver.activity import TASK_NAMES, ActivityLevel
from .weaver.worker import Weaver, WeaverStatus

if TYPE_CHECKING:
    from .database import Database
    from .storage.base import Backend

__all__ = ["Knowledge"]


class Knowledge:
    """Ingestion, chats, memories and enrichment for one tenant (see ``Database``)."""

    backend: Backend
    tenant_name: str
    weaver: Weaver
    _background: bool

    if TYPE_CHECKING:
        def get_node(self, id: str) -> Node: ...  # noqa: A002
        def get_nodes(self, ids: Sequence[str]) -> dict[str, Node]: ...

    @property
    def _db(self) -> Database:
        return cast("Database", self)

    # -- ingestion, chats, memories -----------------------------------------------------------

    def ingest(
        self, sources: str | PathLike[str] | Iterable[str | PathLike[str]] | None = None, *,
        text: str | None = None, title: str | None = None, id: str | None = None,  # noqa: A002
        chunking: ChunkSettings | None = None, limits: ExtractLimits | None = None,
        password: str | None = None, strict: bool = False,
        progress: Callable[[pipeline.IngestResult], None] | None = None,
    ) -> list[pipeline.IngestResult]:
        """Ingest files, directories (their PDF, text, Markdown and HTML files) or, with
        ``text=``, a text; one result per source. Unchanged files are skipped; a file that
        fails is reported in its result (raised with ``strict``). Enrichment (embeddings,
        entities, summaries) is queued for the weaver in the same transaction."""
        if text is not None and not isinstance(text, str):
            raise InvalidInput("text= must be a string")
        provider = self.weaver.provider
        if text is not None:
            results = [pipeline.ingest_text(self._db, provider, text, title=title, document_id=id,
                                            chunking=chunking)]
        else:
            if sources is None:
                raise InvalidInput("ingest() needs paths or text=")
            paths = _paths(sources)
            results = pipeline.ingest_sources(self._db, provider, paths, chunking=chunking,
                                              limits=limits, password=password, strict=strict,
                                              progress=progress)
        self._kick()
        return results

    def delete_document(self, id: str) -> int:  # noqa: A002
        """Delete a document, its chunks and the entities only they mentioned."""
        return pipeline.delete_document(self._db, check_id(id))

    def create_chat(self, title: str, topic: str | None = None, *, id: str | None = None,  # noqa: A002
                    props: dict[str, Any] | None = None) -> Node:
        return chats.create_chat(self._db, title, topic, chat_id=id, props=props)

    def add_message(self, chat: str, sender: str, content: str, role: str = "user", *,
                    reply_to: str | None = None, id: str | None = None,  # noqa: A002
                    props: dict[str, Any] | None = None, created: float | None = None) -> Node:
        """Append a message to ``chat`` (``next`` from the one before, ``reply_to`` if given);
        its embedding, entities and the chat's summary follow in the background."""
        ref = chats.add_message(self._db, chat, sender, content, role, reply_to=reply_to,
                                message_id=id, props=props, created=created)
        self._kick()
        return self.get_node(ref.id)

    def entities_mentioned_in(self, id: str) -> list[Node]:  # noqa: A002
        """The entities a message or chunk mentions (once the weaver has linked them)."""
        return chats.entities_mentioned_in(self._db, id)

    def remember(self, text: str, *, kind: str = "memory", props: dict[str, Any] | None = None,
                 id: str | None = None) -> Remembered:  # noqa: A002
        """Keep a fact; a repeat of a known one reinforces it instead (novelty gating)."""
        found = remember(self._db, self.weaver.provider, text, self.weaver.settings, kind=kind,
                         props=props, memory_id=id)
        self._kick()
        return found

    # -- enrichment (the weaver) -----------------------------------------------------------

    def enrich(self, ids: Sequence[str], tasks: Sequence[str] = ("embed",)) -> int:
        """Queue enrichment of your own nodes: ``embed`` (then entities follow),
        ``entities``, ``summarize``. Returns the jobs queued."""
        unknown = set(tasks) - set(TASK_NAMES)
        if unknown:
            raise InvalidInput(f"unknown task(s) {sorted(unknown)}; tasks: {TASK_NAMES}")
        ids = [check_id(i) for i in ids]
        missing = set(ids) - set(self.get_nodes(ids))
        if missing:
            raise NotFound(f"no node(s) {sorted(missing)[:5]} in tenant {self.tenant_name!r}")
        count = self.backend.enqueue_jobs(self.tenant_name,
                                          [JobSpec(t, i) for i in ids for t in tasks])
        self._kick()
        return count

    def weaver_status(self) -> WeaverStatus:
        """Workers, queue size, done and failed counts, latency, and the last event."""
        return self.weaver.status()

    def set_activity_level(self, level: ActivityLevel) -> None:
        """``high``: embeddings only; ``normal``: everything but consolidation; ``sleep``:
        everything, consolidation included (queued now for this tenant)."""
        self.weaver.set_activity(level)
        if level == "sleep":
            self.backend.enqueue_jobs(self.tenant_name, [JobSpec("consolidate", "*")])
            self._kick()

    def wait_for_enrichment(self, timeout: float = 300.0) -> bool:
        """Block until no job of the current activity level is ready to run (running them in
        this thread when there is no background worker). ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.weaver.run_until_idle(max(deadline - time.monotonic(), 0.0))
            if self.weaver.pending() == 0:
                return True
            time.sleep(0.05)
        return False

    def jobs(self, id: str | None = None, *, status: str | None = None,  # noqa: A002
             limit: int = 100) -> list[Job]:
        """Enrichment jobs not yet done (queued, running, failed with their error), of one
        node or all of this tenant's."""
        if status not in (None, "queued", "running", "failed"):
            raise InvalidInput(f"status must be queued, running or failed, got {status!r}")
        node = None if id is None else check_id(id)
        return self.backend.list_jobs(self.tenant_name, node, status, check_limit(limit))

    def _kick(self) -> None:
        if self._background:
            self.weaver.start()
            self.weaver.notify()


def _paths(sources: object) -> list[str | PathLike[str]]:
    """``sources`` as a list of paths: one path, or an iterable of them."""
    if isinstance(sources, (str, PathLike)):
        return [sources]
    if isinstance(sources, bytes) or not isinstance(sources, Iterable):
        raise InvalidInput("ingest() takes a path or a list of paths (text= for a text)")
    paths = list(sources)
    if not all(isinstance(p, (str, PathLike)) for p in paths):
        raise InvalidInput("ingest() paths must be strings or path objects")
    return paths
